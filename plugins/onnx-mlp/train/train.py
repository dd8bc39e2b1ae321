"""Trains the onnx-mlp forecaster's model and exports it to ONNX, reproducibly.

    python3 -m pip install -r plugins/onnx-mlp/train/requirements.txt
    python3 plugins/onnx-mlp/train/train.py            # -> plugins/onnx-mlp/model/

Data: every series in shared/data/series/ whose median step lies between 5 minutes and 1 hour.
Only the first 80 % of each series is used for training; the last 20 % is held out and only
evaluated (the numbers land in model/training.json). The model is an MLP on the features of
`features.py` that corrects the seasonal-naive forecast into the 10th, 50th and 90th
percentiles of the value `k` steps ahead, divided by the history's scale; it is trained with
numpy (Adam, pinball loss, fixed seed) and written with onnx.helper. Same data and versions:
same bytes.
"""

import argparse
import hashlib
import json
import math
import os
import pathlib
import time

# One BLAS thread: the same sums in the same order on any machine, so the same bytes (and on
# matrices this small, faster than several threads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import export  # noqa: E402
from features import DAY, FEATURES, HOUR, MAX_LEAD, Series, features  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
LEVELS = np.array([0.1, 0.5, 0.9])
TRAIN_SHARE = 0.8
SEED = 20240601
# Targets are clipped for the loss: a spike of thousands of times a near-zero recent mean is
# not learnable from these features, and the loss should not be dominated by it.
TARGET_CLIP = 50.0
# Share of training samples whose calendar features read a shifted clock (see `sample`).
SHIFTED = 0.5


def load(directory):
    """Every usable series as (name, Series), placed on its median step with NaN for gaps."""
    out = []
    for path in sorted(pathlib.Path(directory).glob("*.csv")):
        stamps, values = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1), dtype=str, unpack=True)
        times = np.array([t.rstrip("Z") for t in stamps], dtype="datetime64[s]").astype(np.int64)
        values = values.astype(np.float64)
        step = int(np.median(np.diff(times)))
        if not 300 <= step <= 3600:
            continue
        index = np.rint((times - times[0]) / step).astype(np.int64)
        grid = np.full(index[-1] + 1, np.nan)
        grid[index] = values
        out.append((path.stem, Series(times[0], step, grid)))
    return out


def sample(s, lo, hi, count, rng, augment):
    """`count` forecasts whose last index and target both lie in [lo, hi]: (o, h0, k)."""
    max_k = MAX_LEAD // s.step
    o = rng.integers(lo, hi, size=count * 2)
    # A quarter at the shortest leads (1–3 steps), the rest log-uniform up to 48 h.
    short = rng.integers(1, 4, size=len(o))
    longer = np.ceil(np.exp(rng.uniform(0, np.log(max_k), size=len(o)))).astype(np.int64)
    k = np.where(rng.random(len(o)) < 0.25, short, np.minimum(longer, max_k))
    # A fifth see a short history (2 steps to 2 days), as a service that has just started.
    recent = o - rng.integers(2, max(3, 2 * DAY // s.step), size=len(o))
    h0 = np.where(rng.random(len(o)) < 0.2, np.maximum(recent, 0), 0)
    ok = (o + k <= hi) & (s.prev_valid[o] >= h0)
    ok &= ~np.isnan(s.values[np.minimum(o + k, len(s.values) - 1)])
    o, h0, k = o[ok][:count], h0[ok][:count], k[ok][:count]
    # Half the samples read a clock shifted by whole hours (up to a week): with a few dozen
    # series, an exact clock lets the model recognise a series by its dates instead of learning
    # from its history; shifted, the calendar only helps where it generalises.
    shift = np.where(rng.random(len(o)) < SHIFTED, rng.integers(0, 7 * 24, size=len(o)) * HOUR, 0)
    x, scale = features(s, o, h0, k, shift if augment else 0)
    return x, s.values[o + k] / scale, (o, k, scale)


def build(data, split, per_series, rng):
    xs, ys, meta = [], [], []
    for name, s in data:
        n_train = int(len(s.values) * TRAIN_SHARE)
        lo, hi = (2, n_train - 1) if split == "train" else (n_train, len(s.values) - 1)
        if hi - lo < 4:
            continue
        x, y, m = sample(s, lo, hi, per_series, rng, augment=split == "train")
        xs.append(x)
        ys.append(y)
        meta.append((name, s, x, y, m))
    y = np.clip(np.concatenate(ys), -TARGET_CLIP, TARGET_CLIP)
    return np.concatenate(xs).astype(np.float32), y.astype(np.float32), meta


class Mlp:
    """features → hidden → hidden → (p10, p50, p90): p50 corrects the seasonal-naive baseline,
    the outer two are kept on either side of it."""

    def __init__(self, sizes, rng):
        self.params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            w = rng.normal(0, math.sqrt(2.0 / fan_in), size=(fan_in, fan_out)).astype(np.float32)
            self.params += [w, np.zeros(fan_out, dtype=np.float32)]

    def forward(self, x):
        acts = [export.clip(x)]
        for i in range(0, len(self.params) - 2, 2):
            acts.append(np.maximum(acts[-1] @ self.params[i] + self.params[i + 1], 0.0))
        raw = acts[-1] @ self.params[-2] + self.params[-1]
        return export.quantiles(raw, x), (acts, raw)

    def backward(self, grad_q, cache):
        acts, raw = cache
        sig = lambda v: 0.5 * (1.0 + np.tanh(0.5 * v))  # noqa: E731 — softplus' derivative, stable
        g_raw = np.stack(
            [-grad_q[:, 0] * sig(raw[:, 0]), grad_q.sum(axis=1), grad_q[:, 2] * sig(raw[:, 2])], axis=1
        )
        grads = [None] * len(self.params)
        g = g_raw
        for i in range(len(self.params) - 2, -1, -2):
            grads[i] = acts[i // 2].T @ g
            grads[i + 1] = g.sum(axis=0)
            if i:
                g = (g @ self.params[i].T) * (acts[i // 2] > 0)
        return grads


def pinball(q, y):
    """Mean pinball loss over samples and levels, and its gradient with respect to q."""
    diff = y[:, None] - q
    loss = np.maximum(LEVELS * diff, (LEVELS - 1) * diff)
    grad = np.where(diff > 0, -LEVELS, 1 - LEVELS) / (len(y) * len(LEVELS))
    return float(loss.mean()), grad.astype(np.float32)


def train(model, x, y, epochs, batch, rng, log):
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in model.params]
    beta1, beta2, step = 0.9, 0.999, 0
    steps_total = epochs * math.ceil(len(x) / batch)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            q, cache = model.forward(x[idx])
            loss, grad_q = pinball(q, y[idx])
            losses.append(loss)
            grads = model.backward(grad_q, cache)
            step += 1
            # Cosine decay from 2e-3 to 1e-4.
            lr = 1e-4 + 0.5 * (2e-3 - 1e-4) * (1 + math.cos(math.pi * step / steps_total))
            for p, g, (m, v) in zip(model.params, grads, moments):
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                p -= lr * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + 1e-8)
        log(f"epoch {epoch + 1:2d}/{epochs}: train pinball {np.mean(losses):.4f}")


def evaluate(model, meta):
    """Numbers per series, averaged over series so each weighs the same: pinball loss on
    clipped, scaled targets; WAPE (sum of absolute errors over sum of absolute values) of the
    median in the series' own units."""
    rows = []
    for name, s, x, y, (o, k, scale) in meta:
        q, _ = model.forward(x.astype(np.float32))
        last = s.values[s.prev_valid[o]] / scale
        # Same hour yesterday (or two days back), as the seasonal-naive rule would.
        daily = export.baseline(x)
        actual = y * scale
        wape = lambda p: float(np.abs(actual - p * scale).sum() / max(np.abs(actual).sum(), 1e-9))  # noqa: E731
        rows.append(
            {
                "series": name,
                "samples": int(len(y)),
                "pinball": pinball(q, np.clip(y, -TARGET_CLIP, TARGET_CLIP))[0],
                "coverage_p10_p90": float(np.mean((y >= q[:, 0]) & (y <= q[:, 2]))),
                "wape_p50": wape(q[:, 1]),
                "wape_last_value": wape(last),
                "wape_same_hour_yesterday": wape(daily),
            }
        )
    keys = [k for k in rows[0] if k not in ("series", "samples")]
    summary = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    return summary, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=HERE.parents[2].parent / "shared/data/series", type=pathlib.Path)
    parser.add_argument("--out", default=HERE.parent / "model", type=pathlib.Path)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--per-series", type=int, default=6000)
    args = parser.parse_args()
    started = time.time()
    log = lambda m: print(f"[{time.time() - started:6.1f}s] {m}", flush=True)  # noqa: E731

    rng = np.random.default_rng(SEED)
    data = load(args.data)
    log(f"{len(data)} series with steps of 5 min to 1 h from {args.data}")
    x, y, _ = build(data, "train", args.per_series, rng)
    _, _, held_out = build(data, "test", args.per_series // 3, rng)
    log(f"{len(x)} training samples (first {TRAIN_SHARE:.0%} of each series), {FEATURES} features")

    model = Mlp([FEATURES, args.hidden, args.hidden, 3], rng)
    train(model, x, y, args.epochs, 512, rng, log)
    summary, per_series = evaluate(model, held_out)
    train_summary, _ = evaluate(model, build(data, "train", args.per_series // 3, np.random.default_rng(SEED + 1))[2])
    log(f"held out (last {1 - TRAIN_SHARE:.0%}): {json.dumps(summary)}")

    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "demand-mlp.onnx"
    export.write(model.params, LEVELS, onnx_path, summary)
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    export.check_with_onnxruntime(onnx_path, model, x[:256])
    export.write_parity_fixture(args.out / "features.json")
    record = {
        "model": onnx_path.name,
        "sha256": digest,
        "bytes": onnx_path.stat().st_size,
        "levels": LEVELS.tolist(),
        "features": FEATURES,
        "hidden": [args.hidden, args.hidden],
        "epochs": args.epochs,
        "seed": SEED,
        "train_share": TRAIN_SHARE,
        "training_samples": int(len(x)),
        "series": [name for name, _ in data],
        "train": train_summary,
        "held_out": summary,
        "held_out_per_series": per_series,
        "max_lead_s": MAX_LEAD,
        "hour_s": HOUR,
    }
    (args.out / "training.json").write_text(json.dumps(record, indent=1) + "\n")
    log(f"wrote {onnx_path} ({record['bytes']} bytes, sha256 {digest[:12]}…)")


if __name__ == "__main__":
    main()

"""Writes the trained MLP as an ONNX graph (onnx.helper) and the files that keep the plugin
honest: a check that ONNX Runtime computes what numpy did, and a fixture of features that the
plugin's Rust code must reproduce (`src/features.rs`, test `features_match_the_training_code`).
"""

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from features import FEATURES, TWO_DAYS, YESTERDAY, YESTERDAY_SEEN, Series, features

# Inputs are clipped: a burst can be many times the recent mean, and an MLP extrapolates
# badly far outside what it was trained on.
CLIP = 20.0
OPSET = 17


def clip(x):
    return np.clip(x, -CLIP, CLIP)


def softplus(v):
    return np.logaddexp(0.0, v)


def baseline(x):
    """What the network corrects: the same hour yesterday when the history has it, else two
    days back (which holds the recent level when it is missing too) — the seasonal-naive rule.
    A series whose days repeat is forecast well before the network has learned anything."""
    x = clip(x)
    return x[:, TWO_DAYS] + x[:, YESTERDAY_SEEN] * (x[:, YESTERDAY] - x[:, TWO_DAYS])


def quantiles(raw, x):
    """The head: p50 the baseline plus a correction, p10 and p90 a positive distance below
    and above it."""
    p50 = baseline(x) + raw[:, 1]
    return np.stack([p50 - softplus(raw[:, 0]), p50, p50 + softplus(raw[:, 2])], axis=1)


def write(params, levels, path, summary):
    inits = [
        numpy_helper.from_array(np.array(-CLIP, dtype=np.float32), "clip_min"),
        numpy_helper.from_array(np.array(CLIP, dtype=np.float32), "clip_max"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "i0"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "i1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "i2"),
        numpy_helper.from_array(np.array([YESTERDAY], dtype=np.int64), "i_yesterday"),
        numpy_helper.from_array(np.array([YESTERDAY_SEEN], dtype=np.int64), "i_seen"),
        numpy_helper.from_array(np.array([TWO_DAYS], dtype=np.int64), "i_two_days"),
    ]
    nodes = [helper.make_node("Clip", ["features", "clip_min", "clip_max"], ["h0"])]
    layers = len(params) // 2
    for i in range(layers):
        inits += [
            numpy_helper.from_array(params[2 * i].astype(np.float32), f"w{i}"),
            numpy_helper.from_array(params[2 * i + 1].astype(np.float32), f"b{i}"),
        ]
        nodes += [
            helper.make_node("MatMul", [f"h{i}", f"w{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}" if i < layers - 1 else "raw"]),
        ]
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [f"a{i}"], [f"h{i + 1}"]))
    nodes += [
        helper.make_node("Gather", ["h0", "i_yesterday"], ["yesterday"], axis=1),
        helper.make_node("Gather", ["h0", "i_seen"], ["seen"], axis=1),
        helper.make_node("Gather", ["h0", "i_two_days"], ["two_days"], axis=1),
        helper.make_node("Sub", ["yesterday", "two_days"], ["day_diff"]),
        helper.make_node("Mul", ["seen", "day_diff"], ["day_pick"]),
        helper.make_node("Add", ["two_days", "day_pick"], ["baseline"]),
        helper.make_node("Gather", ["raw", "i0"], ["r0"], axis=1),
        helper.make_node("Gather", ["raw", "i1"], ["r1"], axis=1),
        helper.make_node("Gather", ["raw", "i2"], ["r2"], axis=1),
        helper.make_node("Add", ["baseline", "r1"], ["p50"]),
        helper.make_node("Softplus", ["r0"], ["below"]),
        helper.make_node("Softplus", ["r2"], ["above"]),
        helper.make_node("Sub", ["p50", "below"], ["p10"]),
        helper.make_node("Add", ["p50", "above"], ["p90"]),
        helper.make_node("Concat", ["p10", "p50", "p90"], ["quantiles"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "demand-mlp",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", FEATURES])],
        [helper.make_tensor_value_info("quantiles", TensorProto.FLOAT, ["batch", len(levels)])],
        inits,
    )
    model = helper.make_model(
        graph,
        producer_name="foresight onnx-mlp train.py",
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string=(
            "Demand quantiles (levels "
            + ", ".join(f"{level:g}" for level in levels)
            + ") of one series k steps ahead, divided by the history's scale; input: the "
            + f"{FEATURES} features of plugins/onnx-mlp/train/features.py"
        ),
    )
    # IR 8 / opset 17 load in every ONNX Runtime since 1.14.
    model.ir_version = 8
    helper.set_model_props(model, {"levels": ",".join(f"{level:g}" for level in levels)})
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def check_with_onnxruntime(path, model, x):
    """ONNX Runtime must compute what numpy computed (when it is installed)."""
    try:
        import onnxruntime
    except ImportError:
        print("onnxruntime not installed: skipping the export check")
        return
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"features": x})
    want, _ = model.forward(x)
    worst = float(np.max(np.abs(got - want)))
    assert worst < 1e-4, f"ONNX Runtime disagrees with numpy by {worst}"
    print(f"onnxruntime {onnxruntime.__version__} agrees with numpy (max difference {worst:.2e})")


def parity_cases():
    """Histories with what the Rust side must get right: gaps, a step that is not 5 minutes,
    a start off the hour, a history shorter than the windows, a last hour with no data."""
    rng = np.random.default_rng(7)

    def daily(n, step, start):
        t = start + step * np.arange(n)
        return 100 + 40 * np.sin(2 * np.pi * (t % 86_400) / 86_400) + rng.normal(0, 3, n)

    a = daily(3 * 288 + 84, 300, 1_700_000_123)
    a[[5, 6, 7, 300]] = np.nan
    a[700:760] = np.nan
    b = daily(20, 600, 1_699_999_800)
    b[-1] = np.nan
    c = daily(8 * 144, 600, 1_699_920_000)
    d = daily(1440, 60, 1_700_006_400)
    e = daily(900, 300, 1_700_000_000)
    e[-600:] = np.nan
    return [
        (1_700_000_123, 300, a, [300, 3600, 6 * 3600, 86_400, 172_800, 259_200]),
        (1_699_999_800, 600, b, [600, 7200]),
        (1_699_920_000, 600, c, [600, 86_400, 172_800]),
        (1_700_006_400, 60, d, [60, 3600, 86_400]),
        (1_700_000_000, 300, e, [300, 86_400]),
    ]


def write_parity_fixture(path):
    cases = []
    for start, step, values, horizons in parity_cases():
        values = np.round(values, 3)
        s = Series(start, step, values)
        n = len(values)
        k = [max(1, -(-h // step)) for h in horizons]
        x, scale = features(s, [n - 1] * len(k), [0] * len(k), k)
        cases.append(
            {
                "start": start,
                "step": step,
                "values": [None if np.isnan(v) else float(v) for v in values],
                "horizons": horizons,
                "scale": scale.tolist(),
                "features": x.tolist(),
            }
        )
    note = "Written by train.py: features the plugin must compute for these histories (tolerance 1e-6 relative)."
    path.write_text(json.dumps({"note": note, "cases": cases}) + "\n")

#!/usr/bin/env python3
"""Foresight's forecasters against statsforecast's SeasonalNaive, AutoETS and MSTL, side by side.

Both sides see the same series and origins, under the protocol of `foresight forecast eval`:

* every `timestamp,value` CSV of --data whose median step lies in [--min-step, --max-step];
* each series on an even grid at its median step from its first timestamp (rows snapped to the
  nearest point, rows on one point averaged); gaps stay gaps;
* origins every 24 h over the last 20 % of the series; the model sees only the data before the
  origin; the error for horizon H is taken at lead exactly H after the last value seen, with
  the median (p50) as the point forecast, only where a value was observed;
* MASE scaled by the in-sample MAE of a one-day seasonal-naive forecast before the first
  origin; p10-p90 coverage from the 80 % prediction interval.

statsforecast models cannot take gaps, so their input has gaps linearly interpolated (the scores
still skip gaps). Seasons: one day (SeasonalNaive, AutoETS) and one day + one week (MSTL), in
steps of the series. Foresight's side runs `foresight forecast eval` on the same files.

    python3 -m venv .venv && .venv/bin/pip install -r tests/compare/requirements.txt
    .venv/bin/python tests/compare/compare_statsforecast.py --data ../shared/data/series
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime

import numpy as np

DAY = 86_400
WEEK = 7 * DAY


# statsforecast's models compared, in the order they print.
MODELS = ["SeasonalNaive", "AutoETS", "MSTL"]

# Foresight's forecaster and statsforecast's model of the same family, for the speed comparison.
FAMILIES = [("seasonal-naive", "SeasonalNaive"), ("holt-winters", "AutoETS"), ("mstl", "MSTL")]


def parse_duration(text):
    units = {"s": 1, "m": 60, "h": 3600, "d": DAY}
    return int(float(text[:-1]) * units[text[-1]])


def load(path):
    """The series on its grid (NaN gaps) and its step, or None for a file that is not timestamp,value."""
    with open(path) as f:
        header = f.readline().strip()
        if header != "timestamp,value":
            return None
        rows = []
        for line in f:
            stamp, value = line.strip().split(",")
            t = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            rows.append((int(round(t)), float(value)))
    if len(rows) < 2:
        return None
    times = np.array([t for t, _ in rows], dtype=np.int64)
    step = int(np.median(np.diff(times)))
    if step <= 0:
        return None
    slots = np.round((times - times[0]) / step).astype(np.int64)
    sums = np.zeros(slots[-1] + 1)
    counts = np.zeros(slots[-1] + 1)
    for k, (_, v) in zip(slots, rows):
        sums[k] += v
        counts[k] += 1
    values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return values, step


def origins(n, step):
    per_day = max(DAY // step, 1)
    first = max(math.ceil(n * 0.8), 2)
    return list(range(first, n, per_day))


def naive_scale(values, step):
    lag = DAY // step if DAY % step == 0 else 1
    lag = lag if lag < len(values) else 1
    a, b = values[:-lag], values[lag:]
    ok = ~np.isnan(a) & ~np.isnan(b)
    if not ok.any():
        return None
    mae = np.abs(b[ok] - a[ok]).mean()
    return mae if mae > 0 else None


def fill(values):
    idx = np.arange(len(values))
    ok = ~np.isnan(values)
    return np.interp(idx, idx[ok], values[ok])


def statsforecast_series(values, step, horizons, wanted):
    """Per model of `wanted`: ({horizon label: (mase, coverage)}, seconds) for one series, or None when unscoreable."""
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS, SeasonalNaive

    season = max(DAY // step, 1)
    week = max(WEEK // step, 1)
    leads = [(label, h // step) for label, h in horizons if h >= step and h % step == 0]
    starts = [o for o in origins(len(values), step) if np.count_nonzero(~np.isnan(values[:o])) >= 2]
    scale = naive_scale(values[: starts[0]], step) if starts else None
    if not leads or scale is None:
        return None
    longest = max(k for _, k in leads)
    models = {
        "SeasonalNaive": lambda: SeasonalNaive(season_length=season),
        "AutoETS": lambda: AutoETS(season_length=season),
        "MSTL": lambda: MSTL(season_length=[season, week] if len(values) > 2 * week else [season]),
    }
    out = {}
    for model, make in models.items():
        if model not in wanted:
            continue
        errors = {label: [] for label, _ in leads}
        inside = {label: [] for label, _ in leads}
        started = time.perf_counter()
        for o in starts:
            y = fill(values[:o])
            df = pd.DataFrame({"unique_id": 0, "ds": np.arange(o), "y": y})
            sf = StatsForecast(models=[make()], freq=1, n_jobs=1)
            f = sf.forecast(df=df, h=longest, level=[80])
            column = [c for c in f.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c][0]
            for label, k in leads:
                target = o - 1 + k
                if target >= len(values) or np.isnan(values[target]):
                    continue
                actual = values[target]
                row = f.iloc[k - 1]
                errors[label].append(abs(row[column] - actual))
                inside[label].append(bool(row[f"{column}-lo-80"] <= actual <= row[f"{column}-hi-80"]))
        scores = {
            label: (float(np.mean(errors[label]) / scale), float(np.mean(inside[label])))
            for label, _ in leads
            if errors[label]
        }
        out[model] = {"scores": scores, "seconds": time.perf_counter() - started}
    return out


def cached_models(entry):
    """The models a cache entry holds; every model for a series that cannot be scored (None)."""
    return set(MODELS) if entry is None else set(entry)


def statsforecast_side(series, horizons, cache, jobs, wanted):
    """Per model: {horizon label: [per-series (mase, coverage)]} and mean seconds per series.

    With a cache file, each series' result is written as soon as it is known and read back on the
    next run, so an interrupted comparison resumes where it stopped.
    """
    done = {}
    if cache and os.path.exists(cache):
        with open(cache) as f:
            done = json.load(f)
    key_of = {name: f"{name}|{','.join(l for l, _ in horizons)}" for name in series}
    missing = {
        name: [m for m in wanted if key_of[name] not in done or m not in cached_models(done[key_of[name]])]
        for name in series
    }
    todo = [name for name in series if missing[name]]

    def keep(name, result):
        # Models fitted on earlier runs stay; a series that cannot be scored stays None.
        before = done.get(key_of[name])
        done[key_of[name]] = None if result is None else (before or {}) | result
        print(f"statsforecast {len(series) - len(todo) + 1}/{len(series)}: {name}", file=sys.stderr, flush=True)
        todo.remove(name)
        if cache:
            with open(cache + ".tmp", "w") as f:
                json.dump(done, f)
            os.replace(cache + ".tmp", cache)

    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            running = {pool.submit(statsforecast_series, *series[name], horizons, missing[name]): name for name in todo}
            for future in as_completed(running):
                keep(running[future], future.result())
    else:
        for name in list(todo):
            keep(name, statsforecast_series(*series[name], horizons, missing[name]))
    results, seconds = {}, {}
    for name in series:
        entry = done.get(key_of[name])
        if entry is None:
            continue
        for model, m in entry.items():
            if model not in wanted:
                continue
            seconds.setdefault(model, []).append(m["seconds"])
            for label, score in m["scores"].items():
                results.setdefault(model, {}).setdefault(label, []).append(tuple(score))
    return results, {m: float(np.mean(s)) for m, s in seconds.items()}


def foresight_side(files, horizons, binary, plugins):
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        for f in files:
            os.symlink(os.path.abspath(f), os.path.join(data, os.path.basename(f)))
        out = os.path.join(tmp, "eval.json")
        cmd = [binary, "forecast", "eval", "--data", data, "--horizons", ",".join(l for l, _ in horizons), "--out", out]
        if plugins:
            cmd += ["--plugin", *plugins]
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        with open(out) as f:
            return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/series")
    parser.add_argument("--horizons", default="1h,6h,24h")
    parser.add_argument("--min-step", type=int, default=300)
    parser.add_argument("--max-step", type=int, default=3600)
    parser.add_argument("--foresight", default=shutil.which("foresight") or "target/release/foresight")
    parser.add_argument("--plugin", nargs="*", default=[])
    parser.add_argument("--limit", type=int, default=0, help="first N series only (quick runs)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="series fitted in parallel on statsforecast's side (each fit is single-threaded either way)",
    )
    parser.add_argument(
        "--cache",
        help="JSON file keeping statsforecast's side per series, so a rerun or an interrupted run skips what is done (their side takes long)",
    )
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="compare on the series whose statsforecast side is already in --cache, fitting nothing new (a partial comparison while a full run is under way)",
    )
    parser.add_argument("--json", help="also write both sides' figures to this JSON file")
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help="statsforecast models to fit and compare, comma-separated (AutoETS takes most of their side's time)",
    )
    args = parser.parse_args()
    if args.cached_only and not args.cache:
        parser.error("--cached-only needs --cache FILE")
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in MODELS]
    if unknown or not wanted:
        parser.error(f"--models: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(MODELS)}")

    horizons = [(h, parse_duration(h)) for h in args.horizons.split(",")]
    series = {}
    for name in sorted(os.listdir(args.data)):
        if not name.endswith(".csv"):
            continue
        loaded = load(os.path.join(args.data, name))
        if loaded is None:
            print(f"note: skipping {name}: not timestamp,value", file=sys.stderr)
            continue
        if args.min_step <= loaded[1] <= args.max_step:
            series[name] = loaded
    if args.limit:
        series = dict(list(series.items())[: args.limit])
    print(f"{len(series)} series with steps in [{args.min_step}, {args.max_step}] s", file=sys.stderr)
    if args.cached_only:
        done = set()
        if os.path.exists(args.cache):
            with open(args.cache) as f:
                done = {
                    key.split("|")[0]
                    for key, entry in json.load(f).items()
                    if key.endswith("|" + args.horizons) and set(wanted) <= cached_models(entry)
                }
        total = len(series)
        series = {name: v for name, v in series.items() if name in done}
        print(f"comparing on {len(series)} of {total} series: those cached in {args.cache}", file=sys.stderr)
        if not series:
            sys.exit(f"no series of --data is cached in {args.cache} for horizons {args.horizons}; run without --cached-only first")

    theirs, their_seconds = statsforecast_side(series, horizons, args.cache, args.jobs, wanted)
    ours = foresight_side([os.path.join(args.data, n) for n in series], horizons, args.foresight, args.plugin)

    def our_rows(plugin, label):
        return [r for r in ours["rows"] if r["plugin"] == plugin and r["horizon"] == label]

    print(f"{'model':<28}" + "".join(f"{'MASE ' + l:>11}{'cov ' + l:>10}" for l, _ in horizons) + f"{'s/series':>10}")
    best = {l: {"foresight": math.inf, "statsforecast": math.inf} for l, _ in horizons}
    for plugin, by_h in sorted(ours["plugins"].items()):
        cells = ""
        per_series = None
        for label, _ in horizons:
            s = by_h.get(label)
            if s is None:
                cells += f"{'-':>11}{'-':>10}"
                continue
            cells += f"{s['mase']:>11.3f}{s['coverage'] * 100:>9.1f}%"
            best[label]["foresight"] = min(best[label]["foresight"], s["mase"])
            per_series = s["seconds"] / max(s["series"], 1)
        print(f"{'foresight ' + plugin:<28}{cells}{per_series or 0:>10.4f}")
    for model, by_h in theirs.items():
        cells = ""
        for label, _ in horizons:
            rows = by_h.get(label, [])
            if not rows:
                cells += f"{'-':>11}{'-':>10}"
                continue
            mase = float(np.mean([m for m, _ in rows]))
            cov = float(np.mean([c for _, c in rows]))
            best[label]["statsforecast"] = min(best[label]["statsforecast"], mase)
            cells += f"{mase:>11.3f}{cov * 100:>9.1f}%"
        print(f"{'statsforecast ' + model:<28}{cells}{their_seconds[model]:>10.4f}")
    print()
    for label, b in best.items():
        ratio = b["foresight"] / b["statsforecast"]
        print(f"{label}: best Foresight MASE {b['foresight']:.3f} vs best statsforecast {b['statsforecast']:.3f} -> ratio {ratio:.3f}")
    # Speed within one model family: seconds per series for all of its origins.
    speed = {}
    for ours_name, theirs_name in FAMILIES:
        mine = ours["plugins"].get(ours_name, {})
        some = next(iter(mine.values()), None)
        if some is None or theirs_name not in their_seconds:
            continue
        per_series = some["seconds"] / max(some["series"], 1)
        speed[ours_name] = {"foresight_s": per_series, "statsforecast": theirs_name, "statsforecast_s": their_seconds[theirs_name]}
        print(f"{ours_name} vs {theirs_name}: {per_series:.4f} s vs {their_seconds[theirs_name]:.4f} s per series -> {their_seconds[theirs_name] / per_series:.1f}x faster")
    if args.json:
        record = {
            "series": sorted(series),
            "foresight": ours["plugins"],
            "statsforecast": {
                model: {
                    label: {"mase": float(np.mean([m for m, _ in rows])), "coverage": float(np.mean([c for _, c in rows])), "series": len(rows)}
                    for label, rows in by_h.items()
                }
                | {"seconds": their_seconds[model]}
                for model, by_h in theirs.items()
            },
            "best": best,
            "speed": speed,
        }
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()

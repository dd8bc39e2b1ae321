//! Accuracy on the shared real-world series, against the reference seasonal-naive forecaster.
//!
//! `cargo test --release -p decaying-histogram -- --ignored --nocapture` reads every CSV in
//! `shared/data/series/` whose median step lies from 5 minutes to an hour, forecasts from an
//! origin every 24 h over the last 20 % of each series (the model sees only what precedes the
//! origin), and prints per lead time the mean MASE of the p50 (the mean absolute error at
//! exactly that lead over the in-sample mean absolute error of a one-day seasonal-naive
//! forecast before the first origin; mean and geometric mean over series), how often the
//! outcome fell within p10–p90, and the CPU time of one forecast, which must stay under a
//! millisecond. `FORESIGHT_SERIES_DIR` points it at another folder; `DH_CONFIGS` (TOML texts
//! separated by `|`, keys by `;`) scores other configurations beside the defaults;
//! `DH_VERBOSE=1` prints every series.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use decaying_histogram::DecayingHistogram;
use foresight_sdk::{Config, ForecastRequest, Forecaster, Series};
use seasonal_naive::SeasonalNaive;

const HOUR: u32 = 3600;
const DAY: i64 = 86_400;
const HORIZONS: [u32; 3] = [HOUR, 6 * HOUR, 24 * HOUR];
const QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];

/// CPU time this thread has run, where Linux tells it: other builds sharing the machine then
/// do not count. Elsewhere, the time since the first call.
fn cpu_time() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or_else(|| start.elapsed(), Duration::from_nanos)
}

/// One CSV placed on a regular grid.
struct Grid {
    name: String,
    start: i64,
    step: u32,
    values: Vec<f64>,
}

/// Seconds since the Unix epoch of `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim().strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, d) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let mut time = time.split(':');
    let (hh, mm) = (time.next()?.parse::<i64>().ok()?, time.next()?.parse::<i64>().ok()?);
    let ss = time.next()?.parse::<f64>().ok()? as i64;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * DAY + hh * 3600 + mm * 60 + ss)
}

/// Reads a `timestamp,value` file onto a grid of its median step; missing rows become NaN.
fn read_grid(path: &Path) -> Option<Grid> {
    let text = std::fs::read_to_string(path).ok()?;
    let rows: Vec<(i64, f64)> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (t, v) = line.split_once(',')?;
            Some((parse_time(t)?, v.trim().parse::<f64>().ok()?))
        })
        .filter(|(_, v)| v.is_finite())
        .collect();
    if rows.len() < 10 {
        return None;
    }
    let mut steps: Vec<i64> = rows.windows(2).map(|w| w[1].0 - w[0].0).collect();
    steps.sort_unstable();
    let step = steps[steps.len() / 2];
    if !(300..=3600).contains(&step) {
        return None;
    }
    let start = rows[0].0;
    let slot = |t: i64| ((t - start) as f64 / step as f64).round() as usize;
    let mut values = vec![f64::NAN; slot(rows[rows.len() - 1].0) + 1];
    for &(t, v) in &rows {
        values[slot(t)] = v;
    }
    let name = path.file_stem()?.to_string_lossy().into_owned();
    Some(Grid { name, start, step: step as u32, values })
}

fn series_dir() -> PathBuf {
    std::env::var_os("FORESIGHT_SERIES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/series"))
}

fn load() -> Vec<Grid> {
    let dir = series_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    paths.sort();
    paths.iter().filter_map(|p| read_grid(p)).collect()
}

/// Per lead time: sums over origins for one series.
#[derive(Default, Clone, Copy)]
struct Tally {
    abs_error: f64,
    covered: usize,
    count: usize,
}

/// Mean MASE and coverage per lead time over the series that had outcomes at that lead.
struct Scores {
    mase: [f64; 3],
    /// Geometric mean: less swayed by the few series every model finds hard.
    geometric: [f64; 3],
    coverage: [f64; 3],
    series: usize,
    /// Mean CPU time of one forecast.
    per_call: Duration,
    per_series: Vec<(String, [f64; 3], [f64; 3])>,
}

fn evaluate(forecaster: &mut impl Forecaster, grids: &[Grid]) -> Scores {
    let (mut mase, mut coverage, mut counted) = ([0.0; 3], [0.0; 3], [0usize; 3]);
    let mut log_mase = [0.0; 3];
    let (mut elapsed, mut calls) = (Duration::ZERO, 0u32);
    let mut per_series = Vec::new();
    let mut series = 0;
    for grid in grids {
        let n = grid.values.len();
        let day = (DAY / i64::from(grid.step)) as usize;
        let first_origin = n - n / 5;
        let history = &grid.values[..first_origin];
        let diffs: Vec<f64> = (day..history.len())
            .map(|i| (history[i] - history[i - day]).abs())
            .filter(|d| !d.is_nan())
            .collect();
        let scale = diffs.iter().sum::<f64>() / diffs.len() as f64;
        if !(scale.is_finite() && scale > 0.0) {
            continue;
        }
        series += 1;
        let mut tallies = [Tally::default(); 3];
        for origin in (first_origin..n).step_by(day) {
            let request = ForecastRequest {
                series: vec![Series {
                    start: grid.start,
                    step: grid.step,
                    values: grid.values[..origin].to_vec(),
                    ..Default::default()
                }],
                horizons: HORIZONS.to_vec(),
                quantiles: QUANTILES.to_vec(),
            };
            let started = cpu_time();
            let answer = forecaster.forecast(&request).unwrap_or_else(|e| panic!("{}: {e}", grid.name));
            elapsed += cpu_time() - started;
            calls += 1;
            for (k, &horizon) in HORIZONS.iter().enumerate() {
                let target = origin - 1 + (horizon / grid.step) as usize;
                let Some(&actual) = grid.values.get(target).filter(|v| !v.is_nan()) else { continue };
                let row = &answer[0][k * 3..k * 3 + 3];
                tallies[k].abs_error += (row[1] - actual).abs();
                tallies[k].covered += usize::from(row[0] <= actual && actual <= row[2]);
                tallies[k].count += 1;
            }
        }
        let (mut row, mut covered) = ([f64::NAN; 3], [f64::NAN; 3]);
        for (k, tally) in tallies.iter().enumerate() {
            if tally.count > 0 {
                row[k] = tally.abs_error / tally.count as f64 / scale;
                covered[k] = tally.covered as f64 / tally.count as f64;
                mase[k] += row[k];
                // A perfect forecast (MASE 0) would swamp the product; a floor keeps it finite.
                log_mase[k] += row[k].max(1e-3).ln();
                coverage[k] += covered[k];
                counted[k] += 1;
            }
        }
        per_series.push((grid.name.clone(), row, covered));
    }
    let mut geometric = [0.0; 3];
    for k in 0..3 {
        geometric[k] = (log_mase[k] / counted[k] as f64).exp();
        mase[k] /= counted[k] as f64;
        coverage[k] /= counted[k] as f64;
    }
    Scores { mase, geometric, coverage, series, per_call: elapsed / calls.max(1), per_series }
}

fn print(label: &str, s: &Scores) {
    println!(
        "{label:<60} MASE 1h {:.3}  6h {:.3}  24h {:.3}  mean {:.3} (geometric {:.3} {:.3} {:.3}) | p10–p90 coverage {:.1} % {:.1} % {:.1} % | {:.0} µs/series",
        s.mase[0],
        s.mase[1],
        s.mase[2],
        s.mase.iter().sum::<f64>() / 3.0,
        s.geometric[0],
        s.geometric[1],
        s.geometric[2],
        100.0 * s.coverage[0],
        100.0 * s.coverage[1],
        100.0 * s.coverage[2],
        s.per_call.as_secs_f64() * 1e6,
    );
}

#[test]
fn timestamps_and_gaps_land_on_the_grid() {
    assert_eq!(parse_time("1970-01-02T00:00:00Z"), Some(DAY));
    assert_eq!(parse_time("2014-02-14T14:30:00Z"), Some(1_392_388_200));
    assert_eq!(parse_time("2000-03-01T00:00:00.5Z"), Some(951_868_800));
    assert_eq!(parse_time("2000-03-01 00:00:00"), None);
    let dir = std::env::temp_dir().join(format!("decaying-histogram-grid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.csv");
    // Five-minute steps, one row missing and one a minute late.
    let rows = "timestamp,value\n2014-02-14T14:30:00Z,1\n2014-02-14T14:35:00Z,2\n\
                2014-02-14T14:46:00Z,4\n2014-02-14T14:50:00Z,5\n2014-02-14T14:55:00Z,6\n\
                2014-02-14T15:00:00Z,7\n2014-02-14T15:05:00Z,8\n2014-02-14T15:10:00Z,9\n\
                2014-02-14T15:15:00Z,10\n2014-02-14T15:20:00Z,11\n";
    std::fs::write(&path, rows).unwrap();
    let grid = read_grid(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!((grid.start, grid.step, grid.values.len()), (1_392_388_200, 300, 11));
    assert_eq!(grid.values[..4].iter().map(|v| v.is_nan()).collect::<Vec<_>>(), [false, false, true, false]);
    assert_eq!(grid.values[3], 4.0);
}

#[test]
#[ignore = "reads shared/data; run in release with --ignored --nocapture"]
fn shared_series_accuracy_against_seasonal_naive() {
    let grids = load();
    assert!(!grids.is_empty(), "no series in {}", series_dir().display());
    let mut configs = vec![String::new()];
    if let Ok(extra) = std::env::var("DH_CONFIGS") {
        configs.extend(extra.split('|').map(|c| c.replace(';', "\n")));
    }
    let reference = {
        let config = Config::parse("", &SeasonalNaive::describe_keys()).unwrap();
        evaluate(&mut SeasonalNaive::new(&config).unwrap(), &grids)
    };
    println!("{} series with a step from 5 min to 1 h", reference.series);
    print("seasonal-naive", &reference);
    let verbose = std::env::var_os("DH_VERBOSE").is_some();
    let mut slowest = Duration::ZERO;
    for text in &configs {
        let config = Config::parse(text, &DecayingHistogram::describe_keys()).unwrap();
        let scores = evaluate(&mut DecayingHistogram::new(&config).unwrap(), &grids);
        let label = if text.is_empty() {
            "decaying-histogram (defaults)".to_owned()
        } else {
            text.replace('\n', "; ")
        };
        print(&label, &scores);
        if verbose {
            for ((name, ours, cover), (_, theirs, _)) in scores.per_series.iter().zip(&reference.per_series) {
                println!("  {name:<62} {ours:.2?} vs {theirs:.2?}  coverage {cover:.2?}");
            }
        }
        slowest = slowest.max(scores.per_call);
    }
    assert!(slowest < Duration::from_millis(1), "{slowest:?} per series");
}

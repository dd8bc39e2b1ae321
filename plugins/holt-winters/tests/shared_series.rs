//! Accuracy on the shared real series, against the reference forecaster.
//!
//! `cargo test --release -p holt-winters -- --ignored --nocapture`
//!
//! Every CSV in `/work/shared/data/series/` (or `$FORESIGHT_SERIES_DIR`) whose median step lies
//! between 5 minutes and an hour is placed on a regular grid (missing rows become NaN). Origins
//! fall every 24 h over the last 20 % of the series; the model sees only the data before the
//! origin. The error at 1 h, 6 h and 24 h is taken at exactly that lead, with p50 as the point
//! forecast, and scaled by the in-sample mean absolute error of a one-day seasonal-naive
//! forecast on the data before the first origin (MASE). The p10–p90 coverage is reported too.
//!
//! `HW_CONFIGS` adds Holt–Winters variants to compare: TOML configs separated by `|`, with `;`
//! between keys, e.g. `HW_CONFIGS='log-transform = true|damped = false;fit-evaluations = 300'`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use foresight_sdk::{Config, ForecastRequest, Forecaster, Series};
use holt_winters::HoltWinters;
use seasonal_naive::SeasonalNaive;

const HORIZONS: [u32; 3] = [3600, 6 * 3600, 24 * 3600];
const QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];
const DAY: i64 = 86_400;

/// One real series on a regular grid.
struct Grid {
    name: String,
    start: i64,
    step: u32,
    values: Vec<f64>,
}

/// Seconds since the Unix epoch of `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_time(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    if b.len() != 20 || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * DAY + hh * 3600 + mm * 60 + ss)
}

fn read_grid(path: &Path) -> Option<Grid> {
    let text = std::fs::read_to_string(path).ok()?;
    let rows: Vec<(i64, f64)> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (t, v) = line.split_once(',')?;
            Some((parse_time(t)?, v.trim().parse::<f64>().ok().filter(|v| v.is_finite())?))
        })
        .collect();
    if rows.len() < 3 {
        return None;
    }
    let mut steps: Vec<i64> = rows.windows(2).map(|w| w[1].0 - w[0].0).collect();
    steps.sort_unstable();
    let step = steps[steps.len() / 2];
    if !(300..=3600).contains(&step) {
        return None;
    }
    let start = rows[0].0;
    let len = ((rows[rows.len() - 1].0 - start) as f64 / step as f64).round() as usize + 1;
    let mut values = vec![f64::NAN; len];
    for (t, v) in rows {
        let i = ((t - start) as f64 / step as f64).round() as usize;
        // Off-grid rows that round onto a taken slot keep the first reading.
        if values[i].is_nan() {
            values[i] = v;
        }
    }
    let name = path.file_stem()?.to_string_lossy().into_owned();
    Some(Grid { name, start, step: step as u32, values })
}

/// Per model, per horizon: the series' MASE, and the outcomes inside the p10–p90 band.
#[derive(Default, Clone)]
struct Score {
    mase: Vec<Vec<f64>>,
    covered: [usize; 3],
    outcomes: [usize; 3],
    elapsed: Duration,
    forecasts: usize,
}

fn evaluate(grid: &Grid, model: &mut dyn FnMut(&ForecastRequest) -> Vec<f64>, score: &mut Score) -> [f64; 3] {
    let n = grid.values.len();
    let per_day = (DAY / i64::from(grid.step)) as usize;
    let first_origin = (n as f64 * 0.8).ceil() as usize;
    let scale = {
        let v = &grid.values[..first_origin];
        let diffs: Vec<f64> =
            (per_day..v.len()).map(|t| (v[t] - v[t - per_day]).abs()).filter(|d| !d.is_nan()).collect();
        diffs.iter().sum::<f64>() / diffs.len() as f64
    };
    let mut errors = [(0.0, 0usize); 3];
    for origin in (first_origin..n).step_by(per_day) {
        let series = Series {
            start: grid.start,
            step: grid.step,
            values: grid.values[..origin].to_vec(),
            ..Default::default()
        };
        let request = ForecastRequest {
            series: vec![series],
            horizons: HORIZONS.to_vec(),
            quantiles: QUANTILES.to_vec(),
        };
        let started = Instant::now();
        let answer = model(&request);
        score.elapsed += started.elapsed();
        score.forecasts += 1;
        for (h, &horizon) in HORIZONS.iter().enumerate() {
            let target = origin - 1 + horizon.div_ceil(grid.step) as usize;
            let Some(&actual) = grid.values.get(target).filter(|v| !v.is_nan()) else { continue };
            let row = &answer[h * 3..h * 3 + 3];
            errors[h].0 += (actual - row[1]).abs();
            errors[h].1 += 1;
            score.outcomes[h] += 1;
            if row[0] <= actual && actual <= row[2] {
                score.covered[h] += 1;
            }
        }
    }
    let mut mase = [f64::NAN; 3];
    if scale > 0.0 && scale.is_finite() {
        for h in 0..3 {
            if errors[h].1 > 0 {
                mase[h] = errors[h].0 / errors[h].1 as f64 / scale;
                score.mase[h].push(mase[h]);
            }
        }
    }
    mase
}

fn series_dir() -> PathBuf {
    std::env::var_os("FORESIGHT_SERIES_DIR")
        .map_or_else(|| PathBuf::from("/work/shared/data/series"), PathBuf::from)
}

#[test]
#[ignore = "reads the shared data set; run in release with --nocapture to see the table"]
fn mean_mase_on_the_shared_series_beats_seasonal_naive() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(series_dir())
        .expect("the shared series folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    paths.sort();
    let grids: Vec<Grid> = paths.iter().filter_map(|p| read_grid(p)).collect();
    assert!(!grids.is_empty(), "no series with a step between 5 min and 1 h");

    let mut configs = vec![String::new()];
    if let Ok(extra) = std::env::var("HW_CONFIGS") {
        configs.extend(extra.split('|').map(|c| c.replace(';', "\n")));
    }
    let mut names = vec!["seasonal-naive".to_owned()];
    names.extend(
        configs.iter().map(|c| format!("holt-winters {}", if c.is_empty() { "(defaults)" } else { c })),
    );
    let mut naive = SeasonalNaive::new(&Config::parse("", &SeasonalNaive::describe_keys()).unwrap()).unwrap();
    let mut variants: Vec<HoltWinters> = configs
        .iter()
        .map(|c| HoltWinters::new(&Config::parse(c, &HoltWinters::describe_keys()).unwrap()).unwrap())
        .collect();

    let mut scores = vec![Score { mase: vec![Vec::new(); 3], ..Default::default() }; names.len()];
    println!(
        "{:<62} {:>6} {:>6} {:>6}   (MASE at 1 h, 6 h, 24 h: seasonal-naive, then each variant)",
        "series", "", "", ""
    );
    for grid in &grids {
        let mut line = format!("{:<62}", grid.name.chars().take(62).collect::<String>());
        let mase = evaluate(grid, &mut |r| naive.forecast(r).unwrap().remove(0), &mut scores[0]);
        line += &format!(" {:>6.3} {:>6.3} {:>6.3}", mase[0], mase[1], mase[2]);
        for (variant, score) in variants.iter_mut().zip(&mut scores[1..]) {
            let mase = evaluate(grid, &mut |r| variant.forecast(r).unwrap().remove(0), score);
            line += &format!(" | {:>6.3} {:>6.3} {:>6.3}", mase[0], mase[1], mase[2]);
        }
        println!("{line}");
    }
    println!("\n{} series", grids.len());
    for (name, score) in names.iter().zip(&scores) {
        let mean = |h: usize| score.mase[h].iter().sum::<f64>() / score.mase[h].len() as f64;
        let coverage = |h: usize| 100.0 * score.covered[h] as f64 / score.outcomes[h] as f64;
        println!(
            "{:<40} MASE {:.3} {:.3} {:.3} (mean {:.3})  p10–p90 coverage {:.1}% {:.1}% {:.1}%  {:.2} ms/forecast",
            name.replace('\n', "; "),
            mean(0),
            mean(1),
            mean(2),
            (mean(0) + mean(1) + mean(2)) / 3.0,
            coverage(0),
            coverage(1),
            coverage(2),
            score.elapsed.as_secs_f64() * 1e3 / score.forecasts as f64,
        );
    }
    let mean_of =
        |s: &Score| (0..3).map(|h| s.mase[h].iter().sum::<f64>() / s.mase[h].len() as f64).sum::<f64>();
    assert!(mean_of(&scores[1]) < mean_of(&scores[0]), "holt-winters does not beat seasonal-naive");
}

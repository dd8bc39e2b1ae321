//! A recorded series from a `timestamp,value` CSV, for offline forecasting and evaluation:
//! placed on an even grid at its own median interval, with gaps left as gaps (NaN), never
//! filled — a forecaster is scored only where something was observed.

use std::path::Path;

use foresight_sdk::Series;

use crate::backends::sim::{Trace, TraceError, median_interval};

/// Loads a series; rows are snapped to the nearest grid point from the first timestamp, and
/// rows that land on the same point are averaged.
pub fn load(path: &Path) -> Result<Series, TraceError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| TraceError::Io { path: path.into(), source })?;
    let samples = Trace::parse_rows(path, &text, true)?;
    if samples.len() < 2 {
        return Err(TraceError::Empty { path: path.into(), rows: samples.len() });
    }
    let interval_s = median_interval(&samples);
    let step = u32::try_from(interval_s)
        .ok()
        .filter(|s| *s > 0)
        .ok_or(TraceError::Interval { path: path.into(), interval_s })?;
    Ok(grid(&samples, step))
}

/// Places strictly increasing samples on a grid of `step` seconds from the first one.
pub fn grid(samples: &[(i64, f64)], step: u32) -> Series {
    let Some(&(start, _)) = samples.first() else {
        return Series { step, ..Default::default() };
    };
    let step_i = i64::from(step);
    let slot = |t: i64| ((t - start) as f64 / step_i as f64).round() as usize;
    let points = samples.last().map_or(0, |&(t, _)| slot(t) + 1);
    let mut sums = vec![0.0; points];
    let mut counts = vec![0u32; points];
    for &(t, v) in samples {
        let k = slot(t);
        sums[k] += v;
        counts[k] += 1;
    }
    let values =
        sums.iter().zip(&counts).map(|(s, &c)| if c == 0 { f64::NAN } else { s / f64::from(c) }).collect();
    Series { start, step, values, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_stay_gaps_and_jitter_snaps_to_the_grid() {
        // Five-minute rows, one 62 s late, then a 15-minute hole.
        let s = grid(&[(0, 1.0), (362, 2.0), (600, 3.0), (1500, 4.0)], 300);
        assert_eq!((s.start, s.step), (0, 300));
        assert_eq!(s.values.len(), 6);
        assert_eq!(&s.values[..3], &[1.0, 2.0, 3.0]);
        assert!(s.values[3].is_nan() && s.values[4].is_nan());
        assert_eq!(s.values[5], 4.0);
    }

    #[test]
    fn rows_on_one_point_are_averaged() {
        let s = grid(&[(0, 1.0), (280, 2.0), (320, 4.0)], 300);
        assert_eq!(s.values, vec![1.0, 3.0]);
    }

    #[test]
    fn files_load_with_negative_values_and_bad_rows_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.csv");
        std::fs::write(&good, "timestamp,value\n2024-01-01T00:00:00Z,-1.5\n2024-01-01T01:00:00Z,2\n")
            .unwrap();
        let s = load(&good).unwrap();
        assert_eq!((s.step, s.values.clone()), (3600, vec![-1.5, 2.0]));
        let bad = dir.path().join("b.csv");
        std::fs::write(&bad, "timestamp,value\n2024-01-01T00:00:00Z,x\n").unwrap();
        let err = load(&bad).unwrap_err().to_string();
        assert!(err.contains("b.csv:2") && err.contains("bad value"), "{err}");
    }
}

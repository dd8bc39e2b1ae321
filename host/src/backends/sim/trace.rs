//! Demand traces: real `timestamp,value` series that drive the simulator's request rates.
//!
//! A trace file is a CSV with a header whose first column is `timestamp` and one value column;
//! timestamps are UTC in the form `YYYY-MM-DDTHH:MM:SSZ` and strictly increasing. Loading is
//! strict: a malformed line is an error naming the file and the line, never skipped.
//!
//! [`Trace::load`] resamples the rows onto an even grid at the file's own dominant interval, so
//! a trace is a plain `start + k * step_s` series. [`Trace::at`] wraps around, so a week of data
//! drives any horizon, and [`Trace::derive`] makes other user regions from one trace by a
//! time-zone shift and a new mean.
//!
//! ```ignore
//! let trace = Trace::load(Path::new("config/scenarios/traces/nasa_http_1995__requests_per_min.csv"))?;
//! let tokyo = trace.derive(9 * 3600, 250.0); // same daily shape, 9 h ahead, 250 req/s on average
//! let rps = tokyo.at(now);
//! ```

use std::path::{Path, PathBuf};

/// A demand trace: evenly spaced values after resampling.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Unix seconds of `values[0]`.
    pub start: i64,
    /// Seconds between consecutive values.
    pub step_s: u32,
    /// The series, one value per step.
    pub values: Vec<f64>,
}

/// A trace file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("{}: cannot read the trace; check that the file exists and is readable", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is malformed; the message says what is wrong and how to fix it.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number (the header is line 1).
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Fewer than two data rows, so there is no interval to build a trace on.
    #[error(
        "{}: {rows} data row(s); a trace needs at least two `timestamp,value` rows after the header",
        path.display()
    )]
    Empty {
        /// The file.
        path: PathBuf,
        /// Data rows found.
        rows: usize,
    },
    /// The rows' typical interval cannot be a trace step.
    #[error(
        "{}: median interval of {interval_s} s is too long for a trace step; sample at least every {} s",
        path.display(),
        u32::MAX
    )]
    Interval {
        /// The file.
        path: PathBuf,
        /// Median difference between consecutive timestamps.
        interval_s: i64,
    },
    /// The trace covers less time than its user needs.
    #[error(
        "{}: the trace covers {has_s} s ({:.1} d) but {needed_s} s ({:.1} d) are needed; use a longer series",
        path.display(),
        *has_s as f64 / 86_400.0,
        *needed_s as f64 / 86_400.0
    )]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Seconds required.
        needed_s: i64,
        /// Seconds the trace covers.
        has_s: i64,
    },
}

impl Trace {
    /// Reads `timestamp,value` CSV (header line required: first column `timestamp`), skipping
    /// nothing silently: a malformed line is an error naming file and line.
    ///
    /// The rows are resampled to the file's own dominant interval (the median difference between
    /// consecutive timestamps), so the result is evenly spaced and a regular file keeps its values
    /// (up to alignment of the grid to whole steps). Holes longer than 1.5 steps are filled by
    /// linear interpolation; [`Trace::load_counting_fills`] says how many points that took.
    pub fn load(path: &Path) -> Result<Trace, TraceError> {
        Self::load_counting_fills(path).map(|(trace, _)| trace)
    }

    /// [`Trace::load`], also returning how many grid points fell in holes and were interpolated.
    pub fn load_counting_fills(path: &Path) -> Result<(Trace, usize), TraceError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| TraceError::Io { path: path.into(), source })?;
        let samples = Self::parse_samples(path, &text)?;
        if samples.len() < 2 {
            return Err(TraceError::Empty { path: path.into(), rows: samples.len() });
        }
        let interval_s = median_interval(&samples);
        let step_s =
            u32::try_from(interval_s).map_err(|_| TraceError::Interval { path: path.into(), interval_s })?;
        // 1.5 steps: jitter of a sampler (a minute late now and then) is not a hole, one missing
        // row is.
        let max_gap_s = step_s.saturating_add(step_s / 2);
        Ok(Self::resample(&samples, step_s, max_gap_s))
    }

    /// Parses CSV text (path only for messages) into raw (unix_ts, value) samples, strictly
    /// increasing. Values must be finite and non-negative, since they are demand. Lines may end
    /// in `\r\n`; a blank line is an error like any other malformed line.
    pub fn parse_samples(path: &Path, text: &str) -> Result<Vec<(i64, f64)>, TraceError> {
        Self::parse_rows(path, text, false)
    }

    /// [`Trace::parse_samples`] for any metric: with `signed`, negative values are accepted.
    pub fn parse_rows(path: &Path, text: &str, signed: bool) -> Result<Vec<(i64, f64)>, TraceError> {
        let fail = |line: usize, message: String| TraceError::Parse { path: path.into(), line, message };
        let mut lines = text.strip_prefix('\u{feff}').unwrap_or(text).lines();
        let header = lines.next().unwrap_or("");
        let columns: Vec<&str> = header.split(',').collect();
        if columns[0] != "timestamp" {
            return Err(fail(
                1,
                format!(
                    "the header must start with `timestamp` (found `{}`); make line 1 `timestamp,value`",
                    columns[0]
                ),
            ));
        }
        if columns.len() != 2 {
            return Err(fail(
                1,
                format!(
                    "the header has {} columns; a trace has exactly two, `timestamp,value` \
                     (extract one column from a wider file)",
                    columns.len()
                ),
            ));
        }
        let mut samples: Vec<(i64, f64)> = Vec::new();
        for (index, row) in lines.enumerate() {
            let line = index + 2;
            if row.is_empty() {
                return Err(fail(line, "blank line; remove it (blank lines are not skipped)".into()));
            }
            let Some((stamp, value)) = row.split_once(',').filter(|(_, v)| !v.contains(',')) else {
                let fields = row.split(',').count();
                return Err(fail(line, format!("expected 2 fields `timestamp,value`, found {fields}")));
            };
            let t = parse_timestamp(stamp).map_err(|why| {
                let fix = "write UTC as `YYYY-MM-DDTHH:MM:SSZ`, e.g. `2024-03-01T12:00:00Z`";
                fail(line, format!("bad timestamp `{stamp}`: {why}; {fix}"))
            })?;
            let v = match value.parse::<f64>() {
                Ok(v) if v.is_finite() && (signed || v >= 0.0) => v,
                Ok(v) if v.is_finite() => {
                    return Err(fail(line, format!("negative value `{value}`; demand must be 0 or more")));
                }
                _ => {
                    return Err(fail(
                        line,
                        format!("bad value `{value}`; write a finite decimal number such as `42` or `0.5`"),
                    ));
                }
            };
            if let Some(&(previous, _)) = samples.last()
                && t <= previous
            {
                return Err(fail(
                    line,
                    format!(
                        "timestamp `{stamp}` is not after the previous row's; rows must be strictly \
                         increasing in time (sort the file and drop duplicates)"
                    ),
                ));
            }
            samples.push((t, v));
        }
        Ok(samples)
    }

    /// Resamples raw samples onto a regular grid of `step_s` seconds starting at the first
    /// sample's time rounded down to the step: each grid point gets the time-weighted average of
    /// samples in its bin when the source is finer, or linear interpolation when coarser; gaps
    /// (missing rows) longer than `max_gap_s` are filled by linear interpolation too but counted —
    /// return the count of filled points alongside.
    ///
    /// The grid ends at the last step not after the last sample. "Finer" means the source's
    /// median interval is shorter than `step_s`; each sample then holds until the next one, or
    /// for one median interval before a gap. `samples` must be strictly increasing, as
    /// [`Trace::parse_samples`] returns them; `max_gap_s` is normally a small multiple of the
    /// source interval.
    ///
    /// # Panics
    /// If `step_s` is 0.
    pub fn resample(samples: &[(i64, f64)], step_s: u32, max_gap_s: u32) -> (Trace, usize) {
        assert!(step_s > 0, "a trace step must be at least one second");
        debug_assert!(samples.windows(2).all(|w| w[0].0 < w[1].0), "samples must be strictly increasing");
        let step = i64::from(step_s);
        let (Some(&(first, _)), Some(&(last, _))) = (samples.first(), samples.last()) else {
            return (Trace { start: 0, step_s, values: Vec::new() }, 0);
        };
        let start = first.div_euclid(step) * step;
        let points = usize::try_from((last - start) / step + 1).expect("the grid has at least one point");
        let source_s = if samples.len() > 1 { median_interval(samples) } else { step };
        let max_gap = i64::from(max_gap_s);
        let (values, filled) = if source_s < step {
            average_bins(samples, start, step, points, source_s, max_gap)
        } else {
            interpolate_points(samples, start, step, points, max_gap)
        };
        (Trace { start, step_s, values }, filled)
    }

    /// Value at simulated time `t` (unix s): the trace repeats (wraps around) so a week of data
    /// can drive any horizon; linear interpolation between grid points.
    ///
    /// One period is [`Trace::duration_s`] long, and the last point interpolates towards the first
    /// so the seam has no step. An empty trace is zero demand.
    pub fn at(&self, t: i64) -> f64 {
        let n = self.values.len();
        if n == 0 {
            return 0.0;
        }
        let step = i64::from(self.step_s);
        let offset = (t - self.start).rem_euclid(self.duration_s());
        let k = (offset / step) as usize;
        let frac = (offset % step) as f64 / step as f64;
        self.values[k] * (1.0 - frac) + self.values[(k + 1) % n] * frac
    }

    /// A derived region: shifted by `shift_s` seconds (time-zone offset: the value at t is the
    /// original's at t + shift_s) and scaled so its mean equals `mean` (non-negative); returns a
    /// new Trace on the same grid.
    ///
    /// A trace that is zero throughout has no shape to scale, so it derives a flat trace at `mean`.
    ///
    /// # Panics
    /// If `mean` is negative or not finite.
    pub fn derive(&self, shift_s: i64, mean: f64) -> Trace {
        assert!(
            mean.is_finite() && mean >= 0.0,
            "a derived mean must be finite and non-negative, got {mean}"
        );
        let step = i64::from(self.step_s);
        let mut values: Vec<f64> =
            (0..self.values.len() as i64).map(|k| self.at(self.start + k * step + shift_s)).collect();
        let own = values.iter().sum::<f64>() / values.len().max(1) as f64;
        if own > 0.0 {
            values.iter_mut().for_each(|v| *v *= mean / own);
        } else {
            values.fill(mean);
        }
        Trace { start: self.start, step_s: self.step_s, values }
    }

    /// Arithmetic mean of the values; 0 for an empty trace.
    pub fn mean(&self) -> f64 {
        if self.values.is_empty() { 0.0 } else { self.values.iter().sum::<f64>() / self.values.len() as f64 }
    }

    /// Largest value; 0 for an empty trace.
    pub fn max(&self) -> f64 {
        self.values.iter().copied().reduce(f64::max).unwrap_or(0.0)
    }

    /// Seconds one period covers: `values.len() * step_s`, after which [`Trace::at`] wraps.
    pub fn duration_s(&self) -> i64 {
        self.values.len() as i64 * i64::from(self.step_s)
    }

    /// The longest prefix whose duration is a whole number of `period_s` (e.g. 86 400 or
    /// 604 800), so that wrapping keeps the daily or weekly phase; the trace itself when it is
    /// shorter than one period.
    ///
    /// # Panics
    /// If `period_s` is not positive.
    pub fn whole_periods(&self, period_s: i64) -> Trace {
        assert!(period_s > 0, "a period must be positive");
        let keep_s = self.duration_s() / period_s * period_s;
        if keep_s == 0 {
            return self.clone();
        }
        let keep = (keep_s / i64::from(self.step_s)) as usize;
        Trace { start: self.start, step_s: self.step_s, values: self.values[..keep].to_vec() }
    }

    /// Checks that the trace covers at least `needed_s` seconds; `path` names it in the error.
    pub fn check_duration(&self, path: &Path, needed_s: i64) -> Result<(), TraceError> {
        let has_s = self.duration_s();
        if has_s < needed_s {
            return Err(TraceError::TooShort { path: path.into(), needed_s, has_s });
        }
        Ok(())
    }
}

/// The dominant sampling interval; the median resists the few holes and late samples that real
/// monitoring data has, where a mean would not.
/// The median time between consecutive samples (at least two samples).
pub fn median_interval(samples: &[(i64, f64)]) -> i64 {
    let mut diffs: Vec<i64> = samples.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let middle = diffs.len() / 2;
    *diffs.select_nth_unstable(middle).1
}

/// Finer source: each sample holds until the next (or, before a gap, for one source interval),
/// and every bin takes the time-weighted mean of what covers it. Bins nothing covers lie in a gap
/// and are interpolated from their neighbours.
fn average_bins(
    samples: &[(i64, f64)],
    start: i64,
    step: i64,
    points: usize,
    source_s: i64,
    max_gap: i64,
) -> (Vec<f64>, usize) {
    let end = start + points as i64 * step;
    let mut weight = vec![0.0; points];
    let mut weighted = vec![0.0; points];
    for (i, &(t, v)) in samples.iter().enumerate() {
        let until = match samples.get(i + 1) {
            Some(&(next, _)) if next - t <= max_gap => next,
            Some(&(next, _)) => t + source_s.min(next - t),
            None => t + source_s,
        };
        let mut from = t;
        while from < until.min(end) {
            let k = ((from - start) / step) as usize;
            let to = until.min(start + (k as i64 + 1) * step);
            let seconds = (to - from) as f64;
            weight[k] += seconds;
            weighted[k] += seconds * v;
            from = to;
        }
    }
    let mut values: Vec<Option<f64>> =
        weight.iter().zip(&weighted).map(|(&w, &s)| (w > 0.0).then(|| s / w)).collect();
    let filled = values.iter().filter(|v| v.is_none()).count();
    fill_linearly(&mut values);
    (values.into_iter().map(|v| v.unwrap_or(0.0)).collect(), filled)
}

/// Coarser (or equal) source: every grid point is read off the line between the samples around
/// it; before the first sample the first value holds.
fn interpolate_points(
    samples: &[(i64, f64)],
    start: i64,
    step: i64,
    points: usize,
    max_gap: i64,
) -> (Vec<f64>, usize) {
    let mut values = Vec::with_capacity(points);
    let mut filled = 0;
    let mut i = 0;
    for k in 0..points as i64 {
        let g = start + k * step;
        while i + 1 < samples.len() && samples[i + 1].0 <= g {
            i += 1;
        }
        let (t0, v0) = samples[i];
        match samples.get(i + 1) {
            Some(&(t1, v1)) if g > t0 => {
                if t1 - t0 > max_gap {
                    filled += 1;
                }
                values.push(v0 + (v1 - v0) * (g - t0) as f64 / (t1 - t0) as f64);
            }
            _ => values.push(v0),
        }
    }
    (values, filled)
}

/// Replaces each run of `None` by the line between the known values on either side (the nearest
/// known value at the ends).
fn fill_linearly(values: &mut [Option<f64>]) {
    let known: Vec<usize> = (0..values.len()).filter(|&k| values[k].is_some()).collect();
    let (Some(&first), Some(&last)) = (known.first(), known.last()) else { return };
    let (head, tail) = (values[first], values[last]);
    values[..first].fill(head);
    values[last + 1..].fill(tail);
    for pair in known.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (va, vb) = (values[a].unwrap_or(0.0), values[b].unwrap_or(0.0));
        for (k, slot) in (a + 1..b).zip(&mut values[a + 1..b]) {
            *slot = Some(va + (vb - va) * (k - a) as f64 / (b - a) as f64);
        }
    }
}

/// Unix seconds of a `YYYY-MM-DDTHH:MM:SSZ` timestamp.
fn parse_timestamp(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z';
    let number = |from: usize, to: usize| -> Result<i64, &'static str> {
        b[from..to].iter().try_fold(0, |n, &c| {
            if c.is_ascii_digit() {
                Ok(n * 10 + i64::from(c - b'0'))
            } else {
                Err("not in the form `YYYY-MM-DDTHH:MM:SSZ`")
            }
        })
    };
    if !shape_ok {
        return Err("not in the form `YYYY-MM-DDTHH:MM:SSZ`");
    }
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("day out of range for the month");
    }
    if hour > 23 || minute > 59 {
        return Err("time of day out of range");
    }
    if second > 59 {
        return Err("second out of range (leap seconds are not supported)");
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`): counting
/// years from March puts the leap day last, so each 400-year era is one closed formula.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn parse(text: &str) -> Result<Vec<(i64, f64)>, TraceError> {
        Trace::parse_samples(Path::new("traces/demo.csv"), text)
    }

    fn parse_error(text: &str) -> String {
        parse(text).expect_err("must be refused").to_string()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn timestamps_are_utc_seconds() {
        let samples = parse(
            "timestamp,value\r\n1969-12-31T23:59:59Z,1\r\n1970-01-01T00:00:00Z,2\r\n\
             2000-03-01T00:00:00Z,3\r\n2024-02-29T12:34:56Z,4.5\r\n",
        )
        .expect("parses");
        assert_eq!(samples, vec![(-1, 1.0), (0, 2.0), (951_868_800, 3.0), (1_709_210_096, 4.5)]);
    }

    #[test]
    fn header_must_name_timestamp_and_one_value_column() {
        let err = parse_error("time,value\n2024-01-01T00:00:00Z,1\n");
        assert!(err.starts_with("traces/demo.csv:1:") && err.contains("`timestamp`"), "{err}");
        let err = parse_error("2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,2\n");
        assert!(err.starts_with("traces/demo.csv:1:"), "a missing header is refused: {err}");
        let err = parse_error("timestamp,value,n\n2024-01-01T00:00:00Z,1,2\n");
        assert!(err.starts_with("traces/demo.csv:1:") && err.contains("3 columns"), "{err}");
        assert!(parse_error("").starts_with("traces/demo.csv:1:"));
    }

    #[test]
    fn bad_timestamps_name_file_and_line() {
        for stamp in [
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01 00:00:00",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00+01:00",
            "2024-01-0xT00:00:00Z",
        ] {
            let err = parse_error(&format!("timestamp,value\n2023-01-01T00:00:00Z,1\n{stamp},2\n"));
            assert!(err.starts_with("traces/demo.csv:3: bad timestamp"), "{stamp}: {err}");
            assert!(err.contains("YYYY-MM-DDTHH:MM:SSZ"), "the fix is named: {err}");
        }
    }

    #[test]
    fn bad_numbers_name_file_and_line() {
        for value in ["abc", "", "NaN", "inf", "1,5"] {
            let err = parse_error(&format!("timestamp,value\n2024-01-01T00:00:00Z,{value}\n"));
            assert!(err.starts_with("traces/demo.csv:2:"), "{value:?}: {err}");
        }
        let err = parse_error("timestamp,value\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,-3\n");
        assert!(err.starts_with("traces/demo.csv:3: negative value"), "{err}");
    }

    #[test]
    fn timestamps_must_strictly_increase() {
        for second in ["2024-01-01T00:00:00Z", "2023-12-31T23:59:00Z"] {
            let err = parse_error(&format!("timestamp,value\n2024-01-01T00:00:00Z,1\n{second},2\n"));
            assert!(err.starts_with("traces/demo.csv:3:") && err.contains("strictly increasing"), "{err}");
        }
    }

    #[test]
    fn blank_lines_are_errors_not_skipped() {
        let err = parse_error("timestamp,value\n2024-01-01T00:00:00Z,1\n\n2024-01-01T00:01:00Z,2\n");
        assert!(err.starts_with("traces/demo.csv:3: blank line"), "{err}");
    }

    #[test]
    fn finer_source_averages_each_bin() {
        let minutes: Vec<(i64, f64)> = (0..10).map(|m| (600 + m * 60, m as f64)).collect();
        let (trace, filled) = Trace::resample(&minutes, 300, 120);
        assert_eq!(trace, Trace { start: 600, step_s: 300, values: vec![2.0, 7.0] });
        assert_eq!(filled, 0);

        // Time-weighted: 10 holds for 240 s of the first bin and 40 for the last 60 s.
        let uneven = [(0, 10.0), (240, 40.0), (300, 0.0), (360, 0.0), (420, 0.0), (480, 0.0), (540, 0.0)];
        let (trace, _) = Trace::resample(&uneven, 300, 300);
        assert!(close(trace.values[0], (10.0 * 240.0 + 40.0 * 60.0) / 300.0), "{trace:?}");
    }

    #[test]
    fn coarser_source_is_interpolated() {
        let (trace, filled) = Trace::resample(&[(610, 0.0), (1210, 10.0), (1810, 40.0)], 300, 900);
        assert_eq!(trace.start, 600);
        // 600 precedes the first sample and holds its value; 900 lies 290 s into the first interval.
        assert_eq!(trace.values.len(), 5);
        assert!(close(trace.values[0], 0.0) && close(trace.values[1], 290.0 / 60.0), "{trace:?}");
        assert!(close(trace.values[3], 10.0 + 30.0 * 290.0 / 600.0), "{trace:?}");
        assert_eq!(filled, 0);
    }

    #[test]
    fn long_gaps_are_interpolated_and_counted() {
        // One-minute rows with minutes 60..90 missing, averaged into 5-minute bins.
        let mut rows: Vec<(i64, f64)> = (0..60).map(|m| (m * 60, 10.0)).collect();
        rows.extend((90..120).map(|m| (m * 60, 70.0)));
        let (trace, filled) = Trace::resample(&rows, 300, 120);
        assert_eq!(filled, 6, "bins 12..=17 hold no row: {trace:?}");
        assert_eq!(trace.values[11], 10.0);
        assert!(close(trace.values[15], 10.0 + 60.0 * 4.0 / 7.0), "linear from bin 11 to bin 18: {trace:?}");
        assert_eq!(trace.values[18], 70.0);

        // Five-minute rows with one hour missing, read at one minute: only points inside it count.
        let rows = [(0, 0.0), (300, 5.0), (3900, 65.0), (4200, 70.0)];
        let (trace, filled) = Trace::resample(&rows, 60, 450);
        assert_eq!(filled, 59);
        assert!(close(trace.values[30], 30.0), "{:?}", trace.values[30]);
        // A short hole is interpolated the same way but is not a gap.
        assert_eq!(Trace::resample(&rows, 60, 3600).1, 0);
    }

    #[test]
    fn load_resamples_to_the_files_median_interval() {
        let path = std::env::temp_dir().join(format!("foresight-trace-{}.csv", std::process::id()));
        let rows: String = [0, 300, 600, 960, 1200, 2700, 3000]
            .iter()
            .map(|&s| format!("1970-01-02T00:{:02}:{:02}Z,{}\n", s / 60, s % 60, s))
            .collect();
        std::fs::write(&path, format!("timestamp,value\n{rows}")).expect("writes");
        let loaded = Trace::load_counting_fills(&path);
        let missing = Trace::load(&path.with_extension("absent"));
        std::fs::remove_file(&path).expect("removes");
        let (trace, filled) = loaded.expect("loads");
        assert_eq!((trace.start, trace.step_s, trace.values.len()), (DAY, 300, 11));
        assert_eq!(filled, 4, "the 25-minute hole spans four grid points");
        assert!(close(trace.values[3], 900.0), "a late row is interpolated, not a hole: {trace:?}");
        let err = missing.expect_err("absent file").to_string();
        assert!(err.contains("foresight-trace-") && err.contains("cannot read"), "{err}");
    }

    #[test]
    fn at_interpolates_and_wraps() {
        let trace = Trace { start: 100, step_s: 10, values: vec![0.0, 10.0, 20.0] };
        assert_eq!(trace.duration_s(), 30);
        assert_eq!(trace.at(100), 0.0);
        assert_eq!(trace.at(105), 5.0);
        assert_eq!(trace.at(120), 20.0);
        assert_eq!(trace.at(125), 10.0, "the seam interpolates back towards the first value");
        assert_eq!(trace.at(130), 0.0);
        assert_eq!(trace.at(95), 10.0, "times before the start wrap too");
        assert_eq!(trace.at(100 + 30 * 1_000_000 + 15), 15.0);
        assert_eq!(Trace { start: 0, step_s: 60, values: vec![] }.at(5), 0.0);
    }

    #[test]
    fn derive_shifts_by_the_offset_and_rescales_to_the_mean() {
        let trace = Trace { start: 0, step_s: 3_600, values: (0..24).map(f64::from).collect() };
        let ahead = trace.derive(3 * 3_600, 115.0);
        assert!(close(ahead.mean(), 115.0));
        assert_eq!((ahead.start, ahead.step_s, ahead.values.len()), (0, 3_600, 24));
        let scale = 115.0 / trace.mean();
        assert!(close(ahead.values[0], 3.0 * scale) && close(ahead.values[21], 0.0), "{ahead:?}");
        assert!(close(ahead.at(5_000), trace.at(5_000 + 3 * 3_600) * scale));

        let half = trace.derive(-1_800, 7.0);
        assert!(close(half.mean(), 7.0) && close(half.values[1], 0.5 * 7.0 / trace.mean()), "{half:?}");

        let silent = Trace { start: 0, step_s: 60, values: vec![0.0; 4] };
        assert_eq!(silent.derive(60, 3.0).values, vec![3.0; 4]);
        assert_eq!(trace.derive(0, 0.0).max(), 0.0);
    }

    #[test]
    fn summaries_and_whole_periods() {
        let trace = Trace { start: 0, step_s: 6 * 3_600, values: vec![1.0, 3.0, 8.0, 4.0, 2.0, 6.0] };
        assert_eq!((trace.mean(), trace.max(), trace.duration_s()), (4.0, 8.0, 36 * 3_600));
        assert_eq!(trace.whole_periods(DAY).values, vec![1.0, 3.0, 8.0, 4.0]);
        assert_eq!(trace.whole_periods(7 * DAY), trace);
        let err = trace.check_duration(Path::new("t.csv"), 7 * DAY).expect_err("too short").to_string();
        assert!(err.starts_with("t.csv: the trace covers 129600 s (1.5 d) but 604800 s (7.0 d)"), "{err}");
        assert!(trace.check_duration(Path::new("t.csv"), DAY).is_ok());
    }

    /// The scenario traces that ship with the repository.
    fn shipped_traces_dir() -> PathBuf {
        crate::manifest_dir().join("../config/scenarios/traces")
    }

    #[test]
    fn every_shipped_trace_loads_covers_a_week_and_has_a_positive_mean() {
        let dir = shipped_traces_dir();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no CSV in {}", dir.display());
        for file in &files {
            let (trace, filled) = Trace::load_counting_fills(file).unwrap_or_else(|e| panic!("{e}"));
            trace.check_duration(file, 7 * DAY).unwrap_or_else(|e| panic!("{e}"));
            assert!(trace.step_s <= 300, "{}: step {} s", file.display(), trace.step_s);
            let mean = trace.mean();
            assert!(mean.is_finite() && mean > 0.0, "{}: mean {mean}", file.display());
            assert!(
                filled * 10 < trace.values.len(),
                "{}: {filled} of {} points filled",
                file.display(),
                trace.values.len()
            );
        }
    }
}

//! STL (Cleveland et al. 1990) for one season, and MSTL (Bandara, Hyndman & Bergmeir 2021)
//! for several: each season in turn is added back to what the others left, re-estimated by
//! STL, and taken out again.
//!
//! One pass of STL's inner loop, for a season of `p` steps, starting from a trend of zero:
//!
//! ```text
//! c = cycle-subseries LOESS of (y − T), one cycle extended at each end      n + 2p values
//! L = LOESS(MA₃(MA_p(MA_p(c))))                                             low-pass, n values
//! S = c[p ..] − L                                                           the season
//! T = LOESS(y − S)                                                          the trend
//! ```
//!
//! The windows are those of R's `stl` and statsmodels: the season's as given (STL's `s.window`,
//! local constant), the low-pass filter's the next odd number from `p`, the trend's the next
//! odd number from 1.5·p / (1 − 1.5 / s.window) (both local linear). Two inner passes, then
//! as many again after each robustness pass (Cleveland's outer loop), which weighs every value
//! by the bisquare of its remainder over six median remainders. Filled gaps weigh nothing in
//! the seasonal and trend smooths, STL's own way with missing values.

use crate::loess::{Degree, Loess, moving_average};

/// Passes of STL's inner loop: R's default without robustness weights, and statsmodels' with
/// them (R's single pass per robustness pass cost accuracy on the shared series).
const INNER_PASSES: usize = 2;

/// STL for one season.
#[derive(Debug, Clone, PartialEq)]
pub struct Stl {
    period: usize,
    seasonal: Loess,
    low_pass: Loess,
    trend: Loess,
    /// Passes that re-weight each value by how far its remainder strays (Cleveland's outer loop).
    robust_passes: usize,
}

/// One season's share and the trend, as STL leaves them.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The seasonal component, one value per step.
    pub season: Vec<f64>,
    /// The trend component, one value per step.
    pub trend: Vec<f64>,
}

impl Stl {
    /// STL for a season of `period` steps (at least 2) with a seasonal window of
    /// `seasonal_window` cycles.
    pub fn new(period: usize, seasonal_window: usize) -> Self {
        let seasonal = Loess::new(seasonal_window, Degree::Constant);
        let trend_window = (1.5 * period as f64 / (1.0 - 1.5 / seasonal.window as f64)).ceil() as usize;
        Self {
            period,
            seasonal,
            low_pass: Loess::new(period, Degree::Linear),
            trend: Loess::new(trend_window, Degree::Linear),
            robust_passes: 0,
        }
    }

    /// With `passes` robustness passes after the first (Cleveland's outer loop): each pass
    /// weighs every value by how far its remainder strays, so that spikes shape neither season
    /// nor trend.
    pub fn robust(self, passes: usize) -> Self {
        Self { robust_passes: passes, ..self }
    }

    /// Splits `values` (at least two cycles, every step filled) into season, trend and the
    /// remainder left implicit. A value whose `reliability` is 0 (a filled gap) carries no
    /// weight in the seasonal and trend smooths, as in STL's treatment of missing values.
    pub fn split(&self, values: &[f64], reliability: Option<&[f64]>) -> Split {
        let n = values.len();
        let p = self.period;
        let mut trend = vec![0.0; n];
        let mut season = vec![0.0; n];
        let mut work = vec![0.0; n];
        let mut cycles = vec![0.0; n + 2 * p];
        let (mut averaged, mut twice) = (Vec::with_capacity(n + p), Vec::with_capacity(n + 2));
        let mut low_pass = vec![0.0; n];
        let mut robustness: Vec<f64> = Vec::new();
        for pass in 0..=self.robust_passes {
            let weights = if pass == 0 { reliability } else { Some(robustness.as_slice()) };
            for _ in 0..INNER_PASSES {
                for ((w, y), t) in work.iter_mut().zip(values).zip(&trend) {
                    *w = y - t;
                }
                self.cycle_subseries(&work, weights, &mut cycles);
                moving_average(&cycles, p, &mut averaged);
                moving_average(&averaged, p, &mut twice);
                moving_average(&twice, 3, &mut averaged);
                self.low_pass.smooth(&averaged, None, &mut low_pass);
                for (i, (s, w)) in season.iter_mut().zip(&mut work).enumerate() {
                    *s = cycles[p + i] - low_pass[i];
                    *w = values[i] - *s;
                }
                self.trend.smooth(&work, weights, &mut trend);
            }
            if pass < self.robust_passes {
                robust_weights(values, &season, &trend, reliability, &mut robustness);
            }
        }
        Split { season, trend }
    }

    /// Smooths each cycle-subseries (the values at one phase of the season) across cycles, and
    /// extends it one cycle before the first and after the last, into `out` (`n + 2p` values,
    /// cycle by cycle, `out[(c + 1)·p + phase]` for cycle c from −1 to the last plus one).
    ///
    /// The subseries of phases with as many cycles share their LOESS weights, so each fit is
    /// computed once for all of them, reading whole cycles at a time.
    fn cycle_subseries(&self, detrended: &[f64], reliability: Option<&[f64]>, out: &mut [f64]) {
        let n = detrended.len();
        let p = self.period.min(n);
        let (full, extra) = (n / p, n % p);
        let loess = &self.seasonal;
        let q = loess.window;
        let mut weights = Vec::with_capacity(q);
        let (mut num, mut den) = (vec![0.0; p], vec![0.0; p]);
        // The cycle-subseries of phases `phases` hold `k` values each.
        for (k, phases) in [(full + 1, 0..extra), (full, extra..p)] {
            if phases.is_empty() || k == 0 {
                continue;
            }
            let phases = &phases;
            // The local constant fit at cycle `x` from cycles `left..=right` into row `row` of
            // `out`; where nothing weighs, row `fallback` of `out`, or the value itself.
            let mut fit =
                |x: f64, left: usize, right: usize, row: usize, fallback: Option<usize>, out: &mut [f64]| {
                    loess.weights(k, x, left, right, &mut weights);
                    num[phases.clone()].fill(0.0);
                    den[phases.clone()].fill(0.0);
                    for (d, &w) in weights.iter().enumerate().filter(|(_, w)| **w > 0.0) {
                        let at = (left + d) * p;
                        let values = &detrended[at + phases.start..at + phases.end];
                        let (num, den) = (&mut num[phases.clone()], &mut den[phases.clone()]);
                        match reliability {
                            None => {
                                for ((s, v), t) in num.iter_mut().zip(values).zip(den.iter_mut()) {
                                    *s += w * v;
                                    *t += w;
                                }
                            }
                            Some(r) => {
                                let r = &r[at + phases.start..at + phases.end];
                                for (((s, v), t), r) in num.iter_mut().zip(values).zip(den.iter_mut()).zip(r)
                                {
                                    *s += w * r * v;
                                    *t += w * r;
                                }
                            }
                        }
                    }
                    for j in phases.clone() {
                        out[row * p + j] = if den[j] > 0.0 {
                            num[j] / den[j]
                        } else {
                            match fallback {
                                Some(other) => out[other * p + j],
                                None => detrended[(row - 1) * p + j],
                            }
                        };
                    }
                };
            if k < 2 {
                for j in phases.clone() {
                    out[p + j] = detrended[j];
                }
            } else {
                // Every `jump`-th cycle is fitted, and the last; those between are interpolated.
                let jump = loess.jump.min(k - 1);
                let mut fitted = Vec::with_capacity(k / jump + 2);
                fitted.extend((0..k).step_by(jump));
                if fitted.last() != Some(&(k - 1)) {
                    fitted.push(k - 1);
                }
                for &c in &fitted {
                    let (left, right) = loess.window_for(k, c);
                    fit(c as f64, left, right, c + 1, None, out);
                }
                for pair in fitted.windows(2) {
                    let (a, b) = (pair[0], pair[1]);
                    for c in a + 1..b {
                        let t = (c - a) as f64 / (b - a) as f64;
                        for j in phases.clone() {
                            out[(c + 1) * p + j] =
                                out[(a + 1) * p + j] + t * (out[(b + 1) * p + j] - out[(a + 1) * p + j]);
                        }
                    }
                }
            }
            // One cycle before the first and after the last, extrapolated from the nearest.
            fit(-1.0, 0, q.min(k) - 1, 0, Some(1), out);
            fit(k as f64, k.saturating_sub(q), k - 1, k + 1, Some(k), out);
        }
    }
}

/// Cleveland's bisquare robustness weights: a value whose remainder is beyond six median
/// absolute remainders counts for nothing, one near zero fully; a filled gap stays at 0. When
/// the median remainder is rounding error (a series the split explains exactly) there is no
/// outlier to find, and every value keeps its reliability.
fn robust_weights(
    values: &[f64],
    season: &[f64],
    trend: &[f64],
    reliability: Option<&[f64]>,
    out: &mut Vec<f64>,
) {
    out.clear();
    out.extend(values.iter().zip(season).zip(trend).map(|((y, s), t)| (y - s - t).abs()));
    let mut sorted = out.clone();
    let middle = sorted.len() / 2;
    let (_, &mut median, _) = sorted.select_nth_unstable_by(middle, f64::total_cmp);
    let size = values.iter().map(|y| y.abs()).sum::<f64>() / values.len().max(1) as f64;
    if median <= ROUNDING * size {
        out.iter_mut().enumerate().for_each(|(i, w)| *w = reliability.map_or(1.0, |r| r[i]));
        return;
    }
    let h = 6.0 * median;
    let (outer, inner) = (0.999 * h, 0.001 * h);
    for (i, r) in out.iter_mut().enumerate() {
        let w = if *r <= inner {
            1.0
        } else if *r <= outer {
            let u = *r / h;
            (1.0 - u * u) * (1.0 - u * u)
        } else {
            0.0
        };
        *r = w * reliability.map_or(1.0, |rel| rel[i]);
    }
}

/// Relative size below which a remainder is rounding error.
const ROUNDING: f64 = 1e-9;

/// The seasonal window of the `i`-th season (shortest first): 11, 15, 19, … cycles, the
/// defaults of Bandara et al. and statsforecast (`7 + 4·k`, k = 1, 2, …).
pub fn seasonal_window(i: usize) -> usize {
    7 + 4 * (i + 1)
}

/// A series split into its seasons and the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Decomposition {
    /// One component per season, in the order of the periods given.
    pub seasons: Vec<Vec<f64>>,
    /// The values less every season: trend plus remainder.
    pub deseasonalised: Vec<f64>,
    /// The trend of the last STL pass (the longest season's); empty without seasons.
    pub trend: Vec<f64>,
}

/// MSTL of `values` (every step filled; `reliability` 0 where a gap was filled) for seasons of
/// `periods` steps (ascending, each at least 2 and at most half the values), refining the
/// seasons over `iterations` rounds, each STL with `robust_passes` robustness passes.
pub fn mstl(
    values: &[f64],
    reliability: Option<&[f64]>,
    periods: &[usize],
    iterations: usize,
    robust_passes: usize,
) -> Decomposition {
    let mut deseasonalised = values.to_vec();
    let mut seasons = vec![vec![0.0; values.len()]; periods.len()];
    let mut trend = Vec::new();
    // With one season a second round would split the very same values again.
    let rounds = if periods.len() > 1 { iterations.max(1) } else { 1 };
    let stls: Vec<Stl> = periods
        .iter()
        .enumerate()
        .map(|(i, &p)| Stl::new(p, seasonal_window(i)).robust(robust_passes))
        .collect();
    for _ in 0..rounds {
        for (stl, season) in stls.iter().zip(&mut seasons) {
            deseasonalised.iter_mut().zip(season.iter()).for_each(|(d, s)| *d += s);
            let split = stl.split(&deseasonalised, reliability);
            deseasonalised.iter_mut().zip(&split.season).for_each(|(d, s)| *d -= s);
            *season = split.season;
            trend = split.trend;
        }
    }
    Decomposition { seasons, deseasonalised, trend }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A period-6 pattern that sums to zero, on the line 5 + 0.3·t.
    fn periodic_on_a_line(n: usize) -> (Vec<f64>, [f64; 6]) {
        let pattern = [3.0, 1.0, -2.0, -4.0, 0.5, 1.5];
        ((0..n).map(|t| 5.0 + 0.3 * t as f64 + pattern[t % 6]).collect(), pattern)
    }

    #[test]
    fn the_windows_follow_r_and_statsmodels() {
        let stl = Stl::new(288, 11);
        assert_eq!(stl.seasonal.window, 11);
        assert_eq!(stl.low_pass.window, 289);
        // 1.5·288 / (1 − 1.5/11) = 500.2…, rounded up to 501.
        assert_eq!(stl.trend.window, 501);
        // 1.5·24 / (1 − 1.5/7) = 45.8, rounded up to 46, odd 47.
        assert_eq!(Stl::new(24, 7).trend.window, 47);
        assert_eq!((0..3).map(seasonal_window).collect::<Vec<_>>(), vec![11, 15, 19]);
    }

    #[test]
    fn an_exactly_periodic_series_on_a_line_splits_into_its_season_and_its_line() {
        // Every cycle-subseries is itself a line, which the local constant seasonal smooth
        // misses only at its ends, and which the low-pass filter then removes from the season.
        // Away from the ends the split is exact to rounding.
        let (values, pattern) = periodic_on_a_line(20 * 6);
        let split = Stl::new(6, 11).split(&values, None);
        for t in 24..values.len() - 24 {
            assert!((split.season[t] - pattern[t % 6]).abs() < 0.05, "{t}: {}", split.season[t]);
            assert!((split.trend[t] - (5.0 + 0.3 * t as f64)).abs() < 0.05, "{t}: {}", split.trend[t]);
        }
        // Season and trend always add back up to the values less a remainder that is small.
        for (t, y) in values.iter().enumerate() {
            assert!((y - split.season[t] - split.trend[t]).abs() < 0.5, "{t}");
        }
    }

    #[test]
    fn a_flat_periodic_series_is_recovered_exactly() {
        let pattern = [3.0, 1.0, -2.0, -4.0, 0.5, 1.5];
        let values: Vec<f64> = (0..48).map(|t| 10.0 + pattern[t % 6]).collect();
        let split = Stl::new(6, 7).split(&values, None);
        for t in 0..48 {
            assert!((split.season[t] - pattern[t % 6]).abs() < 1e-9, "{t}: {}", split.season[t]);
            assert!((split.trend[t] - 10.0).abs() < 1e-9, "{t}: {}", split.trend[t]);
        }
    }

    #[test]
    fn robustness_passes_keep_a_spike_out_of_the_season() {
        // The flat periodic series with one huge spike: plainly, part of it lands in the season
        // at its phase, and the last cycle, which the forecast repeats, carries it on; each
        // robustness pass takes more of it out.
        let pattern = [3.0, 1.0, -2.0, -4.0, 0.5, 1.5];
        let mut values: Vec<f64> = (0..66).map(|t| 10.0 + pattern[t % 6]).collect();
        values[33] += 1000.0;
        let last_cycle_error = |split: &Split| -> f64 {
            (60..66).map(|t| (split.season[t] - pattern[t % 6]).abs()).fold(0.0, f64::max)
        };
        let plain = Stl::new(6, 7).split(&values, None);
        let robust = Stl::new(6, 7).robust(2).split(&values, None);
        assert!(last_cycle_error(&plain) > 10.0, "{}", last_cycle_error(&plain));
        let (plain, robust) = (last_cycle_error(&plain), last_cycle_error(&robust));
        assert!(plain > 10.0 && robust < plain / 8.0, "{plain} {robust}");
        // Each pass weighs back in the neighbours the spike's pull had made stray.
        let thorough = last_cycle_error(&Stl::new(6, 7).robust(5).split(&values, None));
        assert!(thorough < 0.01, "{thorough}");
    }

    #[test]
    fn unobserved_values_carry_no_weight() {
        // The same spike, marked unobserved instead: it reaches neither season nor trend.
        let pattern = [3.0, 1.0, -2.0, -4.0, 0.5, 1.5];
        let mut values: Vec<f64> = (0..66).map(|t| 10.0 + pattern[t % 6]).collect();
        values[33] += 1000.0;
        let mut reliability = vec![1.0; 66];
        reliability[33] = 0.0;
        let split = Stl::new(6, 7).split(&values, Some(&reliability));
        for t in 0..66 {
            assert!((split.season[t] - pattern[t % 6]).abs() < 1e-6, "{t}: {}", split.season[t]);
            assert!((split.trend[t] - 10.0).abs() < 1e-6, "{t}: {}", split.trend[t]);
        }
    }

    #[test]
    fn mstl_separates_two_seasons() {
        // A period-4 pattern and a period-20 sine, each summing to zero, on a level of 50. (A
        // period-20 square wave would not do: its fifth harmonic has period 4, and no method
        // can tell which season that share belongs to.)
        let short = [2.0, -1.0, 0.5, -1.5];
        let long = |t: usize| 3.0 * (t as f64 / 20.0 * std::f64::consts::TAU).sin();
        let values: Vec<f64> = (0..200).map(|t| 50.0 + short[t % 4] + long(t)).collect();
        let error = |iterations: usize| {
            let d = mstl(&values, None, &[4, 20], iterations, 0);
            // The components and the rest always add back to the values.
            for (t, y) in values.iter().enumerate() {
                let sum = d.seasons[0][t] + d.seasons[1][t] + d.deseasonalised[t];
                assert!((sum - y).abs() < 1e-9);
            }
            assert_eq!(d.trend.len(), 200);
            (0..200)
                .map(|t| {
                    let s = (d.seasons[0][t] - short[t % 4]).abs();
                    let l = (d.seasons[1][t] - long(t)).abs();
                    s.max(l).max((d.deseasonalised[t] - 50.0).abs())
                })
                .fold(0.0, f64::max)
        };
        // The first round leaves some of the long season in the short one; the second takes
        // it back.
        let (once, twice) = (error(1), error(2));
        assert!(once < 0.05 && twice < 0.01 && twice < once, "{once} {twice}");
    }

    #[test]
    fn without_seasons_nothing_is_taken_out() {
        let d = mstl(&[1.0, 2.0, 3.0], None, &[], 2, 0);
        assert!(d.seasons.is_empty() && d.trend.is_empty());
        assert_eq!(d.deseasonalised, vec![1.0, 2.0, 3.0]);
    }
}

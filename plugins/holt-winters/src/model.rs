//! The model: additive multi-seasonal Holt–Winters in error-correction form, how its state
//! starts, and the filter that carries the state through a history.
//!
//! ```text
//! εₜ   = yₜ − (ℓₜ₋₁ + φ·bₜ₋₁ + Σₖ sₖ,ₜ₋ₘₖ)          one-step error, before the AR term
//! ℓₜ   = ℓₜ₋₁ + φ·bₜ₋₁ + α·εₜ
//! bₜ   = φ·bₜ₋₁ + β·εₜ
//! sₖ,ₜ = sₖ,ₜ₋ₘₖ + γₖ·εₜ
//! ŷₜ₊ₕ = ℓₜ + (φ + … + φʰ)·bₜ + Σₖ sₖ,ₜ₊ₕ₋ₘₖ⌈h/mₖ⌉ + λʰ·εₜ
//! ```
//!
//! The AR term (Taylor 2003) only forecasts: the state learns from εₜ, while the fit scores
//! the one-step error that remains after it, εₜ − λ·εₜ₋₁.
//!
//! A gap (NaN) updates nothing: the level follows the damped trend, each season keeps its
//! value, and the error carried for the AR term decays by λ, its expected value.

/// Smoothing parameters in error-correction form (Hyndman et al., *Forecasting with
/// Exponential Smoothing*, 2008, ch. 3).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Level smoothing α ∈ [0, 1].
    pub alpha: f64,
    /// Trend smoothing β ∈ [0, α].
    pub beta: f64,
    /// Trend damping φ ∈ (0, 1]; 1 is an undamped trend.
    pub phi: f64,
    /// Seasonal smoothing γₖ ∈ [0, 1 − α], one per season, shortest season first.
    pub gammas: Vec<f64>,
    /// First-order autocorrelation λ ∈ [0, 1) of the one-step errors (Taylor 2003).
    pub ar: f64,
}

impl Params {
    /// What a history too short to fit gets: a level that follows half of each surprise and
    /// seasons that stay as the first cycle set them.
    pub fn unfitted(seasons: usize) -> Self {
        Self { alpha: 0.5, beta: 0.0, phi: 1.0, gammas: vec![0.0; seasons], ar: 0.0 }
    }
}

/// The state before the first observation, estimated from the first cycles.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// Level at time −1.
    pub level: f64,
    /// Trend per step at time −1.
    pub trend: f64,
    /// Per season (shortest first), its value at each phase `t mod m`.
    pub seasons: Vec<Vec<f64>>,
    /// First index whose one-step error counts toward the fit: the observations before it set
    /// the seasons, so predicting them is not a test.
    pub warmup: usize,
}

/// Most cycles of the shortest season its starting values average over: a week of days.
pub const START_CYCLES: usize = 7;

/// Pseudo-cycle, in steps, over which a series with no season estimates its level and trend.
const NO_SEASON_CYCLE: usize = 24;

impl Start {
    /// Estimates the starting state of a history with these seasons (in steps, ascending).
    ///
    /// Trend: the change between the means of the first two cycles of the shortest season,
    /// per step (0 when the history holds fewer). Level: the first cycle's mean, taken back
    /// from the cycle's middle to time −1 along that trend. Shortest season: at each phase,
    /// the mean of what the level and trend leave over its first cycles (up to
    /// [`START_CYCLES`], and no more than half the history), centred on zero. Longer seasons
    /// start at zero and are learned: one cycle of them is a single noisy sample per phase,
    /// and carrying it forward cost more accuracy on real series than it gained.
    pub fn new(values: &[f64], periods: &[usize]) -> Self {
        let n = values.len();
        let cycle = periods.first().copied().unwrap_or((n / 2).clamp(1, NO_SEASON_CYCLE));
        let first = mean(&values[..cycle.min(n)]);
        let second = if n >= 2 * cycle { mean(&values[cycle..2 * cycle]) } else { None };
        let (first, trend) = match (first, second) {
            (Some(a), Some(b)) => (a, (b - a) / cycle as f64),
            (Some(a), None) => (a, 0.0),
            // A first cycle of gaps places nothing in time; the whole history's mean is the
            // best level there is.
            (None, _) => (mean(values).unwrap_or(0.0), 0.0),
        };
        let level = first - trend * (cycle as f64 + 1.0) / 2.0;

        let mut seasons: Vec<Vec<f64>> = periods.iter().map(|&m| vec![0.0; m]).collect();
        let mut warmup = 0;
        if let Some(&m) = periods.first() {
            let window = ((n / 2 / m).clamp(1, START_CYCLES) * m).min(n);
            let (mut sums, mut counts) = (vec![0.0; m], vec![0u32; m]);
            for (t, y) in values[..window].iter().enumerate().filter(|(_, y)| !y.is_nan()) {
                sums[t % m] += y - level - trend * (t + 1) as f64;
                counts[t % m] += 1;
            }
            let season = &mut seasons[0];
            for ((s, sum), &count) in season.iter_mut().zip(sums).zip(&counts) {
                *s = if count > 0 { sum / f64::from(count) } else { 0.0 };
            }
            let centre = season.iter().sum::<f64>() / m as f64;
            season.iter_mut().for_each(|s| *s -= centre);
            warmup = window;
        }
        Self { level, trend, seasons, warmup }
    }
}

/// Mean of the values that are not gaps.
fn mean(values: &[f64]) -> Option<f64> {
    let (sum, count) = values.iter().filter(|v| !v.is_nan()).fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    (count > 0).then(|| sum / count as f64)
}

/// Receives the state after each step of the filter.
trait Trace {
    fn step(&mut self, level: f64, trend: f64, carry: f64, written: &[f64]);
}

/// Keeps nothing: for fitting, where only the error counts.
impl Trace for () {
    fn step(&mut self, _: f64, _: f64, _: f64, _: &[f64]) {}
}

/// Most seasons a model carries; the filter is compiled once per count up to it.
pub const MAX_SEASONS: usize = 3;

/// Runs the filter over `values`, reporting each step to `trace`; returns the sum of the
/// squared one-step errors (AR term included) from `start.warmup` on, and how many there were.
fn filter(params: &Params, start: &Start, values: &[f64], trace: &mut impl Trace) -> (f64, usize) {
    match start.seasons.len() {
        0 => filter_with::<0>(params, start, values, trace),
        1 => filter_with::<1>(params, start, values, trace),
        2 => filter_with::<2>(params, start, values, trace),
        3 => filter_with::<3>(params, start, values, trace),
        n => unreachable!("{n} seasons; the configuration allows at most {MAX_SEASONS}"),
    }
}

/// [`filter`] for `K` seasons: fixed-size arrays let the compiler unroll the per-season work,
/// which is most of the cost of fitting.
fn filter_with<const K: usize>(
    params: &Params,
    start: &Start,
    values: &[f64],
    trace: &mut impl Trace,
) -> (f64, usize) {
    let (mut level, mut trend, mut carry) = (start.level, start.trend, 0.0);
    let mut rings: [Vec<f64>; K] = std::array::from_fn(|k| start.seasons[k].clone());
    let gammas: [f64; K] = std::array::from_fn(|k| params.gammas[k]);
    let mut phases = [0usize; K];
    let mut written = [0.0; K];
    // The updates of level and trend, expanded so that each step's dependency on the last is
    // one multiply and two adds: that chain, not the arithmetic, bounds the speed of a fit.
    let level_keep = 1.0 - params.alpha;
    let level_from_trend = level_keep * params.phi;
    let trend_keep = params.phi - params.beta * params.phi;
    let (mut sse, mut count) = (0.0, 0);
    for (t, &y) in values.iter().enumerate() {
        if y.is_nan() {
            level += params.phi * trend;
            trend *= params.phi;
            carry *= params.ar;
            for k in 0..K {
                written[k] = rings[k][phases[k]];
            }
        } else {
            let mut seasonal = 0.0;
            for k in 0..K {
                seasonal += rings[k][phases[k]];
            }
            let deseasonalised = y - seasonal;
            let error = deseasonalised - (level + params.phi * trend);
            if t >= start.warmup {
                let surprise = error - params.ar * carry;
                sse += surprise * surprise;
                count += 1;
            }
            // ℓ + φb + αε and φb + βε, with ε = y − s − ℓ − φb written out.
            let next_level = level_keep * level + level_from_trend * trend + params.alpha * deseasonalised;
            trend = trend_keep * trend - params.beta * level + params.beta * deseasonalised;
            level = next_level;
            for k in 0..K {
                rings[k][phases[k]] += gammas[k] * error;
                written[k] = rings[k][phases[k]];
            }
            carry = error;
        }
        for k in 0..K {
            phases[k] = if phases[k] + 1 == rings[k].len() { 0 } else { phases[k] + 1 };
        }
        trace.step(level, trend, carry, &written);
    }
    (sse, count)
}

/// Mean squared one-step error of `params` on `values` from `start`, over the observations
/// after the warm-up; 0 when there are none.
pub fn mean_squared_error(params: &Params, start: &Start, values: &[f64]) -> f64 {
    let (sse, count) = filter(params, start, values, &mut ());
    if count == 0 { 0.0 } else { sse / count as f64 }
}

/// The state after every step of a history, so that a forecast from any origin costs O(1).
#[derive(Debug, Clone)]
pub struct History {
    periods: Vec<usize>,
    phi: f64,
    ar: f64,
    level: Vec<f64>,
    trend: Vec<f64>,
    carry: Vec<f64>,
    /// Per season, `m` starting values (times −m … −1) then the value written at each step.
    seasons: Vec<Vec<f64>>,
}

impl Trace for History {
    fn step(&mut self, level: f64, trend: f64, carry: f64, written: &[f64]) {
        self.level.push(level);
        self.trend.push(trend);
        self.carry.push(carry);
        for (season, &w) in self.seasons.iter_mut().zip(written) {
            season.push(w);
        }
    }
}

/// What a forecast `h` steps ahead needs besides the state, computed once per lead.
#[derive(Debug, Clone, Copy)]
pub struct Lead {
    /// Steps ahead, at least 1.
    pub steps: usize,
    /// φ + φ² + … + φʰ: how far the trend carries.
    damping: f64,
    /// λʰ: how much of the last error remains.
    decay: f64,
}

impl History {
    /// Runs the model with `params` over `values` from `start`.
    pub fn new(values: &[f64], periods: &[usize], params: &Params, start: &Start) -> Self {
        let n = values.len();
        let mut history = Self {
            periods: periods.to_vec(),
            phi: params.phi,
            ar: params.ar,
            level: Vec::with_capacity(n),
            trend: Vec::with_capacity(n),
            carry: Vec::with_capacity(n),
            seasons: periods
                .iter()
                .zip(&start.seasons)
                .map(|(&m, initial)| {
                    let mut season = Vec::with_capacity(m + n);
                    season.extend_from_slice(initial);
                    season
                })
                .collect(),
        };
        filter(params, start, values, &mut history);
        history
    }

    /// Number of steps the history covers.
    pub fn len(&self) -> usize {
        self.level.len()
    }

    /// Precomputes what forecasts `steps` ahead share.
    pub fn lead(&self, steps: usize) -> Lead {
        let steps = steps.max(1);
        let h = steps as f64;
        let damping =
            if self.phi >= 1.0 { h } else { self.phi * (1.0 - libm::pow(self.phi, h)) / (1.0 - self.phi) };
        Lead { steps, damping, decay: libm::pow(self.ar, h) }
    }

    /// The forecast made after observing index `origin` for index `origin + lead.steps`.
    pub fn forecast(&self, origin: usize, lead: &Lead) -> f64 {
        let target = origin + lead.steps;
        let seasonal: f64 = self
            .periods
            .iter()
            .zip(&self.seasons)
            // The latest value written for the target's phase, a whole number of seasons back;
            // offset by `m` because the starting values sit in front.
            .map(|(&m, season)| season[target + m - m * lead.steps.div_ceil(m)])
            .sum();
        self.level[origin] + lead.damping * self.trend[origin] + seasonal + lead.decay * self.carry[origin]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    fn params(alpha: f64, beta: f64, phi: f64, gammas: &[f64], ar: f64) -> Params {
        Params { alpha, beta, phi, gammas: gammas.to_vec(), ar }
    }

    #[test]
    fn the_start_reads_level_trend_and_season_off_the_first_cycles() {
        // Period 4: pattern [1, −1, 2, −2] on a line 10 + 0.5·t.
        let pattern = [1.0, -1.0, 2.0, -2.0];
        let values: Vec<f64> = (0..12).map(|t| 10.0 + 0.5 * t as f64 + pattern[t % 4]).collect();
        let start = Start::new(&values, &[4]);
        assert_close(start.trend, 0.5);
        assert_close(start.level, 9.5);
        for (s, p) in start.seasons[0].iter().zip(pattern) {
            assert_close(*s, p);
        }
        assert_eq!(start.warmup, 4);
    }

    #[test]
    fn one_smoothing_step_matches_the_equations_by_hand() {
        let start = Start { level: 10.0, trend: 1.0, seasons: vec![vec![2.0, -2.0]], warmup: 0 };
        let p = params(0.5, 0.2, 0.9, &[0.3], 0.4);
        let history = History::new(&[15.0], &[2], &p, &start);
        // ŷ₀ = 10 + 0.9·1 + 2 = 12.9, so ε₀ = 2.1.
        assert_close(history.level[0], 10.9 + 0.5 * 2.1);
        assert_close(history.trend[0], 0.9 + 0.2 * 2.1);
        assert_close(history.seasons[0][2], 2.0 + 0.3 * 2.1);
        assert_close(history.carry[0], 2.1);
        // Two steps ahead: ℓ + (φ + φ²)·b + the same phase's season + λ²·ε.
        let expected = 11.95 + (0.9 + 0.81) * 1.32 + 2.63 + 0.16 * 2.1;
        assert_close(history.forecast(0, &history.lead(2)), expected);
        // The one-step error of the second observation includes the AR term.
        let next = 11.95 + 0.9 * 1.32 - 2.0 + 0.4 * 2.1;
        let mse = mean_squared_error(&p, &start, &[15.0, next + 1.0]);
        assert_close(mse, (2.1f64.powi(2) + 1.0) / 2.0);
    }

    #[test]
    fn a_gap_propagates_the_state_without_an_update() {
        let start = Start { level: 10.0, trend: 1.0, seasons: vec![vec![2.0, -2.0]], warmup: 0 };
        let p = params(0.5, 0.2, 0.9, &[0.3], 0.5);
        let history = History::new(&[15.0, f64::NAN], &[2], &p, &start);
        assert_close(history.level[1], history.level[0] + 0.9 * history.trend[0]);
        assert_close(history.trend[1], 0.9 * history.trend[0]);
        assert_close(history.seasons[0][3], -2.0);
        assert_close(history.carry[1], 0.5 * history.carry[0]);
        // A gap is not a zero: the forecast across it equals the one made before it.
        let before = history.forecast(0, &history.lead(2));
        let after = history.forecast(1, &history.lead(1));
        assert_close(before, after);
    }

    #[test]
    fn a_pure_linear_trend_is_extrapolated_exactly() {
        let values: Vec<f64> = (0..50).map(|t| 3.0 + 2.0 * t as f64).collect();
        let start = Start::new(&values, &[]);
        let p = params(0.3, 0.1, 1.0, &[], 0.0);
        let history = History::new(&values, &[], &p, &start);
        for h in [1, 7, 100] {
            assert_close(history.forecast(49, &history.lead(h)), 3.0 + 2.0 * (49 + h) as f64);
        }
        assert_close(mean_squared_error(&p, &start, &values), 0.0);
    }

    #[test]
    fn a_pure_repeating_season_is_reproduced_exactly() {
        let day = [4.0, 9.0, 7.0, 1.0];
        let values: Vec<f64> = (0..40).map(|t| 20.0 + day[t % 4]).collect();
        let start = Start::new(&values, &[4]);
        let p = params(0.4, 0.05, 0.95, &[0.2], 0.3);
        assert_close(mean_squared_error(&p, &start, &values), 0.0);
        let history = History::new(&values, &[4], &p, &start);
        for h in 1..=30 {
            assert_close(history.forecast(39, &history.lead(h)), 20.0 + day[(39 + h) % 4]);
        }
    }

    #[test]
    fn a_longer_season_starts_at_zero_and_is_learned() {
        let day = [4.0, 9.0, 7.0];
        let week = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 5.0, 5.0, -5.0, -5.0, -5.0];
        let value = |t: usize| 20.0 + day[t % 3] + week[t % 12];
        let values: Vec<f64> = (0..1200).map(value).collect();
        let start = Start::new(&values, &[3, 12]);
        assert!(start.seasons[1].iter().all(|s| *s == 0.0));
        let p = params(0.1, 0.0, 1.0, &[0.1, 0.3], 0.0);
        let history = History::new(&values, &[3, 12], &p, &start);
        for h in 1..=24 {
            assert_close(history.forecast(1199, &history.lead(h)), value(1199 + h));
        }
    }
}

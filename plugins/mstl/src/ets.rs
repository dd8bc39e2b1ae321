//! Exponential smoothing without a season for what the seasons leave: simple (a level) or
//! with a damped trend, in error-correction form (Hyndman et al., *Forecasting with
//! Exponential Smoothing*, 2008):
//!
//! ```text
//! εₜ = dₜ − (ℓₜ₋₁ + φ·bₜ₋₁)
//! ℓₜ = ℓₜ₋₁ + φ·bₜ₋₁ + α·εₜ
//! bₜ = φ·bₜ₋₁ + β·εₜ                          simple smoothing: b ≡ 0
//! d̂ₜ₊ₕ = ℓₜ + (φ + φ² + … + φʰ)·bₜ
//! ```
//!
//! A gap (NaN) updates nothing: the level follows the damped trend. The state is linear in
//! its start, so for any α, β, φ the start (ℓ₋₁, b₋₁) that minimises the squared one-step
//! errors is a small least-squares problem solved in the same pass; the search then only
//! needs α, β and φ, which Nelder–Mead finds from a fixed start, deterministically. Between
//! the two models the one with the lower AIC, n·ln(SSE / n) + 2k, is kept. The fitted model
//! may then be run robustly, each error clipped before the state takes it in ([`Smoothed`]).

/// Damping range: below 0.8 a trend dies within a few steps and might as well be absent;
/// above 0.98 it is hard to tell from an undamped one (the range of R's `forecast::ets`).
const PHI_MIN: f64 = 0.8;
const PHI_MAX: f64 = 0.98;

/// Smallest α: at 0 the level would never move and its start alone would forecast.
const ALPHA_MIN: f64 = 1e-4;

/// Which model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A level only.
    Simple,
    /// A level and a damped trend.
    Damped,
}

impl Kind {
    /// Parameters the AIC charges for: the smoothing parameters and the start.
    fn parameters(self) -> f64 {
        match self {
            Self::Simple => 2.0,
            Self::Damped => 5.0,
        }
    }

    /// Maps a point of the unit box onto admissible parameters (β ≤ α).
    fn params(self, unit: &[f64]) -> Params {
        let at = |i: usize| unit.get(i).copied().unwrap_or(0.0).clamp(0.0, 1.0);
        let alpha = ALPHA_MIN + (1.0 - ALPHA_MIN) * at(0);
        match self {
            Self::Simple => Params { alpha, beta: 0.0, phi: 1.0 },
            Self::Damped => Params { alpha, beta: alpha * at(1), phi: PHI_MIN + (PHI_MAX - PHI_MIN) * at(2) },
        }
    }
}

/// Smoothing parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Level smoothing α ∈ (0, 1].
    pub alpha: f64,
    /// Trend smoothing β ∈ [0, α]; 0 for simple smoothing.
    pub beta: f64,
    /// Trend damping φ; irrelevant for simple smoothing, whose trend stays 0.
    pub phi: f64,
}

/// A model fitted to one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// Which model.
    pub kind: Kind,
    /// Its parameters.
    pub params: Params,
    /// Level and trend before the first value.
    pub start: (f64, f64),
    /// Akaike's information criterion of the fit.
    pub aic: f64,
}

/// Sums one pass accumulates: the one-step errors from a reference start, and how they move
/// with the start's level and trend.
#[derive(Debug, Default)]
struct Pass {
    count: usize,
    ee: f64,
    eu: f64,
    ev: f64,
    uu: f64,
    uv: f64,
    vv: f64,
}

impl Pass {
    /// Runs the recursions over `values` from (`level`, 0), with `trend` free only for the
    /// damped model.
    fn run(values: &[f64], params: &Params, level: f64, trended: bool) -> Self {
        let Params { alpha, beta, phi } = *params;
        let mut pass = Self::default();
        // The state from the reference start, and its response to a unit change of the
        // start's level (u) and trend (v) with no data.
        let (mut l, mut b) = (level, 0.0);
        let (mut lu, mut bu, mut lv, mut bv) = (1.0, 0.0, 0.0, if trended { 1.0 } else { 0.0 });
        for &d in values {
            let predicted = l + phi * b;
            let u = lu + phi * bu;
            let v = lv + phi * bv;
            if d.is_nan() {
                (l, b, lu, bu, lv, bv) = (predicted, phi * b, u, phi * bu, v, phi * bv);
                continue;
            }
            let e = d - predicted;
            pass.count += 1;
            pass.ee += e * e;
            pass.eu += e * u;
            pass.ev += e * v;
            pass.uu += u * u;
            pass.uv += u * v;
            pass.vv += v * v;
            l = predicted + alpha * e;
            b = phi * b + beta * e;
            lu = (1.0 - alpha) * u;
            bu = phi * bu - beta * u;
            lv = (1.0 - alpha) * v;
            bv = phi * bv - beta * v;
        }
        pass
    }

    /// The change of the start's level and trend that minimises the squared errors, and the
    /// sum of squares then.
    fn best(&self) -> (f64, f64, f64) {
        let det = self.uu * self.vv - self.uv * self.uv;
        let (dl, db) = if self.vv > 0.0 && det > 1e-12 * self.uu * self.vv {
            ((self.eu * self.vv - self.ev * self.uv) / det, (self.ev * self.uu - self.eu * self.uv) / det)
        } else if self.uu > 0.0 {
            (self.eu / self.uu, 0.0)
        } else {
            (0.0, 0.0)
        };
        let sse = self.ee - 2.0 * (dl * self.eu + db * self.ev)
            + dl * dl * self.uu
            + 2.0 * dl * db * self.uv
            + db * db * self.vv;
        // Rounding can take a perfect fit a hair below zero.
        (dl, db, sse.max(0.0))
    }
}

/// Fits `kind` to `values` (NaN for gaps, at least one observed) spending at most
/// `evaluations` passes.
pub fn fit(values: &[f64], kind: Kind, evaluations: usize) -> Fit {
    // A reference start near the data keeps the sums of squares from cancelling.
    let first_observed = |v: &[f64]| v.iter().copied().find(|v| !v.is_nan()).unwrap_or(0.0);
    let trended = kind == Kind::Damped;
    // The search reads only the latest observations: a few thousand one-step errors pin
    // three parameters down, and each pass over all of a long history would cost as much
    // again. The start and the AIC are then taken over the whole history.
    let recent = &values[search_start(values)..];
    let recent_reference = first_observed(recent);
    let sse = |unit: &[f64]| Pass::run(recent, &kind.params(unit), recent_reference, trended).best().2;
    // The level's smoothing matters most and its error surface can have more than one
    // valley: a coarse scan picks the valley, the search the bottom.
    let mut start = match kind {
        Kind::Simple => vec![0.0],
        Kind::Damped => vec![0.0, 0.1, 0.5],
    };
    let mut best = f64::INFINITY;
    for alpha in [0.01, 0.1, 0.3, 0.6, 0.95] {
        let mut unit = start.clone();
        unit[0] = alpha;
        let value = sse(&unit);
        if value < best {
            best = value;
            start = unit;
        }
    }
    let unit = nelder_mead(sse, &start, evaluations.saturating_sub(5));
    let params = kind.params(&unit);
    let reference = first_observed(values);
    let pass = Pass::run(values, &params, reference, trended);
    let (dl, db, sse) = pass.best();
    let n = pass.count.max(1) as f64;
    // A perfect fit has no error to take the logarithm of; the smallest positive variance
    // keeps the comparison finite and lets the simpler model win a tie.
    let aic = n * (sse / n).max(f64::MIN_POSITIVE).ln() + 2.0 * kind.parameters();
    Fit { kind, params, start: (reference + dl, db), aic }
}

/// Observations the parameter search reads, the latest: a week of five-minute steps.
pub const SEARCH_OBSERVATIONS: usize = 2016;

/// Where the latest [`SEARCH_OBSERVATIONS`] observations of `values` begin (0 when it holds
/// fewer).
fn search_start(values: &[f64]) -> usize {
    let mut seen = 0;
    for (i, v) in values.iter().enumerate().rev() {
        if !v.is_nan() {
            seen += 1;
            if seen == SEARCH_OBSERVATIONS {
                return i;
            }
        }
    }
    0
}

/// The better of simple smoothing and the damped trend by AIC (simple on a tie).
pub fn choose(values: &[f64], evaluations: usize) -> Fit {
    let simple = fit(values, Kind::Simple, evaluations);
    let damped = fit(values, Kind::Damped, evaluations);
    if damped.aic < simple.aic { damped } else { simple }
}

/// The fixed model for a history too short to fit: simple smoothing that takes half of each
/// surprise, from the first observation.
pub fn unfitted(values: &[f64]) -> Fit {
    let first = values.iter().copied().find(|v| !v.is_nan()).unwrap_or(0.0);
    Fit {
        kind: Kind::Simple,
        params: Params { alpha: 0.5, beta: 0.0, phi: 1.0 },
        start: (first, 0.0),
        aic: f64::INFINITY,
    }
}

/// Huber's clipping point for a one-step error, in scales σₜ (Gelper et al. 2010).
const HUBER_K: f64 = 2.0;
/// The biweight ρ that updates the scale: its cut-off, in scales, and the constant that makes
/// the update consistent for normal errors (Gelper et al. 2010).
const BIWEIGHT_K: f64 = 2.0;
const BIWEIGHT_C: f64 = 2.52;
/// How fast the scale follows the errors (Gelper et al. 2010).
const SCALE_SMOOTHING: f64 = 0.1;

/// The state after every step of a history, so that a forecast from any origin costs O(1).
#[derive(Debug, Clone)]
pub struct Smoothed {
    phi: f64,
    level: Vec<f64>,
    trend: Vec<f64>,
}

impl Smoothed {
    /// Runs `fit` over `values`. With a scale `sigma` the recursions are robust (Gelper, Fried
    /// & Croux 2010, "Robust forecasting with exponential and Holt–Winters smoothing"): each
    /// one-step error is clipped at 2σₜ before it updates the state, and σₜ (never below
    /// `sigma`) follows the errors through a bounded biweight ρ. A lone spike then moves the
    /// level by at most 2ασₜ, while a lasting shift keeps missing, widens σₜ, and is let
    /// through within a few dozen steps.
    pub fn new(values: &[f64], fit: &Fit, sigma: Option<f64>) -> Self {
        let Params { alpha, beta, phi } = fit.params;
        let (mut l, mut b) = fit.start;
        let mut smoothed =
            Self { phi, level: Vec::with_capacity(values.len()), trend: Vec::with_capacity(values.len()) };
        let mut scale = sigma.unwrap_or(f64::INFINITY);
        for &d in values {
            let predicted = l + phi * b;
            if d.is_nan() {
                l = predicted;
                b *= phi;
            } else {
                let mut e = d - predicted;
                if let Some(floor) = sigma {
                    let u = e / scale;
                    let rho = if u.abs() <= BIWEIGHT_K {
                        let v = 1.0 - (u / BIWEIGHT_K) * (u / BIWEIGHT_K);
                        1.0 - v * v * v
                    } else {
                        1.0
                    };
                    e = e.clamp(-HUBER_K * scale, HUBER_K * scale);
                    scale = (scale * (1.0 - SCALE_SMOOTHING + SCALE_SMOOTHING * BIWEIGHT_C * rho).sqrt())
                        .max(floor);
                }
                l = predicted + alpha * e;
                b = phi * b + beta * e;
            }
            smoothed.level.push(l);
            smoothed.trend.push(b);
        }
        smoothed
    }

    /// Number of steps the history covers.
    pub fn len(&self) -> usize {
        self.level.len()
    }

    /// The one-step errors over `values` (those the state was run over), gaps skipped.
    pub fn errors(&self, values: &[f64], start: (f64, f64)) -> Vec<f64> {
        let mut out = Vec::with_capacity(values.len());
        for (t, &d) in values.iter().enumerate() {
            if d.is_nan() {
                continue;
            }
            let predicted =
                if t == 0 { start.0 + self.phi * start.1 } else { self.forecast(t - 1, self.phi) };
            out.push(d - predicted);
        }
        out
    }

    /// φ + φ² + … + φʰ: how far the trend carries in `h` steps.
    pub fn damping(&self, h: usize) -> f64 {
        let phi = self.phi;
        if phi >= 1.0 { h as f64 } else { phi * (1.0 - libm::pow(phi, h as f64)) / (1.0 - phi) }
    }

    /// The forecast made after index `origin` for `h` steps later, given `damping(h)`.
    pub fn forecast(&self, origin: usize, damping: f64) -> f64 {
        self.level[origin] + damping * self.trend[origin]
    }
}

/// First step of the simplex from the starting point, as a fraction of the box.
const SIMPLEX_STEP: f64 = 0.2;

/// The search stops once the simplex's values agree to this relative tolerance.
const TOLERANCE: f64 = 1e-10;

/// Minimises `f` over the unit box by Nelder–Mead (reflection 1, expansion 2, contraction and
/// shrink ½), projecting every trial point onto the box. Deterministic; spends at most
/// `budget` evaluations.
fn nelder_mead(mut f: impl FnMut(&[f64]) -> f64, start: &[f64], budget: usize) -> Vec<f64> {
    let d = start.len();
    let mut spent = 0;
    let mut eval = |x: &[f64], spent: &mut usize| {
        *spent += 1;
        let value = f(x);
        // A non-finite error is the worst possible, never a minimum.
        if value.is_finite() { value } else { f64::INFINITY }
    };
    let clamp = |x: Vec<f64>| x.into_iter().map(|v| v.clamp(0.0, 1.0)).collect::<Vec<_>>();
    let along =
        |from: &[f64], to: &[f64], t: f64| clamp(from.iter().zip(to).map(|(a, b)| a + t * (b - a)).collect());
    let first = clamp(start.to_vec());
    let mut simplex = vec![(first.clone(), eval(&first, &mut spent))];
    for i in 0..d {
        let mut x = first.clone();
        // Step inwards at the edge of the box, so that the vertices stay distinct.
        x[i] = if x[i] + SIMPLEX_STEP <= 1.0 { x[i] + SIMPLEX_STEP } else { x[i] - SIMPLEX_STEP };
        let value = eval(&x, &mut spent);
        simplex.push((x, value));
    }
    while spent + 2 <= budget {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[d].1);
        if worst - best <= TOLERANCE * best.abs().max(f64::MIN_POSITIVE) {
            break;
        }
        let mut centroid = vec![0.0; d];
        for (x, _) in &simplex[..d] {
            centroid.iter_mut().zip(x).for_each(|(c, v)| *c += v / d as f64);
        }
        let reflected = along(&centroid, &simplex[d].0, -1.0);
        let reflected_value = eval(&reflected, &mut spent);
        if reflected_value < best {
            let expanded = along(&centroid, &simplex[d].0, -2.0);
            let expanded_value = eval(&expanded, &mut spent);
            simplex[d] = if expanded_value < reflected_value {
                (expanded, expanded_value)
            } else {
                (reflected, reflected_value)
            };
        } else if reflected_value < simplex[d - 1].1 {
            simplex[d] = (reflected, reflected_value);
        } else {
            let (toward, bound) =
                if reflected_value < worst { (&reflected, reflected_value) } else { (&simplex[d].0, worst) };
            let contracted = along(&centroid, toward, 0.5);
            let contracted_value = eval(&contracted, &mut spent);
            if contracted_value < bound {
                simplex[d] = (contracted, contracted_value);
            } else {
                if spent + d > budget {
                    break;
                }
                let best = simplex[0].0.clone();
                for vertex in &mut simplex[1..] {
                    vertex.0 = along(&best, &vertex.0, 0.5);
                    vertex.1 = eval(&vertex.0, &mut spent);
                }
            }
        }
    }
    simplex.into_iter().min_by(|a, b| a.1.total_cmp(&b.1)).map(|(x, _)| x).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use foresight_sdk::testing::Lcg;

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn simple_smoothing_by_hand() {
        // α = 0.5 from a level of 10: 12 → 11, 8 → 9.5, a gap keeps 9.5, 13.5 → 11.5.
        let fit = Fit {
            kind: Kind::Simple,
            params: Params { alpha: 0.5, beta: 0.0, phi: 1.0 },
            start: (10.0, 0.0),
            aic: 0.0,
        };
        let s = Smoothed::new(&[12.0, 8.0, f64::NAN, 13.5], &fit, None);
        assert_eq!(s.level, vec![11.0, 9.5, 9.5, 11.5]);
        assert_eq!(s.forecast(3, s.damping(7)), 11.5);
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn damped_trend_by_hand() {
        // ℓ = 10, b = 2, α = 0.5, β = 0.2, φ = 0.9. First value 14: predicted 11.8, ε = 2.2,
        // ℓ = 12.9, b = 1.8 + 0.44 = 2.24. A gap: ℓ = 12.9 + 2.016 = 14.916, b = 2.016.
        let fit = Fit {
            kind: Kind::Damped,
            params: Params { alpha: 0.5, beta: 0.2, phi: 0.9 },
            start: (10.0, 2.0),
            aic: 0.0,
        };
        let s = Smoothed::new(&[14.0, f64::NAN], &fit, None);
        assert_close(s.level[0], 12.9);
        assert_close(s.trend[0], 2.24);
        assert_close(s.level[1], 14.916);
        assert_close(s.trend[1], 2.016);
        // Two steps ahead: ℓ + (0.9 + 0.81)·b.
        assert_close(s.damping(2), 1.71);
        assert_close(s.forecast(0, s.damping(2)), 12.9 + 1.71 * 2.24);
    }

    #[test]
    fn a_robust_filter_shrugs_off_a_spike_but_follows_a_shift() {
        // SES with α = 0.5 on a level of 10, σ = 1: a spike to 100 moves the level by at most
        // α·2σ = 1, where the plain filter would move it by 45.
        let fit = Fit {
            kind: Kind::Simple,
            params: Params { alpha: 0.5, beta: 0.0, phi: 1.0 },
            start: (10.0, 0.0),
            aic: 0.0,
        };
        let mut values = vec![10.0; 20];
        values.push(100.0);
        let robust = Smoothed::new(&values, &fit, Some(1.0));
        assert!((robust.level[20] - 11.0).abs() < 1e-12, "{}", robust.level[20]);
        assert!((Smoothed::new(&values, &fit, None).level[20] - 55.0).abs() < 1e-12);
        // The scale grows with every miss: a shift to 100 that lasts is followed within a few
        // dozen steps.
        values.extend(std::iter::repeat_n(100.0, 60));
        let robust = Smoothed::new(&values, &fit, Some(1.0));
        assert!(robust.level[25] < 50.0, "{}", robust.level[25]);
        assert!((robust.level[80] - 100.0).abs() < 1.0, "{}", robust.level[80]);
    }

    #[test]
    fn one_step_errors_are_those_of_the_recursions() {
        let fit = Fit {
            kind: Kind::Simple,
            params: Params { alpha: 0.5, beta: 0.0, phi: 1.0 },
            start: (10.0, 0.0),
            aic: 0.0,
        };
        let values = [12.0, f64::NAN, 8.0];
        let s = Smoothed::new(&values, &fit, None);
        // 12 − 10, then (gap skipped) 8 − 11.
        assert_eq!(s.errors(&values, fit.start), vec![2.0, -3.0]);
    }

    #[test]
    fn the_best_start_is_solved_not_searched() {
        // A constant series: whatever α, the best start is the constant and the error zero.
        let values = vec![7.0; 30];
        let pass = Pass::run(&values, &Params { alpha: 0.3, beta: 0.0, phi: 1.0 }, 1.0, false);
        let (dl, _, sse) = pass.best();
        assert_close(1.0 + dl, 7.0);
        assert!(sse < 1e-9, "{sse}");
        // A straight line, whatever α and β, with an undamped trend: the start one step before
        // it on the line, (2.5, 0.5), leaves no error at all.
        let line: Vec<f64> = (0..40).map(|t| 3.0 + 0.5 * t as f64).collect();
        let params = Params { alpha: 0.3, beta: 0.1, phi: 1.0 };
        let (dl, db, sse) = Pass::run(&line, &params, line[0], true).best();
        assert!((line[0] + dl - 2.5).abs() < 1e-6 && (db - 0.5).abs() < 1e-6, "{dl} {db}");
        assert!(sse < 1e-9, "{sse}");
    }

    #[test]
    fn a_noisy_level_gets_a_small_alpha_and_a_random_walk_a_large_one() {
        let mut noise = Lcg(9);
        let flat: Vec<f64> = (0..2000).map(|_| 50.0 + noise.normal()).collect();
        let mut walk = vec![0.0];
        for _ in 1..2000 {
            walk.push(walk.last().unwrap() + noise.normal());
        }
        let flat_fit = fit(&flat, Kind::Simple, 60);
        assert!(flat_fit.params.alpha < 0.05, "{flat_fit:?}");
        assert!((flat_fit.start.0 - 50.0).abs() < 1.0, "{flat_fit:?}");
        assert!(fit(&walk, Kind::Simple, 60).params.alpha > 0.8);
        // Neither has a trend worth five parameters.
        assert_eq!(choose(&flat, 100).kind, Kind::Simple);
    }

    #[test]
    fn a_trending_series_chooses_the_damped_trend() {
        let mut noise = Lcg(4);
        let values: Vec<f64> = (0..500).map(|t| 0.5 * t as f64 + 0.2 * noise.normal()).collect();
        let chosen = choose(&values, 100);
        assert_eq!(chosen.kind, Kind::Damped, "{chosen:?}");
        let s = Smoothed::new(&values, &chosen, None);
        // Damped, the forecast still rises for a while.
        assert!(s.forecast(499, s.damping(5)) > 249.5 + 1.0);
    }

    #[test]
    fn gaps_are_not_read_as_zero() {
        let mut values = vec![100.0; 50];
        values[20..30].iter_mut().for_each(|v| *v = f64::NAN);
        let chosen = choose(&values, 60);
        let s = Smoothed::new(&values, &chosen, None);
        assert!((s.forecast(29, s.damping(1)) - 100.0).abs() < 1e-6);
        assert!((s.forecast(49, s.damping(10)) - 100.0).abs() < 1e-6);
    }

    #[test]
    fn every_point_of_the_box_is_admissible() {
        for corner in 0..8u32 {
            let unit: Vec<f64> = (0..3).map(|i| f64::from((corner >> i) & 1)).collect();
            let p = Kind::Damped.params(&unit);
            assert!((ALPHA_MIN..=1.0).contains(&p.alpha) && p.beta <= p.alpha);
            assert!((PHI_MIN..=PHI_MAX).contains(&p.phi));
        }
    }

    #[test]
    fn the_search_is_deterministic_and_keeps_to_its_budget() {
        let mut calls = 0;
        let f = |x: &[f64]| (x[0] - 0.3).powi(2) + 10.0 * (x[1] - 0.7).powi(2);
        let best = nelder_mead(
            |x| {
                calls += 1;
                f(x)
            },
            &[0.5, 0.5],
            40,
        );
        assert!(calls <= 40);
        assert_eq!(best, nelder_mead(f, &[0.5, 0.5], 40));
        let best = nelder_mead(f, &[0.5, 0.5], 500);
        assert!((best[0] - 0.3).abs() < 1e-4 && (best[1] - 0.7).abs() < 1e-4, "{best:?}");
    }

    #[test]
    fn the_search_reads_the_latest_observations_and_the_start_fits_the_whole_history() {
        let mut noise = Lcg(4);
        // A random walk for as long as the search reads, after a long flat stretch with gaps.
        let mut values: Vec<f64> =
            (0..3000).map(|i| if i % 7 == 0 { f64::NAN } else { 20.0 + noise.normal() }).collect();
        let from = values.len();
        let mut level = 20.0;
        for _ in 0..SEARCH_OBSERVATIONS {
            level += noise.normal();
            values.push(level);
        }
        assert_eq!(search_start(&values), from);
        assert_eq!(search_start(&values[..100]), 0, "fewer observations than the search reads");
        // α is the walk's, not the flat stretch's; the start is still that of the flat stretch.
        let walk = fit(&values, Kind::Simple, 60);
        assert!(walk.params.alpha > 0.8, "{walk:?}");
        assert!((walk.start.0 - 20.0).abs() < 3.0, "{walk:?}");
    }
}

//! The model clusters learn together: the same network as the `onnx-mlp` forecaster's shipped
//! model — its 78 features (`onnx_mlp::History`), clipped to ±20, a 78 → 64 → 64 → 3 MLP
//! (ReLU) that corrects the seasonal-naive baseline, the outer quantiles a softplus distance
//! either side of the median — trained on the pinball loss with Adam. Because the graph is the
//! same, a federated model is served by the ONNX path with only its weights replaced
//! ([`super::export`]).
//!
//! Parameters travel as one flat vector (`w0, b0, w1, b1, w2, b2`, row-major), which is what
//! aggregation, clipping and masking work on.

use onnx_mlp::{FEATURES, History, TWO_DAYS, YESTERDAY, YESTERDAY_SEEN};

use crate::backends::sim::Rng;

/// Layer sizes.
pub const SIZES: [usize; 4] = [FEATURES, 64, 64, 3];
/// Quantile levels of the outputs.
pub const LEVELS: [f32; 3] = [0.1, 0.5, 0.9];
const CLIP: f32 = 20.0;
/// Targets beyond this many scales are clipped (as in the shipped model's training).
const TARGET_CLIP: f32 = 50.0;

/// Parameters in the flat vector.
pub fn parameter_count() -> usize {
    SIZES.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
}

/// Training examples: features and targets in units of each history's scale.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    /// `len × FEATURES`, row-major.
    pub x: Vec<f32>,
    /// One target per row.
    pub y: Vec<f32>,
}

impl Samples {
    /// Rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// `count` forecasts drawn from a series (values every `step` s from `start`): each
    /// has its last observation at a random index in `[lo, hi)` and a lead of 1 step to 48 h,
    /// its target inside the same range. Seeded, so the same call draws the same samples.
    pub fn draw(
        start: i64,
        step: u32,
        values: &[f64],
        lo: usize,
        hi: usize,
        count: usize,
        rng: &mut Rng,
    ) -> Self {
        let mut s = Samples::default();
        let hi = hi.min(values.len());
        if hi <= lo + 2 {
            return s;
        }
        let max_k = (onnx_mlp::MAX_LEAD_S as usize / step.max(1) as usize).max(1);
        let mut tries = 0;
        while s.len() < count && tries < count * 4 {
            tries += 1;
            let o = lo + 1 + rng.below(hi - lo - 1);
            let k = if rng.chance(0.25) {
                1 + rng.below(3)
            } else {
                (rng.range(0.0, (max_k as f64).ln()).exp().ceil() as usize).min(max_k)
            };
            if o + k >= hi || !values[o + k].is_finite() {
                continue;
            }
            let Some(history) = History::new(start, step, &values[..=o]) else { continue };
            history.features(k, &mut s.x);
            s.y.push(((values[o + k] / history.scale()) as f32).clamp(-TARGET_CLIP, TARGET_CLIP));
        }
        s
    }

    /// Both sets of rows.
    pub fn extend(&mut self, other: &Samples) {
        self.x.extend_from_slice(&other.x);
        self.y.extend_from_slice(&other.y);
    }
}

/// The network.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// `w0, b0, w1, b1, w2, b2`, flat.
    pub params: Vec<f32>,
}

fn softplus(v: f32) -> f32 {
    if v > 20.0 { v } else { v.exp().ln_1p() }
}

fn sigmoid(v: f32) -> f32 {
    0.5 * (1.0 + (0.5 * v).tanh())
}

/// Offsets of each weight and bias in the flat vector.
fn layout() -> [(usize, usize, usize, usize); 3] {
    let mut at = 0;
    let mut out = [(0, 0, 0, 0); 3];
    for (l, w) in SIZES.windows(2).enumerate() {
        out[l] = (at, at + w[0] * w[1], w[0], w[1]);
        at += w[0] * w[1] + w[1];
    }
    out
}

impl Mlp {
    /// He-initialised weights, zero biases, from a seed.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut params = Vec::with_capacity(parameter_count());
        for w in SIZES.windows(2) {
            let sd = (2.0 / w[0] as f64).sqrt();
            params.extend((0..w[0] * w[1]).map(|_| (rng.normal() * sd) as f32));
            params.extend(std::iter::repeat_n(0.0, w[1]));
        }
        Self { params }
    }

    /// Quantiles (p10, p50, p90) for each row of `x`, in units of the scale.
    pub fn predict(&self, x: &[f32]) -> Vec<[f32; 3]> {
        x.chunks(FEATURES).map(|row| self.forward(row).0).collect()
    }

    /// One row forward: quantiles, and what backward needs (clipped input, hidden acts, raw).
    fn forward(&self, row: &[f32]) -> ([f32; 3], Cache) {
        let input: Vec<f32> = row.iter().map(|v| v.clamp(-CLIP, CLIP)).collect();
        let mut acts = vec![input];
        let [l0, l1, l2] = layout();
        for &(w, b, n_in, n_out) in &[l0, l1] {
            let a = acts.last().expect("an input");
            let mut h = self.params[b..b + n_out].to_vec();
            for (i, &x) in a.iter().enumerate().take(n_in) {
                if x != 0.0 {
                    let weights = &self.params[w + i * n_out..w + (i + 1) * n_out];
                    for (hj, wj) in h.iter_mut().zip(weights) {
                        *hj += x * wj;
                    }
                }
            }
            h.iter_mut().for_each(|v| *v = v.max(0.0));
            acts.push(h);
        }
        let (w, b, n_in, n_out) = l2;
        let a = acts.last().expect("a hidden layer");
        let mut raw = [0.0f32; 3];
        for (j, r) in raw.iter_mut().enumerate().take(n_out) {
            *r = self.params[b + j] + (0..n_in).map(|i| a[i] * self.params[w + i * n_out + j]).sum::<f32>();
        }
        let x = &acts[0];
        let base = x[TWO_DAYS] + x[YESTERDAY_SEEN] * (x[YESTERDAY] - x[TWO_DAYS]);
        let p50 = base + raw[1];
        ([p50 - softplus(raw[0]), p50, p50 + softplus(raw[2])], Cache { acts, raw })
    }

    /// Mean pinball loss over rows and levels.
    pub fn loss(&self, s: &Samples) -> f64 {
        let q = self.predict(&s.x);
        let total: f64 = q.iter().zip(&s.y).map(|(q, y)| pinball(q, *y)).sum();
        total / (s.len().max(1) * 3) as f64
    }

    /// Gradient of the mean pinball loss over `rows` of `s`, added into `grad`.
    fn gradient(&self, s: &Samples, rows: &[usize], grad: &mut [f32]) {
        let [l0, l1, l2] = layout();
        let scale = 1.0 / (rows.len() * 3) as f32;
        for &r in rows {
            let (q, cache) = self.forward(&s.x[r * FEATURES..(r + 1) * FEATURES]);
            let y = s.y[r];
            let gq: [f32; 3] =
                std::array::from_fn(|i| if y > q[i] { -LEVELS[i] } else { 1.0 - LEVELS[i] } * scale);
            let raw = cache.raw;
            let mut g = vec![-gq[0] * sigmoid(raw[0]), gq.iter().sum(), gq[2] * sigmoid(raw[2])];
            for (layer, &(w, b, n_in, n_out)) in [l0, l1, l2].iter().enumerate().rev() {
                let a = &cache.acts[layer];
                for (i, &x) in a.iter().enumerate().take(n_in) {
                    if x != 0.0 {
                        for j in 0..n_out {
                            grad[w + i * n_out + j] += x * g[j];
                        }
                    }
                }
                for j in 0..n_out {
                    grad[b + j] += g[j];
                }
                if layer > 0 {
                    let mut back = vec![0.0f32; n_in];
                    for (i, bi) in back.iter_mut().enumerate() {
                        if a[i] > 0.0 {
                            *bi = (0..n_out).map(|j| g[j] * self.params[w + i * n_out + j]).sum();
                        }
                    }
                    g = back;
                }
            }
        }
    }

    /// `epochs` passes of Adam over `s` in shuffled batches of `batch`, learning rate `lr`.
    pub fn train(&mut self, s: &Samples, epochs: usize, batch: usize, lr: f32, seed: u64) {
        let mut adam = Adam::new(self.params.len());
        self.train_with(&mut adam, s, epochs, batch, lr, seed);
    }

    /// As [`Mlp::train`], continuing `adam`'s moments (a schedule over several calls).
    pub fn train_with(
        &mut self,
        adam: &mut Adam,
        s: &Samples,
        epochs: usize,
        batch: usize,
        lr: f32,
        seed: u64,
    ) {
        let n = self.params.len();
        let (beta1, beta2) = (0.9f32, 0.999f32);
        let mut rng = Rng::new(seed);
        let mut order: Vec<usize> = (0..s.len()).collect();
        let mut grad = vec![0.0f32; n];
        for _ in 0..epochs {
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            for rows in order.chunks(batch.max(1)) {
                grad.iter_mut().for_each(|g| *g = 0.0);
                self.gradient(s, rows, &mut grad);
                adam.step += 1;
                let (c1, c2) = (1.0 - beta1.powi(adam.step), 1.0 - beta2.powi(adam.step));
                for (((p, g), m), v) in self.params.iter_mut().zip(&grad).zip(&mut adam.m).zip(&mut adam.v) {
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                    *p -= lr * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
                }
            }
        }
    }
}

/// A learning rate decaying from `max` to `max / 1000` on a cosine over `n` stages (epochs,
/// or rounds), at stage `i`. The floor matters for federated rounds: each round restarts
/// Adam, whose first steps move every weight by about the learning rate whatever its
/// gradient, so a floor of `max / 20` left the last rounds' average jumping (a smooth
/// cluster's held-out MASE swung by ±15 % round to round); at `max / 1000` it settles.
pub fn cosine_lr(max: f32, i: usize, n: usize) -> f32 {
    let min = max / 1000.0;
    let t = (i as f32 + 0.5) / n.max(1) as f32;
    min + 0.5 * (max - min) * (1.0 + (std::f32::consts::PI * t).cos())
}

/// Adam's moments and step count.
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    step: i32,
}

impl Adam {
    /// Fresh moments for `n` parameters.
    pub fn new(n: usize) -> Self {
        Self { m: vec![0.0; n], v: vec![0.0; n], step: 0 }
    }
}

struct Cache {
    acts: Vec<Vec<f32>>,
    raw: [f32; 3],
}

fn pinball(q: &[f32; 3], y: f32) -> f64 {
    q.iter()
        .zip(LEVELS)
        .map(|(q, tau)| {
            let d = f64::from(y - q);
            (f64::from(tau) * d).max((f64::from(tau) - 1.0) * d)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A day-periodic series with noise, 5-minute steps.
    fn daily(days: usize, seed: u64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        (0..days * 288)
            .map(|i| 100.0 + 60.0 * (std::f64::consts::TAU * i as f64 / 288.0).sin() + 5.0 * rng.normal())
            .collect()
    }

    #[test]
    fn the_flat_vector_has_the_shipped_models_size() {
        assert_eq!(parameter_count(), 9_411);
        assert_eq!(Mlp::new(1).params.len(), 9_411);
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let values = daily(4, 3);
        let mut rng = Rng::new(5);
        let s = Samples::draw(0, 300, &values, 0, values.len(), 16, &mut rng);
        let mlp = Mlp::new(9);
        let mut grad = vec![0.0f32; mlp.params.len()];
        mlp.gradient(&s, &(0..s.len()).collect::<Vec<_>>(), &mut grad);
        // A few coordinates in every layer.
        for &i in &[0usize, 77 * 64 + 5, 4_992 + 3, 4_992 + 64 + 64 * 64 + 7, 9_411 - 2] {
            let h = 1e-2f32;
            let (mut up, mut down) = (mlp.clone(), mlp.clone());
            up.params[i] += h;
            down.params[i] -= h;
            let numeric = (up.loss(&s) - down.loss(&s)) / (2.0 * f64::from(h));
            assert!(
                (numeric - f64::from(grad[i])).abs() < 2e-3 + 0.05 * numeric.abs(),
                "param {i}: {numeric} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn training_lowers_the_loss_on_held_out_days() {
        let values = daily(8, 11);
        let mut rng = Rng::new(2);
        let split = 6 * 288;
        let train = Samples::draw(0, 300, &values, 0, split, 1_500, &mut rng);
        let test = Samples::draw(0, 300, &values, split, values.len(), 400, &mut rng);
        let mut mlp = Mlp::new(4);
        let before = mlp.loss(&test);
        mlp.train(&train, 4, 64, 2e-3, 1);
        let after = mlp.loss(&test);
        assert!(after < 0.8 * before, "{before} → {after}");
    }
}

//! LOESS and moving averages as STL uses them (Cleveland et al. 1990, and their Fortran `stl`):
//! positions are the indices 0, 1, …, values are weighted by the tricube of their distance,
//! and the fit is local constant (degree 0) or local linear (degree 1).
//!
//! ```text
//! h      = max(x − left, right − x) (+ ⌊(q − n) / 2⌋ when the window q exceeds the n values)
//! wⱼ     = (1 − (|j − x| / h)³)³ for |j − x| < h, else 0           normalised to Σ wⱼ = 1
//! ŷ(x)   = Σ wⱼ yⱼ                                                 degree 0
//! ŷ(x)   = Σ wⱼ (1 + (x − a)(j − a) / c) yⱼ,  a = Σ wⱼ j,  c = Σ wⱼ (j − a)²     degree 1
//! ```
//!
//! With a jump of k only every k-th position is fitted and the rest interpolated linearly, so a
//! smooth of n values over a window of q costs about n·q / k, not n·q.

/// How a window's values are fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Degree {
    /// A weighted mean.
    Constant,
    /// A weighted straight line.
    Linear,
}

/// One LOESS smoother: window, degree and jump.
#[derive(Debug, Clone, PartialEq)]
pub struct Loess {
    /// Values in each window, odd, at least 3.
    pub window: usize,
    /// Local fit.
    pub degree: Degree,
    /// Positions between those fitted; the rest are interpolated.
    pub jump: usize,
    /// The weights of a centred window, and their sum: every window away from the ends is
    /// centred, so they are computed once.
    kernel: Vec<f64>,
    kernel_sum: f64,
    /// Each weight times its offset from the centre, and times its square: a weighted line
    /// then needs one product per sum and value.
    kernel_offset: Vec<f64>,
    kernel_offset2: Vec<f64>,
}

/// Independent running sums a window is split over: adding into one sum waits for the last
/// addition, into four the additions overlap.
const LANES: usize = 4;

impl Loess {
    /// A smoother over `window` values (made odd and at least 3), with the jump of R's `stl`:
    /// a tenth of the window, rounded up, which changes the smooth far less than its noise.
    pub fn new(window: usize, degree: Degree) -> Self {
        let window = odd_at_least_3(window);
        let half = (window - 1) as f64 / 2.0;
        let tricube = Tricube::new(half);
        let kernel: Vec<f64> = (0..window).map(|d| tricube.weight((d as f64 - half).abs())).collect();
        let kernel_sum = kernel.iter().sum();
        let offset = |d: usize| d as f64 - half;
        let kernel_offset = kernel.iter().enumerate().map(|(d, k)| k * offset(d)).collect();
        let kernel_offset2 = kernel.iter().enumerate().map(|(d, k)| k * offset(d) * offset(d)).collect();
        Self { window, degree, jump: window.div_ceil(10), kernel, kernel_sum, kernel_offset, kernel_offset2 }
    }

    /// The same smoother fitting every `jump`-th position.
    #[cfg(test)]
    pub fn with_jump(self, jump: usize) -> Self {
        Self { jump: jump.max(1), ..self }
    }

    /// The fit at position `x` from `values[left..=right]`, each weighted also by its
    /// `reliability` (0 for a value not observed) when given, or `None` when no value in the
    /// window carries weight.
    pub fn fit_at(
        &self,
        values: &[f64],
        reliability: Option<&[f64]>,
        x: f64,
        left: usize,
        right: usize,
    ) -> Option<f64> {
        let n = values.len();
        let h = self.bandwidth(n, x, left, right);
        // Only values within the bandwidth weigh anything.
        let kernel = Tricube::new(h);
        let from = left.max((x - kernel.outer).ceil().max(0.0) as usize);
        let to = right.min((x + kernel.outer).floor().max(0.0) as usize);
        let linear = self.degree == Degree::Linear && h > 0.0;
        // Every position in range is within the outer cut-off, so only the inner one remains,
        // as a select rather than a branch.
        let tricube = |j: usize| {
            let r = (j as f64 - x).abs();
            let u = if r <= kernel.inner { 0.0 } else { r * kernel.per_h };
            let v = 1.0 - u * u * u;
            v * v * v
        };
        let len = to + 1 - from;
        let sums = match reliability {
            None => Sums::accumulate(len, |i| (tricube(from + i), (from + i) as f64 - x, values[from + i])),
            Some(r) => Sums::accumulate(len, |i| {
                let j = from + i;
                (tricube(j) * r[j], j as f64 - x, values[j])
            }),
        };
        sums.fit(linear, n)
    }

    /// The window `left..=right` that fits position `i` of `n` values: centred where it can be,
    /// against an end where it cannot, everything when the window exceeds the values.
    pub fn window_for(&self, n: usize, i: usize) -> (usize, usize) {
        let q = self.window;
        let half = q.div_ceil(2);
        if q >= n {
            (0, n - 1)
        } else if i + 1 < half {
            (0, q - 1)
        } else if i + half >= n {
            (n - q, n - 1)
        } else {
            (i + 1 - half, i + q - half)
        }
    }

    /// The tricube weights of positions `left..=right` of `n` values for a fit at `x`, into
    /// `out` (one per position).
    pub fn weights(&self, n: usize, x: f64, left: usize, right: usize, out: &mut Vec<f64>) {
        let kernel = Tricube::new(self.bandwidth(n, x, left, right));
        out.clear();
        out.extend((left..=right).map(|j| kernel.weight((j as f64 - x).abs())));
    }

    /// The bandwidth of a fit at `x` from positions `left..=right` of `n` values: the farthest
    /// of them, widened by half the window's excess over the values when it has one, so that
    /// a short series is smoothed about as much as its window asks.
    fn bandwidth(&self, n: usize, x: f64, left: usize, right: usize) -> f64 {
        let h = (x - left as f64).max(right as f64 - x);
        if self.window > n { h + ((self.window - n) / 2) as f64 } else { h }
    }

    /// The sums of a centred window of `values` weighted also by `reliability`.
    fn centred_sums(&self, values: &[f64], reliability: &[f64]) -> Sums {
        let mut lanes = [[0.0; LANES]; 5];
        let whole = values.len() / LANES * LANES;
        let mut add = |lane: usize, i: usize| {
            let (k, r, y) = (self.kernel[i], reliability[i], values[i]);
            let (kd, ry) = (self.kernel_offset[i], r * y);
            lanes[0][lane] += k * r;
            lanes[1][lane] += kd * r;
            lanes[2][lane] += self.kernel_offset2[i] * r;
            lanes[3][lane] += k * ry;
            lanes[4][lane] += kd * ry;
        };
        for start in (0..whole).step_by(LANES) {
            for lane in 0..LANES {
                add(lane, start + lane);
            }
        }
        for i in whole..values.len() {
            add(0, i);
        }
        let [w, wj, wjj, wy, wjy] = lanes.map(|l| l.iter().sum());
        Sums { w, wj, wjj, wy, wjy }
    }

    /// Smooths `values` into `out` (same length), weighting each also by its `reliability`
    /// when given; where nothing in the window carries weight the value itself stands.
    pub fn smooth(&self, values: &[f64], reliability: Option<&[f64]>, out: &mut [f64]) {
        let n = values.len();
        if n < 2 {
            out[..n].copy_from_slice(values);
            return;
        }
        let q = self.window;
        let jump = self.jump.min(n - 1);
        let linear = self.degree == Degree::Linear;
        let fit = |i: usize, out: &mut [f64]| {
            let (left, right) = self.window_for(n, i);
            let fitted = if q >= n || left + q / 2 != i {
                self.fit_at(values, reliability, i as f64, left, right)
            } else {
                // A centred window: its weights are the kernel, and a line fitted with
                // symmetric weights passes through their weighted mean.
                let window = &values[left..=right];
                match reliability {
                    None => Some(dot(&self.kernel, window) / self.kernel_sum),
                    Some(r) => self.centred_sums(window, &r[left..=right]).fit(linear, n),
                }
            };
            out[i] = fitted.unwrap_or(values[i]);
        };
        let mut i = 0;
        while i < n {
            fit(i, out);
            i += jump;
        }
        if jump > 1 {
            let mut i = 0;
            while i + jump < n {
                let delta = (out[i + jump] - out[i]) / jump as f64;
                for j in i + 1..i + jump {
                    out[j] = out[i] + delta * (j - i) as f64;
                }
                i += jump;
            }
            // `i` is the last position fitted; the end is fitted too and the rest bridged.
            if i != n - 1 {
                fit(n - 1, out);
                let delta = (out[n - 1] - out[i]) / (n - 1 - i) as f64;
                for j in i + 1..n - 1 {
                    out[j] = out[i] + delta * (j - i) as f64;
                }
            }
        }
    }
}

/// Tricube weights for one bandwidth `h`. Values at (almost) the bandwidth carry no weight,
/// those at (almost) the point full weight: the cut-offs of the reference implementation,
/// which keep the tricube from dividing by a bandwidth of zero.
struct Tricube {
    outer: f64,
    inner: f64,
    per_h: f64,
}

impl Tricube {
    fn new(h: f64) -> Self {
        Self { outer: 0.999 * h, inner: 0.001 * h, per_h: 1.0 / h }
    }

    /// The weight of a value at distance `r` from the point.
    fn weight(&self, r: f64) -> f64 {
        if r > self.outer {
            0.0
        } else if r <= self.inner {
            1.0
        } else {
            let u = r * self.per_h;
            let v = 1.0 - u * u * u;
            v * v * v
        }
    }
}

/// Weighted sums over one window, positions taken relative to the point fitted.
#[derive(Debug, Default)]
struct Sums {
    w: f64,
    wj: f64,
    wjj: f64,
    wy: f64,
    wjy: f64,
}

impl Sums {
    /// The sums over `len` values, the i-th given by `at(i)` as (weight, offset, value).
    fn accumulate(len: usize, at: impl Fn(usize) -> (f64, f64, f64)) -> Self {
        let mut lanes = [[0.0; LANES]; 5];
        let mut add = |lane: usize, i: usize| {
            let (w, offset, y) = at(i);
            let (wd, wy) = (w * offset, w * y);
            lanes[0][lane] += w;
            lanes[1][lane] += wd;
            lanes[2][lane] += wd * offset;
            lanes[3][lane] += wy;
            lanes[4][lane] += wy * offset;
        };
        let whole = len / LANES * LANES;
        for start in (0..whole).step_by(LANES) {
            for lane in 0..LANES {
                add(lane, start + lane);
            }
        }
        for i in whole..len {
            add(0, i);
        }
        let [w, wj, wjj, wy, wjy] = lanes.map(|l| l.iter().sum());
        Self { w, wj, wjj, wy, wjy }
    }

    /// The weighted mean, or with `linear` the weighted line at the point: the reference's
    /// re-weighting Σ wⱼ (1 + (x − a)(j − a) / c) yⱼ written out, with a = Σ wⱼ j and
    /// c = Σ wⱼ (j − a)² for normalised weights. `None` when nothing carries weight; `n` is
    /// the number of values smoothed, whose range sets when positions are too close together
    /// to fix a slope.
    fn fit(&self, linear: bool, n: usize) -> Option<f64> {
        if self.w <= 0.0 {
            return None;
        }
        let mean = self.wy / self.w;
        if linear {
            let centre = self.wj / self.w;
            let spread = self.wjj / self.w - centre * centre;
            if spread.max(0.0).sqrt() > 0.001 * (n as f64 - 1.0) {
                return Some(mean - centre / spread * (self.wjy / self.w - centre * mean));
            }
        }
        Some(mean)
    }
}

/// Σ aᵢ·bᵢ, over [`LANES`] running sums.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = [0.0; LANES];
    let (a_whole, a_rest) = a.split_at(a.len() / LANES * LANES);
    let (b_whole, b_rest) = b.split_at(a_whole.len());
    for (a, b) in a_whole.chunks_exact(LANES).zip(b_whole.chunks_exact(LANES)) {
        for lane in 0..LANES {
            lanes[lane] += a[lane] * b[lane];
        }
    }
    lanes.iter().sum::<f64>() + a_rest.iter().zip(b_rest).map(|(a, b)| a * b).sum::<f64>()
}

/// The smallest odd number at least `n` and at least 3.
pub fn odd_at_least_3(n: usize) -> usize {
    n.max(3) | 1
}

/// Moving averages of `window` consecutive values: `values.len() − window + 1` of them, into
/// `out`.
pub fn moving_average(values: &[f64], window: usize, out: &mut Vec<f64>) {
    out.clear();
    if window == 0 || values.len() < window {
        return;
    }
    let mut sum: f64 = values[..window].iter().sum();
    out.push(sum / window as f64);
    for i in window..values.len() {
        sum += values[i] - values[i - window];
        out.push(sum / window as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn a_local_constant_fit_weighs_by_the_tricube_of_the_distance() {
        // Five values, window 5, fitted at x = 1 from all of them: h = max(1 − 0, 4 − 1) = 3.
        // Distances 1, 0, 1, 2, 3 give tricube weights (1 − 1/27)³ = (26/27)³, 1, (26/27)³,
        // (1 − 8/27)³ = (19/27)³ and 0 (at the bandwidth).
        let values = [2.0, 4.0, 6.0, 20.0, 1000.0];
        let near = (26.0f64 / 27.0).powi(3);
        let far = (19.0f64 / 27.0).powi(3);
        let expected = (near * 2.0 + 4.0 + near * 6.0 + far * 20.0) / (1.0 + 2.0 * near + far);
        let loess = Loess::new(5, Degree::Constant).with_jump(1);
        assert_close(loess.fit_at(&values, None, 1.0, 0, 4).unwrap(), expected);
        // ≈ 5.78: the far 1000 carries no weight at all.
        assert!((expected - 5.78).abs() < 0.01, "{expected}");
    }

    #[test]
    fn a_local_linear_fit_reproduces_a_line_and_extrapolates_it() {
        // Any weights fit a straight line exactly, inside the window and beyond it.
        let values: Vec<f64> = (0..7).map(|j| 3.0 - 0.5 * j as f64).collect();
        let loess = Loess::new(7, Degree::Linear).with_jump(1);
        for x in [0.0, 2.5, 6.0, 7.0, -1.0] {
            assert_close(loess.fit_at(&values, None, x, 0, 6).unwrap(), 3.0 - 0.5 * x);
        }
    }

    #[test]
    fn a_local_linear_fit_by_hand() {
        // Values 1, 3, 2 at 0, 1, 2, fitted at x = 0 with window 3: h = 2, weights 1, (7/8)³, 0.
        // Normalised: w₀ = 1 / (1 + k), w₁ = k / (1 + k), k = 343/512. Centre a = w₁, spread
        // c = w₀·a² + w₁·(1 − a)² = w₀·w₁; the fit is Σ wⱼ (1 + (0 − a)(j − a) / c) yⱼ, which
        // for two points is the line through them: 1 + (3 − 1)·(0 − 0) = 1.
        let loess = Loess::new(3, Degree::Linear).with_jump(1);
        assert_close(loess.fit_at(&[1.0, 3.0, 2.0], None, 0.0, 0, 2).unwrap(), 1.0);
        // At x = 1 the window is symmetric (h = 1): only the centre weighs, so the fit is 3.
        assert_close(loess.fit_at(&[1.0, 3.0, 2.0], None, 1.0, 0, 2).unwrap(), 3.0);
        // The constant fit at x = 0 is the weighted mean (1 + 3k) / (1 + k).
        let k = 343.0 / 512.0;
        let constant = Loess::new(3, Degree::Constant).with_jump(1);
        assert_close(
            constant.fit_at(&[1.0, 3.0, 2.0], None, 0.0, 0, 2).unwrap(),
            (1.0 + 3.0 * k) / (1.0 + k),
        );
    }

    #[test]
    fn jumps_interpolate_between_fitted_positions_and_fit_the_end() {
        // A straight line survives any jump; a parabola is close to the full smooth (linear
        // interpolation over 5 positions misses a curvature of 0.2 by at most 0.2·5²/8).
        let line: Vec<f64> = (0..53).map(|j| 1.0 + 2.0 * j as f64).collect();
        let parabola: Vec<f64> = (0..53).map(|j| 0.1 * (j as f64 - 20.0).powi(2)).collect();
        let (mut full, mut jumped) = (vec![0.0; 53], vec![0.0; 53]);
        let exact = Loess::new(11, Degree::Linear).with_jump(1);
        let fast = exact.clone().with_jump(5);
        fast.smooth(&line, None, &mut jumped);
        line.iter().zip(&jumped).for_each(|(a, b)| assert!((a - b).abs() < 1e-9, "{a} {b}"));
        exact.smooth(&parabola, None, &mut full);
        fast.smooth(&parabola, None, &mut jumped);
        for (i, (a, b)) in full.iter().zip(&jumped).enumerate() {
            assert!((a - b).abs() < 0.7, "{i}: {a} {b}");
            if i % 5 == 0 || i == 52 {
                assert_close(*a, *b);
            }
        }
    }

    #[test]
    fn an_unreliable_value_carries_no_weight() {
        // The same fit as by hand above, with the far 20 and 1000 unobserved: the weighted
        // mean of 2, 4 and 6 alone.
        let values = [2.0, 4.0, 6.0, 20.0, 1000.0];
        let near = (26.0f64 / 27.0).powi(3);
        let loess = Loess::new(5, Degree::Constant).with_jump(1);
        let reliability = [1.0, 1.0, 1.0, 0.0, 0.0];
        let fit = loess.fit_at(&values, Some(&reliability), 1.0, 0, 4).unwrap();
        assert_close(fit, (near * 2.0 + 4.0 + near * 6.0) / (1.0 + 2.0 * near));
        // Nothing reliable in reach: no fit, and a smooth keeps the value itself.
        assert_eq!(loess.fit_at(&values, Some(&[0.0; 5]), 1.0, 0, 4), None);
        let mut out = [0.0; 5];
        loess.smooth(&values, Some(&[0.0; 5]), &mut out);
        assert_eq!(out, values);
    }

    #[test]
    fn a_window_wider_than_the_values_widens_the_bandwidth() {
        // Three values, window 7: h = 2 + ⌊(7 − 3) / 2⌋ = 4 at either end, so all three weigh.
        let loess = Loess::new(7, Degree::Constant).with_jump(1);
        let a = (1.0 - 1.0f64 / 64.0).powi(3);
        let b = (1.0 - 8.0f64 / 64.0).powi(3);
        let expected = (10.0 + a * 20.0 + b * 30.0) / (1.0 + a + b);
        assert_close(loess.fit_at(&[10.0, 20.0, 30.0], None, 0.0, 0, 2).unwrap(), expected);
    }

    #[test]
    fn moving_averages_by_hand() {
        let mut out = Vec::new();
        moving_average(&[1.0, 2.0, 6.0, 3.0, 8.0], 3, &mut out);
        assert_eq!(out, vec![3.0, 11.0 / 3.0, 17.0 / 3.0]);
        moving_average(&[1.0, 2.0], 3, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn windows_are_odd_and_at_least_three() {
        assert_eq!(odd_at_least_3(0), 3);
        assert_eq!(odd_at_least_3(4), 5);
        assert_eq!(odd_at_least_3(7), 7);
        assert_eq!(Loess::new(289, Degree::Linear).jump, 29);
    }
}

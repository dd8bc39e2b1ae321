//! The recent level: how far the latest observations sit from what the histograms expect,
//! and how much of that deviation the series' own history says will last.

/// How far the observations sat from their phases' medians, and how much of such a
/// deviation has lasted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Level {
    deviations: Vec<f64>,
    means: Vec<f64>,
}

impl Level {
    /// From each observation's deviation (NaN for gaps), oldest first, summarised over
    /// windows of `window` steps.
    pub(crate) fn measure(deviations: Vec<f64>, window: usize) -> Self {
        let means = window_means(&deviations, window);
        Self { deviations, means }
    }

    /// What to add to a target `lead` steps after the latest observation: the latest window's
    /// mean deviation, as much of it as has lasted that long before.
    pub(crate) fn correction(&self, lead: usize) -> f64 {
        match self.means.last() {
            Some(&latest) if latest != 0.0 && !latest.is_nan() => {
                latest * persistence(&self.means, &self.deviations, lead)
            }
            _ => 0.0,
        }
    }
}

/// Mean of each window of `window` observations ending at every index (gaps skipped; NaN
/// where the window holds none).
fn window_means(deviations: &[f64], window: usize) -> Vec<f64> {
    // Prefix sums of values and counts: each window's mean is then two differences.
    let mut sums = Vec::with_capacity(deviations.len() + 1);
    let mut counts = Vec::with_capacity(deviations.len() + 1);
    let (mut sum, mut count) = (0.0, 0u32);
    sums.push(sum);
    counts.push(count);
    for &d in deviations {
        if !d.is_nan() {
            sum += d;
            count += 1;
        }
        sums.push(sum);
        counts.push(count);
    }
    (1..=deviations.len())
        .map(|end| {
            let start = end.saturating_sub(window);
            let n = counts[end] - counts[start];
            if n > 0 { (sums[end] - sums[start]) / f64::from(n) } else { f64::NAN }
        })
        .collect()
}

/// The share of a window's mean deviation still there `lead` steps after the window ends:
/// the least-squares slope of the deviation `lead` steps later on the window mean, over the
/// whole history, kept within [0, 1]. A level shift that stays (a random walk, a new
/// deployment) has a slope near 1 at short leads; a daily burst that a window catches
/// starting says nothing about the hours after it, and its slope is near 0.
fn persistence(means: &[f64], deviations: &[f64], lead: usize) -> f64 {
    let (mut cross, mut square) = (0.0, 0.0);
    for (mean, later) in means.iter().zip(deviations.iter().skip(lead)) {
        if !(mean.is_nan() || later.is_nan()) {
            cross += mean * later;
            square += mean * mean;
        }
    }
    if square > 0.0 { (cross / square).clamp(0.0, 1.0) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn window_means_skip_gaps() {
        let nan = f64::NAN;
        let means = window_means(&[1.0, 3.0, nan, 5.0, nan, nan], 2);
        assert_close(means[0], 1.0);
        assert_close(means[1], 2.0);
        assert_close(means[2], 3.0);
        assert_close(means[3], 5.0);
        assert_close(means[4], 5.0);
        assert!(means[5].is_nan());
    }

    #[test]
    fn a_shift_that_stays_persists_and_noise_does_not() {
        // A level that steps up and stays: what a window sees is still there later.
        let shift: Vec<f64> = (0..100).map(|i| if i < 50 { -1.0 } else { 1.0 }).collect();
        let means = window_means(&shift, 4);
        assert!(persistence(&means, &shift, 1) > 0.9);
        // Alternating deviations: the window mean is 0 and carries nothing forward.
        let alternating: Vec<f64> = (0..100).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let means = window_means(&alternating, 2);
        assert_close(persistence(&means, &alternating, 3), 0.0);
        // Deviations that reverse are anti-persistent; the slope is kept at 0.
        let means = window_means(&alternating, 1);
        assert_close(persistence(&means, &alternating, 1), 0.0);
        // Nothing observed: nothing persists.
        assert_close(persistence(&[f64::NAN; 3], &[f64::NAN; 3], 1), 0.0);
    }

    #[test]
    fn the_latest_deviation_is_corrected_as_far_as_it_lasts() {
        // A level that rose by 10 a while ago and stayed: the slope comes out a hair above 1
        // (windows that straddle the rise see less than what followed), and is kept at 1.
        let shift: Vec<f64> = (0..200).map(|i| if i < 100 { 0.0 } else { 10.0 }).collect();
        assert_close(Level::measure(shift, 4).correction(12), 10.0);
        // Deviations that alternate leave nothing to correct.
        let alternating: Vec<f64> = (0..200).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        assert_close(Level::measure(alternating, 2).correction(5), 0.0);
    }
}

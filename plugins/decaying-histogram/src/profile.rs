//! One decaying histogram per phase of the season, read through a window of neighbouring
//! phases centred on the phase asked for.

use crate::histogram::{Buckets, Histogram, Mass};

/// A bucket weight below this is what is left of adding and then subtracting the same
/// weights, not an observation: every sample weighs far more (see `MIN_WEIGHT`).
const RESIDUE: f64 = 1e-9;

/// Most bucket cells (phases × buckets) a profile holds, 12 MiB: a WebAssembly instance's
/// memory is capped, and a fine bucket growth over many phases would otherwise outgrow it.
const MAX_CELLS: usize = 1 << 19;

/// Decaying histograms, one per phase bin, sharing one set of buckets.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    buckets: Buckets,
    bins: usize,
    /// Phase-major (`masses[phase · buckets + bucket]`): a sweep along the phases then reads
    /// whole rows.
    masses: Vec<Mass>,
    /// Observed extremes per phase.
    min: Vec<f64>,
    max: Vec<f64>,
    /// The buckets any value fell in: sweeps need not visit the others.
    used: std::ops::Range<usize>,
}

impl Profile {
    /// An empty profile of `bins` phases.
    pub(crate) fn new(buckets: Buckets, bins: usize) -> Self {
        let masses = vec![Mass::default(); buckets.len() * bins];
        let (min, max) = (vec![f64::INFINITY; bins], vec![f64::NEG_INFINITY; bins]);
        Self { buckets, bins, masses, min, max, used: 0..0 }
    }

    /// Most buckets on either side of the anchor for a profile of `bins` phases.
    pub(crate) fn most_buckets_per_side(bins: usize) -> usize {
        MAX_CELLS / (2 * bins.max(1))
    }

    /// The buckets every phase shares.
    pub(crate) fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    /// Adds `value`, observed in `phase`, with `weight`.
    pub(crate) fn add(&mut self, phase: usize, value: f64, weight: f64) {
        let j = self.buckets.index(value);
        self.used =
            if self.used.is_empty() { j..j + 1 } else { self.used.start.min(j)..self.used.end.max(j + 1) };
        let cell = &mut self.masses[phase * self.buckets.len() + j];
        *cell = cell.plus(Mass::of(value - self.buckets.span(j).0, weight));
        self.min[phase] = self.min[phase].min(value);
        self.max[phase] = self.max[phase].max(value);
    }

    /// The phases within `radius` of `phase`, cyclically (the last phase neighbours the first),
    /// each once even when the window wraps onto itself.
    fn around(&self, phase: usize, radius: usize) -> impl Iterator<Item = usize> + '_ {
        let span = (2 * radius + 1).min(self.bins);
        let first = phase + self.bins - radius.min(self.bins / 2);
        (first..first + span).map(|p| p % self.bins)
    }

    /// The buckets of `phase`.
    fn row(&self, phase: usize) -> &[Mass] {
        let len = self.buckets.len();
        &self.masses[phase * len..(phase + 1) * len]
    }

    /// The histogram of `phase` and its `radius` neighbours on either side.
    pub(crate) fn window(&self, phase: usize, radius: usize) -> Histogram {
        let mut masses = vec![Mass::default(); self.buckets.len()];
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for p in self.around(phase, radius) {
            masses.iter_mut().zip(self.row(p)).for_each(|(sum, m)| *sum = sum.plus(*m));
            (min, max) = (min.min(self.min[p]), max.max(self.max[p]));
        }
        Histogram::from_masses(masses, min, max)
    }

    /// Calls `visit` with every phase in turn and the histogram of its window, sliding the
    /// window along the cycle so that its width costs nothing.
    pub(crate) fn sweep(&self, radius: usize, mut visit: impl FnMut(usize, &Histogram)) {
        if 2 * radius + 1 >= self.bins {
            let pooled = self.window(0, radius);
            (0..self.bins).for_each(|phase| visit(phase, &pooled));
            return;
        }
        let mut running = self.window(0, radius);
        for phase in 0..self.bins {
            if phase > 0 {
                let leaving = (phase + self.bins - radius - 1) % self.bins;
                let entering = (phase + radius) % self.bins;
                let min = self.around(phase, radius).map(|p| self.min[p]).fold(f64::INFINITY, f64::min);
                let max = self.around(phase, radius).map(|p| self.max[p]).fold(f64::NEG_INFINITY, f64::max);
                let used = self.used.clone();
                let (entering, leaving) =
                    (&self.row(entering)[used.clone()], &self.row(leaving)[used.clone()]);
                running.update(min, max, |masses| {
                    for ((mass, e), l) in masses[used].iter_mut().zip(entering).zip(leaving) {
                        *mass = mass.plus(*e).minus(*l);
                        if mass.weight < RESIDUE {
                            *mass = Mass::default();
                        }
                    }
                });
            }
            visit(phase, &running);
        }
    }

    /// The median of every phase's window; NaN where the window holds nothing.
    pub(crate) fn window_medians(&self, radius: usize) -> Vec<f64> {
        let mut medians = Vec::with_capacity(self.bins);
        self.sweep(radius, |_, window| medians.push(window.quantile(&self.buckets, 0.5).unwrap_or(f64::NAN)));
        medians
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    /// Buckets 1 wide from 0 (growth so small that they stay about 1 wide up to 10).
    fn unit_buckets() -> Buckets {
        Buckets::new(0.0, 1.0, 0.001, 10.0, 100)
    }

    #[test]
    fn a_window_pools_its_neighbours_and_wraps_around_the_cycle() {
        let mut profile = Profile::new(unit_buckets(), 6);
        for (phase, value) in [(0, 0.5), (1, 1.5), (2, 2.5), (3, 3.5), (4, 4.5), (5, 5.5)] {
            profile.add(phase, value, 1.0);
        }
        // Phase 0 with one neighbour each side: phases 5, 0 and 1.
        let window = profile.window(0, 1);
        assert_close(window.total(), 3.0);
        // Halfway through the bucket [1, 2.001) that holds 1.5.
        assert!((window.quantile(profile.buckets(), 0.5).unwrap() - 1.5).abs() < 1e-3);
        assert_close(window.quantile(profile.buckets(), 0.01).unwrap(), 0.5);
        assert_close(window.quantile(profile.buckets(), 0.99).unwrap(), 5.5);
        // A window wider than the cycle holds every phase once.
        assert_close(profile.window(2, 10).total(), 6.0);
    }

    #[test]
    fn sliding_medians_match_windows_built_from_scratch() {
        let mut profile = Profile::new(unit_buckets(), 12);
        for phase in 0..12 {
            for day in 0..3 {
                let value = (phase as f64 * 0.7 + day as f64 * 1.3) % 9.0;
                profile.add(phase, value, 0.5f64.powi(day));
            }
        }
        // Phase 7 never observed anything; its window still has neighbours.
        let mut sparse = Profile::new(unit_buckets(), 12);
        sparse.add(6, 4.0, 1.0);
        for (p, radius) in [(&profile, 2), (&sparse, 0), (&sparse, 1)] {
            let medians = p.window_medians(radius);
            for (phase, median) in medians.iter().enumerate() {
                let expected = p.window(phase, radius).quantile(p.buckets(), 0.5).unwrap_or(f64::NAN);
                assert!(
                    (median - expected).abs() < 1e-9 || (median.is_nan() && expected.is_nan()),
                    "phase {phase}: {median} vs {expected}"
                );
            }
        }
        assert!(sparse.window_medians(0)[7].is_nan());
        assert_close(sparse.window_medians(1)[7], 4.0);
    }
}

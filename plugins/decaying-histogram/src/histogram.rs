//! The decaying histogram: exponentially growing buckets and weights that halve every
//! half-life, as in the Kubernetes VPA recommender (`pkg/recommender/util/histogram*.go`).

/// Weight of a sample `age_s` seconds old when weights halve every `half_life_s` seconds.
pub(crate) fn decay_weight(age_s: f64, half_life_s: f64) -> f64 {
    libm::exp2(-age_s / half_life_s)
}

/// log₂ of `x` ≥ 1 to within 0.01: the exponent's bits plus a parabola through the
/// mantissa's logarithm at 1, 1.5 and 2.
fn approx_log2(x: f64) -> f64 {
    if !x.is_finite() {
        return f64::MAX;
    }
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as f64 - 1023.0;
    let m = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52)) - 1.0;
    exponent + m * (1.339_850_002_884_624_8 - 0.339_850_002_884_624_8 * m)
}

/// Exponentially growing bucket boundaries, mirrored on both sides of an anchor.
///
/// On each side, bucket `k` starts `first · (growthᵏ − 1) / (growth − 1)` from the anchor and
/// is `growth` times as wide as bucket `k − 1`: VPA's scheme, which anchors at 0. Anchoring at
/// the series' recent median instead keeps the narrow buckets where the weight is, so a series
/// that varies by 1 % around a level of 10⁶ is resolved as finely as one around 0.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Buckets {
    anchor: f64,
    /// `widening / first`: maps a distance from the anchor to `growthᵏ − 1`.
    scale: f64,
    /// `1 / log₂(growth)`.
    per_octave: f64,
    per_side: usize,
    /// `2 · per_side + 1` ascending boundaries: bucket `j` spans `edges[j]..edges[j + 1]`.
    edges: Vec<f64>,
}

impl Buckets {
    /// Buckets around `anchor` whose first is `first` wide (> 0), each `1 + widening` times as
    /// wide as the one before (`widening` > 0), enough of them to reach `reach` from the anchor
    /// but no more than `most` on either side: values further out share the outermost bucket,
    /// as VPA's do beyond its `maxValue`.
    pub(crate) fn new(anchor: f64, first: f64, widening: f64, reach: f64, most: usize) -> Self {
        let ln_growth = libm::log1p(widening);
        // VPA's count: the last bucket starts at or beyond the furthest value.
        let needed = libm::ceil(libm::log1p(reach.max(0.0) * widening / first) / ln_growth) + 1.0;
        let per_side = if needed.is_finite() { (needed as usize).clamp(1, most.max(1)) } else { 1 };
        let offset = |k: usize| first * libm::expm1(k as f64 * ln_growth) / widening;
        let mut edges: Vec<f64> = (1..=per_side).rev().map(|k| anchor - offset(k)).collect();
        edges.extend((0..=per_side).map(|k| anchor + offset(k)));
        Self {
            anchor,
            scale: widening / first,
            per_octave: 1.0 / libm::log2(1.0 + widening),
            per_side,
            edges,
        }
    }

    /// Number of buckets (both sides).
    pub(crate) fn len(&self) -> usize {
        2 * self.per_side
    }

    /// The bucket `value` falls in; values beyond the outermost buckets land in them.
    pub(crate) fn index(&self, value: f64) -> usize {
        // Inverting the boundaries takes a logarithm per value, the hot spot of a long
        // history; an approximate one lands within a bucket or two of the right one, and the
        // boundaries themselves settle the rest exactly.
        let distance = value - self.anchor;
        let k = (approx_log2(1.0 + distance.abs() * self.scale) * self.per_octave) as usize;
        let k = k.min(self.per_side - 1);
        let mut j = if distance >= 0.0 { self.per_side + k } else { self.per_side - 1 - k };
        while j > 0 && value < self.edges[j] {
            j -= 1;
        }
        while j + 1 < self.len() && value >= self.edges[j + 1] {
            j += 1;
        }
        j
    }

    /// Lower and upper boundary of bucket `j`.
    pub(crate) fn span(&self, j: usize) -> (f64, f64) {
        (self.edges[j], self.edges[j + 1])
    }
}

/// What one bucket holds: the weight of its values and their first two moments, measured
/// from the bucket's start so that a bucket far from 0 keeps its precision.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Mass {
    /// Sum of the weights.
    pub(crate) weight: f64,
    /// Sum of weight × offset from the bucket's start.
    sum: f64,
    /// Sum of weight × offset².
    squares: f64,
}

impl Mass {
    /// `weight` of a value `offset` past its bucket's start.
    pub(crate) fn of(offset: f64, weight: f64) -> Self {
        Self { weight, sum: weight * offset, squares: weight * offset * offset }
    }

    /// Both masses together.
    pub(crate) fn plus(self, other: Mass) -> Self {
        Self {
            weight: self.weight + other.weight,
            sum: self.sum + other.sum,
            squares: self.squares + other.squares,
        }
    }

    /// `other` taken back out.
    pub(crate) fn minus(self, other: Mass) -> Self {
        Self {
            weight: self.weight - other.weight,
            sum: self.sum - other.sum,
            squares: self.squares - other.squares,
        }
    }
}

/// Weighted values in [`Buckets`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Histogram {
    masses: Vec<Mass>,
    total: f64,
    /// Observed extremes: the outermost buckets are wide, and a quantile read in one should
    /// not land beyond any value ever seen.
    min: f64,
    max: f64,
}

impl Histogram {
    /// An empty histogram over `len` buckets.
    #[cfg(test)]
    pub(crate) fn new(len: usize) -> Self {
        Self::from_masses(vec![Mass::default(); len], f64::INFINITY, f64::NEG_INFINITY)
    }

    /// A histogram with these bucket masses and observed extremes.
    pub(crate) fn from_masses(masses: Vec<Mass>, min: f64, max: f64) -> Self {
        let total = masses.iter().map(|m| m.weight).sum();
        Self { masses, total, min, max }
    }

    /// Adds `value` with `weight` (> 0).
    #[cfg(test)]
    pub(crate) fn add(&mut self, buckets: &Buckets, value: f64, weight: f64) {
        let j = buckets.index(value);
        self.masses[j] = self.masses[j].plus(Mass::of(value - buckets.span(j).0, weight));
        self.total += weight;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Sum of the weights added.
    #[cfg(test)]
    pub(crate) fn total(&self) -> f64 {
        self.total
    }

    /// Rewrites the bucket masses in place (the total follows) and sets the observed extremes.
    pub(crate) fn update(&mut self, min: f64, max: f64, rewrite: impl FnOnce(&mut [Mass])) {
        rewrite(&mut self.masses);
        self.total = self.masses.iter().map(|m| m.weight).sum();
        (self.min, self.max) = (min, max);
    }

    /// The value below which a fraction `level` of the weight lies, kept within the values
    /// seen; `None` when the histogram is empty.
    ///
    /// Within the bucket where the level falls, the bucket's weight is spread evenly over an
    /// interval with the mean and variance of its values. VPA answers with the bucket's upper
    /// boundary, which suits a resource request but would bias a forecast upwards by up to a
    /// bucket; spreading over the whole bucket would turn a series that sits at exactly 0 most
    /// of the time into a band that misses 0.
    pub(crate) fn quantile(&self, buckets: &Buckets, level: f64) -> Option<f64> {
        if self.total <= 0.0 {
            return None;
        }
        let target = level * self.total;
        let mut below = 0.0;
        for (j, mass) in self.masses.iter().enumerate() {
            if mass.weight <= 0.0 {
                continue;
            }
            if below + mass.weight >= target {
                let (start, width) = spread(buckets, j, mass);
                let fraction = ((target - below) / mass.weight).clamp(0.0, 1.0);
                return Some((start + width * fraction).clamp(self.min, self.max));
            }
            below += mass.weight;
        }
        // Rounding left `target` a hair above the sum.
        Some(self.max)
    }
}

/// Where bucket `j`'s weight is taken to lie: start and width of the interval over which an
/// even spread has the bucket's mean and variance, cut to fit in the bucket. A bucket that
/// holds one value (or many equal ones) is that value; one evenly filled is the whole bucket.
fn spread(buckets: &Buckets, j: usize, mass: &Mass) -> (f64, f64) {
    let (start, end) = buckets.span(j);
    let mean = mass.sum / mass.weight;
    let square = mass.squares / mass.weight;
    // What rounding leaves of equal values' variance is no spread.
    let variance = square - mean * mean;
    let variance = if variance > 1e-12 * square { variance } else { 0.0 };
    let mean = (start + mean).clamp(start, end);
    // An even spread of width w has variance w² / 12.
    let half = (3.0 * variance).sqrt().min(mean - start).min(end - mean);
    (mean - half, 2.0 * half)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn boundaries_grow_geometrically_from_the_anchor() {
        // First bucket 1 wide, each next one twice as wide: buckets start 0, 1, 3, 7, 15 from
        // the anchor, and the last one must start at or beyond the reach of 10.
        let b = Buckets::new(100.0, 1.0, 1.0, 10.0, 100);
        assert_eq!(b.len(), 10);
        let expected = [
            (69.0, 85.0),
            (85.0, 93.0),
            (93.0, 97.0),
            (97.0, 99.0),
            (99.0, 100.0),
            (100.0, 101.0),
            (101.0, 103.0),
            (103.0, 107.0),
            (107.0, 115.0),
            (115.0, 131.0),
        ];
        for (j, (start, end)) in expected.into_iter().enumerate() {
            assert_close(b.span(j).0, start);
            assert_close(b.span(j).1, end);
        }
    }

    #[test]
    fn vpa_growth_of_five_percent() {
        // VPA's CPU scheme: first bucket 0.01 core, 5 % growth; bucket 10 starts at
        // 0.01 · (1.05¹⁰ − 1) / 0.05.
        let b = Buckets::new(0.0, 0.01, 0.05, 1000.0, 1000);
        let start = 0.01 * (1.05f64.powi(10) - 1.0) / 0.05;
        assert_close(b.span(b.len() / 2 + 10).0, start);
        assert_close(b.span(b.len() / 2 + 10).1 - start, 0.01 * 1.05f64.powi(10));
        // VPA's bucket count for this range: ⌈log₁.₀₅(1000 · 0.05 / 0.01 + 1)⌉ + 1 = 176.
        assert_eq!(b.len() / 2, 176);
    }

    #[test]
    fn values_find_their_bucket_on_both_sides() {
        let b = Buckets::new(100.0, 1.0, 1.0, 10.0, 100);
        assert_eq!(b.index(100.0), 5);
        assert_eq!(b.index(100.5), 5);
        assert_eq!(b.index(102.0), 6);
        assert_eq!(b.index(110.0), 8);
        assert_eq!(b.index(99.5), 4);
        assert_eq!(b.index(98.0), 3);
        assert_eq!(b.index(90.0), 1);
        // Beyond the outermost buckets: clamped, as in VPA.
        assert_eq!(b.index(1e9), 9);
        assert_eq!(b.index(-1e9), 0);
        // Capped at three a side: 110 lands in the outermost bucket, [103, 107).
        let capped = Buckets::new(100.0, 1.0, 1.0, 10.0, 3);
        assert_eq!(capped.len(), 6);
        assert_eq!(capped.index(110.0), 5);
        assert_eq!(capped.span(5), (103.0, 107.0));
    }

    #[test]
    fn the_approximate_logarithm_is_close_and_the_index_exact() {
        for x in [1.0, 1.3, 1.5, 2.0, 3.7, 1e3, 1e300] {
            assert!((approx_log2(x) - x.log2()).abs() < 0.01, "{x}");
        }
        // Every value lands between its bucket's boundaries, however close to one it is.
        let b = Buckets::new(-3.0, 0.01, 0.05, 500.0, 1000);
        for j in 1..b.len() - 1 {
            let (start, end) = b.span(j);
            for value in
                [start, start + (end - start) * 1e-9, (start + end) / 2.0, end - (end - start) * 1e-9]
            {
                assert_eq!(b.index(value), j, "{value} in [{start}, {end})");
            }
        }
    }

    #[test]
    fn one_half_life_halves_a_weight() {
        assert_close(decay_weight(0.0, 86_400.0), 1.0);
        assert_close(decay_weight(86_400.0, 86_400.0), 0.5);
        assert_close(decay_weight(3.0 * 3600.0, 3600.0), 0.125);
    }

    #[test]
    fn quantiles_of_a_known_weighted_histogram() {
        // Buckets from 0: [0, 1), [1, 3), [3, 7), [7, 15).
        let b = Buckets::new(0.0, 1.0, 1.0, 10.0, 100);
        let mut h = Histogram::new(b.len());
        assert_eq!(h.quantile(&b, 0.5), None);
        // Weight 1 each at 0.5, 2.0 (a sample of weight 2, one half-life old), 4.0 and 6.0.
        h.add(&b, 0.5, 1.0);
        h.add(&b, 2.0, 2.0 * decay_weight(86_400.0, 86_400.0));
        h.add(&b, 4.0, 1.0);
        h.add(&b, 6.0, 1.0);
        assert_close(h.total(), 4.0);
        // A bucket holding a single value is that value, whatever share of it the level needs.
        assert_close(h.quantile(&b, 0.1).unwrap(), 0.5);
        assert_close(h.quantile(&b, 0.25).unwrap(), 0.5);
        assert_close(h.quantile(&b, 0.375).unwrap(), 2.0);
        assert_close(h.quantile(&b, 0.5).unwrap(), 2.0);
        // [3, 7) holds 4 and 6: mean 5, variance 1, spread evenly over 5 ± √3.
        assert_close(h.quantile(&b, 0.75).unwrap(), 5.0);
        assert_close(h.quantile(&b, 0.625).unwrap(), 5.0 - 3f64.sqrt() / 2.0);
        // 5 + 0.8 · √3 would pass 6.0, and nothing above 6.0 was ever seen.
        assert_close(h.quantile(&b, 0.95).unwrap(), 6.0);
    }

    #[test]
    fn a_bucket_spreads_its_weight_as_its_values_do() {
        let b = Buckets::new(0.0, 1.0, 1.0, 10.0, 100);
        // Mostly exactly 0, now and then 10: every level reads one of the two.
        let mut h = Histogram::new(b.len());
        h.add(&b, 0.0, 9.0);
        h.add(&b, 10.0, 1.0);
        assert_close(h.quantile(&b, 0.1).unwrap(), 0.0);
        assert_close(h.quantile(&b, 0.85).unwrap(), 0.0);
        assert_close(h.quantile(&b, 0.95).unwrap(), 10.0);
        // Eight values evenly over [3, 7): the spread is almost the whole bucket, 5 ± 1.98.
        let mut h = Histogram::new(b.len());
        (0..8).for_each(|i| h.add(&b, 3.25 + 0.5 * f64::from(i), 1.0));
        let half = (3.0f64 * 63.0 / 12.0 * 0.25).sqrt();
        assert_close(h.quantile(&b, 0.5).unwrap(), 5.0);
        assert_close(h.quantile(&b, 0.25).unwrap(), 5.0 - half / 2.0);
        // Far from 0 a bucket keeps its precision: 10⁹ + 0.5 and 10⁹ + 1.5 average exactly.
        let far = Buckets::new(1e9, 1.0, 0.05, 10.0, 100);
        let mut h = Histogram::new(far.len());
        h.add(&far, 1e9 + 1.25, 1.0);
        h.add(&far, 1e9 + 1.75, 1.0);
        assert_close(h.quantile(&far, 0.5).unwrap(), 1e9 + 1.5);
    }
}

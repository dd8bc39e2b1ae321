//! The rules a series may be forecast by, and the backtest that picks one per lead time.
//!
//! A rule repeats a past value — a season back (one season, or the configured blend of all of
//! them), or the last observation — optionally **shifted by the change in level** since then:
//!
//! ```text
//! ŷ(T) = y[T − k·p] + α · (L_w(o) − L_w(o − k·p))      o = T − h, the forecast's origin
//! ```
//!
//! where `L_w(i)` is the mean of the `w` observations up to `i`. With `α = 0` this is the plain
//! seasonal naive; with `α = 1` it keeps today's offset from the season (a seasonal random walk
//! when `w = 1`), which is what a series whose level wanders needs a few hours ahead. Which one
//! a series needs is the series' own business, so every rule is backtested on its latest
//! observations at the very lead asked for, and the one with the least mean absolute error
//! serves. The one-day seasonal naive is always among them, so in-sample the choice is never
//! worse than it.

/// Standard errors by which a rule must beat the reference to replace it.
const Z: f64 = 2.0;

/// Marks "no observation" in a look-back table.
pub const NONE: usize = usize::MAX;

/// One season as it applies to one series.
pub struct Lag {
    /// Season length in steps, at least 1.
    pub period: usize,
    /// Relative weight in the blend.
    pub weight: f64,
    /// For each index, the latest index at the same phase (a whole number of periods back,
    /// possibly none) that is not a gap, or [`NONE`]. Built once in O(n) so that skipping gaps
    /// costs nothing per lookup.
    latest: Vec<usize>,
}

impl Lag {
    pub fn new(values: &[f64], period: usize, weight: f64) -> Self {
        let mut latest = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let found = if v.is_nan() { i.checked_sub(period).map_or(NONE, |j| latest[j]) } else { i };
            latest.push(found);
        }
        Self { period, weight, latest }
    }

    /// How far back from the target a forecast `h` steps ahead must look: the fewest whole
    /// seasons that land in the history it was made from.
    pub fn reach(&self, h: u64) -> Option<u64> {
        let period = self.period as u64;
        h.div_ceil(period).checked_mul(period)
    }

    /// The index whose value this season repeats for `target` in a forecast made `h` steps
    /// earlier.
    fn source(&self, target: u64, h: u64) -> Option<usize> {
        let from = target.checked_sub(self.reach(h)?)?;
        let found = *self.latest.get(usize::try_from(from).ok()?)?;
        (found != NONE).then_some(found)
    }
}

/// Prefix sums of a series' observations, for the mean of any window in O(1).
struct Levels {
    sum: Vec<f64>,
    count: Vec<u32>,
}

impl Levels {
    fn new(values: &[f64]) -> Self {
        let (mut sum, mut count) = (vec![0.0], vec![0]);
        for v in values {
            let seen = !v.is_nan();
            sum.push(sum.last().copied().unwrap_or(0.0) + if seen { *v } else { 0.0 });
            count.push(count.last().copied().unwrap_or(0) + u32::from(seen));
        }
        Self { sum, count }
    }

    /// Mean of the observations among the `window` indices ending at `i`.
    fn mean(&self, i: usize, window: usize) -> Option<f64> {
        let hi = i + 1;
        let lo = hi.saturating_sub(window);
        let n = self.count.get(hi)? - self.count[lo];
        (n > 0).then(|| (self.sum[hi] - self.sum[lo]) / f64::from(n))
    }
}

/// What a rule repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Base {
    /// The weighted mean of every season's value.
    Blend,
    /// One season's value (by index into the series' seasons).
    Season(usize),
    /// The last observation before the origin.
    Last,
}

/// How far a rule follows the change in level since the value it repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    /// Steps averaged for each level.
    pub window: usize,
    /// Share of the change carried over.
    pub alpha: f64,
}

/// One way to forecast a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub base: Base,
    pub shift: Option<Shift>,
}

/// A series with its seasons, ready to forecast by any rule.
pub struct Context<'a> {
    values: &'a [f64],
    lags: Vec<Lag>,
    last: Lag,
    levels: Levels,
}

impl<'a> Context<'a> {
    /// `lags` are the seasons that apply to the series (none: only the last value does).
    pub fn new(values: &'a [f64], lags: Vec<Lag>) -> Self {
        Self { values, last: Lag::new(values, 1, 1.0), levels: Levels::new(values), lags }
    }

    /// The one rule of the plain seasonal naive: the blend of every season (the season, with
    /// one; the last observation, with none).
    pub fn plain(&self) -> Rule {
        let base = match self.lags.len() {
            0 => Base::Last,
            1 => Base::Season(0),
            _ => Base::Blend,
        };
        Rule { base, shift: None }
    }

    /// Every rule for this series, the reference first: each season (the first configured is
    /// the reference) and the blend, each also shifted by the last step's change and by the
    /// last `level_window` steps' (fully and half), and the last observation.
    pub fn rules(&self, level_window: usize) -> Vec<Rule> {
        let last = Rule { base: Base::Last, shift: None };
        if self.lags.is_empty() {
            return vec![last];
        }
        let mut bases: Vec<Base> = (0..self.lags.len()).map(Base::Season).collect();
        if self.lags.len() > 1 {
            bases.push(Base::Blend);
        }
        let mut shifts = vec![None, Some(Shift { window: 1, alpha: 1.0 })];
        if level_window > 1 {
            shifts.push(Some(Shift { window: level_window, alpha: 1.0 }));
        }
        shifts.push(Some(Shift { window: level_window.max(1), alpha: 0.5 }));
        let mut rules: Vec<Rule> =
            shifts.iter().flat_map(|&shift| bases.iter().map(move |&base| Rule { base, shift })).collect();
        rules.push(last);
        rules
    }

    /// What `rule` forecasts for index `target` from an origin `h` steps earlier.
    pub fn predict(&self, rule: &Rule, target: u64, h: u64) -> Option<f64> {
        match rule.base {
            Base::Last => self.last.source(target, h).map(|i| self.values[i]),
            Base::Season(k) => self.repeat(&self.lags[k], rule.shift, target, h),
            Base::Blend => {
                let (mut sum, mut weight) = (0.0, 0.0);
                for lag in &self.lags {
                    if let Some(value) = self.repeat(lag, rule.shift, target, h) {
                        sum += lag.weight * value;
                        weight += lag.weight;
                    }
                }
                (weight > 0.0).then(|| sum / weight)
            }
        }
    }

    fn repeat(&self, lag: &Lag, shift: Option<Shift>, target: u64, h: u64) -> Option<f64> {
        let found = lag.source(target, h)?;
        let value = self.values[found];
        let Some(shift) = shift else { return Some(value) };
        // The origin, and the index as far before the repeated value as the origin is before
        // the target.
        let origin = usize::try_from(target.checked_sub(h)?).ok()?;
        let before = found.checked_sub(usize::try_from(h).ok()?);
        let change = match (
            self.levels.mean(origin, shift.window),
            before.and_then(|b| self.levels.mean(b, shift.window)),
        ) {
            (Some(now), Some(then)) => now - then,
            _ => 0.0,
        };
        Some(value + shift.alpha * change)
    }

    /// The rule that forecasts lead `h`: the first of `rules` (the reference) unless another
    /// has had a clearly smaller absolute error on the latest `points` observations the
    /// reference forecasts — then the one with the smallest.
    ///
    /// "Clearly" is a Diebold–Mariano test on the paired differences of absolute errors: their
    /// mean must be below zero by [`Z`] standard errors. Forecasts `h` steps ahead made a step
    /// apart share `h − 1` steps of their errors, so the differences count as `n / h`
    /// independent ones: a day-ahead rule needs many days of evidence before it displaces the
    /// reference, a minute-ahead one a few hours. A rule that forecasts fewer than
    /// `min_points` of those observations is not considered.
    pub fn choose(&self, rules: &[Rule], h: u64, points: usize, min_points: usize) -> Rule {
        let reference = rules[0];
        let targets: Vec<(u64, f64, f64)> = self
            .scored(&reference, h)
            .take(points)
            .map(|(t, actual, predicted)| (t, actual, (actual - predicted).abs()))
            .collect();
        let mut best = (reference, 0.0);
        for rule in &rules[1..] {
            let (mut sum, mut squares, mut n) = (0.0, 0.0, 0usize);
            for &(t, actual, error) in &targets {
                if let Some(predicted) = self.predict(rule, t, h) {
                    let d = (actual - predicted).abs() - error;
                    sum += d;
                    squares += d * d;
                    n += 1;
                }
            }
            if n < min_points.max(2) {
                continue;
            }
            let mean = sum / n as f64;
            let variance = (squares / n as f64 - mean * mean).max(0.0);
            let independent = (n as f64 / (h as f64).min(n as f64)).max(1.0);
            if mean + Z * (variance / independent).sqrt() < 0.0 && mean < best.1 {
                best = (*rule, mean);
            }
        }
        best.0
    }

    /// In-sample residuals of `rule` at lead `h` for the latest `max` observations, into `out`.
    pub fn residuals(&self, rule: &Rule, h: u64, max: usize, out: &mut Vec<f64>) {
        out.clear();
        out.extend(self.scored(rule, h).take(max).map(|(_, actual, predicted)| actual - predicted));
    }

    /// What decides `rule`'s in-sample forecasts at lead `h`: leads with the same key have the
    /// very same residuals. A plain season looks back whole seasons, so every lead within one
    /// season shares them; a shifted rule or the last value depends on the lead itself.
    pub fn residuals_key(&self, rule: &Rule, h: u64) -> (Rule, Vec<Option<u64>>) {
        let reaches = match (rule.base, rule.shift) {
            (Base::Season(k), None) => vec![self.lags[k].reach(h)],
            (Base::Blend, None) => self.lags.iter().map(|lag| lag.reach(h)).collect(),
            _ => vec![Some(h)],
        };
        (*rule, reaches)
    }

    /// Newest first, every observation `rule` forecasts at lead `h`: its index, what was
    /// observed and what the rule said.
    fn scored<'s>(&'s self, rule: &'s Rule, h: u64) -> impl Iterator<Item = (u64, f64, f64)> + 's {
        (0..self.values.len() as u64).rev().filter_map(move |t| {
            let actual = self.values[t as usize];
            if actual.is_nan() {
                return None;
            }
            self.predict(rule, t, h).map(|predicted| (t, actual, predicted))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_season_carries_the_change_in_level() {
        // Two days of a flat day at 10, then the level steps up by 5 an hour before the end.
        let mut values = vec![10.0; 48];
        values[47] = 15.0;
        let context = Context::new(&values, vec![Lag::new(&values, 24, 1.0)]);
        let plain = Rule { base: Base::Season(0), shift: None };
        let shifted = Rule { base: Base::Season(0), shift: Some(Shift { window: 1, alpha: 1.0 }) };
        let half = Rule { base: Base::Season(0), shift: Some(Shift { window: 4, alpha: 0.5 }) };
        assert_eq!(context.predict(&plain, 49, 2), Some(10.0));
        assert_eq!(context.predict(&shifted, 49, 2), Some(15.0));
        // Over the last four steps the level rose by 5/4; half of it is carried.
        assert_eq!(context.predict(&half, 49, 2), Some(10.625));
        assert_eq!(context.predict(&Rule { base: Base::Last, shift: None }, 49, 2), Some(15.0));
    }

    #[test]
    fn levels_skip_gaps_and_know_nothing_of_an_all_gap_window() {
        let values = [1.0, f64::NAN, 3.0, f64::NAN];
        let levels = Levels::new(&values);
        assert_eq!(levels.mean(2, 3), Some(2.0));
        assert_eq!(levels.mean(3, 1), None);
        assert_eq!(levels.mean(9, 1), None);
    }

    #[test]
    fn the_backtest_picks_the_rule_the_series_follows() {
        // A daily shape on a level that climbs one unit a day: a shifted season follows it, the
        // plain one is a day behind.
        let values: Vec<f64> =
            (0..10 * 24).map(|i| (i / 24) as f64 + [0.0, 5.0][(i % 24 >= 12) as usize]).collect();
        let context = Context::new(&values, vec![Lag::new(&values, 24, 1.0)]);
        let rules = context.rules(6);
        assert_eq!(rules[0], Rule { base: Base::Season(0), shift: None });
        assert_eq!(rules.len(), 5);
        let chosen = context.choose(&rules, 1, 100, 10);
        assert!(chosen.shift.is_some(), "{chosen:?}");
        // A pure daily pattern: the plain season is exact, and ties go to it.
        let flat: Vec<f64> = (0..5 * 24).map(|i| (i % 24) as f64).collect();
        let context = Context::new(&flat, vec![Lag::new(&flat, 24, 1.0)]);
        assert_eq!(context.choose(&context.rules(6), 3, 100, 10), rules[0]);
        // No season: only the last value.
        let short = [1.0, 2.0];
        assert_eq!(Context::new(&short, vec![]).rules(6), vec![Rule { base: Base::Last, shift: None }]);
    }
}

//! Phases of the season: which histogram a point in time belongs to.

/// A season cut into equal bins of wall-clock time, counted from the Unix epoch so that bin
/// 0 of a daily season always starts at midnight UTC, whatever the series' start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Phases {
    season_s: i64,
    bins: usize,
}

impl Phases {
    /// `bins` per season of `season_s` seconds, but no more bins than the season holds steps of
    /// `step_s`: a bin no observation can fall in would never learn anything. A series whose
    /// step is as long as the season (daily values, daily season) gets one bin, a single
    /// decaying histogram as in VPA.
    pub(crate) fn new(season_s: u32, bins: u32, step_s: u32) -> Self {
        let bins = bins.min(season_s / step_s.max(1)).max(1);
        Self { season_s: i64::from(season_s.max(1)), bins: bins as usize }
    }

    /// Number of bins.
    pub(crate) fn count(&self) -> usize {
        self.bins
    }

    /// Season length in seconds.
    pub(crate) fn season_s(&self) -> i64 {
        self.season_s
    }

    /// The bins of `len` times `step_s` apart from `start`: [`Self::of`] for each, without
    /// its two divisions per time, the dearest part of walking a long history.
    pub(crate) fn sequence(&self, start: i64, step_s: u32, len: usize) -> Vec<usize> {
        // Bin `p` starts `⌈p · season / bins⌉` seconds into the season.
        let starts: Vec<i64> = (0..=self.bins as i64)
            .map(|p| (p * self.season_s + self.bins as i64 - 1) / self.bins as i64)
            .collect();
        let step = i64::from(step_s) % self.season_s;
        let mut into = start.rem_euclid(self.season_s);
        let mut bin = self.of(start);
        let mut bins = Vec::with_capacity(len);
        for _ in 0..len {
            bins.push(bin);
            into += step;
            if into >= self.season_s {
                into -= self.season_s;
                bin = 0;
            }
            while into >= starts[bin + 1] {
                bin += 1;
            }
        }
        bins
    }

    /// The bin Unix time `t` falls in.
    pub(crate) fn of(&self, t: i64) -> usize {
        // Below 2³² · 2016 < 2⁶³: no overflow.
        (t.rem_euclid(self.season_s) * self.bins as i64 / self.season_s) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;
    const DAY: i64 = 24 * HOUR;

    #[test]
    fn hourly_bins_of_a_day_follow_the_clock() {
        let p = Phases::new(86_400, 24, 300);
        assert_eq!(p.count(), 24);
        assert_eq!(p.of(0), 0);
        assert_eq!(p.of(HOUR - 1), 0);
        assert_eq!(p.of(HOUR), 1);
        // 2023-11-14 22:13:20 UTC.
        assert_eq!(p.of(1_700_000_000), 22);
        // Ten days later, same time of day.
        assert_eq!(p.of(1_700_000_000 + 10 * DAY), 22);
        // Before 1970 the phase still counts from midnight.
        assert_eq!(p.of(-1), 23);
        assert_eq!(p.of(-DAY + 30 * 60), 0);
    }

    #[test]
    fn bins_never_outnumber_the_steps_of_a_season() {
        assert_eq!(Phases::new(86_400, 24, 3600).count(), 24);
        assert_eq!(Phases::new(86_400, 96, 3600).count(), 24);
        assert_eq!(Phases::new(86_400, 24, 4 * 3600).count(), 6);
        // Daily values with a daily season: one histogram, no phase.
        let daily = Phases::new(86_400, 24, 86_400);
        assert_eq!(daily.count(), 1);
        assert_eq!(daily.of(12 * HOUR), 0);
        assert_eq!(Phases::new(86_400, 24, 7 * 86_400).count(), 1);
    }

    #[test]
    fn sequences_agree_with_bins_time_by_time() {
        for (season, bins, step, start) in [
            (86_400, 288, 300, 1_700_000_123),
            (86_400, 144, 300, -7_777),
            (86_400, 24, 3600, 0),
            (86_400, 7, 600, 5),
            (86_400, 1, 86_400, 1_700_000_000),
            (86_400, 24, 7 * 86_400 + 3600, 42),
            (604_800, 168, 420, 13),
        ] {
            let p = Phases::new(season, bins, step);
            let expected: Vec<usize> = (0..5000).map(|i| p.of(start + i as i64 * i64::from(step))).collect();
            assert_eq!(p.sequence(start, step, 5000), expected, "{season} {bins} {step} {start}");
        }
    }

    #[test]
    fn a_weekly_season_separates_the_days() {
        let p = Phases::new(7 * 86_400, 7, 3600);
        // 1970-01-01 was a Thursday: bin 0 starts on Thursdays, Monday is bin 4.
        assert_eq!(p.of(0), 0);
        assert_eq!(p.of(4 * DAY + 5 * HOUR), 4);
        assert_eq!(p.season_s(), 7 * DAY);
    }
}

//! Commitment advice: how many cloud cores are worth committing to (reserved instances, savings
//! plans) given the forecast floor of what the services need, and what that saves.
//!
//! A committed core costs `(1 − discount) × price` every hour, used or not; an on-demand core
//! costs `price` in the hours it is used. The k-th committed core pays for itself when it would
//! be used in at least `1 − discount` of the hours, so the best commitment is the largest k the
//! floor reaches in that share of hours — the `discount`-quantile of the hourly floor.

use serde::Serialize;

/// A commitment offer: a name and its discount against on-demand.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offer {
    /// e.g. `reserved-1y`.
    pub name: String,
    /// Fraction off the on-demand price, in (0, 1).
    pub discount: f64,
}

impl std::str::FromStr for Offer {
    type Err = String;

    /// `NAME=DISCOUNT`, the discount a fraction in (0, 1).
    fn from_str(s: &str) -> Result<Self, String> {
        let fix = || {
            format!(
                "`{s}` is not NAME=DISCOUNT with the discount in (0, 1); write it like `reserved-1y=0.37`"
            )
        };
        let (name, discount) = s.split_once('=').ok_or_else(fix)?;
        let discount: f64 = discount.trim().parse().map_err(|_| fix())?;
        if name.trim().is_empty() || !(discount > 0.0 && discount < 1.0) {
            return Err(fix());
        }
        Ok(Self { name: name.trim().to_owned(), discount })
    }
}

/// Offers typical of the large clouds, used when none are given.
pub fn default_offers() -> Vec<Offer> {
    [("savings-plan-1y", 0.28), ("reserved-1y", 0.37), ("reserved-3y", 0.57)]
        .into_iter()
        .map(|(name, discount)| Offer { name: name.into(), discount })
        .collect()
}

/// The advice for one offer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    /// The offer.
    pub offer: String,
    /// Its discount.
    pub discount: f64,
    /// Cores to commit.
    pub committed_cores: f64,
    /// Committed cores as a share of the mean cloud cores used.
    pub share_of_capacity: f64,
    /// Saving over the hours looked at, against paying on-demand for every used core.
    pub saving_usd: f64,
    /// The same saving per 730-hour month.
    pub saving_usd_per_month: f64,
    /// Saving as a share of the on-demand cost of the used cores.
    pub saving_share: f64,
}

/// Cores to commit at `discount` given the hourly forecast floor.
pub fn committed_cores(floor: &[f64], discount: f64) -> f64 {
    let mut sorted: Vec<f64> = floor.iter().copied().filter(|x| x.is_finite()).collect();
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.sort_by(|a, b| b.total_cmp(a));
    let n = sorted.len() as f64;
    // The largest floor reached in at least (1 − discount) of the hours.
    sorted
        .iter()
        .enumerate()
        .find(|(i, _)| (*i as f64 + 1.0) / n >= 1.0 - discount - 1e-12)
        .map_or(0.0, |(_, &v)| v.max(0.0))
}

/// Advice per offer from hourly floor and used cores, at `price` per core-hour on demand.
pub fn advise(floor: &[f64], used: &[f64], price: f64, offers: &[Offer]) -> Vec<Advice> {
    let hours = used.len() as f64;
    let on_demand: f64 = used.iter().map(|u| u * price).sum();
    let mean_used = if hours > 0.0 { used.iter().sum::<f64>() / hours } else { 0.0 };
    offers
        .iter()
        .map(|offer| {
            let mut k = committed_cores(floor, offer.discount);
            let saving_at = |k: f64| {
                used.iter().map(|u| u.min(k) * price).sum::<f64>()
                    - k * (1.0 - offer.discount) * price * hours
            };
            if saving_at(k) <= 0.0 {
                k = 0.0;
            }
            let saving = saving_at(k);
            Advice {
                offer: offer.name.clone(),
                discount: offer.discount,
                committed_cores: k,
                share_of_capacity: if mean_used > 0.0 { k / mean_used } else { 0.0 },
                saving_usd: saving,
                saving_usd_per_month: if hours > 0.0 { saving * 730.0 / hours } else { 0.0 },
                saving_share: if on_demand > 0.0 { saving / on_demand } else { 0.0 },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_what_the_floor_reaches_in_enough_hours() {
        // At 50 % off a core must be used half the time: 10 cores are used every hour, 20 in a
        // quarter of them.
        assert_eq!(committed_cores(&[10.0, 10.0, 10.0, 20.0], 0.5), 10.0);
        // At 80 % off a quarter of the hours is enough.
        assert_eq!(committed_cores(&[10.0, 10.0, 10.0, 20.0], 0.8), 20.0);
        assert_eq!(committed_cores(&[], 0.5), 0.0);
    }

    #[test]
    fn saving_by_hand() {
        // 10 committed cores at half price over 4 hours cost 20; on demand they would have cost
        // 4 × 10 = 40: 20 saved out of 50 on demand.
        let offer = Offer { name: "half".into(), discount: 0.5 };
        let a = &advise(&[10.0, 10.0, 10.0, 20.0], &[10.0, 10.0, 10.0, 20.0], 1.0, &[offer])[0];
        assert_eq!(a.committed_cores, 10.0);
        assert!((a.saving_usd - 20.0).abs() < 1e-9);
        assert!((a.saving_share - 0.4).abs() < 1e-9);
        assert!((a.share_of_capacity - 0.8).abs() < 1e-9);
        assert!((a.saving_usd_per_month - 20.0 * 730.0 / 4.0).abs() < 1e-9);
    }

    #[test]
    fn offers_parse_and_bad_ones_say_how_to_write_them() {
        assert_eq!(
            "reserved-1y=0.37".parse::<Offer>(),
            Ok(Offer { name: "reserved-1y".into(), discount: 0.37 })
        );
        for bad in ["reserved", "x=1.5", "=0.3", "x=abc", "x=0"] {
            let e = bad.parse::<Offer>().unwrap_err();
            assert!(e.contains("NAME=DISCOUNT"), "{bad}: {e}");
        }
    }

    #[test]
    fn nothing_is_committed_when_it_would_not_pay() {
        let offer = Offer { name: "small".into(), discount: 0.1 };
        // The floor promises 10 but only 1 core is ever used.
        let a = &advise(&[10.0; 4], &[1.0; 4], 1.0, &[offer])[0];
        assert_eq!((a.committed_cores, a.saving_usd), (0.0, 0.0));
    }
}

//! Combining the agents' updates into the next global model: FedAvg weighted by sample
//! count, or — against poisoned updates — a coordinate-wise trimmed mean or median, which
//! ignore the values an attacker controls as long as they are a minority, or multi-Krum,
//! which drops whole updates that sit far from the others'.
//!
//! The coordinate-wise rules bound how far one attacker can pull each weight, but not the
//! direction: a sign-flipped update still drags every coordinate's median one rank its way,
//! round after round. Multi-Krum judges updates as wholes, so an update pointing against the
//! crowd is left out entirely.

use serde::{Deserialize, Serialize};

/// How updates are combined.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Mean weighted by each agent's samples (FedAvg).
    FedAvg,
    /// Per coordinate, the mean of what is left after dropping this share at each end.
    TrimmedMean(f64),
    /// Per coordinate, the median.
    Median,
    /// Multi-Krum tolerating this many attackers: each update is scored by its summed squared
    /// distance to its n − f − 2 nearest others; the n − f best-scored are averaged, unweighted
    /// (an attacker could claim any sample count). Needs n ≥ 2f + 3 updates.
    MultiKrum(usize),
}

/// Why updates cannot be combined.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AggregateError {
    /// Nothing to combine.
    #[error("no updates to combine")]
    Empty,
    /// Updates of different lengths.
    #[error("update {index} has {got} parameters, the model {want}")]
    Length {
        /// Which update.
        index: usize,
        /// Its length.
        got: usize,
        /// The model's.
        want: usize,
    },
    /// A trimmed share outside [0, 0.5).
    #[error("trim share {0} is outside [0, 0.5)")]
    Trim(f64),
    /// Too few updates for multi-Krum to outvote the attackers it tolerates.
    #[error("multi-krum tolerating {byzantine} attacker(s) needs at least {need} updates, got {got}")]
    Krum {
        /// Attackers tolerated.
        byzantine: usize,
        /// Updates needed (2f + 3).
        need: usize,
        /// Updates received.
        got: usize,
    },
}

/// One agent's update: a model delta and the samples it was trained on.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// New weights minus the global weights.
    pub delta: Vec<f32>,
    /// Training samples behind it.
    pub samples: u64,
}

/// The combined delta.
pub fn combine(rule: Rule, updates: &[Update]) -> Result<Vec<f32>, AggregateError> {
    let first = updates.first().ok_or(AggregateError::Empty)?;
    let n = first.delta.len();
    if let Some((index, u)) = updates.iter().enumerate().find(|(_, u)| u.delta.len() != n) {
        return Err(AggregateError::Length { index, got: u.delta.len(), want: n });
    }
    match rule {
        Rule::FedAvg => {
            let total: f64 = updates.iter().map(|u| u.samples.max(1) as f64).sum();
            let mut out = vec![0.0f64; n];
            for u in updates {
                let w = u.samples.max(1) as f64 / total;
                for (o, d) in out.iter_mut().zip(&u.delta) {
                    *o += w * f64::from(*d);
                }
            }
            Ok(out.into_iter().map(|v| v as f32).collect())
        }
        Rule::TrimmedMean(share) => {
            if !(0.0..0.5).contains(&share) {
                return Err(AggregateError::Trim(share));
            }
            let cut = (share * updates.len() as f64).floor() as usize;
            Ok(per_coordinate(updates, n, |column| {
                let kept = &column[cut..column.len() - cut];
                kept.iter().sum::<f32>() / kept.len() as f32
            }))
        }
        Rule::Median => Ok(per_coordinate(updates, n, |column| {
            let m = column.len() / 2;
            if column.len() % 2 == 1 { column[m] } else { 0.5 * (column[m - 1] + column[m]) }
        })),
        Rule::MultiKrum(byzantine) => {
            let kept = krum_selection(updates, byzantine)?;
            let mut out = vec![0.0f64; n];
            for &i in &kept {
                for (o, d) in out.iter_mut().zip(&updates[i].delta) {
                    *o += f64::from(*d);
                }
            }
            Ok(out.into_iter().map(|v| (v / kept.len() as f64) as f32).collect())
        }
    }
}

/// Indices of the n − f updates with the lowest Krum scores.
fn krum_selection(updates: &[Update], byzantine: usize) -> Result<Vec<usize>, AggregateError> {
    let n = updates.len();
    let need = 2 * byzantine + 3;
    if n < need {
        return Err(AggregateError::Krum { byzantine, need, got: n });
    }
    let mut distance = vec![vec![0.0f64; n]; n];
    for i in 0..n {
        for j in i + 1..n {
            let d: f64 =
                updates[i].delta.iter().zip(&updates[j].delta).map(|(a, b)| f64::from(a - b).powi(2)).sum();
            distance[i][j] = d;
            distance[j][i] = d;
        }
    }
    let neighbours = n - byzantine - 2;
    let mut scored: Vec<(f64, usize)> = (0..n)
        .map(|i| {
            let mut others: Vec<f64> = (0..n).filter(|&j| j != i).map(|j| distance[i][j]).collect();
            others.sort_by(f64::total_cmp);
            (others[..neighbours].iter().sum(), i)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(scored[..n - byzantine].iter().map(|&(_, i)| i).collect())
}

fn per_coordinate(updates: &[Update], n: usize, pick: impl Fn(&[f32]) -> f32) -> Vec<f32> {
    let mut column = vec![0.0f32; updates.len()];
    (0..n)
        .map(|i| {
            for (c, u) in column.iter_mut().zip(updates) {
                *c = u.delta[i];
            }
            column.sort_by(f32::total_cmp);
            pick(&column)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(delta: &[f32], samples: u64) -> Update {
        Update { delta: delta.to_vec(), samples }
    }

    #[test]
    fn fedavg_weighs_by_samples() {
        let out = combine(Rule::FedAvg, &[u(&[1.0, 0.0], 300), u(&[0.0, 1.0], 100)]).expect("combines");
        assert_eq!(out, vec![0.75, 0.25]);
    }

    #[test]
    fn robust_rules_ignore_a_poisoned_minority() {
        let honest = [u(&[1.0, -1.0], 10), u(&[1.2, -0.8], 10), u(&[0.8, -1.2], 10), u(&[1.1, -0.9], 10)];
        let mut all = honest.to_vec();
        all.push(u(&[100.0, 100.0], 10));
        let mean = combine(Rule::FedAvg, &all).expect("combines");
        assert!(mean[0] > 10.0, "FedAvg is dragged by the poisoned update: {mean:?}");
        let trimmed = combine(Rule::TrimmedMean(0.2), &all).expect("combines");
        let median = combine(Rule::Median, &all).expect("combines");
        let krum = combine(Rule::MultiKrum(1), &all).expect("combines");
        for out in [trimmed, median, krum] {
            assert!((out[0] - 1.05).abs() < 0.1 && (out[1] + 0.9).abs() < 0.15, "{out:?}");
        }
    }

    #[test]
    fn multi_krum_leaves_out_a_flipped_update_whole() {
        let honest = [u(&[1.0, -1.0], 10), u(&[1.2, -0.8], 10), u(&[0.8, -1.2], 10), u(&[1.1, -0.9], 10)];
        let mut all = honest.to_vec();
        all.push(u(&[-1.0, 1.0], 10_000));
        let krum = combine(Rule::MultiKrum(1), &all).expect("combines");
        let clean = combine(Rule::FedAvg, &honest).expect("combines");
        for (k, c) in krum.iter().zip(&clean) {
            assert!((k - c).abs() < 1e-6, "{krum:?} against {clean:?}");
        }
        // The median still moves one rank towards the flipped update.
        let median = combine(Rule::Median, &all).expect("combines");
        assert!(median[0] < clean[0] - 0.02, "{median:?}");
        assert_eq!(
            combine(Rule::MultiKrum(1), &honest),
            Err(AggregateError::Krum { byzantine: 1, need: 5, got: 4 })
        );
    }

    #[test]
    fn bad_input_is_named() {
        assert_eq!(combine(Rule::Median, &[]), Err(AggregateError::Empty));
        let err = combine(Rule::FedAvg, &[u(&[1.0], 1), u(&[1.0, 2.0], 1)]).unwrap_err();
        assert_eq!(err, AggregateError::Length { index: 1, got: 2, want: 1 });
        assert_eq!(combine(Rule::TrimmedMean(0.5), &[u(&[1.0], 1)]), Err(AggregateError::Trim(0.5)));
    }
}

//! Combining the agents' updates into the next global model: FedAvg weighted by sample
//! count, or — against poisoned updates — a coordinate-wise trimmed mean or median, which
//! ignore the values an attacker controls as long as they are a minority.

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
    }
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
        for out in [trimmed, median] {
            assert!((out[0] - 1.05).abs() < 0.1 && (out[1] + 0.9).abs() < 0.15, "{out:?}");
        }
    }

    #[test]
    fn bad_input_is_named() {
        assert_eq!(combine(Rule::Median, &[]), Err(AggregateError::Empty));
        let err = combine(Rule::FedAvg, &[u(&[1.0], 1), u(&[1.0, 2.0], 1)]).unwrap_err();
        assert_eq!(err, AggregateError::Length { index: 1, got: 2, want: 1 });
        assert_eq!(combine(Rule::TrimmedMean(0.5), &[u(&[1.0], 1)]), Err(AggregateError::Trim(0.5)));
    }
}

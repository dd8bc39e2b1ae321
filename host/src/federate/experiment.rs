//! Federated against local-only and central training, on the same clusters' series: each
//! cluster's history is split in time; models train on the first part and are scored on the
//! second by MASE — the mean absolute error of the p50 divided by that of the one-day
//! seasonal-naive forecast of the same targets (below 1: better than naive). Central training
//! pools every cluster's samples (what federated learning avoids); local-only trains each
//! cluster on its own; federated runs rounds of [`super::round`] in process.

use serde::Serialize;

use super::model::{Mlp, Samples, cosine_lr};
use super::round::{Aggregator, LocalTraining, RoundConfig, local_update};
use crate::backends::sim::{Rng, Trace};

/// One cluster's data: its name, its series, and how much of its training part it has (a new
/// cluster has only its last days).
#[derive(Debug, Clone)]
pub struct ClusterData {
    /// Name.
    pub name: String,
    /// The series.
    pub trace: Trace,
    /// Seconds of history it trains on, ending at the split (`None`: all of it).
    pub history_s: Option<u32>,
}

/// How the comparison runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Share of each series trained on; the rest is held out.
    pub train_share: f64,
    /// Training samples drawn per cluster.
    pub samples: usize,
    /// Held-out samples per cluster.
    pub test_samples: usize,
    /// Federated rounds.
    pub rounds: usize,
    /// Local training per round.
    pub local: LocalTraining,
    /// Epochs of central and local-only training (their total passes over the data).
    pub epochs: usize,
    /// Round rules (aggregation, privacy).
    pub round: RoundConfig,
    /// Seed of everything.
    pub seed: u64,
    /// A cluster (by index) whose updates are poisoned, and how.
    pub attack: Option<(usize, Attack)>,
    /// Server momentum β of the federated run.
    pub momentum: f32,
}

/// What a poisoned agent does to its update before sending it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attack {
    /// Multiplies it (a "boosted" update).
    Scale(f32),
    /// Negates it (pushes the model away from what the data says).
    Flip,
}

impl Attack {
    fn apply(self, delta: &mut [f32]) {
        let k = match self {
            Self::Scale(k) => k,
            Self::Flip => -1.0,
        };
        delta.iter_mut().for_each(|v| *v *= k);
    }
}

/// The figures of one cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterScore {
    /// Cluster.
    pub cluster: String,
    /// Training samples it had.
    pub samples: usize,
    /// MASE of its own model.
    pub local_mase: f64,
    /// MASE of the centrally trained model.
    pub central_mase: f64,
    /// MASE of the federated model.
    pub federated_mase: f64,
}

/// A cluster's training and held-out samples: `train_share` of its series for `samples`
/// training draws, the rest for `test_samples` held-out ones.
pub fn split(
    c: &ClusterData,
    train_share: f64,
    samples: usize,
    test_samples: usize,
    rng: &mut Rng,
) -> (Samples, Samples) {
    let n = c.trace.values.len();
    let cut = (n as f64 * train_share) as usize;
    let from = c.history_s.map_or(0, |h| cut.saturating_sub((h / c.trace.step_s.max(1)) as usize));
    let train = Samples::draw(c.trace.start, c.trace.step_s, &c.trace.values, from, cut, samples, rng);
    let test = Samples::draw(c.trace.start, c.trace.step_s, &c.trace.values, cut, n, test_samples, rng);
    (train, test)
}

/// MASE of `mlp` on `test`: its p50's absolute error over the one-day seasonal-naive one.
pub fn mase(mlp: &Mlp, test: &Samples) -> f64 {
    let f = onnx_mlp::FEATURES;
    let (mut model, mut naive) = (0.0f64, 0.0f64);
    for (i, (row, q)) in test.x.chunks(f).zip(mlp.predict(&test.x)).enumerate() {
        let y = f64::from(test.y[i]);
        // The rule the network corrects: yesterday's hour when seen, else two days back.
        let seen = row[onnx_mlp::YESTERDAY_SEEN] > 0.5;
        let base = if seen { row[onnx_mlp::YESTERDAY] } else { row[onnx_mlp::TWO_DAYS] };
        model += (f64::from(q[1]) - y).abs();
        naive += (f64::from(base) - y).abs();
    }
    if naive > 0.0 { model / naive } else { f64::NAN }
}

/// A model trained on `samples` alone from `init`: `epochs` passes, the learning rate decaying
/// from `lr` on a cosine — how central and local-only models are made.
pub fn train_alone(init: &Mlp, samples: &Samples, epochs: usize, batch: usize, lr: f32, seed: u64) -> Mlp {
    let mut m = init.clone();
    for epoch in 0..epochs {
        m.train(samples, 1, batch, cosine_lr(lr, epoch, epochs), seed + epoch as u64);
    }
    m
}

/// Runs the comparison.
pub fn compare(clusters: &[ClusterData], s: &Settings) -> Vec<ClusterScore> {
    let mut rng = Rng::new(s.seed);
    let data: Vec<(Samples, Samples)> =
        clusters.iter().map(|c| split(c, s.train_share, s.samples, s.test_samples, &mut rng)).collect();
    let init = Mlp::new(s.seed ^ 0x5eed);

    let mut pooled = Samples::default();
    data.iter().for_each(|(train, _)| pooled.extend(train));
    let decayed =
        |samples: &Samples| train_alone(&init, samples, s.epochs, s.local.batch, s.local.lr, s.seed);
    let central = decayed(&pooled);
    let locals: Vec<Mlp> = data.iter().map(|(train, _)| decayed(train)).collect();

    let names: Vec<String> = clusters.iter().map(|c| c.name.clone()).collect();
    let mut aggregator = Aggregator::new(s.round.clone(), init.params.clone()).with_momentum(s.momentum);
    let mut noise = Rng::new(s.seed ^ 0xd9);
    for r in 0..s.rounds {
        let round = aggregator.open(names.clone(), r as f64);
        let global = aggregator.global().0.to_vec();
        let local = LocalTraining { lr: cosine_lr(s.local.lr, r, s.rounds), ..s.local.clone() };
        for (i, (name, (train, _))) in names.iter().zip(&data).enumerate() {
            let seed = s.seed.wrapping_add((r * names.len() + i) as u64);
            let mut update =
                local_update(&global, train, &local, &s.round, names.len(), seed, &mut || noise.normal());
            if let Some((_, attack)) = s.attack.filter(|(who, _)| *who == i) {
                attack.apply(&mut update.delta);
            }
            if let Err(e) = aggregator.submit(name, round, update) {
                tracing::warn!(agent = %name, error = %e, "update refused");
            }
        }
        if let Err(e) = aggregator.try_close(r as f64) {
            tracing::warn!(error = %e, "round failed");
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            let m = Mlp { params: aggregator.global().0.to_vec() };
            let by_cluster: Vec<f64> = data.iter().map(|(_, test)| mase(&m, test)).collect();
            tracing::debug!(round = r, mase = ?by_cluster, "federated model after the round");
        }
    }
    let federated = Mlp { params: aggregator.global().0.to_vec() };

    clusters
        .iter()
        .zip(&data)
        .zip(&locals)
        .map(|((c, (train, test)), local)| ClusterScore {
            cluster: c.name.clone(),
            samples: train.len(),
            local_mase: mase(local, test),
            central_mase: mase(&central, test),
            federated_mase: mase(&federated, test),
        })
        .collect()
}

/// The four traces shipped for the simulator, one per cluster.
pub fn shipped_clusters(dir: &std::path::Path) -> Result<Vec<ClusterData>, crate::backends::sim::TraceError> {
    [
        ("azure", "azure_2019_vm_total__cpu_usage_300s.csv"),
        ("google", "google_2019_cell__avg_mem_300s.csv"),
        ("amzn", "nab_tweets__Twitter_volume_AMZN.csv"),
        ("fb", "nab_tweets__Twitter_volume_FB.csv"),
    ]
    .into_iter()
    .map(|(name, file)| {
        Ok(ClusterData { name: name.into(), trace: Trace::load(&dir.join(file))?, history_s: None })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federate::aggregate::Rule;

    #[test]
    fn a_cold_start_cluster_forecasts_better_federated_than_alone() {
        let dir = crate::manifest_dir().join("../config/scenarios/traces");
        let mut clusters = shipped_clusters(&dir).expect("traces");
        // fb has two days of history; the others their whole training part.
        clusters[3].history_s = Some(2 * 86_400);
        let s = Settings {
            train_share: 0.7,
            samples: 300,
            test_samples: 600,
            rounds: 12,
            local: LocalTraining { epochs: 1, batch: 32, lr: 2e-3 },
            epochs: 6,
            round: RoundConfig {
                quorum: 4,
                deadline_s: 1e9,
                rule: Rule::FedAvg,
                clip: None,
                noise: 0.0,
                delta: 1e-5,
            },
            seed: 7,
            attack: None,
            momentum: 0.0,
        };
        let scores = compare(&clusters, &s);
        let fb = &scores[3];
        assert!(fb.federated_mase < 0.9 * fb.local_mase, "{fb:?}");
        assert!(
            scores.iter().all(|c| c.federated_mase.is_finite() && c.central_mase.is_finite()),
            "{scores:?}"
        );
    }

    /// Mean federated MASE of the honest clusters (all but the last).
    fn honest(scores: &[ClusterScore]) -> f64 {
        let honest = &scores[..scores.len() - 1];
        honest.iter().map(|c| c.federated_mase).sum::<f64>() / honest.len() as f64
    }

    /// The four shipped clusters and a fifth on the NASA trace, whose agent is the attacker.
    fn five_clusters() -> Vec<ClusterData> {
        let dir = crate::manifest_dir().join("../config/scenarios/traces");
        let mut clusters = shipped_clusters(&dir).expect("traces");
        let nasa = Trace::load(&dir.join("nasa_http_1995__requests_per_min.csv")).expect("trace");
        clusters.push(ClusterData { name: "nasa".into(), trace: nasa, history_s: None });
        clusters
    }

    /// Honest clusters' mean federated MASE with the fifth agent honest or poisoned.
    fn run(clusters: &[ClusterData], s: &Settings, rule: Rule, attack: Option<Attack>) -> f64 {
        let s = Settings {
            round: RoundConfig { rule, ..s.round.clone() },
            attack: attack.map(|a| (4, a)),
            ..s.clone()
        };
        honest(&compare(clusters, &s))
    }

    fn poisoning(samples: usize, rounds: usize, seed: u64) -> Settings {
        Settings {
            train_share: 0.7,
            samples,
            test_samples: 600,
            rounds,
            local: LocalTraining { epochs: 1, batch: 32, lr: 3e-3 },
            epochs: 1,
            round: RoundConfig {
                quorum: 5,
                deadline_s: 1e9,
                rule: Rule::FedAvg,
                clip: None,
                noise: 0.0,
                delta: 1e-5,
            },
            seed,
            attack: None,
            momentum: 0.0,
        }
    }

    #[test]
    fn robust_rules_hold_accuracy_against_a_boosted_update() {
        let clusters = five_clusters();
        let s = poisoning(200, 8, 3);
        for rule in [Rule::Median, Rule::TrimmedMean(0.2), Rule::MultiKrum(1)] {
            let clean = run(&clusters, &s, rule, None);
            let poisoned = run(&clusters, &s, rule, Some(Attack::Scale(100.0)));
            assert!(
                poisoned <= 1.05 * clean,
                "{rule:?} under a boosted update: {poisoned:.3} against {clean:.3} clean"
            );
        }
        // FedAvg has no such defence: a boosted update drags every weight with it.
        let wrecked = run(&clusters, &s, Rule::FedAvg, Some(Attack::Scale(100.0)));
        let clean = run(&clusters, &s, Rule::FedAvg, None);
        assert!(wrecked > 1.25 * clean, "{wrecked} against {clean}");
    }

    #[test]
    fn multi_krum_holds_accuracy_against_a_sign_flipped_update() {
        // One run's MASE moves by several per cent with the seed alone, so the runs are
        // compared over four seeds, each trained long enough for the attacker's steady pull
        // to show.
        let clusters = five_clusters();
        let (mut clean, mut flipped) = (0.0, 0.0);
        for seed in 1..=4 {
            let s = poisoning(1000, 64, seed);
            clean += run(&clusters, &s, Rule::MultiKrum(1), None) / 4.0;
            flipped += run(&clusters, &s, Rule::MultiKrum(1), Some(Attack::Flip)) / 4.0;
        }
        assert!(
            flipped <= 1.05 * clean,
            "multi-krum under a flipped update: {flipped:.3} against {clean:.3} clean"
        );
    }
}

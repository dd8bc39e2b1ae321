//! Federated learning in simulation: one agent per simulated cluster, each training on the
//! demand its own users put on it, rounds run in process by the same aggregator the gRPC
//! federation uses; its model is scored beside each cluster's local-only model and one trained
//! centrally on every cluster's samples pooled.
//!
//! A cluster's series is the demand of the services it hosts (replicas in the scenario) from
//! its nearest user region, every five minutes, from three weeks before the simulated start to
//! its end — events included, so the held-out tail covers the simulated week.

use serde::Serialize;

use crate::backends::sim::{Scenario, Trace};
use crate::federate::aggregate::Rule;
use crate::federate::experiment::{self, ClusterData, ClusterScore, Settings};
use crate::federate::round::{LocalTraining, RoundConfig};

/// Days of history before the simulated start.
const HISTORY_DAYS: i64 = 21;
/// Seconds between points of a cluster's series.
const STEP_S: u32 = 300;

/// How the federated comparison runs.
#[derive(Debug, Clone, PartialEq)]
pub struct FederatedRun {
    /// Rounds.
    pub rounds: usize,
    /// Local epochs per round.
    pub epochs: usize,
    /// Training samples per cluster.
    pub samples: usize,
    /// A cluster that has only two days of history (a new one).
    pub cold_start: Option<String>,
    /// Seed of draws and weights.
    pub seed: u64,
}

impl Default for FederatedRun {
    fn default() -> Self {
        Self { rounds: 64, epochs: 2, samples: 600, cold_start: None, seed: 7 }
    }
}

/// What the comparison found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FederatedReport {
    /// Rounds run.
    pub rounds: usize,
    /// Each cluster's scores (held-out MASE: below 1 beats the one-day seasonal naive).
    pub clusters: Vec<ClusterScore>,
}

/// Why the comparison cannot run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FederatedError {
    /// The cold-start cluster is not in the scenario.
    #[error("--federate-cold-start {0} is not a cluster of the scenario; name one of its [[clusters]]")]
    UnknownCluster(String),
    /// Fewer than two clusters host a service: nothing to federate.
    #[error("only {0} cluster(s) host a service in this scenario; federating needs two or more")]
    TooFew(usize),
}

/// Each cluster hosting a service, with its series.
pub fn cluster_series(scenario: &Scenario) -> Vec<ClusterData> {
    let from = scenario.start - HISTORY_DAYS * 86_400;
    let to = scenario.start + scenario.duration_s as i64;
    let times: Vec<i64> = (from..to).step_by(STEP_S as usize).collect();
    scenario
        .clusters
        .iter()
        .enumerate()
        .filter_map(|(c, cluster)| {
            let region =
                (0..cluster.rtt_ms.len()).min_by(|&a, &b| cluster.rtt_ms[a].total_cmp(&cluster.rtt_ms[b]))?;
            let hosted: Vec<usize> =
                (0..scenario.services.len()).filter(|&s| scenario.services[s].replicas[c] > 0).collect();
            if hosted.is_empty() {
                return None;
            }
            let values =
                times.iter().map(|&t| hosted.iter().map(|&s| scenario.demand(s, t)[region]).sum()).collect();
            Some(ClusterData {
                name: cluster.name.clone(),
                trace: Trace { start: from, step_s: STEP_S, values },
                history_s: None,
            })
        })
        .collect()
}

/// Runs the comparison on `scenario`'s clusters.
pub fn compare(scenario: &Scenario, run: &FederatedRun) -> Result<FederatedReport, FederatedError> {
    let mut clusters = cluster_series(scenario);
    if clusters.len() < 2 {
        return Err(FederatedError::TooFew(clusters.len()));
    }
    if let Some(name) = &run.cold_start {
        let c = clusters
            .iter_mut()
            .find(|c| &c.name == name)
            .ok_or_else(|| FederatedError::UnknownCluster(name.clone()))?;
        c.history_s = Some(2 * 86_400);
    }
    let n = clusters.len();
    let settings = Settings {
        train_share: 0.7,
        samples: run.samples,
        test_samples: 1000,
        rounds: run.rounds,
        local: LocalTraining { epochs: run.epochs, batch: 32, lr: 3e-3 },
        // Central and local-only models get as many passes over their data as an agent does.
        epochs: run.rounds * run.epochs,
        round: RoundConfig {
            quorum: n,
            deadline_s: f64::INFINITY,
            rule: Rule::FedAvg,
            clip: None,
            noise: 0.0,
            delta: 1e-5,
        },
        seed: run.seed,
        attack: None,
        momentum: 0.0,
    };
    Ok(FederatedReport { rounds: run.rounds, clusters: experiment::compare(&clusters, &settings) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diurnal() -> Scenario {
        let path = crate::manifest_dir().join("../config/scenarios/diurnal.toml");
        Scenario::load(&path).expect("the shipped scenario")
    }

    #[test]
    fn each_hosting_cluster_sees_the_demand_of_its_services_from_its_nearest_region() {
        let scenario = diurnal();
        let series = cluster_series(&scenario);
        assert_eq!(series.len(), scenario.clusters.len(), "every diurnal cluster hosts a service");
        let edge_eu = &series[scenario.cluster_index("edge-eu").expect("edge-eu")];
        // edge-eu hosts checkout and search; its nearest region is eu (index 0).
        let t = scenario.start + 3600;
        let k = ((t - edge_eu.trace.start) / i64::from(STEP_S)) as usize;
        let want: f64 = [0, 1].iter().map(|&s| scenario.demand(s, t)[0]).sum();
        assert!((edge_eu.trace.values[k] - want).abs() < 1e-9, "{} against {want}", edge_eu.trace.values[k]);
        let cloud = &series[scenario.cluster_index("cloud-eu-west").expect("cloud")];
        assert!(cloud.trace.values[k] > edge_eu.trace.values[k], "the cloud hosts all four services");
    }

    #[test]
    fn a_cold_start_cluster_gains_from_the_federation_and_an_unknown_one_is_named() {
        let scenario = diurnal();
        let run =
            FederatedRun { rounds: 16, epochs: 2, samples: 300, cold_start: Some("edge-ap".into()), seed: 7 };
        let report = compare(&scenario, &run).expect("runs");
        let ap = report.clusters.iter().find(|c| c.cluster == "edge-ap").expect("edge-ap");
        assert!(ap.federated_mase < ap.local_mase, "{ap:?}");
        assert!(report.clusters.iter().all(|c| c.central_mase.is_finite()), "{report:?}");
        let bad = FederatedRun { cold_start: Some("nowhere".into()), ..run };
        assert_eq!(compare(&scenario, &bad), Err(FederatedError::UnknownCluster("nowhere".into())));
    }
}

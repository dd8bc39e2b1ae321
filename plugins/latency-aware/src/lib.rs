//! # latency-aware — the reference scorer
//!
//! Scores each candidate placement by the latency its users would see and what it costs:
//!
//! ```text
//! expected RTT  = Σ_r share_r · rtt_r                      (share_r: region r's part of demand)
//! queue wait Wq = s · ρ^(√(2(c+1)) − 1) / (c · (1 − ρ))    (Sakasegawa's M/M/c approximation)
//! p95 latency  ≈ RTT + ln 20 · (s + Wq)                    (exponential response-time tail)
//! score = − w_latency · (RTT + s + Wq)
//!         − w_slo · max(0, p95 / SLO − 1)
//!         + w_headroom · headroom − w_price · price − w_interruption · interruptions/h
//! ```
//!
//! `s` is the workload's service time, `ρ` the candidate's `utilisation` and `c` its
//! `replicas`. A saturated candidate (ρ ≥ 1) can never meet its SLO and scores as if its p95
//! were `saturation-factor` times the SLO. Every term is reported as the contribution of the
//! feature it comes from, so operators see why a cluster won.
//!
//! ```
//! use foresight_sdk::{Candidates, Config, Scorer, Workload};
//! use latency_aware::LatencyAware;
//!
//! let config = Config::parse("", &LatencyAware::describe_keys()).unwrap();
//! let mut scorer = LatencyAware::new(&config).unwrap();
//! let workload = Workload {
//!     regions: vec!["eu".into()],
//!     demand: vec![100.0],
//!     slo_p95_ms: 150.0,
//!     service_ms: 10.0,
//!     ..Default::default()
//! };
//! let names = ["rtt-ms:eu", "utilisation", "replicas"].map(String::from).to_vec();
//! // A near edge site and a distant cloud region, equally loaded.
//! let candidates = Candidates::new(names, vec![5.0, 0.5, 4.0, 80.0, 0.5, 4.0]).unwrap();
//! let scores = scorer.score(&workload, &candidates).unwrap();
//! assert!(scores.values[0] > scores.values[1]);
//! ```

use foresight_sdk::scorer::features;
use foresight_sdk::{
    Candidates, Config, ConfigKey, Descriptor, PluginError, PluginKind, Scorer, Scores, Workload,
};

/// ln 20: the 95th percentile of an exponential distribution is ln 20 times its mean.
const P95_OF_MEAN: f64 = 2.995_732_273_553_991;

/// The reference latency-aware scorer.
#[derive(Debug, Clone)]
pub struct LatencyAware {
    w_latency: f64,
    w_slo: f64,
    w_headroom: f64,
    w_price: f64,
    w_interruption: f64,
    saturation_factor: f64,
    explain: bool,
}

impl LatencyAware {
    /// The configuration keys, for building a [`Config`] natively.
    pub fn describe_keys() -> Vec<ConfigKey> {
        Self::describe().config_keys
    }
}

/// Columns this scorer reads, resolved once per call.
struct Columns {
    /// (column, demand share) per user region that has an RTT feature.
    rtt: Vec<(usize, f64)>,
    utilisation: Option<usize>,
    replicas: Option<usize>,
    headroom: Option<usize>,
    price: Option<usize>,
    interruption: Option<usize>,
}

impl Columns {
    fn resolve(workload: &Workload, candidates: &Candidates) -> Result<Self, PluginError> {
        if workload.demand.len() != workload.regions.len() {
            return Err(PluginError::InvalidInput(format!(
                "{} demand values for {} regions",
                workload.demand.len(),
                workload.regions.len()
            )));
        }
        let total: f64 = workload.demand.iter().filter(|d| d.is_finite() && **d > 0.0).sum();
        let mut rtt = Vec::new();
        for (region, demand) in workload.regions.iter().zip(&workload.demand) {
            let share =
                if total > 0.0 { demand.max(0.0) / total } else { 1.0 / workload.regions.len() as f64 };
            if let Some(column) = candidates.column(&features::rtt(region)) {
                rtt.push((column, share));
            }
        }
        Ok(Self {
            rtt,
            utilisation: candidates.column(features::UTILISATION),
            replicas: candidates.column(features::REPLICAS),
            headroom: candidates.column(features::HEADROOM),
            price: candidates.column(features::HOURLY_PRICE),
            interruption: candidates.column(features::INTERRUPTION_RATE),
        })
    }
}

/// Mean queueing delay of an M/M/c queue, by Sakasegawa's approximation, in units of the service
/// time. Infinite when saturated.
pub fn queue_wait_factor(utilisation: f64, servers: f64) -> f64 {
    if utilisation >= 1.0 {
        return f64::INFINITY;
    }
    let rho = utilisation.max(0.0);
    let c = servers.max(1.0);
    rho.powf((2.0 * (c + 1.0)).sqrt() - 1.0) / (c * (1.0 - rho))
}

impl Scorer for LatencyAware {
    fn describe() -> Descriptor {
        Descriptor::new(
            "latency-aware",
            env!("CARGO_PKG_VERSION"),
            PluginKind::Scorer,
            "Prefers placements whose users see the lowest latency within the SLO, then headroom, then price.",
        )
        .key(ConfigKey::new("weight-latency", "Score lost per millisecond of expected latency.", Some("1.0")))
        .key(ConfigKey::new("weight-slo", "Score lost per unit of predicted p95 above the SLO (p95/SLO − 1).", Some("500.0")))
        .key(ConfigKey::new("weight-headroom", "Score gained per unit of forecast headroom (0..1).", Some("20.0")))
        .key(ConfigKey::new("weight-price", "Score lost per unit of hourly price.", Some("10.0")))
        .key(ConfigKey::new("weight-interruption", "Score lost per expected interruption per hour.", Some("100.0")))
        .key(ConfigKey::new(
            "saturation-factor",
            "p95/SLO assumed for a saturated candidate (utilisation ≥ 1).",
            Some("10.0"),
        ))
        .key(ConfigKey::new("explain", "Report per-feature contributions with each score.", Some("true")))
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        let plugin = Self {
            w_latency: config.get("weight-latency")?,
            w_slo: config.get("weight-slo")?,
            w_headroom: config.get("weight-headroom")?,
            w_price: config.get("weight-price")?,
            w_interruption: config.get("weight-interruption")?,
            saturation_factor: config.get("saturation-factor")?,
            explain: config.get("explain")?,
        };
        let weights =
            [plugin.w_latency, plugin.w_slo, plugin.w_headroom, plugin.w_price, plugin.w_interruption];
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return Err(PluginError::InvalidConfig("weights must be finite and non-negative".into()));
        }
        if !(plugin.saturation_factor.is_finite() && plugin.saturation_factor >= 1.0) {
            return Err(PluginError::InvalidConfig("`saturation-factor` must be at least 1".into()));
        }
        Ok(plugin)
    }

    fn score(&mut self, workload: &Workload, candidates: &Candidates) -> Result<Scores, PluginError> {
        let cols = Columns::resolve(workload, candidates)?;
        let service = workload.service_ms.max(0.0);
        let slo = if workload.slo_p95_ms > 0.0 { workload.slo_p95_ms } else { f64::INFINITY };
        let width = candidates.width();
        let mut values = Vec::with_capacity(candidates.len());
        let mut contributions = if self.explain { vec![0.0; candidates.features.len()] } else { Vec::new() };

        for (i, row) in candidates.rows().enumerate() {
            let rtt: f64 = cols.rtt.iter().map(|&(c, share)| share * row[c]).sum();
            let utilisation = cols.utilisation.map_or(0.0, |c| row[c]);
            let replicas = cols.replicas.map_or(1.0, |c| row[c]);
            let wait_factor = queue_wait_factor(utilisation, replicas);
            let (queue_ms, p95_over_slo) = if wait_factor.is_finite() {
                let wait = service * wait_factor;
                (wait, (rtt + P95_OF_MEAN * (service + wait)) / slo)
            } else {
                (0.0, self.saturation_factor)
            };
            let queue_term = -self.w_latency * queue_ms - self.w_slo * (p95_over_slo - 1.0).max(0.0);
            let headroom_term = cols.headroom.map_or(0.0, |c| self.w_headroom * row[c]);
            let price_term = cols.price.map_or(0.0, |c| -self.w_price * row[c]);
            let interruption_term = cols.interruption.map_or(0.0, |c| -self.w_interruption * row[c]);
            let score = -self.w_latency * (rtt + service)
                + queue_term
                + headroom_term
                + price_term
                + interruption_term;
            values.push(score);

            if self.explain {
                let out = &mut contributions[i * width..(i + 1) * width];
                for &(c, share) in &cols.rtt {
                    out[c] = -self.w_latency * share * row[c];
                }
                let attributed = [
                    (cols.utilisation, queue_term),
                    (cols.headroom, headroom_term),
                    (cols.price, price_term),
                    (cols.interruption, interruption_term),
                ];
                for (column, term) in attributed {
                    if let Some(c) = column {
                        out[c] = term;
                    }
                }
            }
        }
        Ok(Scores { values, contributions })
    }
}

foresight_sdk::export_scorer!(LatencyAware);

#[cfg(test)]
mod tests {
    use super::*;

    fn scorer(config: &str) -> LatencyAware {
        LatencyAware::new(&Config::parse(config, &LatencyAware::describe_keys()).unwrap()).unwrap()
    }

    fn workload() -> Workload {
        Workload {
            service: "checkout".into(),
            regions: vec!["eu".into(), "us".into()],
            demand: vec![300.0, 100.0],
            slo_p95_ms: 150.0,
            service_ms: 10.0,
            cpu_request: 0.5,
            memory_request_gib: 1.0,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sakasegawa_matches_erlang_c_for_a_single_server() {
        // For M/M/1 the approximation is exact: Wq = ρ / (1 − ρ) service times.
        for rho in [0.1, 0.5, 0.9] {
            let exact = rho / (1.0 - rho);
            assert!((queue_wait_factor(rho, 1.0) - exact).abs() < 1e-12);
        }
        // M/M/2 at ρ = 0.5: Erlang C gives Wq = 1/3 service times; the approximation is close.
        assert!((queue_wait_factor(0.5, 2.0) - 1.0 / 3.0).abs() < 0.03);
        assert!(queue_wait_factor(1.0, 4.0).is_infinite());
    }

    #[test]
    fn demand_weights_the_round_trip() {
        let mut s = scorer("explain = false");
        // Candidate 0 is near the busy region, candidate 1 near the quiet one.
        let c = Candidates::new(names(&["rtt-ms:eu", "rtt-ms:us"]), vec![10.0, 90.0, 90.0, 10.0]).unwrap();
        let scores = s.score(&workload(), &c).unwrap();
        assert!(scores.values[0] > scores.values[1]);
        assert!(scores.contributions.is_empty());
        // Expected RTT: 0.75·10 + 0.25·90 = 30 ms, plus 10 ms service time, no queueing.
        assert!((scores.values[0] + 40.0).abs() < 1e-9);
    }

    #[test]
    fn a_saturated_or_slo_breaking_candidate_loses_to_a_farther_healthy_one() {
        let mut s = scorer("");
        let c = Candidates::new(
            names(&["rtt-ms:eu", "rtt-ms:us", "utilisation", "replicas"]),
            vec![5.0, 5.0, 1.0, 4.0, 60.0, 60.0, 0.5, 4.0, 5.0, 5.0, 0.97, 2.0],
        )
        .unwrap();
        let v = s.score(&workload(), &c).unwrap().values;
        assert!(v[1] > v[0], "saturated candidate won: {v:?}");
        assert!(v[1] > v[2], "candidate with a p95 far beyond the SLO won: {v:?}");
    }

    #[test]
    fn headroom_price_and_interruptions_break_ties() {
        let mut s = scorer("");
        let c = Candidates::new(
            names(&["headroom", "hourly-price", "interruption-rate"]),
            vec![0.5, 0.1, 0.0, 0.1, 0.1, 0.0, 0.5, 0.5, 0.0, 0.5, 0.1, 0.05],
        )
        .unwrap();
        let v = s.score(&workload(), &c).unwrap().values;
        assert!(v[0] > v[1] && v[0] > v[2] && v[0] > v[3], "{v:?}");
    }

    #[test]
    fn contributions_explain_the_feature_dependent_part_of_the_score() {
        let mut s = scorer("");
        let n =
            names(&["rtt-ms:eu", "rtt-ms:us", "utilisation", "replicas", "headroom", "hourly-price", "spot"]);
        let c = Candidates::new(n, vec![20.0, 70.0, 0.6, 3.0, 0.3, 0.2, 1.0]).unwrap();
        let scores = s.score(&workload(), &c).unwrap();
        let explained: f64 = scores.contributions.iter().sum();
        // Only the service time (a property of the workload, not of any feature) is unattributed.
        assert!((scores.values[0] - (explained - 10.0)).abs() < 1e-9);
        assert_eq!(scores.contributions[3], 0.0, "replicas act through utilisation");
        assert_eq!(scores.contributions[6], 0.0, "unknown and unused features contribute nothing");
    }

    #[test]
    fn bad_config_and_mismatched_demand_are_refused() {
        let keys = LatencyAware::describe_keys();
        let err = LatencyAware::new(&Config::parse("weight-price = -1", &keys).unwrap()).unwrap_err();
        assert!(err.to_string().contains("non-negative"));
        let mut w = workload();
        w.demand.pop();
        let c = Candidates::new(names(&["rtt-ms:eu"]), vec![1.0]).unwrap();
        assert!(scorer("").score(&w, &c).is_err());
    }

    #[test]
    fn an_empty_batch_gets_an_empty_answer() {
        let c = Candidates::new(names(&["rtt-ms:eu"]), vec![]).unwrap();
        let scores = scorer("").score(&workload(), &c).unwrap();
        assert!(scores.values.is_empty() && scores.contributions.is_empty());
    }
}

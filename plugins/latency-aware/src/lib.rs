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
//! were `saturation-factor` times the SLO. Asked to explain, it reports every term as the
//! contribution of the feature it comes from, so operators see why a cluster won.
//!
//! The power is computed by [`math::pow_unit`] from IEEE-exact operations only, so the
//! component and the native build (which the host uses as its fallback) give bit-identical
//! scores, and the hot loop costs about the same in the sandbox as natively.
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
//! let scores = scorer.score(&workload, &candidates, false).unwrap();
//! assert!(scores.values[0] > scores.values[1]);
//! ```

pub mod math;

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
        let share = |r: usize| {
            if total > 0.0 {
                workload.demand[r].max(0.0) / total
            } else {
                1.0 / workload.regions.len() as f64
            }
        };
        // One pass over the names, each matched once: this runs on every call.
        let mut cols = Self {
            rtt: Vec::with_capacity(workload.regions.len()),
            utilisation: None,
            replicas: None,
            headroom: None,
            price: None,
            interruption: None,
        };
        for (column, name) in candidates.feature_names.iter().enumerate() {
            let slot = match name.as_str() {
                features::UTILISATION => &mut cols.utilisation,
                features::REPLICAS => &mut cols.replicas,
                features::HEADROOM => &mut cols.headroom,
                features::HOURLY_PRICE => &mut cols.price,
                features::INTERRUPTION_RATE => &mut cols.interruption,
                other => {
                    let region = other.strip_prefix(features::RTT_PREFIX);
                    if let Some(r) =
                        region.and_then(|region| workload.regions.iter().position(|r| r == region))
                    {
                        cols.rtt.push((column, share(r)));
                    }
                    continue;
                }
            };
            // The first column of a name wins, as `Candidates::column` would have it.
            slot.get_or_insert(column);
        }
        Ok(cols)
    }
}

/// Regions whose RTT terms are unrolled in the hot loop; more take a general loop.
const UNROLLED_REGIONS: usize = 4;

/// The per-row arithmetic with every column resolved to an index and a weight, so the loop
/// has no branches and no inner loop: absent features point at column 0 with weight 0. This
/// matters most in the sandbox, where every loop back-edge also checks the deadline.
struct Kernel {
    rtt: [(usize, f64); UNROLLED_REGIONS],
    utilisation: (usize, f64),
    /// Replicas = row[column] · weight + offset (1 when the feature is absent).
    replicas: (usize, f64, f64),
    linear: [(usize, f64); 3],
}

impl Kernel {
    fn new(cols: &Columns, scorer: &LatencyAware) -> Option<Self> {
        if cols.rtt.len() > UNROLLED_REGIONS {
            return None;
        }
        let mut rtt = [(0, 0.0); UNROLLED_REGIONS];
        rtt[..cols.rtt.len()].copy_from_slice(&cols.rtt);
        let weighted = |column: Option<usize>, weight: f64| column.map_or((0, 0.0), |c| (c, weight));
        Some(Self {
            rtt,
            utilisation: weighted(cols.utilisation, 1.0),
            replicas: cols.replicas.map_or((0, 0.0, 1.0), |c| (c, 1.0, 0.0)),
            linear: [
                weighted(cols.headroom, scorer.w_headroom),
                weighted(cols.price, -scorer.w_price),
                weighted(cols.interruption, -scorer.w_interruption),
            ],
        })
    }

    /// (demand-weighted RTT, utilisation, replicas, headroom/price/interruption terms).
    #[inline(always)]
    fn read(&self, row: &[f64]) -> (f64, f64, f64, f64) {
        let [r0, r1, r2, r3] = self.rtt;
        let rtt = r0.1 * row[r0.0] + r1.1 * row[r1.0] + r2.1 * row[r2.0] + r3.1 * row[r3.0];
        let utilisation = self.utilisation.1 * row[self.utilisation.0];
        let replicas = self.replicas.1 * row[self.replicas.0] + self.replicas.2;
        let [l0, l1, l2] = self.linear;
        let linear = l0.1 * row[l0.0] + l1.1 * row[l1.0] + l2.1 * row[l2.0];
        (rtt, utilisation, replicas, linear)
    }
}

/// Mean queueing delay of an M/M/c queue, by Sakasegawa's approximation, in units of the service
/// time. Infinite when saturated.
#[inline(always)]
pub fn queue_wait_factor(utilisation: f64, servers: f64) -> f64 {
    // Selects rather than branches (and not `f64::max`, a libc call in Wasm), so the scoring
    // loop vectorises.
    let saturated = utilisation >= 1.0;
    let rho = if utilisation > 0.0 && !saturated { utilisation } else { 0.0 };
    let c = if servers > 1.0 { servers } else { 1.0 };
    let wait = math::pow_unit(rho, (2.0 * (c + 1.0)).sqrt() - 1.0) / (c * (1.0 - rho));
    if saturated { f64::INFINITY } else { wait }
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
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        let plugin = Self {
            w_latency: config.get("weight-latency")?,
            w_slo: config.get("weight-slo")?,
            w_headroom: config.get("weight-headroom")?,
            w_price: config.get("weight-price")?,
            w_interruption: config.get("weight-interruption")?,
            saturation_factor: config.get("saturation-factor")?,
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

    fn score(
        &mut self,
        workload: &Workload,
        candidates: &Candidates,
        explain: bool,
    ) -> Result<Scores, PluginError> {
        let cols = Columns::resolve(workload, candidates)?;
        let service = if workload.service_ms > 0.0 { workload.service_ms } else { 0.0 };
        let inv_slo = if workload.slo_p95_ms > 0.0 { 1.0 / workload.slo_p95_ms } else { 0.0 };
        let per_row = |inputs| self.row_score(inputs, service, inv_slo);
        // One pass, row by row, and a loop of its own for each combination, so the hot one (the
        // unrolled kernel, no explanations) carries nothing it does not use.
        let (values, queue_terms): (Vec<f64>, Vec<f64>) = match (Kernel::new(&cols, self), explain) {
            (Some(k), false) => (candidates.rows().map(|row| per_row(k.read(row)).0).collect(), Vec::new()),
            (Some(k), true) => candidates.rows().map(|row| per_row(k.read(row))).unzip(),
            (None, false) => {
                (candidates.rows().map(|row| per_row(self.read_general(&cols, row)).0).collect(), Vec::new())
            }
            (None, true) => candidates.rows().map(|row| per_row(self.read_general(&cols, row))).unzip(),
        };
        let contributions = if explain { self.explain(&cols, candidates, &queue_terms) } else { Vec::new() };
        Ok(Scores { values, contributions })
    }
}

impl LatencyAware {
    /// The score of one candidate from its inputs (demand-weighted RTT, utilisation, replicas,
    /// linear terms), and the queueing part of it.
    #[inline(always)]
    fn row_score(&self, inputs: (f64, f64, f64, f64), service: f64, inv_slo: f64) -> (f64, f64) {
        let (rtt, utilisation, replicas, linear) = inputs;
        let wait_factor = queue_wait_factor(utilisation, replicas);
        let saturated = wait_factor == f64::INFINITY;
        let queue_ms = if saturated { 0.0 } else { service * wait_factor };
        let p95_over_slo = if saturated {
            self.saturation_factor
        } else {
            (rtt + P95_OF_MEAN * (service + queue_ms)) * inv_slo
        };
        // max(0, x) as (x + |x|) / 2: exact, and no data-dependent branch.
        let excess = p95_over_slo - 1.0;
        let over_slo = 0.5 * (excess + excess.abs());
        let queue_term = -self.w_latency * queue_ms - self.w_slo * over_slo;
        (-self.w_latency * (rtt + service) + queue_term + linear, queue_term)
    }

    /// What [`Kernel::read`] computes, for workloads with more regions than it unrolls.
    fn read_general(&self, cols: &Columns, row: &[f64]) -> (f64, f64, f64, f64) {
        let rtt = cols.rtt.iter().map(|&(c, share)| share * row[c]).sum();
        let linear = cols.headroom.map_or(0.0, |c| self.w_headroom * row[c])
            - cols.price.map_or(0.0, |c| self.w_price * row[c])
            - cols.interruption.map_or(0.0, |c| self.w_interruption * row[c]);
        (rtt, cols.utilisation.map_or(0.0, |c| row[c]), cols.replicas.map_or(1.0, |c| row[c]), linear)
    }

    /// Each score's terms, attributed to the feature they come from.
    fn explain(&self, cols: &Columns, candidates: &Candidates, queue_terms: &[f64]) -> Vec<f64> {
        let mut contributions = vec![0.0; candidates.features.len()];
        let width = candidates.width();
        for ((row, out), &queue) in
            candidates.rows().zip(contributions.chunks_exact_mut(width.max(1))).zip(queue_terms)
        {
            for &(c, share) in &cols.rtt {
                out[c] = -self.w_latency * share * row[c];
            }
            let attributed = [
                (cols.utilisation, queue),
                (cols.headroom, cols.headroom.map_or(0.0, |c| self.w_headroom * row[c])),
                (cols.price, cols.price.map_or(0.0, |c| -self.w_price * row[c])),
                (cols.interruption, cols.interruption.map_or(0.0, |c| -self.w_interruption * row[c])),
            ];
            for (column, term) in attributed {
                if let Some(c) = column {
                    out[c] = term;
                }
            }
        }
        contributions
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
            assert!((queue_wait_factor(rho, 1.0) / exact - 1.0).abs() < 1e-12);
        }
        // M/M/2 at ρ = 0.5: Erlang C gives Wq = 1/3 service times; the approximation gives
        // 0.366, within the 10 % its authors report.
        assert!((queue_wait_factor(0.5, 2.0) / (1.0 / 3.0) - 1.0).abs() < 0.1);
        assert!(queue_wait_factor(1.0, 4.0).is_infinite());
    }

    #[test]
    fn demand_weights_the_round_trip() {
        let mut s = scorer("");
        // Candidate 0 is near the busy region, candidate 1 near the quiet one.
        let c = Candidates::new(names(&["rtt-ms:eu", "rtt-ms:us"]), vec![10.0, 90.0, 90.0, 10.0]).unwrap();
        let scores = s.score(&workload(), &c, false).unwrap();
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
        let v = s.score(&workload(), &c, false).unwrap().values;
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
        let v = s.score(&workload(), &c, false).unwrap().values;
        assert!(v[0] > v[1] && v[0] > v[2] && v[0] > v[3], "{v:?}");
    }

    #[test]
    fn contributions_explain_the_feature_dependent_part_of_the_score() {
        let mut s = scorer("");
        let n =
            names(&["rtt-ms:eu", "rtt-ms:us", "utilisation", "replicas", "headroom", "hourly-price", "spot"]);
        let c = Candidates::new(n, vec![20.0, 70.0, 0.6, 3.0, 0.3, 0.2, 1.0]).unwrap();
        let scores = s.score(&workload(), &c, true).unwrap();
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
        assert!(scorer("").score(&w, &c, false).is_err());
    }

    #[test]
    fn workloads_with_many_regions_score_as_the_unrolled_kernel_would() {
        // Six regions take the general path; the same numbers with four take the kernel.
        let regions: Vec<String> = (0..6).map(|r| format!("r{r}")).collect();
        let mut many = workload();
        many.regions = regions.clone();
        many.demand = vec![10.0, 20.0, 30.0, 40.0, 0.0, 0.0];
        let mut few = many.clone();
        few.regions.truncate(4);
        few.demand.truncate(4);
        let mut names: Vec<String> = regions.iter().map(|r| features::rtt(r)).collect();
        names.extend(["utilisation", "replicas", "headroom", "hourly-price"].map(String::from));
        let row = [12.0, 40.0, 7.0, 90.0, 300.0, 5.0, 0.7, 6.0, 0.2, 0.35];
        let many_c = Candidates::new(names.clone(), row.to_vec()).unwrap();
        let few_names: Vec<String> =
            names.iter().filter(|n| *n != "rtt-ms:r4" && *n != "rtt-ms:r5").cloned().collect();
        let few_row: Vec<f64> = row[..4].iter().chain(&row[6..]).copied().collect();
        let few_c = Candidates::new(few_names, few_row).unwrap();
        let a = scorer("").score(&many, &many_c, true).unwrap();
        let b = scorer("").score(&few, &few_c, true).unwrap();
        assert!((a.values[0] - b.values[0]).abs() < 1e-9, "{} vs {}", a.values[0], b.values[0]);
    }

    #[test]
    fn an_empty_batch_gets_an_empty_answer() {
        let c = Candidates::new(names(&["rtt-ms:eu"]), vec![]).unwrap();
        let scores = scorer("").score(&workload(), &c, true).unwrap();
        assert!(scores.values.is_empty() && scores.contributions.is_empty());
    }
}

//! Scenario files: the TOML that describes a simulated world, read in two phases — raw serde
//! structs that mirror the file, then a validated [`Scenario`] the simulator can trust. Every
//! refusal names the file, the line, the key and how to fix it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use foresight_sdk::Offering;

use super::trace::Trace;
use crate::observe::ClusterKind;

/// A scenario that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for a scenario (syntax, unknown key, wrong type).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is out of range or refers to something that does not exist.
    #[error("{path}:{line}: `{key}` {problem}; {fix}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending value (0 when unknown).
        line: usize,
        /// Dotted key.
        key: String,
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
}

// ----- Raw: mirrors the file -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    scenario: RawHeader,
    regions: Vec<RawRegion>,
    offerings: Vec<RawOffering>,
    clusters: Vec<RawCluster>,
    #[serde(default)]
    services: Vec<RawService>,
    #[serde(default)]
    events: Vec<RawEvent>,
    #[serde(default)]
    batch_jobs: Vec<RawBatch>,
    #[serde(default)]
    disruptions: Vec<RawDisruption>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHeader {
    name: String,
    #[serde(default)]
    description: String,
    start: Spanned<String>,
    duration: Spanned<String>,
    #[serde(default = "default_step")]
    step: Spanned<String>,
    #[serde(default)]
    seed: u64,
}

fn default_step() -> Spanned<String> {
    Spanned::new(0..0, "1m".to_owned())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRegion {
    name: String,
    #[serde(default)]
    utc_offset_h: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawOffering {
    name: String,
    vcpu: Spanned<f64>,
    memory_gib: Spanned<f64>,
    hourly_price: Spanned<f64>,
    #[serde(default)]
    spot: bool,
    #[serde(default = "zero")]
    interruption_rate: Spanned<f64>,
    #[serde(default)]
    lead_time_s: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCluster {
    name: Spanned<String>,
    kind: ClusterKind,
    rtt_ms: BTreeMap<Spanned<String>, Spanned<f64>>,
    #[serde(default)]
    peer_rtt_ms: BTreeMap<Spanned<String>, Spanned<f64>>,
    pools: Vec<RawPool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPool {
    offering: Spanned<String>,
    nodes: u32,
    max_nodes: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawService {
    name: Spanned<String>,
    slo_p95_ms: Spanned<f64>,
    service_ms: Spanned<f64>,
    /// Coefficient of variation of the service time; 1 (exponential) when left out.
    service_time_cv: Option<Spanned<f64>>,
    cpu_per_replica: Spanned<f64>,
    memory_gib_per_replica: Spanned<f64>,
    #[serde(default)]
    startup_s: u32,
    demand: RawDemand,
    #[serde(default)]
    replicas: BTreeMap<Spanned<String>, u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDemand {
    trace: Spanned<String>,
    mean_rps: Spanned<f64>,
    /// Share of the demand per region; default: equal shares.
    #[serde(default)]
    shares: BTreeMap<Spanned<String>, Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEvent {
    name: String,
    #[serde(default)]
    service: Option<Spanned<String>>,
    at: Spanned<String>,
    duration: Spanned<String>,
    multiplier: Spanned<f64>,
    /// Time over which demand moves from ×1 to the multiplier, linearly; none: at once.
    #[serde(default)]
    ramp: Option<Spanned<String>>,
    #[serde(default = "yes")]
    announced: bool,
}

fn zero() -> Spanned<f64> {
    Spanned::new(0..0, 0.0)
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBatch {
    cluster: Spanned<String>,
    cores: Spanned<f64>,
}

/// One table for every kind (spans do not survive serde's tagged enums); `kind` picks which
/// fields are required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDisruption {
    kind: Spanned<String>,
    at: Spanned<String>,
    duration: Spanned<String>,
    multiplier: Option<Spanned<f64>>,
    #[serde(default)]
    clusters: Vec<Spanned<String>>,
    cluster: Option<Spanned<String>>,
}

// ----- Validated -------------------------------------------------------------------------

/// A node pool: one offering in one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSpec {
    /// Index into [`Scenario::offerings`].
    pub offering: usize,
    /// Nodes at the start.
    pub nodes: u32,
    /// Most nodes the pool may hold (edge pools: the start count).
    pub max_nodes: u32,
}

/// A cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    /// Name.
    pub name: String,
    /// Edge or cloud.
    pub kind: ClusterKind,
    /// RTT from each region, in [`Scenario::regions`] order.
    pub rtt_ms: Vec<f64>,
    /// RTT to each cluster (0 to itself), in [`Scenario::clusters`] order.
    pub peer_rtt_ms: Vec<f64>,
    /// Node pools.
    pub pools: Vec<PoolSpec>,
}

/// A service and its demand.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// Name.
    pub name: String,
    /// p95 objective, ms.
    pub slo_p95_ms: f64,
    /// CPU time per request, ms (the mean).
    pub service_ms: f64,
    /// Coefficient of variation of the time a request takes (standard deviation over mean):
    /// 1 is the exponential of M/M/c; the simulator judges latency with it while the planner
    /// keeps its own M/M/c model.
    pub service_time_cv: f64,
    /// Cores per replica.
    pub cpu_per_replica: f64,
    /// GiB per replica.
    pub memory_gib_per_replica: f64,
    /// Seconds from scheduling to serving.
    pub startup_s: u32,
    /// Demand per region (req/s), in [`Scenario::regions`] order; shared, since many services
    /// may be driven by the same trace.
    pub demand: Vec<Arc<Trace>>,
    /// Replicas per cluster at the start, in [`Scenario::clusters`] order.
    pub replicas: Vec<u32>,
}

/// A change in demand.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    /// Name.
    pub name: String,
    /// Service index, or every service.
    pub service: Option<usize>,
    /// Start, Unix seconds.
    pub start: i64,
    /// End, Unix seconds.
    pub end: i64,
    /// Demand multiplier.
    pub multiplier: f64,
    /// Seconds over which demand moves linearly from ×1 to `multiplier` after `start` (0: at once).
    pub ramp_s: u64,
    /// Whether forecasters are told in advance.
    pub announced: bool,
}

impl EventSpec {
    /// The factor on demand at `t`: 1 outside the event, `multiplier` once ramped up.
    pub fn factor(&self, t: i64) -> f64 {
        if !(self.start..self.end).contains(&t) {
            return 1.0;
        }
        if self.ramp_s == 0 {
            return self.multiplier;
        }
        let progress = ((t - self.start) as f64 / self.ramp_s as f64).min(1.0);
        1.0 + (self.multiplier - 1.0) * progress
    }
}

/// Low-priority work that fills spare cores.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSpec {
    /// Cluster index.
    pub cluster: usize,
    /// Cores it would use if free.
    pub cores: f64,
}

/// Something that goes wrong on schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Disruption {
    /// Spot interruption rates multiplied in some clusters.
    SpotStorm {
        /// Start, Unix seconds.
        start: i64,
        /// End, Unix seconds.
        end: i64,
        /// Rate multiplier.
        multiplier: f64,
        /// Cluster indices.
        clusters: Vec<usize>,
    },
    /// A cluster unreachable, its nodes gone, until it recovers.
    Outage {
        /// Start, Unix seconds.
        start: i64,
        /// End, Unix seconds.
        end: i64,
        /// Cluster index.
        cluster: usize,
    },
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// What it exercises.
    pub description: String,
    /// Simulated start, Unix seconds.
    pub start: i64,
    /// Simulated length, seconds.
    pub duration_s: u64,
    /// Seconds per tick.
    pub step_s: u32,
    /// Random seed (spot interruptions).
    pub seed: u64,
    /// User regions.
    pub regions: Vec<String>,
    /// Instance types. `max_nodes` and `current_nodes` belong to a pool, not an offering, and
    /// are 0 here; observations fill them in per pool.
    pub offerings: Vec<Offering>,
    /// Clusters.
    pub clusters: Vec<ClusterSpec>,
    /// Services.
    pub services: Vec<ServiceSpec>,
    /// Demand events.
    pub events: Vec<EventSpec>,
    /// Batch work.
    pub batch_jobs: Vec<BatchSpec>,
    /// Scheduled disruptions.
    pub disruptions: Vec<Disruption>,
}

impl Scenario {
    /// Reads and validates a scenario file; trace paths are relative to the file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Read { path: path.into(), source })?;
        Self::parse(path, &text)
    }

    /// Validates scenario text; `path` names it in errors and anchors trace paths.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ScenarioError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| ScenarioError::Syntax {
            path: path.into(),
            message: e.to_string().trim().to_owned(),
        })?;
        Validator { path, text }.validate(raw)
    }

    /// Index of a cluster by name.
    pub fn cluster_index(&self, name: &str) -> Option<usize> {
        self.clusters.iter().position(|c| c.name == name)
    }

    /// Requests/s of service `s` from each region at `t`: its traces times the events under way.
    pub fn demand(&self, s: usize, t: i64) -> Vec<f64> {
        let multiplier: f64 =
            self.events.iter().filter(|e| e.service.is_none_or(|x| x == s)).map(|e| e.factor(t)).product();
        self.services[s].demand.iter().map(|trace| trace.at(t).max(0.0) * multiplier).collect()
    }

    /// Number of ticks in the scenario.
    pub fn ticks(&self) -> u64 {
        self.duration_s / u64::from(self.step_s)
    }
}

/// Smallest service-time coefficient of variation a scenario may give: below it the service
/// time is all but constant, which the latency model does not represent.
const MIN_CV: f64 = 0.1;
/// Largest: beyond it two moments say little about the tail.
const MAX_CV: f64 = 10.0;

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    fn line(&self, span: std::ops::Range<usize>) -> usize {
        if span.end == 0 {
            return 0;
        }
        self.text[..span.start.min(self.text.len())].lines().count().max(1)
    }

    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Result<T, ScenarioError> {
        Err(ScenarioError::Invalid {
            path: self.path.into(),
            line: self.line(span),
            key: key.to_owned(),
            problem: problem.into(),
            fix: fix.into(),
        })
    }

    fn duration(&self, value: &Spanned<String>, key: &str) -> Result<u64, ScenarioError> {
        match humantime::parse_duration(value.get_ref()) {
            Ok(d) => Ok(d.as_secs()),
            Err(e) => self.err(
                value.span(),
                key,
                format!("`{}` is not a duration ({e})", value.get_ref()),
                "write it like \"30m\", \"2h\" or \"7d\"",
            ),
        }
    }

    fn number(
        &self,
        value: &Spanned<f64>,
        key: &str,
        min: f64,
        strictly: bool,
    ) -> Result<f64, ScenarioError> {
        let v = *value.get_ref();
        let ok = v.is_finite() && if strictly { v > min } else { v >= min };
        if ok {
            Ok(v)
        } else {
            let bound = if strictly { "greater than" } else { "at least" };
            self.err(
                value.span(),
                key,
                format!("is {v}"),
                format!("it must be a finite number {bound} {min}"),
            )
        }
    }

    fn lookup(
        &self,
        names: &[String],
        name: &Spanned<String>,
        key: &str,
        what: &str,
    ) -> Result<usize, ScenarioError> {
        match names.iter().position(|n| n == name.get_ref()) {
            Some(i) => Ok(i),
            None => self.err(
                name.span(),
                key,
                format!("names unknown {what} `{}`", name.get_ref()),
                format!("use one of: {}", names.join(", ")),
            ),
        }
    }

    fn validate(&self, raw: RawFile) -> Result<Scenario, ScenarioError> {
        let h = &raw.scenario;
        let start = match humantime::parse_rfc3339(h.start.get_ref()) {
            Ok(t) => t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0),
            Err(e) => {
                return self.err(
                    h.start.span(),
                    "scenario.start",
                    format!("is not an RFC 3339 time ({e})"),
                    "write it like \"2024-03-04T00:00:00Z\"",
                );
            }
        };
        let duration_s = self.duration(&h.duration, "scenario.duration")?;
        let step_s = self.duration(&h.step, "scenario.step")?;
        if step_s == 0 || step_s > 3600 {
            return self.err(
                h.step.span(),
                "scenario.step",
                format!("is {step_s} s"),
                "use a step between 1 s and 1 h",
            );
        }
        if duration_s < step_s {
            return self.err(
                h.duration.span(),
                "scenario.duration",
                "is shorter than one step",
                "make the scenario last at least one step",
            );
        }

        let regions: Vec<String> = raw.regions.iter().map(|r| r.name.clone()).collect();
        if regions.is_empty() {
            return self.err(0..0, "regions", "is empty", "declare at least one [[regions]]");
        }

        let mut offerings = Vec::new();
        for (i, o) in raw.offerings.iter().enumerate() {
            let key = |k: &str| format!("offerings[{i}].{k}");
            offerings.push(Offering {
                name: o.name.clone(),
                vcpu: self.number(&o.vcpu, &key("vcpu"), 0.0, true)?,
                memory_gib: self.number(&o.memory_gib, &key("memory-gib"), 0.0, true)?,
                hourly_price: self.number(&o.hourly_price, &key("hourly-price"), 0.0, false)?,
                spot: o.spot,
                interruption_rate: self.number(
                    &o.interruption_rate,
                    &key("interruption-rate"),
                    0.0,
                    false,
                )?,
                lead_time_s: o.lead_time_s,
                max_nodes: 0,
                current_nodes: 0,
            });
        }
        let offering_names: Vec<String> = offerings.iter().map(|o| o.name.clone()).collect();

        let cluster_names: Vec<String> = raw.clusters.iter().map(|c| c.name.get_ref().clone()).collect();
        let mut clusters = Vec::new();
        for (i, c) in raw.clusters.iter().enumerate() {
            let mut rtt_ms = vec![f64::NAN; regions.len()];
            for (region, rtt) in &c.rtt_ms {
                let r = self.lookup(&regions, region, &format!("clusters[{i}].rtt-ms"), "region")?;
                rtt_ms[r] =
                    self.number(rtt, &format!("clusters[{i}].rtt-ms.{}", region.get_ref()), 0.0, false)?;
            }
            if let Some(r) = rtt_ms.iter().position(|v| v.is_nan()) {
                return self.err(
                    c.name.span(),
                    &format!("clusters[{i}].rtt-ms"),
                    format!("has no RTT for region `{}`", regions[r]),
                    "give an RTT (ms) from every region",
                );
            }
            let mut pools = Vec::new();
            for (j, p) in c.pools.iter().enumerate() {
                let offering = self.lookup(
                    &offering_names,
                    &p.offering,
                    &format!("clusters[{i}].pools[{j}].offering"),
                    "offering",
                )?;
                let max_nodes = match (c.kind, p.max_nodes) {
                    (ClusterKind::Edge, _) => p.nodes,
                    (ClusterKind::Cloud, Some(m)) => m,
                    (ClusterKind::Cloud, None) => p.nodes,
                };
                if p.nodes > max_nodes {
                    return self.err(
                        p.offering.span(),
                        &format!("clusters[{i}].pools[{j}].nodes"),
                        format!("{} nodes exceed max-nodes {max_nodes}", p.nodes),
                        "raise max-nodes or start with fewer nodes",
                    );
                }
                pools.push(PoolSpec { offering, nodes: p.nodes, max_nodes });
            }
            clusters.push(ClusterSpec {
                name: cluster_names[i].clone(),
                kind: c.kind,
                rtt_ms,
                peer_rtt_ms: Vec::new(),
                pools,
            });
        }
        if clusters.is_empty() {
            return self.err(0..0, "clusters", "is empty", "declare at least one [[clusters]]");
        }
        // Cluster-to-cluster RTTs: as given (and symmetric), else bounded through the nearest
        // shared user region, which is what a route between them would at most cost.
        let n = clusters.len();
        let mut peers = vec![vec![f64::NAN; n]; n];
        for (i, c) in raw.clusters.iter().enumerate() {
            peers[i][i] = 0.0;
            for (peer, rtt) in &c.peer_rtt_ms {
                let j =
                    self.lookup(&cluster_names, peer, &format!("clusters[{i}].peer-rtt-ms"), "cluster")?;
                let v =
                    self.number(rtt, &format!("clusters[{i}].peer-rtt-ms.{}", peer.get_ref()), 0.0, false)?;
                peers[i][j] = v;
                if peers[j][i].is_nan() {
                    peers[j][i] = v;
                }
            }
        }
        for i in 0..n {
            for j in 0..n {
                if peers[i][j].is_nan() {
                    peers[i][j] = (0..regions.len())
                        .map(|r| clusters[i].rtt_ms[r] + clusters[j].rtt_ms[r])
                        .fold(f64::INFINITY, f64::min);
                }
            }
        }
        for (c, row) in clusters.iter_mut().zip(peers) {
            c.peer_rtt_ms = row;
        }

        let base = self.path.parent().unwrap_or(Path::new("."));
        let mut traces: BTreeMap<String, Trace> = BTreeMap::new();
        let mut services = Vec::new();
        for (i, s) in raw.services.iter().enumerate() {
            let key = |k: &str| format!("services[{i}].{k}");
            let file = s.demand.trace.get_ref();
            let trace = match traces.get(file) {
                Some(t) => t.clone(),
                None => match Trace::load(&base.join(file)) {
                    Ok(t) => {
                        traces.insert(file.clone(), t.clone());
                        t
                    }
                    Err(e) => {
                        return self.err(
                            s.demand.trace.span(),
                            &key("demand.trace"),
                            format!("cannot be used: {e}"),
                            "point it at a `timestamp,value` CSV, relative to the scenario file",
                        );
                    }
                },
            };
            let mean = self.number(&s.demand.mean_rps, &key("demand.mean-rps"), 0.0, false)?;
            let mut shares = vec![
                if s.demand.shares.is_empty() { 1.0 / regions.len() as f64 } else { 0.0 };
                regions.len()
            ];
            for (region, share) in &s.demand.shares {
                let r = self.lookup(&regions, region, &key("demand.shares"), "region")?;
                shares[r] =
                    self.number(share, &key(&format!("demand.shares.{}", region.get_ref())), 0.0, false)?;
            }
            let total: f64 = shares.iter().sum();
            if total <= 0.0 {
                return self.err(
                    s.demand.mean_rps.span(),
                    &key("demand.shares"),
                    "are all zero",
                    "give at least one region a positive share",
                );
            }
            // The trace is taken to be in the first region's local time; the others see the same
            // daily shape shifted by their offset from it.
            let home = raw.regions[0].utc_offset_h;
            let demand = raw
                .regions
                .iter()
                .zip(&shares)
                .map(|(r, share)| {
                    Arc::new(trace.derive(((r.utc_offset_h - home) * 3600.0) as i64, mean * share / total))
                })
                .collect();
            let mut replicas = vec![0; clusters.len()];
            for (cluster, n) in &s.replicas {
                replicas[self.lookup(&cluster_names, cluster, &key("replicas"), "cluster")?] = *n;
            }
            services.push(ServiceSpec {
                name: s.name.get_ref().clone(),
                slo_p95_ms: self.number(&s.slo_p95_ms, &key("slo-p95-ms"), 0.0, true)?,
                service_ms: self.number(&s.service_ms, &key("service-ms"), 0.0, true)?,
                service_time_cv: match &s.service_time_cv {
                    None => 1.0,
                    Some(cv) => {
                        let v = self.number(cv, &key("service-time-cv"), MIN_CV, false)?;
                        if v > MAX_CV {
                            return self.err(
                                cv.span(),
                                &key("service-time-cv"),
                                format!("is {v}"),
                                format!("use a coefficient of variation between {MIN_CV} and {MAX_CV}"),
                            );
                        }
                        v
                    }
                },
                cpu_per_replica: self.number(&s.cpu_per_replica, &key("cpu-per-replica"), 0.0, true)?,
                memory_gib_per_replica: self.number(
                    &s.memory_gib_per_replica,
                    &key("memory-gib-per-replica"),
                    0.0,
                    false,
                )?,
                startup_s: s.startup_s,
                demand,
                replicas,
            });
        }
        let service_names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();

        let mut events = Vec::new();
        for (i, e) in raw.events.iter().enumerate() {
            let key = |k: &str| format!("events[{i}].{k}");
            let at = start + self.duration(&e.at, &key("at"))? as i64;
            let service = match &e.service {
                Some(name) => Some(self.lookup(&service_names, name, &key("service"), "service")?),
                None => None,
            };
            events.push(EventSpec {
                name: e.name.clone(),
                service,
                start: at,
                end: at + self.duration(&e.duration, &key("duration"))? as i64,
                multiplier: self.number(&e.multiplier, &key("multiplier"), 0.0, false)?,
                ramp_s: match &e.ramp {
                    Some(ramp) => self.duration(ramp, &key("ramp"))?,
                    None => 0,
                },
                announced: e.announced,
            });
        }

        let mut batch_jobs = Vec::new();
        for (i, b) in raw.batch_jobs.iter().enumerate() {
            batch_jobs.push(BatchSpec {
                cluster: self.lookup(
                    &cluster_names,
                    &b.cluster,
                    &format!("batch-jobs[{i}].cluster"),
                    "cluster",
                )?,
                cores: self.number(&b.cores, &format!("batch-jobs[{i}].cores"), 0.0, false)?,
            });
        }

        let mut disruptions = Vec::new();
        for (i, d) in raw.disruptions.iter().enumerate() {
            let key = |k: &str| format!("disruptions[{i}].{k}");
            let at_s = start + self.duration(&d.at, &key("at"))? as i64;
            let end = at_s + self.duration(&d.duration, &key("duration"))? as i64;
            disruptions.push(match d.kind.get_ref().as_str() {
                "spot-storm" => {
                    let Some(multiplier) = &d.multiplier else {
                        return self.err(
                            d.kind.span(),
                            &key("multiplier"),
                            "is missing",
                            "give the factor the interruption rate is multiplied by",
                        );
                    };
                    if d.clusters.is_empty() {
                        return self.err(
                            d.kind.span(),
                            &key("clusters"),
                            "is missing or empty",
                            "list the clusters the storm hits",
                        );
                    }
                    let mut clusters = Vec::new();
                    for name in &d.clusters {
                        clusters.push(self.lookup(&cluster_names, name, &key("clusters"), "cluster")?);
                    }
                    Disruption::SpotStorm {
                        start: at_s,
                        end,
                        multiplier: self.number(multiplier, &key("multiplier"), 0.0, false)?,
                        clusters,
                    }
                }
                "outage" => {
                    let Some(cluster) = &d.cluster else {
                        return self.err(
                            d.kind.span(),
                            &key("cluster"),
                            "is missing",
                            "name the cluster that goes down",
                        );
                    };
                    Disruption::Outage {
                        start: at_s,
                        end,
                        cluster: self.lookup(&cluster_names, cluster, &key("cluster"), "cluster")?,
                    }
                }
                other => {
                    return self.err(
                        d.kind.span(),
                        &key("kind"),
                        format!("is `{other}`"),
                        "use \"spot-storm\" or \"outage\"",
                    );
                }
            });
        }

        Ok(Scenario {
            name: h.name.clone(),
            description: h.description.clone(),
            start,
            duration_s,
            step_s: step_s as u32,
            seed: h.seed,
            regions,
            offerings,
            clusters,
            services,
            events,
            batch_jobs,
            disruptions,
        })
    }
}

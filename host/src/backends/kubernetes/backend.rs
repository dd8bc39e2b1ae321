//! [`KubeBackend`]: the Kubernetes backend behind the loop's synchronous [`Observer`] and
//! [`Actuator`](crate::act::Actuator). Reflectors, the Lease and API calls run on a tokio
//! runtime of their own; each tick reads the reflected state, the live usage and the
//! Prometheus history, and acts against the snapshot it observed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use kube::api::{Api, DynamicObject};
use tokio::sync::watch;

use super::actuate::{Actuator, Leadership, Settings};
use super::api::Retry;
use super::lease::{Elector, Role};
use super::prometheus::{Prometheus, RangeSeries};
use super::reflect::{self, Health, Stores};
use super::resources::{self, PodUsage};
use super::snapshot::Snapshot;
use super::view::{self, ClusterObjects};
use crate::act::{Action, Outcome};
use crate::config::kubernetes::{ClusterConfig, KubernetesConfig, duration};
use crate::decide::Decision;
use crate::observe::{Observation, ObserveError, Observer, ServiceView};

/// One watched cluster.
struct Watched {
    config: ClusterConfig,
    client: kube::Client,
    stores: Stores,
    health: Arc<watch::Sender<Health>>,
}

/// The Lease as last seen by the election task.
#[derive(Debug, Clone, Default)]
struct LeaderState {
    role: Option<Role>,
    /// When we last renewed it (our clock).
    renewed: Option<SystemTime>,
    error: Option<String>,
}

/// Real clusters, through kube-rs and Prometheus.
pub struct KubeBackend {
    config: KubernetesConfig,
    max_age: Duration,
    step_s: u32,
    lease_duration: Duration,
    handle: tokio::runtime::Handle,
    _runtime: Option<tokio::runtime::Runtime>,
    clusters: Vec<Watched>,
    prometheus: Prometheus,
    actuator: Actuator,
    leader: Option<Arc<Mutex<LeaderState>>>,
    snapshot: Snapshot,
    objects: Vec<ClusterObjects>,
    /// Demand series per service fetched this tick, by window.
    history: RefCell<BTreeMap<(String, u32), Vec<RangeSeries>>>,
}

fn secs(key: &str, text: &str) -> anyhow::Result<Duration> {
    duration(key, text).map_err(|(k, m)| anyhow::anyhow!("`{k}` {m}"))
}

/// The identity Events and the Lease name this instance by.
fn identity(config: &KubernetesConfig) -> String {
    config
        .leader
        .identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("foresight-{}", std::process::id()))
}

async fn connect(cluster: &ClusterConfig) -> anyhow::Result<kube::Client> {
    let config = match &cluster.context {
        Some(context) => {
            let options = kube::config::KubeConfigOptions { context: Some(context.clone()), ..Default::default() };
            kube::Config::from_kubeconfig(&options).await.with_context(|| {
                format!(
                    "cluster `{}`: cannot load kubeconfig context `{context}` (from $KUBECONFIG or ~/.kube/config); check backend.kubernetes.clusters context",
                    cluster.name
                )
            })?
        }
        None => match kube::Config::incluster() {
            Ok(c) => c,
            Err(_) => kube::Config::infer().await.with_context(|| {
                format!(
                    "cluster `{}` has no context and this is not a pod: set its `context` to a kubeconfig context",
                    cluster.name
                )
            })?,
        },
    };
    kube::Client::try_from(config)
        .with_context(|| format!("cluster `{}`: building its API client", cluster.name))
}

impl KubeBackend {
    /// Connects to every configured cluster (kubeconfig contexts, or the in-cluster
    /// configuration) and starts watching them.
    pub fn connect(config: &KubernetesConfig, step_s: u32) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("foresight-kube")
            .enable_all()
            .build()
            .context("starting the Kubernetes backend's runtime")?;
        let clients = runtime.block_on(async {
            let mut clients = Vec::new();
            for c in &config.clusters {
                clients.push((c.name.clone(), connect(c).await?));
            }
            anyhow::Ok(clients)
        })?;
        let handle = runtime.handle().clone();
        let mut backend = Self::with_clients(config, step_s, clients, handle)?;
        backend._runtime = Some(runtime);
        Ok(backend)
    }

    /// A backend over given clients (one per configured cluster, by name), on `handle`.
    pub fn with_clients(
        config: &KubernetesConfig,
        step_s: u32,
        clients: Vec<(String, kube::Client)>,
        handle: tokio::runtime::Handle,
    ) -> anyhow::Result<Self> {
        let key = |k: &str| format!("backend.kubernetes.{k}");
        let retry = Retry {
            attempts: config.retry.attempts.max(1),
            backoff: secs(&key("retry.backoff"), &config.retry.backoff)?,
        };
        let max_age = secs(&key("max-data-age"), &config.max_data_age)?;
        let lease_duration = secs(&key("leader.lease-duration"), &config.leader.lease_duration)?;
        let timeout = secs(&key("prometheus.timeout"), &config.prometheus.timeout)?;
        let by_name: BTreeMap<String, kube::Client> = clients.into_iter().collect();
        let _entered = handle.enter();
        let mut clusters = Vec::new();
        for c in &config.clusters {
            let client = by_name
                .get(&c.name)
                .cloned()
                .with_context(|| format!("no API client for cluster `{}`", c.name))?;
            // A failing watch is retried no faster than twice a second, whatever the call retries.
            let (stores, health) =
                reflect::start(client.clone(), retry.backoff.max(Duration::from_millis(500)));
            clusters.push(Watched { config: c.clone(), client, stores, health });
        }
        let identity = identity(config);
        let settings = Settings {
            dry_run: config.dry_run,
            actions: config.actions.clone(),
            namespace: config.namespace.clone(),
            field_manager: config.field_manager.clone(),
            identity: identity.clone(),
            retry,
            scores_hub: config.placement_scores.hub.clone(),
            scores_name: config.placement_scores.name.clone(),
            scores_valid_for: secs(&key("placement-scores.valid-for"), &config.placement_scores.valid_for)?,
        };
        let leader = if config.leader.enabled {
            let holder = config.leader.cluster.as_ref().or(config.clusters.first().map(|c| &c.name));
            let client = holder
                .and_then(|h| by_name.get(h))
                .cloned()
                .context("no cluster to hold the leader Lease")?;
            let elector = Elector::new(
                client,
                &config.namespace,
                &config.leader.name,
                &identity,
                lease_duration,
                retry,
            );
            Some(elect(elector))
        } else {
            None
        };
        Ok(Self {
            max_age,
            step_s: step_s.max(1),
            lease_duration,
            prometheus: Prometheus::new(&config.prometheus.url, timeout),
            actuator: Actuator::new(settings, by_name),
            config: config.clone(),
            handle: handle.clone(),
            _runtime: None,
            clusters,
            leader,
            snapshot: Snapshot::default(),
            objects: Vec::new(),
            history: RefCell::new(BTreeMap::new()),
        })
    }

    /// Each cluster's watch health, for status.
    pub fn health(&self) -> Vec<(String, Health)> {
        self.clusters.iter().map(|c| (c.config.name.clone(), c.health.borrow().clone())).collect()
    }

    /// Subscribes to a cluster's watch health (tests wait on it).
    pub fn watch_health(&self, cluster: &str) -> Option<watch::Receiver<Health>> {
        self.clusters.iter().find(|c| c.config.name == cluster).map(|c| c.health.subscribe())
    }

    /// Whether this instance may act now, or who leads instead.
    pub fn leadership(&self) -> Leadership {
        let Some(state) = &self.leader else { return Ok(()) };
        let state = state.lock().expect("leader state").clone();
        // Stop acting well before the Lease could expire for the others.
        let fresh =
            state.renewed.is_some_and(|t| t.elapsed().unwrap_or_default() < self.lease_duration * 2 / 3);
        match (&state.role, fresh) {
            (Some(Role::Leader), true) => Ok(()),
            (Some(Role::Follower(holder)), _) if !holder.is_empty() => Err(holder.clone()),
            _ => Err(state.error.map_or_else(
                || "nobody yet (the Lease is being acquired)".into(),
                |e| format!("unknown ({e})"),
            )),
        }
    }

    /// The snapshot the last observation produced.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Applies decisions made on the last observation; their reasons go into the Events.
    pub fn apply_decisions(&mut self, decisions: &[Decision]) -> Vec<Outcome> {
        let leadership = self.leadership();
        let snapshot = self.snapshot.clone();
        let span = tracing::info_span!("kubernetes.act", decisions = decisions.len());
        let _entered = span.enter();
        self.handle.block_on(self.actuator.apply(&snapshot, decisions, &leadership))
    }

    fn usage(&self, client: &kube::Client) -> Option<Vec<PodUsage>> {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resources::pod_metrics());
        let list = self.handle.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), api.list(&Default::default())).await
        });
        match list {
            Ok(Ok(list)) => Some(
                list.items
                    .into_iter()
                    .filter_map(|o| serde_json::to_value(o).ok().and_then(|v| serde_json::from_value(v).ok()))
                    .collect(),
            ),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "metrics.k8s.io did not answer; estimating usage from demand");
                None
            }
            Err(_) => None,
        }
    }

    /// A quiet watch sends nothing; after a failure, asking the server proves it is back.
    fn probe(&self, c: &Watched) {
        if c.health.borrow().failing_since.is_none() {
            return;
        }
        let answered = self.handle.block_on(async {
            tokio::time::timeout(Duration::from_secs(2), c.client.apiserver_version()).await
        });
        if matches!(answered, Ok(Ok(_))) {
            reflect::recovered(&c.health);
        }
    }

    fn query(
        &self,
        template: &str,
        service: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<RangeSeries>, ObserveError> {
        let q = template.replace("{service}", service);
        self.prometheus
            .query_range(&q, start, end, self.step_s)
            .map_err(|e| ObserveError::Backend(e.to_string()))
    }

    /// The demand of a service per region over `window_s`, fetched once per tick.
    fn demand(&self, service: &str, window_s: u32, now: i64) -> Result<Vec<RangeSeries>, ObserveError> {
        let key = (service.to_owned(), window_s);
        if let Some(hit) = self.history.borrow().get(&key) {
            return Ok(hit.clone());
        }
        let series = self.query(&self.config.prometheus.demand, service, now - i64::from(window_s), now)?;
        self.history.borrow_mut().insert(key, series.clone());
        Ok(series)
    }
}

/// Runs the election on the current runtime, renewing a third of a lease duration apart.
fn elect(mut elector: Elector) -> Arc<Mutex<LeaderState>> {
    let state = Arc::new(Mutex::new(LeaderState::default()));
    let shared = state.clone();
    tokio::spawn(async move {
        let every = elector.duration() / 3;
        loop {
            let now = SystemTime::now();
            let step = elector.step(now).await;
            {
                let mut s = shared.lock().expect("leader state");
                match step {
                    Ok(role) => {
                        s.renewed = (role == Role::Leader).then_some(now);
                        s.role = Some(role);
                        s.error = None;
                    }
                    Err(f) => {
                        tracing::warn!(error = %f.message(), "leader election failed; not acting until it succeeds");
                        s.error = Some(f.message().to_owned());
                    }
                }
            }
            tokio::time::sleep(every.max(Duration::from_millis(100))).await;
        }
    });
    state
}

/// The newest finite value of a series and its time.
fn latest(s: &RangeSeries) -> Option<(i64, f64)> {
    s.values
        .iter()
        .enumerate()
        .rev()
        .find(|(_, v)| v.is_finite())
        .map(|(k, v)| (s.start + k as i64 * i64::from(s.step), *v))
}

impl Observer for KubeBackend {
    fn observe(&mut self) -> Result<Observation, ObserveError> {
        let span = tracing::info_span!("kubernetes.observe", clusters = self.clusters.len());
        let _entered = span.enter();
        self.history.borrow_mut().clear();
        let wall = SystemTime::now();
        let now = wall.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let mut objects = Vec::with_capacity(self.clusters.len());
        let mut stale = Vec::with_capacity(self.clusters.len());
        for c in &self.clusters {
            self.probe(c);
            let mut o = c.stores.objects();
            o.usage = self.usage(&c.client);
            objects.push(o);
            stale.push(c.health.borrow().stale(wall, self.max_age));
        }
        let specs = view::services(&self.config, &objects);
        let regions = self.config.regions.clone();
        let window = self.step_s * 10;
        let mut newest: Option<i64> = None;
        let mut services = Vec::with_capacity(specs.len());
        let mut demand_by_service = BTreeMap::new();
        for spec in &specs {
            let series = self.demand(&spec.name, window, now)?;
            let label = &self.config.prometheus.region_label;
            let demand: Vec<f64> = regions
                .iter()
                .map(|r| {
                    let s = series.iter().find(|s| s.labels.get(label) == Some(r));
                    match s.and_then(latest) {
                        Some((t, v)) => {
                            newest = Some(newest.map_or(t, |n| n.max(t)));
                            v.max(0.0)
                        }
                        None => 0.0,
                    }
                })
                .collect();
            let last = |template: &str| -> Result<Option<f64>, ObserveError> {
                let s = self.query(template, &spec.name, now - i64::from(window), now)?;
                Ok(s.first().and_then(latest).map(|(_, v)| v))
            };
            let p95 = last(&self.config.prometheus.latency)?.unwrap_or(0.0);
            let cpu = last(&self.config.prometheus.cpu)?;
            let total: f64 = demand.iter().sum();
            let service_ms = spec
                .service_ms
                .or_else(|| cpu.filter(|_| total > 0.0).map(|cores| cores / total * 1e3))
                .unwrap_or(50.0);
            let routing = self.routing_rows(spec, &objects, &stale);
            let placements = self
                .clusters
                .iter()
                .zip(&objects)
                .enumerate()
                .map(|(c, (w, o))| {
                    let arrival: f64 = demand.iter().zip(&routing).map(|(d, row)| d * row[c]).sum();
                    view::placement(&self.config, &w.config, o, spec, arrival, service_ms)
                })
                .collect();
            demand_by_service.insert(spec.name.clone(), demand.clone());
            services.push(ServiceView {
                name: spec.name.clone(),
                slo_p95_ms: spec.slo_p95_ms,
                service_ms,
                cpu_per_replica: spec.cpu_per_replica,
                memory_gib_per_replica: spec.memory_gib_per_replica,
                startup_s: spec.startup_s,
                demand_rps: demand,
                placements,
                routing,
                p95_ms: p95,
                dropped_rps: 0.0,
            });
        }
        // With services to serve, history older than the limit is not acted on.
        if !specs.is_empty() {
            let age = newest.map_or(u64::MAX, |t| (now - t).max(0) as u64);
            if age > self.max_age.as_secs() {
                return Err(ObserveError::Stale {
                    age_s: age.min(u64::from(u32::MAX)),
                    limit_s: self.max_age.as_secs(),
                });
            }
        }
        let configs: Vec<ClusterConfig> = self.clusters.iter().map(|c| c.config.clone()).collect();
        let clusters = self
            .clusters
            .iter()
            .zip(&objects)
            .zip(&stale)
            .map(|((c, o), s)| view::cluster_view(&self.config, &c.config, &configs, o, s.is_none()))
            .collect();
        self.snapshot = Snapshot {
            time: now,
            regions: regions.clone(),
            clusters: self
                .clusters
                .iter()
                .zip(&objects)
                .zip(&stale)
                .map(|((c, o), s)| view::cluster_snapshot(&self.config, &c.config, o, &specs, s.clone()))
                .collect(),
            demand: demand_by_service,
        };
        self.objects = objects;
        Ok(Observation { time: now, step_s: self.step_s, regions, clusters, services, events: Vec::new() })
    }

    fn demand_history(&self, service: &str, region: &str, window_s: u32) -> Option<foresight_sdk::Series> {
        if !self.config.regions.iter().any(|r| r == region) {
            return None;
        }
        let now = self.snapshot.time;
        let series = match self.demand(service, window_s, now) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(service, region, error = %e, "no demand history");
                return None;
            }
        };
        let s = series.into_iter().find(|s| {
            s.labels.get(&self.config.prometheus.region_label).map(String::as_str) == Some(region)
        })?;
        // Forecasters take evenly spaced values: a step Prometheus has no sample for keeps
        // the value before it.
        let mut last = s.values.iter().copied().find(|v| v.is_finite()).unwrap_or(0.0);
        let values = s
            .values
            .iter()
            .map(|v| {
                if v.is_finite() {
                    last = *v;
                }
                last
            })
            .collect();
        Some(foresight_sdk::Series { start: s.start, step: s.step, values, ..Default::default() })
    }

    fn nodes(&self, cluster: &str) -> Option<Vec<crate::observe::NodeView>> {
        let i = self.clusters.iter().position(|c| c.config.name == cluster)?;
        Some(view::nodes(&self.config, &self.clusters[i].config, self.objects.get(i)?))
    }
}

impl KubeBackend {
    /// Routing rows (region × cluster): the weights in force, else each region split by
    /// ready replicas among the clusters that can serve.
    fn routing_rows(
        &self,
        spec: &view::ServiceSpec,
        objects: &[ClusterObjects],
        stale: &[Option<String>],
    ) -> Vec<Vec<f64>> {
        let clusters: Vec<&str> = self.clusters.iter().map(|c| c.config.name.as_str()).collect();
        let in_force = self.actuator.routing(&spec.name);
        let ready: Vec<f64> = self
            .clusters
            .iter()
            .zip(objects)
            .zip(stale)
            .map(|((c, o), s)| {
                if s.is_some() {
                    return 0.0;
                }
                f64::from(view::placement(&self.config, &c.config, o, spec, 0.0, 0.0).ready)
            })
            .collect();
        let total: f64 = ready.iter().sum();
        self.config
            .regions
            .iter()
            .map(|r| match in_force.and_then(|t| t.get(r)) {
                Some(weights) => {
                    let sum: f64 = weights.iter().map(|(_, w)| w).sum();
                    clusters
                        .iter()
                        .map(|c| {
                            weights
                                .iter()
                                .find(|(n, _)| n == c)
                                .map_or(0.0, |(_, w)| if sum > 0.0 { w / sum } else { 0.0 })
                        })
                        .collect()
                }
                None if total > 0.0 => ready.iter().map(|n| n / total).collect(),
                None => vec![1.0 / clusters.len().max(1) as f64; clusters.len()],
            })
            .collect()
    }
}

impl crate::act::Actuator for KubeBackend {
    fn apply(&mut self, actions: &[Action]) -> Vec<Outcome> {
        let decisions: Vec<Decision> =
            actions.iter().map(|a| Decision { action: a.clone(), reason: Default::default() }).collect();
        self.apply_decisions(&decisions)
    }
}

//! Keeps a policy role serving whatever its plugin does. Each call goes to the live plugin; a
//! fault (trap, timeout, memory, malformed answer, plugin error) is counted and logged, and the
//! call falls back to the last plugin that worked in this role, then to the built-in baseline.
//! A plugin that faults `max-consecutive-faults` times in a row is quarantined: it is not called
//! until the quarantine ends, after which one call probes it again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};

use super::fault::{Fault, PluginFault};
use super::policy::Policy;

/// A plugin and its label, as held by a role.
struct Slot<P: ?Sized> {
    plugin: Arc<P>,
    label: String,
}

impl<P: ?Sized + Policy> Slot<P> {
    fn new(plugin: Arc<P>) -> Arc<Self> {
        let label = plugin.label();
        Arc::new(Self { plugin, label })
    }
}

/// When to stop calling a faulty plugin.
#[derive(Debug, Clone, Copy)]
pub struct QuarantineRule {
    /// Consecutive faults that trigger a quarantine.
    pub max_consecutive_faults: u32,
    /// How long it lasts.
    pub duration: Duration,
}

#[derive(Debug, Default)]
struct Health {
    consecutive_faults: u32,
    quarantined_until: Option<Instant>,
    /// The live plugin has answered correctly at least once since it was installed.
    proven: bool,
}

/// Counters for one role, for metrics and status.
#[derive(Debug, Default)]
pub struct RoleStats {
    calls: AtomicU64,
    faults: AtomicU64,
    fallbacks: AtomicU64,
    quarantines: AtomicU64,
    /// Time spent in calls (live plugin and fallbacks), nanoseconds.
    busy_ns: AtomicU64,
    by_kind: Mutex<BTreeMap<&'static str, u64>>,
    last_fault: Mutex<Option<PluginFault>>,
}

/// A point-in-time copy of [`RoleStats`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StatsSnapshot {
    /// Calls made to the role.
    pub calls: u64,
    /// Calls on which the live plugin faulted (or was skipped while quarantined).
    pub faults: u64,
    /// Calls answered by a fallback.
    pub fallbacks: u64,
    /// Quarantines begun.
    pub quarantines: u64,
    /// Seconds spent in calls, fallbacks included.
    pub call_seconds: f64,
    /// Faults by kind label.
    pub faults_by_kind: BTreeMap<&'static str, u64>,
    /// The most recent fault, as text.
    pub last_fault: Option<String>,
    /// Whether the live plugin is quarantined now.
    pub quarantined: bool,
}

/// An answer and who gave it.
#[derive(Debug, Clone)]
pub struct Served<R> {
    /// The validated answer.
    pub value: R,
    /// `name@version` of the plugin that answered.
    pub by: String,
    /// Why the live plugin did not answer, when a fallback did.
    pub fallback_from: Option<PluginFault>,
}

/// A policy role (forecaster, scorer, cost model) with its live plugin and fallbacks.
pub struct Guarded<P: ?Sized> {
    role: String,
    live: ArcSwap<Slot<P>>,
    last_good: ArcSwapOption<Slot<P>>,
    baseline: Arc<Slot<P>>,
    rule: QuarantineRule,
    health: Mutex<Health>,
    stats: RoleStats,
}

impl<P: ?Sized + Policy> Guarded<P> {
    /// A role served by `live`, falling back to `baseline`.
    pub fn new(role: &str, live: Arc<P>, baseline: Arc<P>, rule: QuarantineRule) -> Self {
        Self {
            role: role.to_owned(),
            live: ArcSwap::new(Slot::new(live)),
            last_good: ArcSwapOption::empty(),
            baseline: Slot::new(baseline),
            rule,
            health: Mutex::new(Health::default()),
            stats: RoleStats::default(),
        }
    }

    /// `name@version` of the live plugin.
    pub fn live_label(&self) -> String {
        self.live.load().label.clone()
    }

    /// Installs a new live plugin between calls. The one it replaces becomes the fallback if it
    /// had proven itself.
    pub fn swap(&self, plugin: Arc<P>) {
        let old = self.live.swap(Slot::new(plugin));
        let mut health = self.lock_health();
        if health.proven {
            self.last_good.store(Some(old));
        }
        *health = Health::default();
    }

    /// Calls the role: `run` asks a plugin, `check` validates its answer.
    pub fn call<R>(
        &self,
        run: impl Fn(&P) -> Result<R, Fault>,
        check: impl Fn(&R) -> Result<(), String>,
    ) -> Result<Served<R>, Vec<PluginFault>> {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = self.serve(run, check);
        self.stats.busy_ns.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        result
    }

    fn serve<R>(
        &self,
        run: impl Fn(&P) -> Result<R, Fault>,
        check: impl Fn(&R) -> Result<(), String>,
    ) -> Result<Served<R>, Vec<PluginFault>> {
        let attempt =
            |slot: &Slot<P>| run(&slot.plugin).and_then(|v| check(&v).map(|()| v).map_err(Fault::Malformed));
        let live = self.live.load_full();
        let mut faults = Vec::new();

        if self.admit() {
            match attempt(&live) {
                Ok(value) => {
                    self.record_success();
                    return Ok(Served { value, by: live.label.clone(), fallback_from: None });
                }
                Err(fault) => faults.push(self.record_fault(&live.label, fault)),
            }
        } else {
            faults.push(self.record_fault(&live.label, Fault::Quarantined));
        }

        let last_good = self.last_good.load_full().filter(|s| !Arc::ptr_eq(s, &live));
        for fallback in last_good.iter().chain(std::iter::once(&self.baseline)) {
            match attempt(fallback) {
                Ok(value) => {
                    self.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(role = %self.role, plugin = %fallback.label, "answered by fallback");
                    return Ok(Served {
                        value,
                        by: fallback.label.clone(),
                        fallback_from: faults.into_iter().next(),
                    });
                }
                Err(fault) => {
                    tracing::error!(role = %self.role, plugin = %fallback.label, %fault, "fallback failed too");
                    faults.push(PluginFault { plugin: fallback.label.clone(), fault });
                }
            }
        }
        Err(faults)
    }

    /// Counters so far.
    pub fn stats(&self) -> StatsSnapshot {
        let quarantined = self.lock_health().quarantined_until.is_some_and(|t| Instant::now() < t);
        StatsSnapshot {
            calls: self.stats.calls.load(Ordering::Relaxed),
            faults: self.stats.faults.load(Ordering::Relaxed),
            fallbacks: self.stats.fallbacks.load(Ordering::Relaxed),
            quarantines: self.stats.quarantines.load(Ordering::Relaxed),
            call_seconds: self.stats.busy_ns.load(Ordering::Relaxed) as f64 / 1e9,
            faults_by_kind: self.stats.by_kind.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            last_fault: self
                .stats
                .last_fault
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(|f| f.to_string()),
            quarantined,
        }
    }

    fn lock_health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the live plugin may be called now; an expired quarantine admits one probe.
    fn admit(&self) -> bool {
        let health = self.lock_health();
        health.quarantined_until.is_none_or(|until| Instant::now() >= until)
    }

    fn record_success(&self) {
        let mut health = self.lock_health();
        if health.quarantined_until.take().is_some() {
            tracing::info!(role = %self.role, plugin = %self.live_label(), "plugin recovered; quarantine lifted");
        }
        health.consecutive_faults = 0;
        health.proven = true;
    }

    fn record_fault(&self, label: &str, fault: Fault) -> PluginFault {
        self.stats.faults.fetch_add(1, Ordering::Relaxed);
        *self
            .stats
            .by_kind
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(fault.metric_label())
            .or_default() += 1;
        let fault = PluginFault { plugin: label.to_owned(), fault };
        *self.stats.last_fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(fault.clone());
        if fault.fault == Fault::Quarantined {
            return fault;
        }
        tracing::warn!(role = %self.role, plugin = label, kind = fault.fault.metric_label(), "{fault}; falling back");
        let mut health = self.lock_health();
        health.consecutive_faults += 1;
        if health.consecutive_faults >= self.rule.max_consecutive_faults {
            health.quarantined_until = Some(Instant::now() + self.rule.duration);
            self.stats.quarantines.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                role = %self.role,
                plugin = label,
                faults = health.consecutive_faults,
                "plugin quarantined for {:?}; the fallback serves meanwhile",
                self.rule.duration
            );
        }
        fault
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foresight_sdk::{Descriptor, PluginError, PluginKind};
    use std::sync::atomic::AtomicBool;

    /// A scripted policy: answers its value, or faults while `broken` is set.
    struct Scripted {
        descriptor: Descriptor,
        value: u32,
        broken: AtomicBool,
        calls: AtomicU64,
    }

    impl Scripted {
        fn new(name: &str, value: u32, broken: bool) -> Arc<Self> {
            Arc::new(Self {
                descriptor: Descriptor::new(name, "1.0.0", PluginKind::Scorer, ""),
                value,
                broken: AtomicBool::new(broken),
                calls: AtomicU64::new(0),
            })
        }

        fn answer(&self) -> Result<u32, Fault> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if self.broken.load(Ordering::Relaxed) {
                Err(Fault::Plugin(PluginError::Failed("scripted".into())))
            } else {
                Ok(self.value)
            }
        }
    }

    impl Policy for Scripted {
        fn descriptor(&self) -> &Descriptor {
            &self.descriptor
        }
    }

    fn rule(duration: Duration) -> QuarantineRule {
        QuarantineRule { max_consecutive_faults: 2, duration }
    }

    fn call(role: &Guarded<Scripted>) -> Served<u32> {
        role.call(|p| p.answer(), |_| Ok(())).unwrap()
    }

    #[test]
    fn a_faulty_plugin_falls_back_to_the_baseline_and_is_quarantined() {
        let live = Scripted::new("live", 1, true);
        let role = Guarded::new(
            "scorer",
            live.clone(),
            Scripted::new("baseline", 2, false),
            rule(Duration::from_secs(3600)),
        );
        for _ in 0..5 {
            let served = call(&role);
            assert_eq!((served.value, served.by.as_str()), (2, "baseline@1.0.0"));
            assert_eq!(served.fallback_from.unwrap().plugin, "live@1.0.0");
        }
        // Two faults quarantine it; the remaining three calls never reach it.
        assert_eq!(live.calls.load(Ordering::Relaxed), 2);
        let stats = role.stats();
        assert_eq!((stats.calls, stats.faults, stats.fallbacks, stats.quarantines), (5, 5, 5, 1));
        assert_eq!(stats.faults_by_kind.get("plugin_error"), Some(&2));
        assert_eq!(stats.faults_by_kind.get("quarantined"), Some(&3));
        assert!(stats.quarantined);
    }

    #[test]
    fn an_expired_quarantine_admits_a_probe_and_recovery_lifts_it() {
        let live = Scripted::new("live", 1, true);
        let role =
            Guarded::new("scorer", live.clone(), Scripted::new("baseline", 2, false), rule(Duration::ZERO));
        call(&role);
        call(&role);
        assert_eq!(role.stats().quarantines, 1);
        live.broken.store(false, Ordering::Relaxed);
        assert_eq!(call(&role).value, 1);
        assert!(!role.stats().quarantined);
    }

    #[test]
    fn malformed_answers_count_as_faults() {
        let role = Guarded::new(
            "scorer",
            Scripted::new("live", 7, false),
            Scripted::new("baseline", 2, false),
            rule(Duration::from_secs(60)),
        );
        let served = role
            .call(|p| p.answer(), |v| if *v == 7 { Err("seven is wrong".into()) } else { Ok(()) })
            .unwrap();
        assert_eq!(served.value, 2);
        assert!(matches!(served.fallback_from.unwrap().fault, Fault::Malformed(m) if m == "seven is wrong"));
    }

    #[test]
    fn a_swapped_out_plugin_that_worked_becomes_the_first_fallback() {
        let v1 = Scripted::new("v1", 1, false);
        let role =
            Guarded::new("scorer", v1, Scripted::new("baseline", 0, false), rule(Duration::from_secs(60)));
        assert_eq!(call(&role).value, 1);
        role.swap(Scripted::new("v2", 2, true));
        let served = call(&role);
        assert_eq!((served.value, served.by.as_str()), (1, "v1@1.0.0"));
    }

    #[test]
    fn an_unproven_plugin_is_not_kept_as_a_fallback() {
        let role = Guarded::new(
            "scorer",
            Scripted::new("v1", 1, true),
            Scripted::new("baseline", 0, false),
            rule(Duration::from_secs(60)),
        );
        role.swap(Scripted::new("v2", 2, true));
        assert_eq!(call(&role).by, "baseline@1.0.0");
    }

    #[test]
    fn when_every_plugin_fails_all_faults_are_reported() {
        let role = Guarded::new(
            "scorer",
            Scripted::new("v1", 1, true),
            Scripted::new("baseline", 0, true),
            rule(Duration::from_secs(60)),
        );
        let faults = role.call(|p| p.answer(), |_| Ok(())).unwrap_err();
        let who: Vec<_> = faults.iter().map(|f| f.plugin.as_str()).collect();
        assert_eq!(who, ["v1@1.0.0", "baseline@1.0.0"]);
    }
}

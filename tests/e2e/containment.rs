//! A hostile plugin serving a live role cannot take the host down: every call is answered by a
//! fallback, the fault is classified and counted, and the plugin is quarantined.

use std::sync::Arc;
use std::time::Duration;

use foresight::plugins::{
    Capability, Fault, Guarded, Limits, Native, QuarantineRule, Runtime, ScorePolicy, WasmPlugin, samples,
    validate,
};
use foresight_sdk::PluginKind;
use latency_aware::LatencyAware;

use crate::fixtures;

fn runtime() -> Runtime {
    Runtime::new(Some(fixtures::cache_dir())).expect("runtime")
}

fn start(runtime: &Runtime, name: &str, limits: &Limits) -> WasmPlugin {
    runtime.start_file(&fixtures::component(name), Some(PluginKind::Scorer), limits, "").expect("starts")
}

fn role(live: Arc<dyn ScorePolicy>) -> Guarded<dyn ScorePolicy> {
    let baseline: Arc<dyn ScorePolicy> = Arc::new(Native::<LatencyAware>::scorer("").expect("baseline"));
    let rule = QuarantineRule { max_consecutive_faults: 2, duration: Duration::from_secs(3600) };
    Guarded::new("scorer", live, baseline, rule)
}

#[test]
fn each_hostile_scorer_is_contained_and_classified() {
    let runtime = runtime();
    // Tight limits keep the test quick; the faults are the same at any size.
    let limits = Limits { deadline_ms: 50, memory_mib: 16, ..Limits::default() };
    type Expect = fn(&Fault) -> bool;
    let cases: [(&str, Expect); 6] = [
        ("hostile-loop", |f| matches!(f, Fault::Timeout(d) if *d == Duration::from_millis(50))),
        ("hostile-alloc", |f| matches!(f, Fault::MemoryExhausted(16))),
        ("hostile-recursion", |f| {
            matches!(f, Fault::StackOverflow)
                || matches!(f, Fault::Trap(m) if m.contains("stack overflowing"))
        }),
        ("hostile-panic", |f| matches!(f, Fault::Trap(m) if m.contains("scorer exploded on purpose"))),
        ("hostile-wrong-length", |f| matches!(f, Fault::Malformed(m) if m.contains("scores for"))),
        ("hostile-nan", |f| matches!(f, Fault::Malformed(m) if m.contains("NaN"))),
    ];
    let workload = samples::workload();
    let candidates = samples::candidates(32, 1);
    for (name, expected) in cases {
        let role = role(Arc::new(start(&runtime, name, &limits)));
        for call in 0..4 {
            let served = role
                .call(|p| p.score(&workload, &candidates, false), |s| validate::scores(&candidates, s))
                .unwrap_or_else(|faults| panic!("{name}: no fallback answered: {faults:?}"));
            assert_eq!(served.by, "latency-aware@0.1.0", "{name}");
            assert_eq!(served.value.values.len(), 32);
            let fault = served.fallback_from.expect("the live plugin faulted");
            assert!(fault.plugin.starts_with(name), "{name}: fault names {}", fault.plugin);
            if call < 2 {
                assert!(expected(&fault.fault), "{name}: unexpected fault {:?}", fault.fault);
            } else {
                assert_eq!(fault.fault, Fault::Quarantined, "{name}");
            }
        }
        let stats = role.stats();
        assert_eq!((stats.faults, stats.fallbacks, stats.quarantines), (4, 4, 1), "{name}");
        assert!(stats.quarantined, "{name}");
    }
}

#[test]
fn a_plugin_recovers_its_instance_after_a_fault() {
    // After a trap the instance is dead; the next call must get a fresh one and succeed.
    let runtime = runtime();
    let plugin = start(&runtime, "latency-aware", &Limits::default());
    let workload = samples::workload();
    let good = samples::candidates(16, 2);
    let ragged =
        foresight_sdk::Candidates { feature_names: good.feature_names.clone(), features: vec![1.0; 3] };
    assert!(matches!(plugin.score(&workload, &ragged, false), Err(Fault::Plugin(_))));
    for _ in 0..3 {
        let scores = plugin.score(&workload, &good, false).expect("scores");
        validate::scores(&good, &scores).expect("valid");
    }
}

#[test]
fn wasm_and_native_builds_agree() {
    let runtime = runtime();
    let wasm = start(&runtime, "latency-aware", &Limits::default());
    let native = Native::<LatencyAware>::scorer("").expect("native");
    let (w, c) = (samples::workload(), samples::candidates(500, 3));
    let (a, b) = (wasm.score(&w, &c, true).expect("wasm"), native.score(&w, &c, true).expect("native"));
    for (x, y) in a.values.iter().zip(&b.values).chain(a.contributions.iter().zip(&b.contributions)) {
        // The same pure-Rust math on both sides: bit-identical.
        assert_eq!(x.to_bits(), y.to_bits(), "{x} vs {y}");
    }
}

#[test]
fn capabilities_are_denied_unless_granted() {
    let runtime = runtime();
    // The reference plugins are pure: they start with no capability at all.
    for name in fixtures::REFERENCE {
        let plugin = runtime.start_file(&fixtures::component(name), None, &Limits::default(), "");
        assert!(plugin.is_ok(), "{name}: {:?}", plugin.err());
    }
    // A plugin that reads the clock is refused at load time, naming the import and the grant.
    let clock = fixtures::component("hostile-clock");
    let err = runtime.start_file(&clock, None, &Limits::default(), "").err().expect("refused").to_string();
    assert!(err.contains("hostile_clock") && err.contains("wasi:clocks"), "{err}");
    assert!(err.contains("limits.capabilities"), "{err}");
    // Granted, it runs.
    let limits = Limits { capabilities: vec![Capability::Clock], ..Limits::default() };
    let plugin = runtime.start_file(&clock, None, &limits, "").expect("starts with the grant");
    let scores = plugin.score(&samples::workload(), &samples::candidates(2, 1), false).expect("scores");
    assert!(scores.values[0] >= 0.0 && scores.values[0] < 86_400.0);
}

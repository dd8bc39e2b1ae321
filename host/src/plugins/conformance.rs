//! The conformance suite: what every plugin of a kind must get right before the host trusts it.
//! `foresight plugin check` runs it on a file; hot reload runs it on every candidate.

use std::fmt;
use std::time::{Duration, Instant};

use foresight_sdk::{Candidates, ForecastRequest, PlanRequest, PluginKind, Series};

use super::fault::Fault;
use super::policy::{ForecastPolicy, PlanPolicy, Policy, ScorePolicy};
use super::{WasmPlugin, samples, validate};

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    /// What the case checks.
    pub name: &'static str,
    /// `Ok(detail)` or `Err(reason)`.
    pub result: Result<String, String>,
    /// Time the case took.
    pub elapsed: Duration,
}

/// Every case run against one plugin.
#[derive(Debug, Clone)]
pub struct Report {
    /// `name@version`.
    pub plugin: String,
    /// Its kind.
    pub kind: PluginKind,
    /// Case outcomes in order.
    pub cases: Vec<CaseOutcome>,
}

impl Report {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.result.is_ok())
    }

    /// Reasons of the failed cases.
    pub fn failures(&self) -> Vec<String> {
        self.cases
            .iter()
            .filter_map(|c| c.result.as_ref().err().map(|e| format!("{}: {e}", c.name)))
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({})", self.plugin, self.kind)?;
        for case in &self.cases {
            let ms = case.elapsed.as_secs_f64() * 1e3;
            match &case.result {
                Ok(detail) => writeln!(f, "  ok    {:<34} {ms:>8.2} ms  {detail}", case.name)?,
                Err(reason) => writeln!(f, "  FAIL  {:<34} {ms:>8.2} ms  {reason}", case.name)?,
            }
        }
        let ok = self.cases.iter().filter(|c| c.result.is_ok()).count();
        write!(f, "conformance: {ok} of {} cases passed", self.cases.len())
    }
}

type Case<'a> = (&'static str, Box<dyn Fn() -> Result<String, String> + 'a>);

/// Runs the suite for the plugin's kind.
pub fn check(plugin: &WasmPlugin) -> Report {
    let kind = plugin.descriptor().kind;
    let mut cases: Vec<Case<'_>> = vec![("describe", Box::new(|| describe(plugin)))];
    cases.extend(match kind {
        PluginKind::Forecaster => forecaster_cases(plugin),
        PluginKind::Scorer => scorer_cases(plugin),
        PluginKind::CostModel => cost_model_cases(plugin),
    });
    let cases = cases
        .into_iter()
        .map(|(name, run)| {
            let started = Instant::now();
            let result = run();
            CaseOutcome { name, result, elapsed: started.elapsed() }
        })
        .collect();
    Report { plugin: plugin.label(), kind, cases }
}

/// Two calls on the same input must agree exactly: ticks are replayed and compared.
fn deterministic<T: PartialEq>(call: impl Fn() -> Result<T, Fault>) -> Result<String, String> {
    let first = call().map_err(|f| f.to_string())?;
    let second = call().map_err(|f| f.to_string())?;
    if first == second {
        Ok("same input, same answer".into())
    } else {
        Err("two calls on the same input disagree".into())
    }
}

fn describe(plugin: &WasmPlugin) -> Result<String, String> {
    let d = plugin.descriptor();
    if d.name.is_empty() || d.name.chars().any(|c| c.is_whitespace() || c == '@') {
        return Err(format!("name `{}` must be non-empty, without spaces or `@`", d.name));
    }
    let numeric = d.version.split(['-', '+']).next().unwrap_or("");
    if numeric.split('.').count() != 3 || numeric.split('.').any(|p| p.parse::<u64>().is_err()) {
        return Err(format!("version `{}` is not semantic (MAJOR.MINOR.PATCH)", d.version));
    }
    if let Some(key) = d.config_keys.iter().find(|k| k.name.is_empty() || k.description.is_empty()) {
        return Err(format!("config key `{}` needs a name and a description", key.name));
    }
    Ok(format!("{} config keys", d.config_keys.len()))
}

fn scorer_cases(p: &WasmPlugin) -> Vec<Case<'_>> {
    let run = move |candidates: Candidates| -> Result<String, String> {
        let workload = samples::workload();
        let scores = p.score(&workload, &candidates, false).map_err(|f| f.to_string())?;
        validate::scores(&candidates, &scores)?;
        Ok(format!("{} scores", scores.values.len()))
    };
    vec![
        ("typical batch of 64", Box::new(move || run(samples::candidates(64, 1)))),
        ("single candidate", Box::new(move || run(samples::candidates(1, 2)))),
        ("empty batch", Box::new(move || run(samples::candidates(0, 3)))),
        ("5000 candidates", Box::new(move || run(samples::candidates(5000, 4)))),
        (
            "unknown features ignored",
            Box::new(move || {
                let mut c = samples::candidates(8, 5);
                let width = c.width();
                c.feature_names.push("x-unknown-feature".into());
                c.features =
                    c.features.chunks(width).flat_map(|row| row.iter().copied().chain([1e9])).collect();
                run(c)
            }),
        ),
        (
            "only RTT features",
            Box::new(move || {
                let full = samples::candidates(8, 6);
                let width = full.width();
                let rtt = samples::REGIONS.len();
                let features = full.features.chunks(width).flat_map(|row| row[..rtt].to_vec()).collect();
                run(Candidates { feature_names: full.feature_names[..rtt].to_vec(), features })
            }),
        ),
        (
            "extreme values",
            Box::new(move || {
                let mut c = samples::candidates(16, 7);
                let width = c.width();
                for (i, row) in c.features.chunks_mut(width).enumerate() {
                    // Saturated, overloaded, idle, free and far-away candidates.
                    row[3] = [0.0, 0.999_999, 1.0, 3.5][i % 4];
                    row[0] = [0.0, 1e6][i % 2];
                    row[6] = [0.0, 1e4][i % 2];
                }
                run(c)
            }),
        ),
        (
            "explained batch",
            Box::new(move || {
                let c = samples::candidates(64, 10);
                let s = p.score(&samples::workload(), &c, true).map_err(|f| f.to_string())?;
                validate::scores(&c, &s)?;
                Ok(if s.contributions.is_empty() {
                    "no explanations offered".into()
                } else {
                    "with contributions".into()
                })
            }),
        ),
        (
            "interleaved services and schemas",
            Box::new(move || {
                // Two services with different regions and columns, alternating: each must be
                // scored against its own names, as if asked alone.
                let (w1, c1) = (samples::workload(), samples::candidates(16, 11));
                let mut w2 = samples::workload();
                w2.service = "search".into();
                w2.regions.truncate(2);
                w2.demand.truncate(2);
                let c2 = Candidates {
                    feature_names: c1.feature_names[1..].to_vec(),
                    features: c1.features.chunks(c1.width()).flat_map(|r| r[1..].to_vec()).collect(),
                };
                let alone = (p.score(&w1, &c1, false), p.score(&w2, &c2, false));
                for _ in 0..3 {
                    let mixed = (p.score(&w1, &c1, false), p.score(&w2, &c2, false));
                    if mixed != alone {
                        return Err("answers change when another service is scored in between".into());
                    }
                }
                alone.0.map_err(|f| f.to_string())?;
                alone.1.map_err(|f| f.to_string())?;
                Ok("answers stable".into())
            }),
        ),
        (
            "zero demand",
            Box::new(move || {
                let mut w = samples::workload();
                w.demand = vec![0.0; w.regions.len()];
                let c = samples::candidates(8, 8);
                let s = p.score(&w, &c, false).map_err(|f| f.to_string())?;
                validate::scores(&c, &s).map(|()| "ok".into())
            }),
        ),
        (
            "deterministic",
            Box::new(move || {
                let (w, c) = (samples::workload(), samples::candidates(256, 9));
                deterministic(|| p.score(&w, &c, true))
            }),
        ),
    ]
}

fn forecaster_cases(p: &WasmPlugin) -> Vec<Case<'_>> {
    let run = move |request: ForecastRequest| -> Result<String, String> {
        let answer = p.forecast(&request).map_err(|f| f.to_string())?;
        validate::forecasts(&request, &answer)?;
        Ok(format!("{} series × {} values", answer.len(), request.answer_len()))
    };
    let with_series = |series: Vec<Series>| ForecastRequest { series, ..samples::forecast_request() };
    vec![
        ("typical batch", Box::new(move || run(samples::forecast_request()))),
        ("empty batch", Box::new(move || run(with_series(vec![])))),
        ("three points of history", Box::new(move || run(with_series(samples::series(2, 3, 300, 11))))),
        (
            "gaps (NaN) in history",
            Box::new(move || {
                let mut s = samples::series(2, 600, 300, 12);
                for (i, v) in s[0].values.iter_mut().enumerate() {
                    if i % 7 == 3 || (100..160).contains(&i) {
                        *v = f64::NAN;
                    }
                }
                run(with_series(s))
            }),
        ),
        (
            "constant and zero series",
            Box::new(move || {
                let mut s = samples::series(2, 600, 300, 13);
                s[0].values.iter_mut().for_each(|v| *v = 42.0);
                s[1].values.iter_mut().for_each(|v| *v = 0.0);
                run(with_series(s))
            }),
        ),
        (
            "known future event",
            Box::new(move || {
                let mut s = samples::series(1, 600, 300, 14);
                let event = samples::flash_sale(&s[0]);
                s[0].events.push(event);
                run(with_series(s))
            }),
        ),
        (
            "single quantile, 48 h horizon",
            Box::new(move || {
                run(ForecastRequest {
                    series: samples::series(1, 2016, 300, 15),
                    horizons: vec![172_800],
                    quantiles: vec![0.5],
                })
            }),
        ),
        (
            "week of minutes × 10 series",
            Box::new(move || run(with_series(samples::series(10, 10_080, 60, 16)))),
        ),
        (
            "deterministic",
            Box::new(move || {
                let r = samples::forecast_request();
                deterministic(|| p.forecast(&r))
            }),
        ),
    ]
}

fn cost_model_cases(p: &WasmPlugin) -> Vec<Case<'_>> {
    let run = move |request: PlanRequest| -> Result<String, String> {
        let answer = p.plan(&request).map_err(|f| f.to_string())?;
        validate::plans(&request, &answer)?;
        let steps: usize = answer.iter().map(|c| c.steps.len()).sum();
        Ok(format!("{} clusters, {steps} steps", answer.len()))
    };
    vec![
        ("typical two clusters", Box::new(move || run(samples::plan_request()))),
        ("no clusters", Box::new(move || run(PlanRequest { clusters: vec![], ..samples::plan_request() }))),
        (
            "zero demand",
            Box::new(move || {
                let mut r = samples::plan_request();
                r.clusters.iter_mut().for_each(|c| {
                    c.cpu.iter_mut().for_each(|v| *v = 0.0);
                    c.memory_gib.iter_mut().for_each(|v| *v = 0.0);
                });
                run(r)
            }),
        ),
        (
            "demand beyond every offering's maximum",
            Box::new(move || {
                let mut r = samples::plan_request();
                r.clusters.iter_mut().for_each(|c| c.cpu.iter_mut().for_each(|v| *v *= 1000.0));
                run(r)
            }),
        ),
        (
            "a cluster with no offerings",
            Box::new(move || {
                let mut r = samples::plan_request();
                r.clusters[0].offerings.clear();
                run(r)
            }),
        ),
        (
            "deterministic",
            Box::new(move || {
                let r = samples::plan_request();
                deterministic(|| p.plan(&r))
            }),
        ),
    ]
}

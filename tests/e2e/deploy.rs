//! The packaging under `deploy/`: the Helm chart's configuration is one the daemon accepts and
//! the one the plain manifests ship, its RBAC is theirs, its templates only use values that
//! exist, and every metric the Grafana dashboard queries is exported by a running daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures::{self, foresight, workspace};

fn chart() -> PathBuf {
    workspace().join("deploy/helm/foresight")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn values() -> serde_json::Value {
    serde_yaml_ng::from_str(&read(&chart().join("values.yaml"))).expect("values.yaml is YAML")
}

/// The chart's templates, by file name.
fn templates() -> BTreeMap<String, String> {
    let dir = chart().join("templates");
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("templates/") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        files.insert(name, read(&path));
    }
    assert!(files.contains_key("_helpers.tpl") && files.contains_key("NOTES.txt"), "{:?}", files.keys());
    files
}

/// `.Values.config` as Helm hands it to the ConfigMap template, rendered to TOML the way the
/// template does. Helm reads every number in the values as a float; `foresight.toml` in
/// `_helpers.tpl` turns whole ones back into integers (the daemon's integer keys refuse `20.0`,
/// its float keys accept integers) and defaults `backend.kubernetes.namespace` to the release
/// namespace, here `foresight`, before `toToml`.
fn chart_config(values: &serde_json::Value) -> toml::Value {
    fn convert(value: &serde_json::Value, at: &str) -> toml::Value {
        match value {
            serde_json::Value::Null => panic!("`{at}` is null: toToml cannot write it"),
            serde_json::Value::Bool(b) => toml::Value::Boolean(*b),
            serde_json::Value::Number(n) => {
                let f = n.as_f64().expect("a number");
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    toml::Value::Integer(f as i64)
                } else {
                    toml::Value::Float(f)
                }
            }
            serde_json::Value::String(s) => toml::Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                toml::Value::Array(items.iter().map(|v| convert(v, at)).collect())
            }
            serde_json::Value::Object(map) => toml::Value::Table(
                map.iter().map(|(k, v)| (k.clone(), convert(v, &format!("{at}.{k}")))).collect(),
            ),
        }
    }
    let mut config = convert(&values["config"], "config");
    if let Some(kubernetes) =
        config.get_mut("backend").and_then(|b| b.get_mut("kubernetes")).and_then(toml::Value::as_table_mut)
    {
        kubernetes.entry("namespace").or_insert_with(|| toml::Value::String("foresight".into()));
    }
    config
}

/// Every number as a float, so that `8` and `8.0` compare equal.
fn numbers_as_floats(value: &toml::Value) -> toml::Value {
    match value {
        toml::Value::Integer(i) => toml::Value::Float(*i as f64),
        toml::Value::Array(items) => toml::Value::Array(items.iter().map(numbers_as_floats).collect()),
        toml::Value::Table(t) => {
            toml::Value::Table(t.iter().map(|(k, v)| (k.clone(), numbers_as_floats(v))).collect())
        }
        other => other.clone(),
    }
}

fn config_check(file: &Path) -> String {
    let out = foresight().args(["config", "check"]).arg(file).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

#[test]
fn the_chart_configuration_renders_to_a_toml_the_daemon_accepts() {
    // The Rust rendering below stands in for these steps of the ConfigMap template.
    let helpers = &templates()["_helpers.tpl"];
    for step in ["include \"foresight.wholeNumbers\"", "\"namespace\" .Release.Namespace", "| toToml"] {
        assert!(helpers.contains(step), "_helpers.tpl no longer does {step}");
    }
    assert!(templates()["configmap.yaml"].contains("include \"foresight.toml\" . | indent 4"));

    let config = chart_config(&values());
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("foresight.toml");
    std::fs::write(&file, toml::to_string(&config).expect("TOML")).expect("write");
    let text = config_check(&file);
    assert!(text.contains("valid (kubernetes backend, plugins from /var/lib/foresight/plugins"), "{text}");

    // The Deployment's paths and port follow the configuration.
    let values = values();
    let listen = config["server"]["listen"].as_str().expect("server.listen");
    assert!(listen.ends_with(":9464") && values["service"]["port"] == 9464, "{listen}");
    let scratch = values["scratch"]["mountPath"].as_str().expect("scratch.mountPath");
    for key in [&config["plugins"]["cache-dir"], &config["decisions"]["log"]] {
        let path = key.as_str().expect("a path");
        assert!(path.starts_with(&format!("{scratch}/")), "{path} is not on the writable scratch volume");
    }
}

#[test]
fn the_chart_configuration_is_the_one_the_plain_manifests_ship() {
    let plain: toml::Value =
        toml::from_str(&read(&workspace().join("deploy/kubernetes/foresight.toml"))).expect("TOML");
    let chart = chart_config(&values());
    assert_eq!(
        numbers_as_floats(&chart),
        numbers_as_floats(&plain),
        "values.yaml `config` and deploy/kubernetes/foresight.toml differ"
    );
}

/// The YAML documents of a template, its template actions replaced: lines holding only an
/// action are dropped, inline ones become the string `templated`.
fn untemplated(text: &str) -> Vec<serde_json::Value> {
    let mut plain = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("{{") && trimmed.ends_with("}}") {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("{{") {
            plain.push_str(&rest[..start]);
            plain.push_str("templated");
            let end = rest[start..].find("}}").expect("an action closes on its line");
            rest = &rest[start + end + 2..];
        }
        plain.push_str(rest);
        plain.push('\n');
    }
    serde_yaml_ng::Deserializer::from_str(&plain)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("YAML once untemplated"))
        .filter(|doc: &serde_json::Value| !doc.is_null())
        .collect()
}

fn rules_of(docs: &[serde_json::Value], kind: &str) -> serde_json::Value {
    let found: Vec<_> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]["rules"].clone()
}

#[test]
fn the_chart_rbac_rules_are_those_of_the_plain_manifests() {
    let plain: Vec<serde_json::Value> =
        serde_yaml_ng::Deserializer::from_str(&read(&workspace().join("deploy/kubernetes/rbac.yaml")))
            .map(|doc| serde::Deserialize::deserialize(doc).expect("YAML"))
            .collect();
    let chart = untemplated(&templates()["rbac.yaml"]);
    for kind in ["ClusterRole", "Role"] {
        let rules = rules_of(&chart, kind);
        assert!(rules.as_array().is_some_and(|r| !r.is_empty()), "{kind}: {rules}");
        assert_eq!(rules, rules_of(&plain, kind), "{kind} rules differ from deploy/kubernetes/rbac.yaml");
    }
    // The bindings bind the chart's roles to the chart's ServiceAccount.
    for (binding, role) in [("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")] {
        let doc = chart.iter().find(|d| d["kind"] == binding).unwrap_or_else(|| panic!("no {binding}"));
        assert_eq!(doc["roleRef"]["kind"], role);
        assert_eq!(doc["subjects"][0]["kind"], "ServiceAccount");
    }
}

/// `a.b.c` paths of `.Values.a.b.c` in a template.
fn values_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(".Values.") {
        rest = &rest[i + ".Values.".len()..];
        let end =
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).unwrap_or(rest.len());
        paths.push(rest[..end].trim_end_matches('.').to_owned());
    }
    paths
}

/// Names after `keyword "` in a template, e.g. the templates it includes.
fn quoted_after(text: &str, keyword: &str) -> BTreeSet<String> {
    text.split(keyword).skip(1).filter_map(|s| s.split('"').next()).map(str::to_owned).collect()
}

#[test]
fn the_chart_templates_use_only_values_that_exist_and_close_every_block() {
    let values = values();
    let templates = templates();
    let mut used = BTreeSet::new();
    let mut defined = BTreeSet::new();
    let mut included = BTreeSet::new();
    for (name, text) in &templates {
        for path in values_paths(text) {
            let mut at = &values;
            for key in path.split('.') {
                at = at.get(key).unwrap_or_else(|| panic!("{name}: .Values.{path} is not in values.yaml"));
            }
            used.insert(path.split('.').next().expect("a key").to_owned());
        }
        // Every block an action opens is closed, in each file.
        let actions: Vec<&str> =
            text.split("{{").skip(1).map(|a| a.trim_start_matches('-').trim_start()).collect();
        let opened = actions
            .iter()
            .filter(|a| ["if ", "range ", "with ", "define "].iter().any(|k| a.starts_with(k)))
            .count();
        let closed = actions.iter().filter(|a| a.starts_with("end ") || a.starts_with("end}")).count();
        assert_eq!(opened, closed, "{name}: {opened} blocks opened, {closed} closed");
        assert_eq!(text.matches("{{").count(), text.matches("}}").count(), "{name}: unbalanced braces");
        defined.extend(quoted_after(text, "define \""));
        included.extend(quoted_after(text, "include \""));
    }
    let undefined: Vec<_> = included.difference(&defined).collect();
    assert!(undefined.is_empty(), "included, never defined: {undefined:?}");
    // No value goes unused.
    let top: BTreeSet<String> = values.as_object().expect("a map").keys().cloned().collect();
    let unused: Vec<_> = top.difference(&used).collect();
    assert!(unused.is_empty(), "values.yaml keys no template reads: {unused:?}");

    let chart: serde_json::Value = serde_yaml_ng::from_str(&read(&chart().join("Chart.yaml"))).expect("YAML");
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "foresight");
    let cargo: toml::Value = toml::from_str(&read(&workspace().join("Cargo.toml"))).expect("Cargo.toml");
    assert_eq!(
        chart["appVersion"].as_str(),
        cargo["workspace"]["package"]["version"].as_str(),
        "appVersion (the default image tag) is the daemon's version"
    );
    let deployment = &templates["deployment.yaml"];
    for probe in ["livenessProbe", "readinessProbe"] {
        assert!(
            deployment.contains(&format!("{probe}:\n            {{{{- toYaml .Values.{probe}")),
            "{probe}"
        );
    }
    assert_eq!(values["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(values["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(values["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(values["podSecurityContext"]["runAsNonRoot"], true);
    assert!(templates["servicemonitor.yaml"].starts_with("{{- if .Values.serviceMonitor.enabled }}"));
}

/// Metric names and label names a PromQL expression refers to.
fn promql_refs(expr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
    ];
    const GROUPING: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];
    const OPERATORS: [&str; 4] = ["and", "or", "unless", "bool"];
    let chars: Vec<char> = expr.chars().collect();
    let (mut metrics, mut labels) = (BTreeSet::new(), BTreeSet::new());
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let skip_string = |i: &mut usize| {
        let quote = chars[*i];
        *i += 1;
        while *i < chars.len() && chars[*i] != quote {
            *i += if chars[*i] == '\\' { 2 } else { 1 };
        }
        *i += 1;
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            skip_string(&mut i);
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '$' {
            i += 1;
            while i < chars.len() && (ident(chars[i]) || chars[i] == '{' || chars[i] == '}') {
                i += 1;
            }
        } else if c == '{' {
            // Label matchers: each name before its operator.
            i += 1;
            let mut name = String::new();
            while i < chars.len() && chars[i] != '}' {
                match chars[i] {
                    '"' | '\'' | '`' => skip_string(&mut i),
                    '=' | '!' | '~' => {
                        if !name.trim().is_empty() {
                            labels.insert(name.trim().to_owned());
                        }
                        name.clear();
                        i += 1;
                    }
                    ',' => {
                        name.clear();
                        i += 1;
                    }
                    ch => {
                        name.push(ch);
                        i += 1;
                    }
                }
            }
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if ident(c) {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            if GROUPING.contains(&word.as_str()) {
                if chars.get(next) != Some(&'(') {
                    // group_left and group_right may go without a label list.
                    assert!(word.starts_with("group_"), "`{word}` without a label list in {expr}");
                    continue;
                }
                let close = chars[next..].iter().position(|&ch| ch == ')').expect("closed") + next;
                let list: String = chars[next + 1..close].iter().collect();
                labels.extend(list.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned));
                i = close + 1;
            } else if chars.get(next) == Some(&'(')
                || AGGREGATIONS.contains(&word.as_str())
                || OPERATORS.contains(&word.as_str())
            {
                // A function, an aggregation before its `by`, or an operator.
            } else {
                metrics.insert(word);
            }
        } else {
            i += 1;
        }
    }
    (metrics, labels)
}

#[test]
fn the_promql_reader_finds_metrics_and_labels() {
    let (metrics, labels) = promql_refs(
        "histogram_quantile(0.95, sum by (le, stage) (rate(foresight_tick_stage_seconds_bucket{instance=~\"$instance\", stage!='a,b'}[$__rate_interval]))) / on(stage) group_left max(up) > bool 1e3",
    );
    assert_eq!(metrics, BTreeSet::from(["foresight_tick_stage_seconds_bucket".into(), "up".into()]));
    assert_eq!(labels, BTreeSet::from(["le".into(), "stage".into(), "instance".into()]));
}

/// Every query of the dashboard with its legend: panels' targets and query variables.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    let mut panels: Vec<&serde_json::Value> =
        dashboard["panels"].as_array().expect("panels").iter().collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a PromQL target").to_owned();
            queries.push((expr, target["legendFormat"].as_str().unwrap_or_default().to_owned()));
        }
    }
    for var in dashboard["templating"]["list"].as_array().expect("templating") {
        if var["type"] == "query" {
            let query = var["query"]["query"].as_str().or(var["query"].as_str()).expect("query");
            // label_values(METRIC, LABEL): the metric with the label as a grouping.
            let inner = query.strip_prefix("label_values(").and_then(|q| q.strip_suffix(')')).expect(query);
            let (metric, label) = inner.split_once(',').expect("label_values(metric, label)");
            queries.push((format!("group by ({}) ({})", label.trim(), metric.trim()), String::new()));
        }
    }
    queries
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read(&workspace().join("deploy/grafana/foresight-dashboard.json"))).expect("JSON")
}

#[test]
fn the_dashboard_is_importable_with_a_prometheus_datasource_variable() {
    let dashboard = dashboard();
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 39), "schemaVersion");
    assert!(dashboard["uid"].is_string() && dashboard["title"] == "Foresight");
    let vars = dashboard["templating"]["list"].as_array().expect("templating");
    assert!(
        vars.iter()
            .any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"),
        "no prometheus `datasource` variable"
    );
    let mut ids = BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels {
        assert!(ids.insert(panel["id"].as_u64().expect("id")), "duplicate panel id {}", panel["id"]);
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().expect("x"), grid["w"].as_u64().expect("w"));
        assert!(x + w <= 24 && grid["h"].as_u64() > Some(0), "{} overflows the grid", panel["title"]);
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{} has its own datasource", panel["title"]);
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} queries nothing", panel["title"]);
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", panel["title"]);
        }
    }
    // The topics an operator looks for.
    let exprs: Vec<String> = dashboard_queries(&dashboard).into_iter().map(|(e, _)| e).collect();
    let has = |needle: &str| exprs.iter().any(|e| e.contains(needle));
    assert!(has("histogram_quantile(0.95, sum by (le, stage) (rate(foresight_tick_stage_seconds_bucket"));
    assert!(has("sum by (outcome) (rate(foresight_decisions_total"));
    for metric in [
        "foresight_plugin_calls_total",
        "foresight_plugin_faults_total",
        "foresight_plugin_quarantined",
        "foresight_forecast_mape",
        "foresight_forecast_mase",
        "foresight_forecast_coverage",
        "foresight_predicted_p95_ms",
        "foresight_cost_total",
        "foresight_cluster_stale",
        "foresight_cluster_watch_errors",
        "foresight_leader",
    ] {
        assert!(has(metric), "no panel queries {metric}");
    }
}

/// A daemon started by a test: its address, and killed when dropped.
struct Running {
    child: Child,
    addr: String,
}

impl Running {
    fn start(config: &Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Self {
        let mut cmd = foresight();
        cmd.arg("run").arg("--config").arg(config).args(args).env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let addr = loop {
            let line = lines.next().expect("the daemon exited before announcing its address").expect("utf-8");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.trim().to_owned();
            }
        };
        // Keep draining stderr so the daemon never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, addr }
    }

    fn metrics(&self) -> String {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        write!(stream, "GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sample names of a Prometheus text exposition, each with the label names it carries.
fn samples(exposition: &str, into: &mut BTreeMap<String, BTreeSet<String>>) {
    for line in exposition.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = into.entry(line[..end].to_owned()).or_default();
        if let Some(set) = line[end..].strip_prefix('{').and_then(|l| l.split_once('}')).map(|(s, _)| s) {
            labels
                .extend(set.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, _)| k.trim().to_owned()));
        }
    }
}

/// Prometheus adds these to every series it scrapes; the daemon does not export them.
const TARGET_LABELS: [&str; 2] = ["instance", "job"];

#[test]
fn every_metric_the_dashboard_queries_is_exported_by_a_running_daemon() {
    let dashboard = dashboard();
    let queries = dashboard_queries(&dashboard);
    let mut wanted = BTreeSet::new();
    for (expr, _) in &queries {
        let (metrics, _) = promql_refs(expr);
        assert!(!metrics.is_empty(), "no metric in {expr}");
        wanted.extend(metrics);
    }

    // Some series exist only in some situations, so two daemons show them all. On the
    // simulator, with a scorer that traps on every call (faults, fallbacks, a quarantine) and a
    // shadow experiment (its decisions and MAPE): everything but the cluster series.
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = fixtures::plugin_dir(dir.path());
    std::fs::copy(fixtures::component("hostile-panic"), plugins.join("hostile-panic.wasm")).expect("copy");
    let shipped = read(&workspace().join("config/foresight.toml"));
    assert!(
        shipped.contains("\nfile = \"latency-aware.wasm\"\n")
            && shipped.contains("\nconfig = { weight-latency")
    );
    let mut sim_config: String = shipped
        .lines()
        .filter(|l| !l.starts_with("config = { weight-latency"))
        .map(|l| if l == "file = \"latency-aware.wasm\"" { "file = \"hostile-panic.wasm\"" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    sim_config.push_str(
        "\n[[experiments]]\nname = \"daily-only\"\nrole = \"forecaster\"\nfile = \"seasonal-naive.wasm\"\nconfig = { seasons-s = [86400], weights = [1.0] }\nmode = \"shadow\"\n",
    );
    let sim_file = dir.path().join("sim.toml");
    std::fs::write(&sim_file, sim_config).expect("write");
    let scenario = workspace().join("config/scenarios/diurnal.toml");
    let sim = Running::start(
        &sim_file,
        &["--set", "tick.interval=20ms", "--set", "tick.forecast-refresh=2m"],
        &[
            ("FORESIGHT_PLUGINS__DIR", plugins.as_os_str()),
            ("FORESIGHT_DECISIONS__LOG", dir.path().join("sim.jsonl").as_os_str()),
            ("FORESIGHT_BACKEND__SCENARIO", scenario.as_os_str()),
        ],
    );

    // On the Kubernetes backend, with a cluster (and a Prometheus) that cannot be reached: the
    // cluster's staleness and watch errors, and leadership.
    let (kubeconfig, closed) = crate::fixtures::unreachable_kubeconfig(dir.path());
    let k8s_file = dir.path().join("kubernetes.toml");
    std::fs::write(
        &k8s_file,
        format!(
            "[tick]\ninterval = \"200ms\"\n\n[backend]\nkind = \"kubernetes\"\n\n[backend.kubernetes]\nregions = [\"local\"]\nmax-data-age = \"1s\"\n\n[[backend.kubernetes.clusters]]\nname = \"gone\"\ncontext = \"gone\"\nkind = \"cloud\"\nregion = \"local\"\nrtt-ms = {{ local = 1.0 }}\n\n[backend.kubernetes.prometheus]\nurl = \"http://{closed}\"\ntimeout = \"1s\"\n\n[backend.kubernetes.retry]\nattempts = 1\nbackoff = \"10ms\"\n"
        ),
    )
    .expect("write config");
    let k8s = Running::start(
        &k8s_file,
        &[],
        &[
            ("FORESIGHT_PLUGINS__DIR", plugins.as_os_str()),
            ("FORESIGHT_DECISIONS__LOG", dir.path().join("kubernetes.jsonl").as_os_str()),
            ("KUBECONFIG", kubeconfig.as_os_str()),
            ("POD_NAME", "foresight-e2e".as_ref()),
        ],
    );

    // Scrape both until every metric the dashboard wants has a sample (bounded: forecasts are
    // scored only once their lead time has passed in simulated time).
    let deadline = Instant::now() + Duration::from_secs(120);
    let exported = loop {
        let mut exported = BTreeMap::new();
        samples(&sim.metrics(), &mut exported);
        samples(&k8s.metrics(), &mut exported);
        let missing: Vec<_> = wanted.iter().filter(|m| !exported.contains_key(*m)).collect();
        if missing.is_empty() {
            break exported;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard queries metrics no daemon exports: {missing:?}\nexported: {:?}",
            exported.keys()
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // Every label a query matches, groups by or shows in its legend is carried by one of the
    // metrics it reads (`le` by the histogram buckets).
    for (expr, legend) in &queries {
        let (metrics, mut labels) = promql_refs(expr);
        labels.extend(
            legend.split("{{").skip(1).filter_map(|s| s.split("}}").next()).map(|s| s.trim().to_owned()),
        );
        for label in labels.iter().filter(|l| !TARGET_LABELS.contains(&l.as_str())) {
            assert!(
                metrics.iter().any(|m| exported[m].contains(label)),
                "`{label}` is on none of {metrics:?} ({expr})"
            );
        }
    }
}

/// `helm lint` and `helm template` on the chart, where helm is installed; the rendered
/// configuration must pass `foresight config check` and the rendered RBAC match rbac.yaml.
#[test]
fn helm_lints_and_renders_the_chart_where_helm_is_installed() {
    let helm =
        |args: &[&str]| std::process::Command::new("helm").args(args).current_dir(workspace()).output();
    let Ok(version) = helm(&["version", "--short"]) else {
        println!("helm is not installed: skipping `helm lint` and `helm template`");
        return;
    };
    assert!(version.status.success(), "{}", String::from_utf8_lossy(&version.stderr));
    let chart = chart();
    let chart = chart.to_str().expect("UTF-8 path");
    let out = helm(&["lint", "--strict", chart]).expect("helm lint");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = helm(&[
        "template",
        "foresight",
        chart,
        "--namespace",
        "foresight",
        "--set",
        "serviceMonitor.enabled=true",
    ])
    .expect("helm template");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("rendered YAML"))
        .filter(|doc: &serde_json::Value| !doc.is_null())
        .collect();
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Service",
        "ServiceMonitor",
        "Deployment",
    ] {
        assert!(kinds.contains(kind), "helm template renders no {kind}: {kinds:?}");
    }
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").expect("ConfigMap")["data"]["foresight.toml"]
        .as_str()
        .expect("foresight.toml")
        .to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("foresight.toml");
    std::fs::write(&file, &config).expect("write");
    assert!(config_check(&file).contains("valid (kubernetes backend"));
    let rendered: toml::Value = toml::from_str(&config).expect("TOML");
    assert_eq!(
        rendered,
        chart_config(&values()),
        "helm renders another configuration than this test expects"
    );
    let plain: Vec<serde_json::Value> =
        serde_yaml_ng::Deserializer::from_str(&read(&workspace().join("deploy/kubernetes/rbac.yaml")))
            .map(|doc| serde::Deserialize::deserialize(doc).expect("YAML"))
            .collect();
    for kind in ["ClusterRole", "Role"] {
        assert_eq!(rules_of(&docs, kind), rules_of(&plain, kind), "{kind}");
    }
}

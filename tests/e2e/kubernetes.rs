//! `foresight run` on the Kubernetes backend. One test runs everywhere: a cluster that cannot
//! be reached leaves the daemon ticking, acting on nothing. The rest run only when
//! `FORESIGHT_E2E_KUBECONFIG` names a kubeconfig of a disposable cluster (kind, k3d): they
//! create a namespace with a Deployment and an HPA, run the daemon against it with a demand
//! stand-in on loopback, and check the HPA floor it raised and the Events it recorded.

use std::io::{BufRead, Write};
use std::path::Path;

use crate::fixtures::{self, foresight};

/// A stand-in Prometheus on loopback answering every range query with `value` at every step,
/// demand labelled with `region`. Serves until the test process ends.
fn demand_source(region: &str, value: f64) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let region = region.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let param = |k: &str| -> i64 {
                line.split(['?', '&', ' '])
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let (start, end, step) = (param("start"), param("end"), param("step").max(1));
            let values: Vec<serde_json::Value> = (start..=end)
                .step_by(step as usize)
                .map(|t| serde_json::json!([t, value.to_string()]))
                .collect();
            let body = serde_json::json!({"status": "success", "data": {"resultType": "matrix",
                "result": [{"metric": {"region": region}, "values": values}]}})
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn config(
    dir: &Path,
    context: Option<&str>,
    namespace: &str,
    prometheus: &str,
    dry_run: bool,
) -> std::path::PathBuf {
    let context = context.map(|c| format!("context = \"{c}\"\n")).unwrap_or_default();
    let text = format!(
        r#"[tick]
interval = "1s"
observe-ms = 10000
act-ms = 10000
max-observation-age-ms = 60000

[backend]
kind = "kubernetes"

[backend.kubernetes]
dry-run = {dry_run}
regions = ["local"]
namespace = "{namespace}"
max-data-age = "5m"

[[backend.kubernetes.clusters]]
name = "e2e"
{context}kind = "cloud"
region = "local"
rtt-ms = {{ local = 1.0 }}
namespaces = ["{namespace}"]

[backend.kubernetes.actions]
headroom = false
placement = false

[backend.kubernetes.prometheus]
url = "{prometheus}"
step = "1m"
timeout = "2s"

[backend.kubernetes.retry]
attempts = 2
backoff = "50ms"
"#
    );
    let file = dir.join("foresight.toml");
    std::fs::write(&file, text).expect("write config");
    file
}

fn run(dir: &Path, config: &Path, kubeconfig: &Path, ticks: u32) -> (String, String, Vec<serde_json::Value>) {
    let log = dir.join("decisions.jsonl");
    let out = foresight()
        .args(["run", "--ticks", &ticks.to_string(), "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("KUBECONFIG", kubeconfig)
        .env("FORESIGHT_PLUGINS__DIR", fixtures::plugin_dir(dir))
        .env("FORESIGHT_DECISIONS__LOG", &log)
        .env("POD_NAME", "foresight-e2e")
        .env("RUST_LOG", "info")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}{stderr}");
    let records = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("whole JSON lines"))
        .collect();
    (stdout, stderr, records)
}

#[test]
fn an_unreachable_cluster_leaves_the_daemon_ticking_and_acting_on_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (kubeconfig, _) = crate::fixtures::unreachable_kubeconfig(dir.path());
    let prometheus = demand_source("local", 50.0);
    let config = config(dir.path(), Some("gone"), "foresight", &prometheus, false);
    let (stdout, stderr, records) = run(dir.path(), &config, &kubeconfig, 3);
    assert!(stdout.contains("3 ticks on 1 cluster(s)"), "{stdout}");
    assert!(stderr.contains("backend=\"kubernetes\"") || stderr.contains("backend=kubernetes"), "{stderr}");
    let applied =
        records.iter().filter(|r| r["record"] == "outcome" && r["outcome"]["status"] == "applied").count();
    assert_eq!(applied, 0, "nothing may be applied to a cluster that was never observed: {records:?}");
}

/// The kubeconfig of a disposable cluster, when the suite is asked for.
fn e2e_kubeconfig() -> Option<std::path::PathBuf> {
    match std::env::var_os("FORESIGHT_E2E_KUBECONFIG") {
        Some(path) => Some(path.into()),
        None => {
            eprintln!("FORESIGHT_E2E_KUBECONFIG is not set; skipping the suite against a real cluster");
            None
        }
    }
}

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = std::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl is on PATH (the suite drives the cluster with it)");
    if let Some(text) = stdin {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    }
    let out = child.wait_with_output().expect("kubectl runs");
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace with a Deployment `web` (annotated for Foresight) and its HPA (1..8),
/// deleted when dropped.
struct Workload<'a> {
    kubeconfig: &'a Path,
    namespace: String,
}

impl<'a> Workload<'a> {
    fn create(kubeconfig: &'a Path) -> Self {
        let namespace = format!("foresight-e2e-{}", std::process::id());
        let manifest = format!(
            r#"apiVersion: v1
kind: Namespace
metadata: {{name: {namespace}}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {namespace}
  labels: {{foresight.io/service: web}}
  annotations: {{foresight.io/slo-p95-ms: "200", foresight.io/service-ms: "20", foresight.io/startup-s: "10"}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
        resources: {{requests: {{cpu: 100m, memory: 32Mi}}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: web, namespace: {namespace}}}
spec:
  minReplicas: 1
  maxReplicas: 8
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 80}}}}
"#
        );
        kubectl(kubeconfig, &["apply", "-f", "-"], Some(&manifest));
        Self { kubeconfig, namespace }
    }

    fn hpa_min(&self) -> u64 {
        let out = kubectl(
            self.kubeconfig,
            &["-n", &self.namespace, "get", "hpa", "web", "-o", "jsonpath={.spec.minReplicas}"],
            None,
        );
        out.trim().parse().expect("minReplicas")
    }
}

impl Drop for Workload<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kubectl")
            .args(["delete", "namespace", &self.namespace, "--wait=false"])
            .env("KUBECONFIG", self.kubeconfig)
            .output();
    }
}

#[test]
fn on_a_real_cluster_dry_run_changes_nothing_and_acting_raises_the_hpa_floor_with_events() {
    let Some(kubeconfig) = e2e_kubeconfig() else { return };
    let workload = Workload::create(&kubeconfig);
    let dir = tempfile::tempdir().expect("tempdir");
    // 60 req/s at 20 ms each is 1.2 cores; a replica holds 0.1: well above the HPA's 1.
    let prometheus = demand_source("local", 60.0);

    let dry = config(dir.path(), None, &workload.namespace, &prometheus, true);
    let (_, stderr, records) = run(dir.path(), &dry, &kubeconfig, 4);
    assert_eq!(workload.hpa_min(), 1, "dry-run changed the HPA\n{stderr}");
    assert!(
        records.iter().any(|r| r["outcome"]["status"] == "dry-run"),
        "dry-run recorded nothing: {records:?}"
    );

    let acting = config(dir.path(), None, &workload.namespace, &prometheus, false);
    let (_, stderr, records) = run(dir.path(), &acting, &kubeconfig, 4);
    let raised = workload.hpa_min();
    assert!(raised > 1, "the floor was not raised\n{stderr}\n{records:?}");
    let annotation = kubectl(
        &kubeconfig,
        &[
            "-n",
            &workload.namespace,
            "get",
            "hpa",
            "web",
            "-o",
            "jsonpath={.metadata.annotations.foresight\\.io/original-min-replicas}",
        ],
        None,
    );
    assert_eq!(annotation.trim(), "1");
    let events =
        kubectl(&kubeconfig, &["-n", &workload.namespace, "get", "events.events.k8s.io", "-o", "json"], None);
    let events: serde_json::Value = serde_json::from_str(&events).expect("event list");
    let ours: Vec<_> = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["reportingController"] == "foresight.io/foresight")
        .collect();
    assert!(ours.iter().any(|e| e["action"] == "RaiseFloor"), "no RaiseFloor Event: {ours:?}");
    assert!(ours.iter().any(|e| e["reason"] == "DryRun"), "no DryRun Event: {ours:?}");
}

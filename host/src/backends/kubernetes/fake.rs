//! An in-memory Kubernetes API server behind kube's mockable client (a `tower-test` mock
//! pair), speaking the API's JSON: lists with a resourceVersion, watches as event streams,
//! `Status` objects for failures, merge patches with resourceVersion preconditions, the
//! Binding and scale subresources. Only what the backend's RBAC allows is served (403
//! otherwise). Tests inject faults — a status answer, a write applied and then answered
//! with a failure, expired or dropped watches — and count the changes each object saw, so
//! they can assert that no action was applied twice or lost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

type Reply = SendResponse<Response<Body>>;

/// Where an object lives: `/api/v1` or `/apis/<group>/<version>`, resource, namespace, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Group-version prefix.
    pub prefix: String,
    /// Plural resource.
    pub resource: String,
    /// Namespace, for namespaced objects.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

/// A parsed request path.
#[derive(Debug, Clone)]
struct Target {
    prefix: String,
    group: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, group, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => (format!("/api/{v}"), String::new(), rest),
        ["apis", g, v, rest @ ..] => (format!("/apis/{g}/{v}"), (*g).to_owned(), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
        _ => (None, rest),
    };
    let (resource, name, sub) = match rest {
        [r] => (*r, None, None),
        [r, n] => (*r, Some(*n), None),
        [r, n, s] => (*r, Some(*n), Some(*s)),
        _ => return None,
    };
    Some(Target {
        prefix,
        group,
        resource: resource.to_owned(),
        namespace,
        name: name.map(str::to_owned),
        sub: sub.map(str::to_owned),
    })
}

/// A fault the next matching request meets.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status, changing nothing.
    Status(u16),
    /// Apply the request, then answer with this status (the client cannot tell it landed).
    ApplyThenStatus(u16),
}

struct Armed {
    method: Method,
    path_contains: String,
    fault: Fault,
    times: u32,
}

struct PendingWatch {
    target: Target,
    since: u64,
    reply: Reply,
}

struct Change {
    rv: u64,
    kind: &'static str,
    key: Key,
    object: Value,
}

#[derive(Default)]
struct State {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    changes: Vec<Change>,
    /// Watches from before this resourceVersion are answered 410 Gone.
    compacted: u64,
    faults: Vec<Armed>,
    pending: Vec<PendingWatch>,
    /// Group-version prefixes and resources not installed (a CRD missing).
    absent: Vec<(String, String)>,
    /// Effective changes per object (a write that changes nothing is not counted).
    writes: BTreeMap<Key, u32>,
    /// `VERB path?query` of every request, in order.
    log: Vec<String>,
    namespace: String,
}

/// The fake server; cheap to clone, every clone sees the same state.
#[derive(Clone)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    /// A server whose RBAC is the shipped one for Foresight's namespace `own`, and a client
    /// talking to it. Needs a tokio runtime.
    pub fn start(own: &str) -> (Self, kube::Client) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = Self { state: Arc::new(Mutex::new(State { namespace: own.into(), ..State::default() })) };
        tokio::spawn(fake.clone().serve(handle));
        (fake, kube::Client::new(service, "default"))
    }

    async fn serve(self, mut handle: Handle<Request<Body>, Response<Body>>) {
        while let Some((request, reply)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            let mut state = self.state.lock().expect("fake API state");
            state.handle(parts, bytes, reply);
            state.flush_watches();
        }
    }

    /// Stores an object as if it had been created (tests seed the cluster with this).
    pub fn insert(&self, prefix: &str, resource: &str, object: Value) -> Key {
        let mut state = self.state.lock().expect("fake API state");
        let key = key_of(prefix, resource, &object);
        state.put(key.clone(), object, "ADDED", false);
        state.flush_watches();
        key
    }

    /// Replaces an object's field through a JSON merge patch, as another controller would.
    pub fn update(&self, key: &Key, patch: Value) {
        let mut state = self.state.lock().expect("fake API state");
        let mut object = state.objects.get(key).cloned().expect("the object exists");
        merge(&mut object, &patch);
        state.put(key.clone(), object, "MODIFIED", false);
        state.flush_watches();
    }

    /// Deletes an object, as another controller would.
    pub fn delete(&self, key: &Key) {
        let mut state = self.state.lock().expect("fake API state");
        if let Some(mut object) = state.objects.remove(key) {
            state.rv += 1;
            object["metadata"]["resourceVersion"] = json!(state.rv.to_string());
            let rv = state.rv;
            state.changes.push(Change { rv, kind: "DELETED", key: key.clone(), object });
        }
        state.flush_watches();
    }

    /// The stored object.
    pub fn get(&self, key: &Key) -> Option<Value> {
        self.state.lock().expect("fake API state").objects.get(key).cloned()
    }

    /// Every object of a resource, in key order.
    pub fn all(&self, resource: &str) -> Vec<Value> {
        let state = self.state.lock().expect("fake API state");
        state.objects.iter().filter(|(k, _)| k.resource == resource).map(|(_, v)| v.clone()).collect()
    }

    /// How many times an object changed through the API (seeding not counted).
    pub fn writes(&self, key: &Key) -> u32 {
        self.state.lock().expect("fake API state").writes.get(key).copied().unwrap_or(0)
    }

    /// The requests served so far.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().expect("fake API state").log.clone()
    }

    /// The next `times` requests with this method whose path contains `path_contains` meet
    /// `fault`.
    pub fn fail(&self, method: Method, path_contains: &str, fault: Fault, times: u32) {
        self.state.lock().expect("fake API state").faults.push(Armed {
            method,
            path_contains: path_contains.into(),
            fault,
            times,
        });
    }

    /// Marks a resource as not served (its CRD is not installed).
    pub fn uninstall(&self, prefix: &str, resource: &str) {
        self.state.lock().expect("fake API state").absent.push((prefix.into(), resource.into()));
    }

    /// Compacts history: open watches end with a 410 Gone event, and watches from an older
    /// resourceVersion are refused the same way, so clients must list again.
    pub fn expire_watches(&self) {
        let mut state = self.state.lock().expect("fake API state");
        // History up to now is gone: every watch from before it, open or about to be
        // opened, meets 410, and a list answers from after it.
        state.rv += 1;
        state.compacted = state.rv;
        for w in std::mem::take(&mut state.pending) {
            let gone = json!({"type": "ERROR", "object": status(410, "Expired", "too old resource version")});
            respond(w.reply, StatusCode::OK, format!("{gone}\n").into_bytes());
        }
    }

    /// Breaks every open watch's connection.
    pub fn drop_watches(&self) {
        let mut state = self.state.lock().expect("fake API state");
        for w in std::mem::take(&mut state.pending) {
            w.reply.send_error(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset by peer",
            ));
        }
    }

    /// Watches waiting for a change.
    pub fn open_watches(&self) -> usize {
        self.state.lock().expect("fake API state").pending.len()
    }
}

fn key_of(prefix: &str, resource: &str, object: &Value) -> Key {
    let meta = &object["metadata"];
    Key {
        prefix: prefix.into(),
        resource: resource.into(),
        namespace: meta["namespace"].as_str().map(str::to_owned),
        name: meta["name"].as_str().expect("an object has a name").to_owned(),
    }
}

/// A `Status` object, as the API server writes failures.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn respond(reply: Reply, code: StatusCode, body: Vec<u8>) {
    let response = Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("a response");
    reply.send_response(response);
}

fn answer(reply: Reply, code: u16, body: &Value) {
    respond(reply, StatusCode::from_u16(code).expect("a status code"), body.to_string().into_bytes());
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            let object = target.as_object_mut().expect("an object");
            for (k, v) in fields {
                if v.is_null() {
                    object.remove(k);
                } else {
                    merge(object.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn query(uri: &http::Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%2F", "/").replace("%3D", "=").replace("%2C", ",")))
        .collect()
}

fn verb(method: &Method, target: &Target, watch: bool) -> &'static str {
    match (method.as_str(), &target.name, watch) {
        ("GET", _, true) => "watch",
        ("GET", Some(_), _) => "get",
        ("GET", None, _) => "list",
        ("POST", _, _) => "create",
        ("PATCH", _, _) => "patch",
        ("PUT", _, _) => "update",
        ("DELETE", _, _) => "delete",
        _ => "unknown",
    }
}

fn selects(selector: Option<&String>, object: &Value) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else { return true };
    selector.split(',').all(|term| match term.split_once('=') {
        Some((k, v)) => object["metadata"]["labels"][k].as_str() == Some(v),
        None => false,
    })
}

impl State {
    fn put(&mut self, key: Key, mut object: Value, kind: &'static str, counted: bool) {
        self.rv += 1;
        let meta = &mut object["metadata"];
        meta["resourceVersion"] = json!(self.rv.to_string());
        if meta["uid"].is_null() {
            meta["uid"] = json!(format!("uid-{}", self.rv));
        }
        if meta["creationTimestamp"].is_null() {
            meta["creationTimestamp"] = json!("2026-12-03T10:00:00Z");
        }
        if counted {
            *self.writes.entry(key.clone()).or_default() += 1;
        }
        self.objects.insert(key.clone(), object.clone());
        self.changes.push(Change { rv: self.rv, kind, key, object });
    }

    /// Answers every open watch that has changes to deliver.
    fn flush_watches(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for w in pending {
            let events = self.events(&w.target, w.since);
            if events.is_empty() {
                self.pending.push(w);
            } else {
                respond(w.reply, StatusCode::OK, events.into_bytes());
            }
        }
    }

    fn events(&self, target: &Target, since: u64) -> String {
        self.changes
            .iter()
            .filter(|c| c.rv > since && c.key.prefix == target.prefix && c.key.resource == target.resource)
            .filter(|c| target.namespace.is_none() || c.key.namespace == target.namespace)
            .map(|c| format!("{}\n", json!({"type": c.kind, "object": c.object})))
            .collect()
    }

    fn handle(&mut self, parts: http::request::Parts, body: Vec<u8>, reply: Reply) {
        let q = query(&parts.uri);
        self.log.push(format!("{} {}", parts.method, parts.uri));
        if parts.uri.path() == "/version" {
            if let Some(i) = self.faults.iter().position(|f| f.path_contains == "/version") {
                self.faults[i].times -= 1;
                if self.faults[i].times == 0 {
                    self.faults.remove(i);
                }
                return reply.send_error(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connection refused",
                ));
            }
            let version = json!({"major": "1", "minor": "36", "gitVersion": "v1.36.0", "gitCommit": "0", "gitTreeState": "clean",
                                 "buildDate": "2026-08-01T00:00:00Z", "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64"});
            return answer(reply, 200, &version);
        }
        let Some(target) = parse(parts.uri.path()) else {
            return answer(
                reply,
                404,
                &status(404, "NotFound", "the server could not find the requested resource"),
            );
        };
        let watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
        let verb = verb(&parts.method, &target, watch);
        let resource = match &target.sub {
            Some(sub) if sub != "status" || target.resource == "addonplacementscores" => {
                format!("{}/{sub}", target.resource)
            }
            _ => target.resource.clone(),
        };
        if self.absent.iter().any(|(p, r)| *p == target.prefix && *r == target.resource) {
            return answer(
                reply,
                404,
                &status(404, "NotFound", "the server could not find the requested resource"),
            );
        }
        if !super::rbac::allows(&target.group, &resource, verb, target.namespace.as_deref(), &self.namespace)
        {
            let message = format!(
                "{resource} \"{}\" is forbidden: User \"system:serviceaccount:foresight:foresight\" cannot {verb} resource \"{resource}\" in API group \"{}\"{}",
                target.name.as_deref().unwrap_or(""),
                target.group,
                target.namespace.as_ref().map(|n| format!(" in the namespace \"{n}\"")).unwrap_or_default()
            );
            return answer(reply, 403, &status(403, "Forbidden", &message));
        }
        let path = parts.uri.to_string();
        let mut apply_then = None;
        if let Some(i) =
            self.faults.iter().position(|f| f.method == parts.method && path.contains(&f.path_contains))
        {
            let armed = &mut self.faults[i];
            let fault = armed.fault.clone();
            armed.times -= 1;
            if armed.times == 0 {
                self.faults.remove(i);
            }
            match fault {
                Fault::Status(code) => {
                    return answer(reply, code, &status(code, "InternalError", "injected fault"));
                }
                Fault::ApplyThenStatus(code) => apply_then = Some(code),
            }
        }
        if let Some((code, body, reply)) = self.execute(&parts.method, &target, verb, &q, &body, reply) {
            match apply_then {
                Some(fault) => {
                    answer(reply, fault, &status(fault, "InternalError", "injected fault after applying"))
                }
                None => answer(reply, code, &body),
            }
        }
    }

    /// Carries out one request; `None` when the reply was kept (an open watch).
    fn execute(
        &mut self,
        method: &Method,
        target: &Target,
        verb: &str,
        q: &BTreeMap<String, String>,
        body: &[u8],
        reply: Reply,
    ) -> Option<(u16, Value, Reply)> {
        let key = |name: &str| Key {
            prefix: target.prefix.clone(),
            resource: target.resource.clone(),
            namespace: target.namespace.clone(),
            name: name.to_owned(),
        };
        let not_found =
            |name: &str| status(404, "NotFound", &format!("{} \"{name}\" not found", target.resource));
        let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let (code, value) = match verb {
            "watch" => {
                let since: u64 = q.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
                if since < self.compacted {
                    let gone = json!({"type": "ERROR", "object": status(410, "Expired", "too old resource version")});
                    respond(reply, StatusCode::OK, format!("{gone}\n").into_bytes());
                    return None;
                }
                let events = self.events(target, since);
                if events.is_empty() {
                    self.pending.push(PendingWatch { target: target.clone(), since, reply });
                } else {
                    respond(reply, StatusCode::OK, events.into_bytes());
                }
                return None;
            }
            "list" => {
                let items: Vec<Value> = self
                    .objects
                    .iter()
                    .filter(|(k, _)| k.prefix == target.prefix && k.resource == target.resource)
                    .filter(|(k, _)| target.namespace.is_none() || k.namespace == target.namespace)
                    .filter(|(_, v)| selects(q.get("labelSelector"), v))
                    .map(|(_, v)| v.clone())
                    .collect();
                (
                    200,
                    json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": self.rv.to_string()}, "items": items}),
                )
            }
            "get" => {
                let name = target.name.as_deref().unwrap_or_default();
                match (self.objects.get(&key(name)), target.sub.as_deref()) {
                    (None, _) => (404, not_found(name)),
                    (Some(o), Some("scale")) => (200, scale_of(o)),
                    (Some(o), _) => (200, o.clone()),
                }
            }
            "create" => match (target.sub.as_deref(), target.name.as_deref()) {
                (Some("binding"), Some(pod)) => self.bind(key(pod), &input),
                _ => {
                    let name = input["metadata"]["name"].as_str().unwrap_or_default().to_owned();
                    let k = key(&name);
                    if self.objects.contains_key(&k) {
                        (
                            409,
                            status(
                                409,
                                "AlreadyExists",
                                &format!("{} \"{name}\" already exists", target.resource),
                            ),
                        )
                    } else {
                        let mut object = input.clone();
                        if let Some(ns) = &target.namespace {
                            object["metadata"]["namespace"] = json!(ns);
                        }
                        self.put(k.clone(), object, "ADDED", true);
                        (201, self.objects[&k].clone())
                    }
                }
            },
            "patch" | "update" => {
                let name = target.name.as_deref().unwrap_or_default();
                let k = key(name);
                let Some(current) = self.objects.get(&k).cloned() else {
                    return Some((404, not_found(name), reply));
                };
                let wanted_rv = input["metadata"]["resourceVersion"].as_str();
                if wanted_rv.is_some_and(|rv| Some(rv) != current["metadata"]["resourceVersion"].as_str()) {
                    let message = format!(
                        "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                        target.resource
                    );
                    return Some((409, status(409, "Conflict", &message), reply));
                }
                let mut next = current.clone();
                match (method.as_str(), target.sub.as_deref()) {
                    ("PUT", _) => next = input.clone(),
                    (_, Some("scale")) => merge(&mut next["spec"], &input["spec"]),
                    (_, Some("status")) => merge(&mut next["status"], &input["status"]),
                    _ => merge(&mut next, &input),
                }
                next["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
                if next != current {
                    self.put(k.clone(), next, "MODIFIED", true);
                }
                let stored = self.objects[&k].clone();
                (200, if target.sub.as_deref() == Some("scale") { scale_of(&stored) } else { stored })
            }
            _ => (405, status(405, "MethodNotAllowed", "not served by the fake")),
        };
        Some((code, value, reply))
    }

    fn bind(&mut self, pod: Key, binding: &Value) -> (u16, Value) {
        let Some(current) = self.objects.get(&pod).cloned() else {
            return (404, status(404, "NotFound", &format!("pods \"{}\" not found", pod.name)));
        };
        let node = binding["target"]["name"].as_str().unwrap_or_default();
        if let Some(on) = current["spec"]["nodeName"].as_str() {
            let message = format!(
                "Operation cannot be fulfilled on pods/binding \"{}\": pod {} is already assigned to node \"{on}\"",
                pod.name, pod.name
            );
            return (409, status(409, "Conflict", &message));
        }
        let mut next = current;
        next["spec"]["nodeName"] = json!(node);
        next["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "True"}]);
        self.put(pod, next, "MODIFIED", true);
        (201, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}))
    }
}

fn scale_of(deployment: &Value) -> Value {
    let meta = &deployment["metadata"];
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
           "metadata": {"name": meta["name"], "namespace": meta["namespace"], "resourceVersion": meta["resourceVersion"]},
           "spec": {"replicas": deployment["spec"]["replicas"]},
           "status": {"replicas": deployment["status"]["replicas"].as_u64().unwrap_or(0)}})
}

/// Seeds: a ready node of an instance type with `cpu` cores and `gib` memory.
pub fn node(name: &str, instance_type: &str, cpu: &str, gib: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": name, "labels": {"node.kubernetes.io/instance-type": instance_type}},
           "status": {"allocatable": {"cpu": cpu, "memory": gib, "pods": "110"},
                      "conditions": [{"type": "Ready", "status": "True"}]}})
}

/// Seeds: a Deployment of service `service` with `replicas`, `ready` of them ready, pods
/// requesting `cpu` each.
pub fn deployment(ns: &str, name: &str, service: &str, replicas: u32, ready: u32, cpu: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": ns, "labels": {"foresight.io/service": service},
                        "annotations": {"foresight.io/slo-p95-ms": "200", "foresight.io/service-ms": "20", "foresight.io/startup-s": "30"}},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": "app:1",
                                          "resources": {"requests": {"cpu": cpu, "memory": "256Mi"}}}]}}},
           "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready}})
}

/// Seeds: an HPA on a Deployment.
pub fn hpa(ns: &str, name: &str, min: u32, max: u32) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"minReplicas": min, "maxReplicas": max,
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}},
           "status": {"currentReplicas": min, "desiredReplicas": min}})
}

/// Seeds: a pod of a Deployment, on `node` or pending, with `scheduler`.
pub fn pod(ns: &str, name: &str, app: &str, node: Option<&str>, scheduler: &str, cpu: &str) -> Value {
    let phase = if node.is_some() { "Running" } else { "Pending" };
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
           "spec": {"schedulerName": scheduler,
                    "containers": [{"name": "app", "image": "app:1", "resources": {"requests": {"cpu": cpu, "memory": "256Mi"}}}]},
           "status": {"phase": phase}});
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
        p["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
    }
    p
}

//! The HTTP server: metrics for Prometheus, health and readiness probes, and a JSON API over
//! the daemon's status and recent decisions. It runs on its own small async runtime and only
//! reads what the loop publishes after each tick.

mod metrics;
mod page;

pub use metrics::ClusterHealth;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json};
use axum::routing::get;

pub use metrics::Metrics;

use crate::control::Record;

/// What the loop publishes for the server.
pub struct Shared {
    /// Metrics.
    pub metrics: Metrics,
    /// The latest status document.
    pub status: ArcSwap<serde_json::Value>,
    /// Forecast accuracy per plugin, series and lead time.
    pub accuracy: ArcSwap<serde_json::Value>,
    /// Recent decision-log records, oldest first.
    pub decisions: Mutex<VecDeque<Record>>,
    /// Records kept for the API.
    pub capacity: usize,
    /// Set once the first tick has completed.
    pub ready: AtomicBool,
    /// The last ticks as the status page shows them, oldest first.
    pub timeline: Mutex<VecDeque<crate::control::TickView>>,
}

/// Ticks of history the status page plots.
const TIMELINE: usize = 360;

impl Shared {
    /// Empty state keeping `capacity` decisions.
    pub fn new(capacity: usize) -> Self {
        Self {
            metrics: Metrics::new(),
            status: ArcSwap::from_pointee(serde_json::json!({ "state": "starting" })),
            accuracy: ArcSwap::from_pointee(serde_json::json!({ "by_horizon": [], "by_series": [] })),
            decisions: Mutex::new(VecDeque::new()),
            capacity,
            ready: AtomicBool::new(false),
            timeline: Mutex::new(VecDeque::with_capacity(TIMELINE)),
        }
    }

    /// Adds a tick to the page's history.
    pub fn record_view(&self, view: crate::control::TickView) {
        let mut t = self.timeline.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() == TIMELINE {
            t.pop_front();
        }
        t.push_back(view);
    }

    /// Adds the records of a tick.
    pub fn publish(&self, records: Vec<Record>) {
        let mut d = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
        for r in records {
            if d.len() == self.capacity {
                d.pop_front();
            }
            d.push_back(r);
        }
    }
}

/// The routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(page::page))
        .route("/api/v1/timeline", get(timeline))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/status", get(status))
        .route("/api/v1/decisions", get(decisions))
        .route("/api/v1/accuracy", get(accuracy))
        .with_state(shared)
}

async fn metrics(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        s.metrics.encode(),
    )
}

async fn readyz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting: no tick has completed yet")
    }
}

async fn status(State(s): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(s.status.load().as_ref().clone())
}

async fn accuracy(State(s): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(s.accuracy.load().as_ref().clone())
}

async fn timeline(State(s): State<Arc<Shared>>) -> Json<Vec<crate::control::TickView>> {
    Json(s.timeline.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect())
}

#[derive(serde::Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn decisions(State(s): State<Arc<Shared>>, Query(q): Query<Limit>) -> Json<Vec<Record>> {
    let d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    let n = q.limit.unwrap_or(100).min(d.len());
    Json(d.iter().skip(d.len() - n).cloned().collect())
}

//! The aggregator as a gRPC service over mutual TLS: agents fetch the open round and submit
//! their updates; rounds close on their deadline or when everyone has answered; after the
//! last round the final model is written (and, with a template, exported as ONNX).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tonic::{Request, Response, Status};

use super::aggregate::Update;
use super::round::{Aggregator, LocalTraining, RoundConfig, RoundReport};
use super::wire::federation::federation_server::{Federation, FederationServer};
use super::wire::{self, Ack, FetchRequest, RoundState, Submission};

/// What the aggregator runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Agents to wait for before the first round.
    pub agents: usize,
    /// Rounds to run.
    pub rounds: u64,
    /// Round rules.
    pub round: RoundConfig,
    /// What agents do each round.
    pub local: LocalTraining,
    /// Seed of the initial weights.
    pub seed: u64,
    /// Server momentum β.
    pub momentum: f32,
}

/// How the federation went.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Each round.
    pub rounds: Vec<RoundReport>,
    /// Bytes of updates received per round.
    pub bytes_in: Vec<u64>,
    /// Bytes of weights sent per round.
    pub bytes_out: Vec<u64>,
    /// Seconds each round took.
    pub round_seconds: Vec<f64>,
    /// Updates refused, with why.
    pub refused: Vec<String>,
}

struct State {
    config: ServeConfig,
    aggregator: Aggregator,
    registered: std::collections::BTreeMap<String, u64>,
    started: Instant,
    opened: Instant,
    summary: Summary,
    bytes_in: u64,
    bytes_out: u64,
    done: bool,
}

impl State {
    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Opens the first round once enough agents are here, closes rounds that may close and
    /// opens the next.
    fn advance(&mut self) {
        if self.done {
            return;
        }
        if self.aggregator.round() == 0 {
            if self.registered.len() >= self.config.agents {
                let now = self.now();
                self.aggregator.open(self.registered.keys().cloned(), now);
                self.opened = Instant::now();
            }
            return;
        }
        let before = self.aggregator.round();
        match self.aggregator.try_close(self.now()) {
            Ok(Some(report)) => {
                tracing::info!(round = report.round, version = report.version, participants = report.participants.len(), missing = ?report.missing, epsilon = ?report.epsilon, "round closed");
                self.summary.rounds.push(report);
                self.summary.bytes_in.push(std::mem::take(&mut self.bytes_in));
                self.summary.bytes_out.push(std::mem::take(&mut self.bytes_out));
                self.summary.round_seconds.push(self.opened.elapsed().as_secs_f64());
                if self.summary.rounds.len() as u64 >= self.config.rounds {
                    self.done = true;
                } else {
                    let now = self.now();
                    self.aggregator.open(self.registered.keys().cloned(), now);
                    self.opened = Instant::now();
                }
            }
            Ok(None) if self.aggregator.round() != before => self.opened = Instant::now(),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot combine this round's updates"),
        }
    }
}

/// The service; clones share one state.
#[derive(Clone)]
pub struct Aggregation {
    state: Arc<Mutex<State>>,
}

impl Aggregation {
    /// An aggregator for `config`.
    pub fn new(config: ServeConfig) -> Self {
        let initial = super::model::Mlp::new(config.seed).params;
        let aggregator = Aggregator::new(config.round.clone(), initial).with_momentum(config.momentum);
        let summary = Summary {
            rounds: vec![],
            bytes_in: vec![],
            bytes_out: vec![],
            round_seconds: vec![],
            refused: vec![],
        };
        Self {
            state: Arc::new(Mutex::new(State {
                config,
                aggregator,
                registered: Default::default(),
                started: Instant::now(),
                opened: Instant::now(),
                summary,
                bytes_in: 0,
                bytes_out: 0,
                done: false,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the last round has closed.
    pub fn done(&self) -> bool {
        self.lock().done
    }

    /// Closes rounds whose deadline passed (called on a timer as well as on every request).
    pub fn tick(&self) {
        self.lock().advance();
    }

    /// The final (or current) weights and the summary.
    pub fn result(&self) -> (Vec<f32>, Summary) {
        let s = self.lock();
        (s.aggregator.global().0.to_vec(), s.summary.clone())
    }

    /// Serves on `listener` with `tls` until the federation is done, then for `linger` more so
    /// agents can fetch the final model.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        tls: tonic::transport::ServerTlsConfig,
        linger: Duration,
    ) -> Result<(), tonic::transport::Error> {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let this = self.clone();
        let shutdown = async move {
            let mut every = tokio::time::interval(Duration::from_millis(50));
            while !this.done() {
                every.tick().await;
                this.tick();
            }
            tokio::time::sleep(linger).await;
        };
        tonic::transport::Server::builder()
            .tls_config(tls)?
            .add_service(FederationServer::new(self).max_decoding_message_size(64 << 20))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }
}

#[tonic::async_trait]
impl Federation for Aggregation {
    async fn fetch(&self, request: Request<FetchRequest>) -> Result<Response<RoundState>, Status> {
        let r = request.into_inner();
        if r.agent.is_empty() {
            return Err(Status::invalid_argument("agent name is empty"));
        }
        let mut s = self.lock();
        s.registered.insert(r.agent.clone(), r.samples);
        s.advance();
        let (weights, version) = s.aggregator.global();
        let state = RoundState {
            round: s.aggregator.round(),
            version,
            weights: wire::to_bytes(weights),
            done: s.done,
            expected: s.aggregator.expects(&r.agent),
            epochs: s.config.local.epochs as u32,
            batch: s.config.local.batch as u32,
            // The same decay as central training's over epochs, here over rounds.
            lr: super::model::cosine_lr(
                s.config.local.lr,
                s.aggregator.round().saturating_sub(1) as usize,
                s.config.rounds as usize,
            ),
            clip: s.config.round.clip.unwrap_or(0.0),
            noise: s.config.round.noise,
            agents: s.registered.len() as u32,
        };
        s.bytes_out += state.weights.len() as u64;
        Ok(Response::new(state))
    }

    async fn submit(&self, request: Request<Submission>) -> Result<Response<Ack>, Status> {
        let r = request.into_inner();
        let delta =
            wire::from_bytes(&r.delta).ok_or_else(|| Status::invalid_argument("delta is not f32 bytes"))?;
        let mut s = self.lock();
        s.bytes_in += r.delta.len() as u64;
        let taken = s.aggregator.submit(&r.agent, r.round, Update { delta, samples: r.samples });
        s.advance();
        Ok(Response::new(match taken {
            Ok(()) => Ack { accepted: true, reason: String::new() },
            Err(e) => {
                tracing::warn!(agent = %r.agent, error = %e, "update refused");
                s.summary.refused.push(e.to_string());
                Ack { accepted: false, reason: e.to_string() }
            }
        }))
    }
}

/// The server's TLS: its certificate, and the CA whose clients it accepts (and no others).
pub fn server_tls(ca: &str, cert: &str, key: &str) -> tonic::transport::ServerTlsConfig {
    tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(cert, key))
        .client_ca_root(tonic::transport::Certificate::from_pem(ca))
}

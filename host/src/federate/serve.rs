//! The aggregator as a gRPC service over mutual TLS: agents fetch the open round and submit
//! their updates; rounds close on their deadline or when everyone has answered; after the
//! last round the final model is written (and, with a template, exported as ONNX).
//!
//! With secure aggregation, agents send a public key for the open round with each fetch; once
//! every member's key is in, the round's state relays them all, and each agent submits its
//! update masked. The aggregator only ever holds masked updates and learns only their sum.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use serde::Serialize;
use tonic::{Request, Response, Status};

use super::aggregate::{Rule, Update};
use super::round::{Aggregator, KeyError, LocalTraining, RoundConfig, RoundReport};
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
    /// Secure aggregation: take only masked updates.
    pub secure: bool,
}

/// Why an aggregator cannot run as configured.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ServeError {
    /// A rule that needs each update on its own, which masking hides.
    #[error(
        "--secure hands the aggregator only the sum of masked updates, and --rule {0} needs each update on its own; use --rule fedavg with --secure, or drop --secure"
    )]
    SecureRule(&'static str),
    /// Fewer than two agents: the masked sum of one update is that update.
    #[error(
        "--secure needs --agents 2 or more (got {0}): the masked sum of one agent's update is that update"
    )]
    SecureAgents(usize),
    /// A quorum of one would let a restarted round run with a single agent.
    #[error(
        "--secure needs --quorum 2 or more (got {0}): a round restarted with one agent would hand over its update; raise --quorum"
    )]
    SecureQuorum(usize),
}

impl ServeConfig {
    /// Whether the configuration can run.
    pub fn check(&self) -> Result<(), ServeError> {
        if !self.secure {
            return Ok(());
        }
        match self.round.rule {
            Rule::FedAvg => {}
            Rule::Median => return Err(ServeError::SecureRule("median")),
            Rule::TrimmedMean(_) => return Err(ServeError::SecureRule("trimmed-mean")),
            Rule::MultiKrum(_) => return Err(ServeError::SecureRule("multi-krum")),
        }
        if self.agents < 2 {
            return Err(ServeError::SecureAgents(self.agents));
        }
        if self.round.quorum < 2 {
            return Err(ServeError::SecureQuorum(self.round.quorum));
        }
        Ok(())
    }
}

/// A round thrown away at its deadline, and who was left out of the next attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reopened {
    /// The round thrown away.
    pub round: u64,
    /// The round that replaced it.
    pub next: u64,
    /// Members of the thrown-away round not in the next one.
    pub dropped: Vec<String>,
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
    /// Rounds opened again at their deadline.
    pub reopened: Vec<Reopened>,
    /// Whether updates were aggregated securely.
    pub secure: bool,
    /// Individual updates the aggregator stored in the clear (0 under secure aggregation).
    pub plaintext_updates_held: u64,
    /// Individual masked updates it stored, counting those of rounds thrown away.
    pub masked_updates_held: u64,
}

struct State {
    config: ServeConfig,
    aggregator: Aggregator,
    registered: BTreeMap<String, u64>,
    /// Under secure aggregation, agents a restart left out that have not been heard from
    /// since: a dead agent would otherwise be let into every round and cost each a restart.
    dropped: BTreeSet<String>,
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
                let members = self.next_members();
                self.aggregator.open(members, now);
                self.opened = Instant::now();
            }
            return;
        }
        let before = self.aggregator.round();
        let members = self.aggregator.members();
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
                    let members = self.next_members();
                    self.aggregator.open(members, now);
                    self.opened = Instant::now();
                }
            }
            Ok(None) if self.aggregator.round() != before => {
                self.opened = Instant::now();
                let now_in: BTreeSet<String> = self.aggregator.members().into_iter().collect();
                let dropped: Vec<String> = members.into_iter().filter(|m| !now_in.contains(m)).collect();
                if self.aggregator.is_secure() {
                    self.dropped.extend(dropped.iter().cloned());
                }
                let next = self.aggregator.round();
                self.summary.reopened.push(Reopened { round: before, next, dropped });
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot combine this round's updates"),
        }
    }

    /// Who the next round is for: every registered agent, except, under secure aggregation,
    /// those a restart left out and not heard from since — unless too few would be left.
    fn next_members(&self) -> Vec<String> {
        let all = self.registered.keys().cloned();
        if !self.aggregator.is_secure() {
            return all.collect();
        }
        let active: Vec<String> = all.clone().filter(|a| !self.dropped.contains(a)).collect();
        if active.len() >= self.config.round.quorum.max(2) { active } else { all.collect() }
    }
}

/// The service; clones share one state.
#[derive(Clone)]
pub struct Aggregation {
    state: Arc<Mutex<State>>,
}

impl Aggregation {
    /// An aggregator for `config`.
    pub fn new(config: ServeConfig) -> Result<Self, ServeError> {
        config.check()?;
        let initial = super::model::Mlp::new(config.seed).params;
        let mut aggregator = Aggregator::new(config.round.clone(), initial).with_momentum(config.momentum);
        if config.secure {
            aggregator = aggregator.secure();
        }
        let summary = Summary {
            rounds: vec![],
            bytes_in: vec![],
            bytes_out: vec![],
            round_seconds: vec![],
            refused: vec![],
            reopened: vec![],
            secure: config.secure,
            plaintext_updates_held: 0,
            masked_updates_held: 0,
        };
        Ok(Self {
            state: Arc::new(Mutex::new(State {
                config,
                aggregator,
                registered: BTreeMap::new(),
                dropped: BTreeSet::new(),
                started: Instant::now(),
                opened: Instant::now(),
                summary,
                bytes_in: 0,
                bytes_out: 0,
                done: false,
            })),
        })
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
        let mut summary = s.summary.clone();
        summary.plaintext_updates_held = s.aggregator.plaintext_updates_held();
        summary.masked_updates_held = s.aggregator.masked_updates_held();
        (s.aggregator.global().0.to_vec(), summary)
    }

    /// Serves on `listener` with `tls` until the federation is done, then for `linger` more so
    /// agents can fetch the final model.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        tls: tonic::transport::ServerTlsConfig,
        linger: Duration,
    ) -> Result<(), tonic::transport::Error> {
        // Without TCP_NODELAY, Nagle's algorithm and the peer's delayed ACK hold each small
        // reply ~40 ms: most of a round on loopback.
        let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
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
        let key: Option<[u8; 32]> = match r.public_key.len() {
            0 => None,
            _ => Some(r.public_key.as_slice().try_into().map_err(|_| {
                Status::invalid_argument(format!(
                    "public_key of `{}` has {} bytes; an X25519 public key has 32",
                    r.agent,
                    r.public_key.len()
                ))
            })?),
        };
        let mut s = self.lock();
        s.registered.insert(r.agent.clone(), r.samples);
        s.dropped.remove(&r.agent);
        s.advance();
        let secure = s.aggregator.is_secure();
        if let (true, Some(key)) = (secure, key) {
            match s.aggregator.publish_key(&r.agent, r.key_round, key) {
                Ok(()) => {}
                // Sent as the round moved on, or by an agent this round does not include: it
                // sends a key for the round it is told about next.
                Err(KeyError::WrongRound { .. } | KeyError::Unknown(_)) => {}
                Err(e) => tracing::warn!(agent = %r.agent, error = %e, "round key refused"),
            }
        }
        let (members, keys) = match s.aggregator.keys().filter(|_| secure) {
            Some(keys) => (s.aggregator.members(), keys.iter().map(|k| k.to_vec()).collect()),
            None => (vec![], vec![]),
        };
        let (weights, version) = s.aggregator.global();
        let round = s.aggregator.round();
        let expected = s.aggregator.expects(&r.agent);
        // The weights go only to an agent that is about to train on them (under secure
        // aggregation, once the keys are complete) or at the end: a poll is a few bytes, not
        // the model.
        let trains = expected && (!secure || !members.is_empty());
        let state = RoundState {
            round,
            version,
            weights: if trains || s.done { wire::to_bytes(weights) } else { vec![] },
            done: s.done,
            expected,
            epochs: s.config.local.epochs as u32,
            batch: s.config.local.batch as u32,
            // The same decay as central training's over epochs, here over closed rounds (the
            // version): a reopened round is the same step of the schedule.
            lr: super::model::cosine_lr(s.config.local.lr, version as usize, s.config.rounds as usize),
            clip: s.config.round.clip.unwrap_or(0.0),
            noise: s.config.round.noise,
            // Noise is split among the round's members, who are all that add it.
            agents: if round == 0 { s.registered.len() } else { s.aggregator.members().len() } as u32,
            secure,
            members,
            keys,
        };
        s.bytes_out += state.encoded_len() as u64;
        Ok(Response::new(state))
    }

    async fn submit(&self, request: Request<Submission>) -> Result<Response<Ack>, Status> {
        let r = request.into_inner();
        let mut s = self.lock();
        let taken = if s.aggregator.is_secure() {
            if !r.delta.is_empty() {
                let why = format!(
                    "agent `{}` sent its update in the clear, but this aggregator runs secure aggregation (--secure) and takes masked updates only; it was not kept. Join with a `foresight federate join` that masks its updates",
                    r.agent
                );
                tracing::warn!(agent = %r.agent, "plaintext update refused under secure aggregation");
                s.summary.refused.push(why.clone());
                return Err(Status::failed_precondition(why));
            }
            let masked = wire::words_from_bytes(&r.masked)
                .ok_or_else(|| Status::invalid_argument("masked is not u32 bytes"))?;
            s.bytes_in += r.encoded_len() as u64;
            s.aggregator.submit_masked(&r.agent, r.round, masked, r.samples)
        } else {
            if !r.masked.is_empty() {
                let why = format!(
                    "agent `{}` sent a masked update, but this aggregator does not run secure aggregation; start `foresight federate serve` with --secure to take masked updates",
                    r.agent
                );
                s.summary.refused.push(why.clone());
                return Err(Status::failed_precondition(why));
            }
            let delta = wire::from_bytes(&r.delta)
                .ok_or_else(|| Status::invalid_argument("delta is not f32 bytes"))?;
            s.bytes_in += r.encoded_len() as u64;
            s.aggregator.submit(&r.agent, r.round, Update { delta, samples: r.samples })
        };
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

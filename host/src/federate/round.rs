//! One federated round, independent of the transport: the aggregator publishes global weights
//! and a deadline; agents train locally and submit updates; the round closes when every
//! expected agent has answered, or at the deadline if a quorum has — stragglers' late updates
//! are refused, and a round without quorum is opened again on the same model. Each closed
//! round is a new model version.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::aggregate::{AggregateError, Rule, Update, combine};
use super::model::{Mlp, Samples};
use super::privacy;

/// How rounds run.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundConfig {
    /// Fewest updates a round may close with.
    pub quorum: usize,
    /// Seconds a round stays open.
    pub deadline_s: f64,
    /// How updates are combined.
    pub rule: Rule,
    /// L2 clip of each update (DP-FedAvg's S); `None`: no clipping and no noise.
    pub clip: Option<f64>,
    /// Noise multiplier z (σ = z·S/n); 0: clipping only.
    pub noise: f64,
    /// δ of the (ε, δ) reported.
    pub delta: f64,
}

/// Why an update was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SubmitError {
    /// For a round that has closed (a straggler) or not opened.
    #[error("update for round {got} refused: round {open} is open")]
    WrongRound {
        /// Its round.
        got: u64,
        /// The open one.
        open: u64,
    },
    /// From an agent the round did not expect.
    #[error("agent `{0}` is not part of this round")]
    Unknown(String),
    /// A second update from the same agent.
    #[error("agent `{0}` already submitted this round")]
    Duplicate(String),
    /// Of the wrong size, or not finite.
    #[error("update from `{agent}` is not a model update: {reason}")]
    Invalid {
        /// Who sent it.
        agent: String,
        /// What is wrong.
        reason: String,
    },
}

/// What a closed round did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundReport {
    /// Round number, from 1.
    pub round: u64,
    /// Model version it produced.
    pub version: u64,
    /// Agents whose updates were combined.
    pub participants: Vec<String>,
    /// Agents expected that did not answer in time.
    pub missing: Vec<String>,
    /// ε spent so far at the configured δ (None without noise).
    pub epsilon: Option<f64>,
}

/// The aggregator's state.
pub struct Aggregator {
    config: RoundConfig,
    global: Vec<f32>,
    version: u64,
    round: u64,
    opened_at: f64,
    expected: BTreeSet<String>,
    received: BTreeMap<String, Update>,
    noised_rounds: u32,
    /// Server momentum β (FedAvgM): the model moves by v ← β·v + Δ, smoothing the
    /// round-to-round swings of clients that pull different ways; 0 is plain FedAvg.
    momentum: f32,
    velocity: Vec<f32>,
    /// Secure aggregation: only masked updates are taken, and held (with their samples).
    secure: bool,
    masked: BTreeMap<String, (Vec<u32>, u64)>,
}

impl Aggregator {
    /// An aggregator starting from `initial` weights.
    pub fn new(config: RoundConfig, initial: Vec<f32>) -> Self {
        Self {
            config,
            global: initial,
            version: 0,
            round: 0,
            opened_at: 0.0,
            expected: BTreeSet::new(),
            received: BTreeMap::new(),
            noised_rounds: 0,
            momentum: 0.0,
            velocity: Vec::new(),
            secure: false,
            masked: BTreeMap::new(),
        }
    }

    /// Takes only masked updates ([`super::secagg`]); every expected agent must submit.
    pub fn secure(mut self) -> Self {
        self.secure = true;
        self
    }

    /// Whether updates are aggregated securely.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The agents of the open round, in the order their keys are relayed.
    pub fn members(&self) -> Vec<String> {
        self.expected.iter().cloned().collect()
    }

    /// What the aggregator holds of this round's updates under secure aggregation: masked
    /// vectors only.
    pub fn held_masked(&self) -> Vec<&[u32]> {
        self.masked.values().map(|(m, _)| m.as_slice()).collect()
    }

    /// Takes an agent's masked update (its samples × its delta, masked) for `round`.
    pub fn submit_masked(
        &mut self,
        agent: &str,
        round: u64,
        masked: Vec<u32>,
        samples: u64,
    ) -> Result<(), SubmitError> {
        self.admit(agent, round)?;
        if !self.secure {
            return Err(SubmitError::Invalid {
                agent: agent.into(),
                reason: "this federation does not aggregate securely; send the update itself".into(),
            });
        }
        if masked.len() != self.global.len() {
            return Err(SubmitError::Invalid {
                agent: agent.into(),
                reason: format!("{} parameters, the model has {}", masked.len(), self.global.len()),
            });
        }
        self.masked.insert(agent.into(), (masked, samples.max(1)));
        Ok(())
    }

    fn admit(&self, agent: &str, round: u64) -> Result<(), SubmitError> {
        if round != self.round {
            return Err(SubmitError::WrongRound { got: round, open: self.round });
        }
        if !self.expected.contains(agent) {
            return Err(SubmitError::Unknown(agent.into()));
        }
        if self.received.contains_key(agent) || self.masked.contains_key(agent) {
            return Err(SubmitError::Duplicate(agent.into()));
        }
        Ok(())
    }

    /// With server momentum β in [0, 1).
    pub fn with_momentum(mut self, beta: f32) -> Self {
        self.momentum = beta.clamp(0.0, 0.99);
        self
    }

    /// The global weights and their version.
    pub fn global(&self) -> (&[f32], u64) {
        (&self.global, self.version)
    }

    /// The open round.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Whether the open round still waits for `agent`'s update.
    pub fn expects(&self, agent: &str) -> bool {
        self.expected.contains(agent)
            && !self.received.contains_key(agent)
            && !self.masked.contains_key(agent)
    }

    /// Opens the next round for `agents` at time `now` (seconds).
    pub fn open(&mut self, agents: impl IntoIterator<Item = String>, now: f64) -> u64 {
        self.round += 1;
        self.opened_at = now;
        self.expected = agents.into_iter().collect();
        self.received.clear();
        self.masked.clear();
        self.round
    }

    /// Takes an agent's update for `round`.
    pub fn submit(&mut self, agent: &str, round: u64, update: Update) -> Result<(), SubmitError> {
        self.admit(agent, round)?;
        if self.secure {
            return Err(SubmitError::Invalid {
                agent: agent.into(),
                reason: "this federation aggregates securely; send a masked update".into(),
            });
        }
        let invalid = |reason: String| SubmitError::Invalid { agent: agent.into(), reason };
        if update.delta.len() != self.global.len() {
            return Err(invalid(format!(
                "{} parameters, the model has {}",
                update.delta.len(),
                self.global.len()
            )));
        }
        if update.delta.iter().any(|v| !v.is_finite()) {
            return Err(invalid("a parameter is not finite".into()));
        }
        self.received.insert(agent.into(), update);
        Ok(())
    }

    /// Closes the round if it may at `now`: everyone answered, or the deadline passed with a
    /// quorum. Past the deadline without quorum, the round is opened again for the same
    /// agents (`Ok(None)`, and [`Aggregator::round`] moves on).
    pub fn try_close(&mut self, now: f64) -> Result<Option<RoundReport>, AggregateError> {
        let got = self.received.len() + self.masked.len();
        let all = got == self.expected.len();
        let late = now - self.opened_at >= self.config.deadline_s;
        if !all && !late {
            return Ok(None);
        }
        // A dropout's masks cannot be removed: a secure round needs everyone.
        let quorum = if self.secure { self.expected.len() } else { self.config.quorum.max(1) };
        if got < quorum {
            if late {
                tracing::warn!(
                    round = self.round,
                    got = self.received.len(),
                    quorum = self.config.quorum,
                    "round missed its quorum; opening it again"
                );
                let agents = std::mem::take(&mut self.expected);
                self.open(agents, now);
            }
            return Ok(None);
        }
        let delta = if self.secure {
            // Agents sent samples × delta: the sum over the total samples is FedAvg.
            let masked: Vec<Vec<u32>> = self.masked.values().map(|(m, _)| m.clone()).collect();
            let total: u64 = self.masked.values().map(|(_, n)| n).sum();
            super::secagg::unmask_sum(&masked).into_iter().map(|v| v / total as f32).collect()
        } else {
            let updates: Vec<Update> = self.received.values().cloned().collect();
            combine(self.config.rule, &updates)?
        };
        if self.velocity.len() != delta.len() {
            self.velocity = vec![0.0; delta.len()];
        }
        let beta = self.momentum;
        for ((g, v), d) in self.global.iter_mut().zip(&mut self.velocity).zip(&delta) {
            *v = beta * *v + d;
            *g += *v;
        }
        self.version += 1;
        let noised = self.config.clip.is_some() && self.config.noise > 0.0;
        if noised {
            self.noised_rounds += 1;
        }
        let report = RoundReport {
            round: self.round,
            version: self.version,
            participants: self.received.keys().chain(self.masked.keys()).cloned().collect(),
            missing: self
                .expected
                .iter()
                .filter(|a| !self.received.contains_key(*a) && !self.masked.contains_key(*a))
                .cloned()
                .collect(),
            epsilon: noised
                .then(|| privacy::epsilon(self.config.noise, self.noised_rounds, self.config.delta)),
        };
        self.received.clear();
        self.masked.clear();
        Ok(Some(report))
    }
}

/// How an agent trains each round.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalTraining {
    /// Local epochs E.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
}

/// An agent's round: train from the global weights on its own samples, and return the
/// update — clipped and noised when the round asks — never the samples.
pub fn local_update(
    global: &[f32],
    samples: &Samples,
    training: &LocalTraining,
    config: &RoundConfig,
    agents: usize,
    seed: u64,
    normal: &mut impl FnMut() -> f64,
) -> Update {
    let mut mlp = Mlp { params: global.to_vec() };
    mlp.train(samples, training.epochs, training.batch, training.lr, seed);
    let mut delta: Vec<f32> = mlp.params.iter().zip(global).map(|(n, g)| n - g).collect();
    if let Some(s) = config.clip {
        privacy::clip(&mut delta, s);
        if config.noise > 0.0 {
            privacy::add_noise(&mut delta, config.noise, s, agents, normal);
        }
    }
    Update { delta, samples: samples.len() as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::sim::Rng;

    fn config() -> RoundConfig {
        RoundConfig { quorum: 2, deadline_s: 30.0, rule: Rule::FedAvg, clip: None, noise: 0.0, delta: 1e-5 }
    }

    fn agents(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("agent-{i}")).collect()
    }

    fn update(v: f32) -> Update {
        Update { delta: vec![v; 3], samples: 10 }
    }

    #[test]
    fn a_round_closes_when_all_answer_and_makes_a_version() {
        let mut a = Aggregator::new(config(), vec![0.0; 3]);
        let round = a.open(agents(2), 0.0);
        a.submit("agent-0", round, update(1.0)).expect("taken");
        assert_eq!(a.try_close(1.0), Ok(None), "one of two, before the deadline");
        a.submit("agent-1", round, update(3.0)).expect("taken");
        let report = a.try_close(2.0).expect("combines").expect("closed");
        assert_eq!((report.version, report.participants.len(), report.epsilon), (1, 2, None));
        assert_eq!(a.global(), (&[2.0f32, 2.0, 2.0][..], 1));
    }

    #[test]
    fn a_secure_round_holds_only_masked_updates_and_lands_the_weighted_mean() {
        use crate::federate::secagg::RoundKey;
        let mut a = Aggregator::new(config(), vec![0.0; 3]).secure();
        let round = a.open(agents(2), 0.0);
        let keys: Vec<RoundKey> = (1..=2u8).map(|b| RoundKey::from_bytes([b; 32])).collect();
        let publics: Vec<[u8; 32]> = keys.iter().map(|k| k.public).collect();
        let plain = [(vec![1.0f32, 2.0, 3.0], 30u64), (vec![3.0, 2.0, 1.0], 10)];
        assert!(
            matches!(a.submit("agent-0", round, update(1.0)), Err(SubmitError::Invalid { .. })),
            "plain updates are refused"
        );
        for (i, (delta, n)) in plain.iter().enumerate() {
            let weighted: Vec<f32> = delta.iter().map(|d| d * *n as f32).collect();
            let masked = keys[i].mask(&weighted, i, &publics, round);
            a.submit_masked(&format!("agent-{i}"), round, masked, *n).expect("taken");
        }
        for (held, (delta, n)) in a.held_masked().into_iter().zip(&plain) {
            let readable = crate::federate::secagg::unmask_sum(&[held.to_vec()]);
            assert!(
                readable.iter().zip(delta).all(|(r, d)| (r - d * *n as f32).abs() > 1.0),
                "the aggregator could read {readable:?}"
            );
        }
        a.try_close(1.0).expect("combines").expect("closed");
        // (30·[1,2,3] + 10·[3,2,1]) / 40.
        for (g, want) in a.global().0.iter().zip([1.5f32, 2.0, 2.5]) {
            assert!((g - want).abs() < 1e-3, "{g} vs {want}");
        }
    }

    #[test]
    fn server_momentum_carries_last_rounds_direction() {
        let mut a = Aggregator::new(config(), vec![0.0; 3]).with_momentum(0.5);
        for (round, v) in [(1, 1.0), (2, 1.0)] {
            a.open(agents(2), 0.0);
            a.submit("agent-0", round, update(v)).expect("taken");
            a.submit("agent-1", round, update(v)).expect("taken");
            a.try_close(0.0).expect("combines").expect("closed");
        }
        // v₁ = 1, v₂ = 0.5·1 + 1: the model moved 1 + 1.5.
        assert_eq!(a.global().0, &[2.5f32, 2.5, 2.5][..]);
    }

    #[test]
    fn stragglers_are_left_behind_and_a_round_without_quorum_runs_again() {
        let mut a = Aggregator::new(config(), vec![0.0; 3]);
        let round = a.open(agents(3), 0.0);
        a.submit("agent-0", round, update(1.0)).expect("taken");
        a.submit("agent-1", round, update(1.0)).expect("taken");
        let report = a.try_close(30.0).expect("combines").expect("quorum at the deadline");
        assert_eq!(report.missing, vec!["agent-2".to_owned()]);
        // The straggler's update arrives after the round closed.
        let next = a.open(agents(3), 31.0);
        assert_eq!(
            a.submit("agent-2", round, update(9.0)),
            Err(SubmitError::WrongRound { got: round, open: next })
        );
        a.submit("agent-0", next, update(1.0)).expect("taken");
        assert_eq!(a.try_close(61.0), Ok(None), "one update is below the quorum of two");
        assert_eq!(a.round(), next + 1, "opened again");
        assert_eq!(a.global().1, 1, "on the same model");
    }

    #[test]
    fn bad_updates_are_refused_by_agent() {
        let mut a = Aggregator::new(config(), vec![0.0; 3]);
        let round = a.open(agents(2), 0.0);
        assert_eq!(a.submit("mallory", round, update(1.0)), Err(SubmitError::Unknown("mallory".into())));
        a.submit("agent-0", round, update(1.0)).expect("taken");
        assert_eq!(a.submit("agent-0", round, update(1.0)), Err(SubmitError::Duplicate("agent-0".into())));
        let short = Update { delta: vec![1.0], samples: 1 };
        assert!(matches!(a.submit("agent-1", round, short), Err(SubmitError::Invalid { .. })));
        let nan = Update { delta: vec![f32::NAN; 3], samples: 1 };
        assert!(matches!(a.submit("agent-1", round, nan), Err(SubmitError::Invalid { .. })));
    }

    #[test]
    fn a_private_round_clips_noises_and_reports_epsilon() {
        let cfg = RoundConfig { clip: Some(0.5), noise: 1.0, ..config() };
        let values: Vec<f64> =
            (0..4 * 288).map(|i| 80.0 + 40.0 * (i as f64 / 288.0 * std::f64::consts::TAU).sin()).collect();
        let s = Samples::draw(0, 300, &values, 0, values.len(), 200, &mut Rng::new(1));
        let global = Mlp::new(3).params;
        let training = LocalTraining { epochs: 1, batch: 32, lr: 1e-3 };
        let mut rng = Rng::new(8);
        let mut a = Aggregator::new(cfg.clone(), global.clone());
        let round = a.open(agents(2), 0.0);
        for agent in agents(2) {
            let u = local_update(&global, &s, &training, &cfg, 2, 5, &mut || rng.normal());
            a.submit(&agent, round, u).expect("taken");
        }
        let report = a.try_close(1.0).expect("combines").expect("closed");
        let eps = report.epsilon.expect("noised");
        assert!((eps - privacy::epsilon(1.0, 1, 1e-5)).abs() < 1e-9);
    }
}

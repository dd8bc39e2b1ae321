//! One federated round, independent of the transport: the aggregator publishes global weights
//! and a deadline; agents train locally and submit updates; the round closes when every
//! expected agent has answered, or at the deadline if a quorum has — stragglers' late updates
//! are refused, and a round without quorum is opened again on the same model. Each closed
//! round is a new model version.
//!
//! Under secure aggregation a round runs in two phases: every member publishes a public key
//! for the round, then every member submits its masked update. A dropout's masks cannot be
//! removed, so a secure round that passes its deadline short of a member is thrown away and
//! restarted — a new round number, hence new keys and masks — with only the members that
//! answered.

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

/// Why a round key was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KeyError {
    /// The federation does not aggregate securely.
    #[error("agent `{0}` sent a round key, but this federation does not aggregate securely")]
    NotSecure(String),
    /// For a round that is not the open one (a key is only ever used for one round).
    #[error("key for round {got} ignored: round {open} is open")]
    WrongRound {
        /// Its round.
        got: u64,
        /// The open one.
        open: u64,
    },
    /// From an agent the round did not expect.
    #[error("agent `{0}` is not part of this round")]
    Unknown(String),
    /// A second, different key from the same agent: a peer may already have masked with the
    /// first, so it cannot be replaced.
    #[error(
        "agent `{0}` sent a different key for a round it already has one for; it takes part again once the round restarts"
    )]
    Changed(String),
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
    /// The open round's public keys; emptied by every `open`, so a key never outlives its
    /// round.
    keys: BTreeMap<String, [u8; 32]>,
    /// Individual updates ever stored, in the clear and masked.
    plaintext_held: u64,
    masked_held: u64,
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
            keys: BTreeMap::new(),
            plaintext_held: 0,
            masked_held: 0,
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

    /// Individual plaintext updates stored so far, over all rounds (0 under secure
    /// aggregation).
    pub fn plaintext_updates_held(&self) -> u64 {
        self.plaintext_held
    }

    /// Individual masked updates stored so far, over all rounds, including those of restarted
    /// rounds.
    pub fn masked_updates_held(&self) -> u64 {
        self.masked_held
    }

    /// Takes `agent`'s public key for `round`. Sending the same key again is harmless (agents
    /// send theirs with every poll).
    pub fn publish_key(&mut self, agent: &str, round: u64, key: [u8; 32]) -> Result<(), KeyError> {
        if !self.secure {
            return Err(KeyError::NotSecure(agent.into()));
        }
        if round != self.round {
            return Err(KeyError::WrongRound { got: round, open: self.round });
        }
        if !self.expected.contains(agent) {
            return Err(KeyError::Unknown(agent.into()));
        }
        match self.keys.get(agent) {
            Some(held) if *held != key => Err(KeyError::Changed(agent.into())),
            Some(_) => Ok(()),
            None => {
                self.keys.insert(agent.into(), key);
                Ok(())
            }
        }
    }

    /// Every member's key for the open round, in the order of [`Aggregator::members`]; `None`
    /// until all have arrived (a member cannot mask without every peer's key).
    pub fn keys(&self) -> Option<Vec<[u8; 32]>> {
        if self.round == 0 || self.keys.len() != self.expected.len() {
            return None;
        }
        Some(self.keys.values().copied().collect())
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
        if self.keys().is_none() {
            return Err(SubmitError::Invalid {
                agent: agent.into(),
                reason: "masked before every member's key was relayed, so its masks cannot cancel".into(),
            });
        }
        if masked.len() != self.global.len() {
            return Err(SubmitError::Invalid {
                agent: agent.into(),
                reason: format!("{} parameters, the model has {}", masked.len(), self.global.len()),
            });
        }
        self.masked.insert(agent.into(), (masked, samples.max(1)));
        self.masked_held += 1;
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

    /// Throws away a secure round that missed a member and opens a new one. Who answered
    /// depends on how far the round got: while keys were still coming in, the members that
    /// sent theirs (the others never will); once all had, the members that submitted.
    fn restart(&mut self, now: f64) {
        let answered: BTreeSet<String> = if self.keys.len() == self.expected.len() {
            self.masked.keys().cloned().collect()
        } else {
            self.keys.keys().cloned().collect()
        };
        let dropped: Vec<&String> = self.expected.difference(&answered).collect();
        // A masked "sum" of one update is that update: never fewer than two members.
        let floor = self.config.quorum.max(2);
        if answered.len() >= floor {
            tracing::warn!(
                round = self.round,
                dropped = ?dropped,
                discarded = self.masked.len(),
                "secure round missed members; discarding its masked updates and restarting without them"
            );
            self.open(answered, now);
        } else {
            tracing::warn!(
                round = self.round,
                answered = answered.len(),
                quorum = floor,
                missing = ?dropped,
                "secure round missed its quorum; opening it again for every member"
            );
            let agents = std::mem::take(&mut self.expected);
            self.open(agents, now);
        }
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
        self.keys.clear();
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
        self.plaintext_held += 1;
        Ok(())
    }

    /// Closes the round if it may at `now`: everyone answered, or the deadline passed with a
    /// quorum. Past the deadline without quorum, the round is opened again for the same
    /// agents (`Ok(None)`, and [`Aggregator::round`] moves on). A secure round short of a
    /// member at its deadline is restarted without the members that did not answer, if those
    /// that did make a quorum (see [`Aggregator::members`] for who is in).
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
            if late && self.secure {
                self.restart(now);
            } else if late {
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
        a.publish_key("agent-0", round, publics[0]).expect("a member's key");
        assert_eq!(a.keys(), None, "not until every member's key is in");
        let early = keys[0].mask(&[1.0; 3], 0, &publics, round);
        assert!(
            matches!(a.submit_masked("agent-0", round, early, 1), Err(SubmitError::Invalid { .. })),
            "nobody can have masked before the keys were relayed"
        );
        a.publish_key("agent-1", round, publics[1]).expect("a member's key");
        assert_eq!(a.keys(), Some(publics.clone()));
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
        assert_eq!((a.plaintext_updates_held(), a.masked_updates_held()), (0, 2));
    }

    /// Keys of `agents` for a round, each agent's from its index and the round (distinct per
    /// round, as generated keys are).
    fn round_keys(n: usize, round: u64) -> Vec<crate::federate::secagg::RoundKey> {
        (0..n)
            .map(|i| crate::federate::secagg::RoundKey::from_bytes([(round * 16 + i as u64) as u8; 32]))
            .collect()
    }

    /// Publishes `members`' keys and submits their masked samples × delta.
    fn secure_round(a: &mut Aggregator, members: &[(usize, f32, u64)], submit: &[usize]) {
        let round = a.round();
        let keys = round_keys(members.len(), round);
        let publics: Vec<[u8; 32]> = keys.iter().map(|k| k.public).collect();
        for (slot, (agent, _, _)) in members.iter().enumerate() {
            a.publish_key(&format!("agent-{agent}"), round, publics[slot]).expect("a member's key");
        }
        for (slot, (agent, value, n)) in members.iter().enumerate() {
            if submit.contains(agent) {
                let masked = keys[slot].mask(&[value * *n as f32; 3], slot, &publics, round);
                a.submit_masked(&format!("agent-{agent}"), round, masked, *n).expect("taken");
            }
        }
    }

    #[test]
    fn a_secure_round_short_of_a_member_restarts_without_it_and_lands_the_exact_mean() {
        let mut a = Aggregator::new(config(), vec![0.0; 3]).secure();
        let first = a.open(agents(3), 0.0);
        // agent-2 published its key, then went silent.
        secure_round(&mut a, &[(0, 1.0, 10), (1, 4.0, 30), (2, 9.0, 50)], &[0, 1]);
        assert_eq!(a.try_close(10.0), Ok(None), "waits for everyone until the deadline");
        assert_eq!(a.try_close(30.0), Ok(None), "a secure round cannot close short of a member");
        let second = a.round();
        assert!(second > first, "a new round number, so new keys and masks");
        assert_eq!(a.members(), vec!["agent-0".to_owned(), "agent-1".to_owned()]);
        assert!(a.held_masked().is_empty(), "the first attempt's masked updates are gone");
        assert_eq!(a.keys(), None, "and so are its keys");
        assert!(!a.expects("agent-2"));
        assert_eq!(
            a.publish_key("agent-0", first, [7; 32]),
            Err(KeyError::WrongRound { got: first, open: second }),
            "a key for the first attempt is stale"
        );
        secure_round(&mut a, &[(0, 1.0, 10), (1, 4.0, 30)], &[0, 1]);
        let report = a.try_close(31.0).expect("combines").expect("closed");
        assert_eq!((report.round, report.version), (second, 1));
        assert_eq!(report.participants, vec!["agent-0".to_owned(), "agent-1".to_owned()]);
        // (10·1 + 30·4) / 40, over the two that answered only.
        for g in a.global().0 {
            assert!((g - 3.25).abs() < 1e-4, "{g}");
        }
        assert_eq!((a.plaintext_updates_held(), a.masked_updates_held()), (0, 4));
    }

    #[test]
    fn a_member_that_never_sends_its_key_is_left_out_of_the_restart() {
        let mut a = Aggregator::new(config(), vec![0.0; 3]).secure();
        let first = a.open(agents(3), 0.0);
        let keys = round_keys(3, first);
        a.publish_key("agent-0", first, keys[0].public).expect("a member's key");
        a.publish_key("agent-1", first, keys[1].public).expect("a member's key");
        assert_eq!(a.publish_key("agent-1", first, keys[1].public), Ok(()), "the same key again");
        assert_eq!(a.publish_key("agent-1", first, keys[2].public), Err(KeyError::Changed("agent-1".into())));
        assert_eq!(a.publish_key("mallory", first, keys[2].public), Err(KeyError::Unknown("mallory".into())));
        assert_eq!(a.keys(), None);
        assert_eq!(a.try_close(30.0), Ok(None));
        assert_eq!(a.members(), vec!["agent-0".to_owned(), "agent-1".to_owned()]);
        assert_eq!(a.round(), first + 1);
    }

    #[test]
    fn a_secure_round_without_a_quorum_of_answers_opens_again_for_everyone() {
        let cfg = RoundConfig { quorum: 3, ..config() };
        let mut a = Aggregator::new(cfg, vec![0.0; 3]).secure();
        let first = a.open(agents(3), 0.0);
        secure_round(&mut a, &[(0, 1.0, 10), (1, 1.0, 10), (2, 1.0, 10)], &[0, 1]);
        assert_eq!(a.try_close(30.0), Ok(None));
        assert_eq!(
            (a.round(), a.members()),
            (first + 1, agents(3)),
            "two answers are below the quorum of three"
        );
        assert_eq!(a.keys(), None);
        assert!(
            a.publish_key("agent-0", 1, [1; 32]).is_err() && a.publish_key("agent-0", 2, [1; 32]).is_ok(),
            "keys are taken for the new round only"
        );
    }

    #[test]
    fn keys_are_refused_when_not_secure() {
        let mut a = Aggregator::new(config(), vec![0.0; 3]);
        let round = a.open(agents(2), 0.0);
        assert_eq!(a.publish_key("agent-0", round, [1; 32]), Err(KeyError::NotSecure("agent-0".into())));
        a.submit("agent-0", round, update(1.0)).expect("taken");
        a.submit("agent-1", round, update(1.0)).expect("taken");
        assert_eq!((a.plaintext_updates_held(), a.masked_updates_held()), (2, 0));
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

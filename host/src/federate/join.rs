//! An agent: connects to the aggregator with its client certificate, and each round trains
//! the global weights on its own samples and sends back the update — never the samples.
//! Under secure aggregation it sends a fresh public key for each round, waits for every
//! member's, and submits its update masked so the aggregator cannot read it.

use std::time::Duration;

use super::aggregate::Rule;
use super::model::Samples;
use super::round::{LocalTraining, RoundConfig, local_update};
use super::secagg::{self, RoundKey};
use super::wire::federation::federation_client::FederationClient;
use super::wire::{self, FetchRequest, RoundState, Submission};

/// Why an agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The aggregator could not be reached, or refused the TLS handshake.
    #[error(
        "cannot reach the aggregator at {endpoint}: {reason}; check the address, and that --ca, --cert and --key come from the federation's CA"
    )]
    Connect {
        /// Where.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// A call failed.
    #[error("the aggregator answered {0}")]
    Rpc(#[from] tonic::Status),
    /// The weights were not the model's f32s.
    #[error(
        "the aggregator sent weights that are not this model's f32 parameters (a different model or version of foresight?)"
    )]
    Malformed,
    /// The agent insists on secure aggregation and the aggregator does not run it.
    #[error(
        "the aggregator at {0} does not run secure aggregation, and agent `{1}` was started with --secure so it sends no update in the clear; start `foresight federate serve` with --secure, or join without --secure"
    )]
    NotSecure(String, String),
    /// A secure round whose members' keys do not fit together.
    #[error("the aggregator relayed a round {round} key list this agent cannot mask with: {reason}")]
    Relay {
        /// The round.
        round: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A secure round of one member: its masked update would be the update itself.
    #[error(
        "round {0} has one member; a masked sum of one update is that update, so agent `{1}` does not submit it. The aggregator needs --agents and --quorum of 2 or more"
    )]
    Alone(u64, String),
    /// An update too large for the masks' fixed point: the masked sum would wrap.
    #[error(
        "agent `{agent}`'s update for round {round} is too large to mask (samples × delta must be finite and within ±{bound:.0} per parameter); start the aggregator with --clip to bound updates, or train on fewer --samples"
    )]
    OutOfRange {
        /// The agent.
        agent: String,
        /// The round.
        round: u64,
        /// The bound per parameter.
        bound: f64,
    },
}

/// Where and as whom an agent joins.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Its name (its cluster).
    pub name: String,
    /// `https://host:port` of the aggregator.
    pub endpoint: String,
    /// The federation's CA certificate (PEM).
    pub ca: String,
    /// Its certificate and key (PEM).
    pub cert: String,
    /// Its key.
    pub key: String,
    /// How often it asks whether a round is open.
    pub poll: Duration,
    /// Refuse to send an update in the clear: fail unless the aggregator aggregates securely.
    pub require_secure: bool,
    /// Leave once this many of its updates were taken.
    pub leave_after: Option<u64>,
}

/// What an agent did.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The final global weights (or the last it trained from, if it left early).
    pub weights: Vec<f32>,
    /// Their version.
    pub version: u64,
    /// Rounds whose update was taken.
    pub rounds: u64,
}

/// A client over mutual TLS.
async fn connect(agent: &Agent) -> Result<FederationClient<tonic::transport::Channel>, JoinError> {
    let failed = |e: &dyn std::fmt::Display| JoinError::Connect {
        endpoint: agent.endpoint.clone(),
        reason: e.to_string(),
    };
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&agent.ca))
        .identity(tonic::transport::Identity::from_pem(&agent.cert, &agent.key))
        .domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(agent.endpoint.clone())
        .map_err(|e| failed(&e))?
        .tls_config(tls)
        .map_err(|e| failed(&e))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| failed(&format!("{e:?}")))?;
    Ok(FederationClient::new(channel).max_decoding_message_size(64 << 20))
}

/// Takes part in every round until the federation is done (or `leave_after` rounds).
pub async fn join(agent: &Agent, samples: &Samples, seed: u64) -> Result<Joined, JoinError> {
    join_publishing(agent, samples, seed, &mut |_, _| {}).await
}

/// As [`join`], handing `publish` each new version of the global weights as it arrives (to
/// train from, or final) — what the cluster's forecaster is given.
pub async fn join_publishing(
    agent: &Agent,
    samples: &Samples,
    seed: u64,
    publish: &mut (dyn FnMut(u64, &[f32]) + Send),
) -> Result<Joined, JoinError> {
    let mut published = None;
    let mut publish = |version: u64, weights: &[f32]| {
        if published != Some(version) {
            publish(version, weights);
            published = Some(version);
        }
    };
    let mut client = connect(agent).await?;
    let mut normal = super::privacy::os_normal();
    let mut last = 0;
    let mut rounds = 0;
    let mut first = true;
    // Under secure aggregation: the key for the round it is for. A key is never used for two
    // rounds, since the masks of a restarted round must not be those of the one thrown away.
    let mut key: Option<(u64, RoundKey)> = None;
    let mut superseded = 0;
    loop {
        let (public_key, key_round) = key.as_ref().map_or((vec![], 0), |(r, k)| (k.public.to_vec(), *r));
        let fetched = client
            .fetch(FetchRequest {
                agent: agent.name.clone(),
                samples: samples.len() as u64,
                public_key,
                key_round,
            })
            .await;
        // Under TLS 1.3 a server that refuses the client's certificate says so only once the
        // first request is made: that is still a failure to get in.
        let state = match fetched {
            Ok(s) => s.into_inner(),
            Err(status) if first => {
                return Err(JoinError::Connect {
                    endpoint: agent.endpoint.clone(),
                    reason: status.to_string(),
                });
            }
            Err(status) => return Err(status.into()),
        };
        first = false;
        let weights = || {
            wire::from_bytes(&state.weights)
                .filter(|w| w.len() == super::model::parameter_count())
                .ok_or(JoinError::Malformed)
        };
        if state.done {
            let weights = weights()?;
            publish(state.version, &weights);
            return Ok(Joined { weights, version: state.version, rounds });
        }
        if agent.require_secure && !state.secure {
            return Err(JoinError::NotSecure(agent.endpoint.clone(), agent.name.clone()));
        }
        if !(state.expected && state.round > last) {
            tokio::time::sleep(agent.poll).await;
            continue;
        }
        // Under secure aggregation the round's key is taken out here and dropped once used:
        // past this point an update goes masked with it, or not at all.
        let masking = if state.secure {
            let mine = match key.take() {
                Some((r, k)) if r == state.round => k,
                _ => {
                    // A round it has no key for (the first, or a restart): send one straight
                    // away.
                    key = Some((state.round, RoundKey::generate()));
                    continue;
                }
            };
            match slot(&state, &agent.name, &mine)? {
                Slot::Ready(me, publics) => Some((me, publics, mine)),
                Slot::Waiting => {
                    key = Some((state.round, mine));
                    tokio::time::sleep(agent.poll).await;
                    continue;
                }
                Slot::Superseded => {
                    key = Some((state.round, mine));
                    if superseded != state.round {
                        tracing::warn!(agent = %agent.name, round = state.round, "the aggregator holds another key for this agent this round (a restarted agent?); it takes part again once the round restarts");
                        superseded = state.round;
                    }
                    tokio::time::sleep(agent.poll).await;
                    continue;
                }
            }
        } else {
            None
        };
        let weights = weights()?;
        publish(state.version, &weights);
        let training =
            LocalTraining { epochs: state.epochs as usize, batch: state.batch as usize, lr: state.lr };
        let round = RoundConfig {
            quorum: 0,
            deadline_s: 0.0,
            rule: Rule::FedAvg,
            clip: (state.clip > 0.0).then_some(state.clip),
            noise: state.noise,
            delta: 0.0,
        };
        let mut train = || {
            local_update(
                &weights,
                samples,
                &training,
                &round,
                state.agents as usize,
                seed.wrapping_add(state.round),
                &mut normal,
            )
        };
        // Training is seconds of CPU: on a shared runtime (agents in process, beside the
        // aggregator) it must not sit on a worker that timers and the server need.
        let update = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(train),
            _ => train(),
        };
        let submission = match masking {
            Some((me, publics, k)) => {
                // Samples × delta, so that the sum the aggregator unmasks, over the total
                // samples, is FedAvg's weighted mean.
                let n = update.samples.max(1);
                let weighted: Vec<f32> = update.delta.iter().map(|d| d * n as f32).collect();
                if !secagg::in_range(&weighted, publics.len()) {
                    return Err(JoinError::OutOfRange {
                        agent: agent.name.clone(),
                        round: state.round,
                        bound: secagg::RANGE / publics.len() as f64,
                    });
                }
                Submission {
                    agent: agent.name.clone(),
                    round: state.round,
                    delta: vec![],
                    samples: n,
                    masked: wire::words_to_bytes(&k.mask(&weighted, me, &publics, state.round)),
                }
            }
            None => Submission {
                agent: agent.name.clone(),
                round: state.round,
                delta: wire::to_bytes(&update.delta),
                samples: update.samples,
                masked: vec![],
            },
        };
        let ack = client.submit(submission).await?.into_inner();
        if ack.accepted {
            rounds += 1;
        } else {
            tracing::warn!(agent = %agent.name, round = state.round, reason = %ack.reason, "update refused");
        }
        if state.secure {
            // The next round is most likely the next number: its key goes with the next poll.
            key = Some((state.round + 1, RoundKey::generate()));
        }
        last = state.round;
        if agent.leave_after.is_some_and(|n| rounds >= n) {
            tracing::info!(agent = %agent.name, rounds, "leaving the federation");
            return Ok(Joined { weights, version: state.version, rounds });
        }
    }
}

/// Where an agent stands in a secure round.
#[derive(Debug, PartialEq)]
enum Slot {
    /// Not every member's key is in yet.
    Waiting,
    /// The aggregator holds another key for this agent this round (one sent before the agent
    /// restarted): it cannot mask for this round.
    Superseded,
    /// Its index among the members, and every member's key.
    Ready(usize, Vec<[u8; 32]>),
}

/// This agent's place in a secure round, from the keys the aggregator relayed.
fn slot(state: &RoundState, name: &str, key: &RoundKey) -> Result<Slot, JoinError> {
    if state.members.is_empty() {
        return Ok(Slot::Waiting);
    }
    let relay = |reason: String| JoinError::Relay { round: state.round, reason };
    if state.members.len() != state.keys.len() {
        return Err(relay(format!("{} members but {} keys", state.members.len(), state.keys.len())));
    }
    if state.members.windows(2).any(|w| w[0] >= w[1]) {
        return Err(relay("members are not sorted and distinct".into()));
    }
    let publics = state
        .keys
        .iter()
        .map(|k| <[u8; 32]>::try_from(k.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| relay("a key is not 32 bytes".into()))?;
    let me = state
        .members
        .iter()
        .position(|m| m == name)
        .ok_or_else(|| relay(format!("`{name}` is not among the members")))?;
    if state.members.len() < 2 {
        return Err(JoinError::Alone(state.round, name.into()));
    }
    if key.public != publics[me] {
        return Ok(Slot::Superseded);
    }
    Ok(Slot::Ready(me, publics))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::sim::Rng;
    use crate::federate::serve::{Aggregation, Reopened, ServeConfig, Summary, server_tls};
    use crate::federate::tls;
    use crate::federate::wire::federation::federation_server::Federation as _;

    /// Every wait in these tests ends: a federation that hangs fails instead.
    const LIMIT: Duration = Duration::from_secs(120);

    fn samples(seed: u64) -> Samples {
        let values: Vec<f64> =
            (0..3 * 288).map(|i| 60.0 + 30.0 * (i as f64 / 288.0 * std::f64::consts::TAU).sin()).collect();
        Samples::draw(0, 300, &values, 0, values.len(), 60, &mut Rng::new(seed))
    }

    fn config(agents: usize) -> ServeConfig {
        ServeConfig {
            agents,
            rounds: 2,
            round: RoundConfig {
                quorum: agents,
                deadline_s: 60.0,
                rule: Rule::FedAvg,
                clip: None,
                noise: 0.0,
                delta: 1e-5,
            },
            local: LocalTraining { epochs: 1, batch: 32, lr: 1e-3 },
            seed: 1,
            momentum: 0.0,
            secure: false,
        }
    }

    fn secure(agents: usize) -> ServeConfig {
        ServeConfig { secure: true, ..config(agents) }
    }

    /// Bytes a round's submissions take on the wire: each agent's name, round, sample count
    /// and its update's f32s — nothing else.
    fn submitted(names: &[&str], parameters: usize) -> u64 {
        use prost::Message as _;
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let s = Submission {
                    agent: (*n).into(),
                    round: 1,
                    delta: vec![0; 4 * parameters],
                    samples: samples(i as u64).len() as u64,
                    masked: vec![],
                };
                s.encoded_len() as u64
            })
            .sum()
    }

    /// An aggregator for `config` on loopback, and agents for `bundle`'s certificates.
    struct Running {
        aggregation: Aggregation,
        server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
        endpoint: String,
        bundle: tls::Bundle,
    }

    impl Running {
        async fn start(config: ServeConfig, names: &[&str]) -> Self {
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            let bundle = tls::mint(&[], &names).expect("certificates");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
            let endpoint = format!("https://{}", listener.local_addr().expect("addr"));
            let aggregation = Aggregation::new(config).expect("a valid configuration");
            let server = tokio::spawn(aggregation.clone().serve(
                listener,
                server_tls(&bundle.ca, &bundle.server.cert, &bundle.server.key),
                Duration::from_secs(2),
            ));
            Self { aggregation, server, endpoint, bundle }
        }

        fn agent(&self, name: &str) -> Agent {
            let pair = &self.bundle.agents.iter().find(|(n, _)| n == name).expect("a certificate").1;
            Agent {
                name: name.into(),
                endpoint: self.endpoint.clone(),
                ca: self.bundle.ca.clone(),
                cert: pair.cert.clone(),
                key: pair.key.clone(),
                poll: Duration::from_millis(20),
                require_secure: false,
                leave_after: None,
            }
        }

        /// Runs `agents` (agent i on samples and seed i) to the end, then stops the server.
        async fn run(self, agents: Vec<Agent>) -> (Vec<Joined>, Vec<f32>, Summary) {
            let runs: Vec<_> = agents
                .into_iter()
                .enumerate()
                .map(|(i, a)| tokio::spawn(async move { join(&a, &samples(i as u64), i as u64).await }))
                .collect();
            let mut joined = vec![];
            for run in runs {
                let done = tokio::time::timeout(LIMIT, run).await.expect("the agent finishes in time");
                joined.push(done.expect("task").expect("joined"));
            }
            self.server.abort();
            let (weights, summary) = self.aggregation.result();
            (joined, weights, summary)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn agents_with_certificates_run_rounds_and_one_without_is_refused() {
        let names = ["a", "b"];
        let federation = Running::start(config(2), &names).await;
        let stranger = tls::mint(&[], &["mallory".into()]).expect("another CA");
        // Trusts the server, but its certificate is from another CA: the handshake fails.
        let mallory = Agent {
            cert: stranger.agents[0].1.cert.clone(),
            key: stranger.agents[0].1.key.clone(),
            ..federation.agent("a")
        };
        let mallory = Agent { name: "mallory".into(), ..mallory };
        let refused = tokio::time::timeout(LIMIT, join(&mallory, &samples(9), 9)).await.expect("in time");
        assert!(matches!(refused, Err(JoinError::Connect { .. }) | Err(JoinError::Rpc(_))), "{refused:?}");

        let agents = names.iter().map(|n| federation.agent(n)).collect();
        let (joined, weights, summary) = federation.run(agents).await;
        assert!(joined.iter().all(|j| (j.version, j.rounds) == (2, 2)));
        assert_eq!(summary.rounds.len(), 2);
        assert!(summary.rounds.iter().all(|r| r.participants == names));
        assert!(
            summary.bytes_in.iter().all(|b| *b == submitted(&names, weights.len())),
            "{:?}",
            summary.bytes_in
        );
        assert!(!summary.secure);
        assert_eq!((summary.plaintext_updates_held, summary.masked_updates_held), (4, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn secure_agents_hand_over_only_masked_updates_and_land_the_plain_federations_model() {
        let names = ["a", "b", "c"];
        let plain = Running::start(config(3), &names).await;
        let agents = names.iter().map(|n| plain.agent(n)).collect();
        let (_, plain_weights, _) = plain.run(agents).await;

        let masked = Running::start(secure(3), &names).await;
        let agents = names.iter().map(|n| Agent { require_secure: true, ..masked.agent(n) }).collect();
        let (joined, weights, summary) = masked.run(agents).await;
        assert!(joined.iter().all(|j| (j.version, j.rounds) == (2, 2)));
        assert!(summary.secure);
        assert_eq!((summary.plaintext_updates_held, summary.masked_updates_held), (0, 6));
        assert!(summary.rounds.iter().all(|r| r.participants == names), "{:?}", summary.rounds);
        assert!(summary.reopened.is_empty() && summary.refused.is_empty(), "{summary:?}");
        // Masked updates are u32 words, as many as the model has parameters: the same bytes.
        assert!(summary.bytes_in.iter().all(|b| *b == submitted(&names, weights.len())));

        // Training is deterministic per seed, and the masks cancel exactly: the model is the
        // plain federation's, up to the fixed point's 2^-16 on samples × delta.
        let initial = crate::federate::model::Mlp::new(1).params;
        let moved = max_abs(weights.iter().zip(&initial).map(|(w, i)| w - i));
        let apart = max_abs(weights.iter().zip(&plain_weights).map(|(w, p)| w - p));
        let scale = max_abs(plain_weights.iter().copied());
        assert!(apart <= 1e-3 * scale, "secure and plain models differ by {apart} (scale {scale})");
        assert!(
            apart * 100.0 < moved,
            "training moved the weights by {moved}, the two runs differ by {apart}"
        );
    }

    fn max_abs(v: impl Iterator<Item = f32>) -> f32 {
        v.fold(0.0, |m, x| m.max(x.abs()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_secure_federation_restarts_a_round_without_an_agent_that_left_and_finishes() {
        let names = ["a", "b", "c"];
        let config = ServeConfig {
            rounds: 3,
            round: RoundConfig { quorum: 2, deadline_s: 2.0, ..secure(3).round },
            ..secure(3)
        };
        let federation = Running::start(config, &names).await;
        let agents = names
            .iter()
            .map(|n| Agent { leave_after: (*n == "c").then_some(1), ..federation.agent(n) })
            .collect();
        let (joined, _, summary) = federation.run(agents).await;
        let rounds: Vec<_> = joined.iter().map(|j| j.rounds).collect();
        assert_eq!(rounds, vec![3, 3, 1]);
        // Round 2 opened with c, which never sent its key: thrown away at the deadline, and
        // round 3 ran without it, as did every round after.
        assert_eq!(summary.reopened, vec![Reopened { round: 2, next: 3, dropped: vec!["c".into()] }]);
        let held: Vec<(u64, usize)> =
            summary.rounds.iter().map(|r| (r.round, r.participants.len())).collect();
        assert_eq!(held, vec![(1, 3), (3, 2), (4, 2)]);
        assert_eq!((summary.plaintext_updates_held, summary.masked_updates_held), (0, 7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_agent_that_insists_on_secure_aggregation_sends_nothing_to_a_plain_aggregator() {
        let federation = Running::start(config(1), &["a"]).await;
        let agent = Agent { require_secure: true, ..federation.agent("a") };
        let refused = tokio::time::timeout(LIMIT, join(&agent, &samples(0), 0)).await.expect("in time");
        assert!(matches!(refused, Err(JoinError::NotSecure(..))), "{refused:?}");
        let (_, summary) = federation.aggregation.result();
        assert_eq!(summary.plaintext_updates_held, 0);
        federation.server.abort();
    }

    fn fetch(agent: &str, key: Option<(u64, [u8; 32])>) -> tonic::Request<FetchRequest> {
        let (key_round, public_key) = key.map_or((0, vec![]), |(r, k)| (r, k.to_vec()));
        tonic::Request::new(FetchRequest { agent: agent.into(), samples: 10, public_key, key_round })
    }

    #[tokio::test]
    async fn keys_are_relayed_once_every_member_sent_one_for_the_open_round_and_never_after_it() {
        let aggregation = Aggregation::new(secure(2)).expect("valid");
        let (ka, kb) = (RoundKey::from_bytes([1; 32]).public, RoundKey::from_bytes([2; 32]).public);
        assert_eq!(aggregation.fetch(fetch("a", None)).await.expect("state").into_inner().round, 0);
        let opened = aggregation.fetch(fetch("b", None)).await.expect("state").into_inner();
        assert!(opened.secure && opened.expected && opened.members.is_empty(), "{opened:?}");
        let state = aggregation.fetch(fetch("a", Some((1, ka)))).await.expect("state").into_inner();
        assert!(state.members.is_empty(), "b's key is not in yet");
        let state = aggregation.fetch(fetch("b", Some((0, kb)))).await.expect("state").into_inner();
        assert!(state.members.is_empty(), "a key for another round is not b's key for this one");
        let state = aggregation.fetch(fetch("b", Some((1, kb)))).await.expect("state").into_inner();
        assert_eq!(state.members, vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(state.keys, vec![ka.to_vec(), kb.to_vec()]);

        let short =
            tonic::Request::new(FetchRequest { public_key: vec![1; 31], ..fetch("a", None).into_inner() });
        let status = aggregation.fetch(short).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }

    #[tokio::test]
    async fn a_reopened_round_relays_none_of_the_previous_rounds_keys() {
        // A deadline of zero: every call finds the open round late.
        let config = ServeConfig { round: RoundConfig { deadline_s: 0.0, ..secure(2).round }, ..secure(2) };
        let aggregation = Aggregation::new(config).expect("valid");
        let ka = RoundKey::from_bytes([1; 32]).public;
        aggregation.fetch(fetch("a", None)).await.expect("state");
        aggregation.fetch(fetch("b", None)).await.expect("state");
        let state = aggregation.fetch(fetch("a", Some((1, ka)))).await.expect("state").into_inner();
        assert_eq!(state.round, 2, "round 1 was late, and with one key of two, short of a quorum");
        assert!(state.members.is_empty());
        let kb = RoundKey::from_bytes([2; 32]).public;
        let state = aggregation.fetch(fetch("b", Some((3, kb)))).await.expect("state").into_inner();
        assert_eq!(state.round, 3);
        assert!(state.members.is_empty(), "a's key for round 1 must not stand in for round 3");
        let (_, summary) = aggregation.result();
        let rounds: Vec<(u64, u64)> = summary.reopened.iter().map(|r| (r.round, r.next)).collect();
        assert_eq!(rounds, vec![(1, 2), (2, 3)]);
    }

    #[tokio::test]
    async fn updates_of_the_wrong_kind_are_refused_and_never_held() {
        let aggregation = Aggregation::new(secure(2)).expect("valid");
        aggregation.fetch(fetch("a", None)).await.expect("state");
        aggregation.fetch(fetch("b", None)).await.expect("state");
        let plain = Submission { agent: "a".into(), round: 1, delta: vec![0; 8], samples: 1, masked: vec![] };
        let status = aggregation.submit(tonic::Request::new(plain.clone())).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(status.message().contains("secure aggregation"), "{}", status.message());

        let open = Aggregation::new(config(1)).expect("valid");
        open.fetch(fetch("a", None)).await.expect("state");
        let masked = Submission { delta: vec![], masked: vec![0; 8], ..plain };
        let status = open.submit(tonic::Request::new(masked)).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(status.message().contains("--secure"), "{}", status.message());
        for a in [&aggregation, &open] {
            let (_, summary) = a.result();
            assert_eq!((summary.plaintext_updates_held, summary.masked_updates_held), (0, 0));
            assert_eq!(summary.refused.len(), 1);
        }
    }

    #[test]
    fn secure_aggregation_refuses_rules_and_sizes_it_cannot_run_with() {
        let median =
            ServeConfig { round: RoundConfig { rule: Rule::Median, ..secure(3).round }, ..secure(3) };
        let e = Aggregation::new(median).err().expect("refused");
        assert!(e.to_string().contains("--rule median") && e.to_string().contains("--rule fedavg"), "{e}");
        let trimmed = ServeConfig {
            round: RoundConfig { rule: Rule::TrimmedMean(0.2), ..secure(3).round },
            ..secure(3)
        };
        assert!(Aggregation::new(trimmed).is_err());
        assert!(Aggregation::new(secure(1)).err().expect("refused").to_string().contains("--agents"));
        let one = ServeConfig { round: RoundConfig { quorum: 1, ..secure(3).round }, ..secure(3) };
        assert!(Aggregation::new(one).err().expect("refused").to_string().contains("--quorum"));
        // Noise is added by each agent before it masks: the sum carries it as in the clear.
        let noised = ServeConfig {
            round: RoundConfig { clip: Some(1.0), noise: 1.0, ..secure(3).round },
            ..secure(3)
        };
        assert!(Aggregation::new(noised).is_ok());
    }

    #[test]
    fn a_relayed_key_list_is_checked_before_masking() {
        let mine = RoundKey::from_bytes([1; 32]);
        let other = RoundKey::from_bytes([2; 32]).public.to_vec();
        let state = |members: &[&str], keys: Vec<Vec<u8>>| RoundState {
            round: 4,
            secure: true,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            keys,
            ..RoundState::default()
        };
        assert_eq!(slot(&state(&[], vec![]), "a", &mine).expect("fine"), Slot::Waiting);
        let ready = state(&["a", "b"], vec![mine.public.to_vec(), other.clone()]);
        assert!(matches!(slot(&ready, "a", &mine), Ok(Slot::Ready(0, _))));
        let replaced = state(&["a", "b"], vec![other.clone(), other.clone()]);
        assert_eq!(slot(&replaced, "a", &mine).expect("fine"), Slot::Superseded);
        assert!(matches!(
            slot(&state(&["a"], vec![mine.public.to_vec()]), "a", &mine),
            Err(JoinError::Alone(4, _))
        ));
        assert!(matches!(
            slot(&state(&["a", "b"], vec![other.clone()]), "a", &mine),
            Err(JoinError::Relay { .. })
        ));
        assert!(matches!(
            slot(&state(&["b", "a"], vec![other.clone(), other.clone()]), "a", &mine),
            Err(JoinError::Relay { .. })
        ));
        assert!(matches!(
            slot(&state(&["b", "c"], vec![other.clone(), other]), "a", &mine),
            Err(JoinError::Relay { .. })
        ));
    }
}

//! An agent: connects to the aggregator with its client certificate, and each round trains
//! the global weights on its own samples and sends back the update — never the samples.

use std::time::Duration;

use super::aggregate::Rule;
use super::model::Samples;
use super::round::{LocalTraining, RoundConfig, local_update};
use super::wire::federation::federation_client::FederationClient;
use super::wire::{self, FetchRequest, Submission};

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
    /// The weights were not f32 bytes.
    #[error("the aggregator sent weights that are not f32 bytes")]
    Malformed,
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
}

/// What an agent did.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The final global weights.
    pub weights: Vec<f32>,
    /// Their version.
    pub version: u64,
    /// Rounds it submitted to.
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

/// Takes part in every round until the federation is done.
pub async fn join(agent: &Agent, samples: &Samples, seed: u64) -> Result<Joined, JoinError> {
    let mut client = connect(agent).await?;
    let mut normal = super::privacy::os_normal();
    let mut last = 0;
    let mut rounds = 0;
    let mut first = true;
    loop {
        let fetched =
            client.fetch(FetchRequest { agent: agent.name.clone(), samples: samples.len() as u64 }).await;
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
        let weights = wire::from_bytes(&state.weights).ok_or(JoinError::Malformed)?;
        if state.done {
            return Ok(Joined { weights, version: state.version, rounds });
        }
        if state.expected && state.round > last {
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
            let update = local_update(
                &weights,
                samples,
                &training,
                &round,
                state.agents as usize,
                seed.wrapping_add(state.round),
                &mut normal,
            );
            let ack = client
                .submit(Submission {
                    agent: agent.name.clone(),
                    round: state.round,
                    delta: wire::to_bytes(&update.delta),
                    samples: update.samples,
                })
                .await?
                .into_inner();
            if !ack.accepted {
                tracing::warn!(agent = %agent.name, round = state.round, reason = %ack.reason, "update refused");
            }
            last = state.round;
            rounds += 1;
            continue;
        }
        tokio::time::sleep(agent.poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::sim::Rng;
    use crate::federate::serve::{Aggregation, ServeConfig, server_tls};
    use crate::federate::tls;

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
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn agents_with_certificates_run_rounds_and_one_without_is_refused() {
        let names: Vec<String> = vec!["a".into(), "b".into()];
        let bundle = tls::mint(&[], &names).expect("certificates");
        let stranger = tls::mint(&[], &["mallory".into()]).expect("another CA");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let endpoint = format!("https://{}", listener.local_addr().expect("addr"));
        let aggregation = Aggregation::new(config(2));
        let server = tokio::spawn(aggregation.clone().serve(
            listener,
            server_tls(&bundle.ca, &bundle.server.cert, &bundle.server.key),
            Duration::from_secs(2),
        ));
        let agent = |name: &str, pair: &tls::Pair, ca: &str| Agent {
            name: name.into(),
            endpoint: endpoint.clone(),
            ca: ca.into(),
            cert: pair.cert.clone(),
            key: pair.key.clone(),
            poll: Duration::from_millis(20),
        };
        // Trusts the server, but its certificate is from another CA: the handshake fails.
        let mallory = agent("mallory", &stranger.agents[0].1, &bundle.ca);
        let refused = join(&mallory, &samples(9), 9).await;
        assert!(matches!(refused, Err(JoinError::Connect { .. }) | Err(JoinError::Rpc(_))), "{refused:?}");

        let runs: Vec<_> = bundle
            .agents
            .iter()
            .enumerate()
            .map(|(i, (name, pair))| {
                let a = agent(name, pair, &bundle.ca);
                tokio::spawn(async move { join(&a, &samples(i as u64), i as u64).await })
            })
            .collect();
        for run in runs {
            let joined = run.await.expect("task").expect("joined");
            assert_eq!((joined.version, joined.rounds), (2, 2));
        }
        let (weights, summary) = aggregation.result();
        assert_eq!(summary.rounds.len(), 2);
        assert!(summary.rounds.iter().all(|r| r.participants == names));
        assert!(
            summary.bytes_in.iter().all(|b| *b == 2 * 4 * weights.len() as u64),
            "{:?}",
            summary.bytes_in
        );
        server.await.expect("task").expect("served");
    }
}

//! The federation's messages on the wire (`foresight.federate.v1`). Weights and updates
//! travel as little-endian f32 bytes, masked updates as little-endian u32 words; nothing here
//! can carry a raw series. Fields added later take new tags, so older peers still parse.

/// An agent asks what to do.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FetchRequest {
    /// The agent's name (its cluster).
    #[prost(string, tag = "1")]
    pub agent: String,
    /// Training samples it holds (for FedAvg's weights and the aggregator's roll call).
    #[prost(uint64, tag = "2")]
    pub samples: u64,
    /// Under secure aggregation, the agent's X25519 public key for round `key_round` (32
    /// bytes); empty otherwise.
    #[prost(bytes = "vec", tag = "3")]
    pub public_key: Vec<u8>,
    /// The round `public_key` is for: a key is only ever used in one round, so one sent for
    /// another round is ignored.
    #[prost(uint64, tag = "4")]
    pub key_round: u64,
}

/// The open round, or the end of the federation.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RoundState {
    /// Round number; 0 while waiting for agents.
    #[prost(uint64, tag = "1")]
    pub round: u64,
    /// Version of the global weights.
    #[prost(uint64, tag = "2")]
    pub version: u64,
    /// Global weights, f32 little-endian.
    #[prost(bytes = "vec", tag = "3")]
    pub weights: Vec<u8>,
    /// Whether the federation has finished (the weights are final).
    #[prost(bool, tag = "4")]
    pub done: bool,
    /// Whether this agent is expected to submit for this round.
    #[prost(bool, tag = "5")]
    pub expected: bool,
    /// Local epochs.
    #[prost(uint32, tag = "6")]
    pub epochs: u32,
    /// Batch size.
    #[prost(uint32, tag = "7")]
    pub batch: u32,
    /// Learning rate.
    #[prost(float, tag = "8")]
    pub lr: f32,
    /// L2 clip of updates; 0: none.
    #[prost(double, tag = "9")]
    pub clip: f64,
    /// Noise multiplier; 0: none.
    #[prost(double, tag = "10")]
    pub noise: f64,
    /// Agents in the round (noise is split among them).
    #[prost(uint32, tag = "11")]
    pub agents: u32,
    /// Whether updates must be masked (secure aggregation).
    #[prost(bool, tag = "12")]
    pub secure: bool,
    /// Under secure aggregation, the round's members, sorted; empty until every member's key
    /// for this round has arrived.
    #[prost(string, repeated, tag = "13")]
    pub members: Vec<String>,
    /// The members' public keys (32 bytes each), in the order of `members`.
    #[prost(bytes = "vec", repeated, tag = "14")]
    pub keys: Vec<Vec<u8>>,
}

/// An agent's update for a round.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Submission {
    /// The agent.
    #[prost(string, tag = "1")]
    pub agent: String,
    /// The round it trained for.
    #[prost(uint64, tag = "2")]
    pub round: u64,
    /// New weights minus the global ones, f32 little-endian.
    #[prost(bytes = "vec", tag = "3")]
    pub delta: Vec<u8>,
    /// Samples it trained on.
    #[prost(uint64, tag = "4")]
    pub samples: u64,
    /// Under secure aggregation, instead of `delta`: samples × delta in fixed point, masked,
    /// u32 little-endian.
    #[prost(bytes = "vec", tag = "5")]
    pub masked: Vec<u8>,
}

/// Whether an update was taken.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ack {
    /// Taken.
    #[prost(bool, tag = "1")]
    pub accepted: bool,
    /// Why not.
    #[prost(string, tag = "2")]
    pub reason: String,
}

/// f32s as little-endian bytes.
pub fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian bytes as f32s; `None` when the length is not a multiple of 4.
pub fn from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    b.len()
        .is_multiple_of(4)
        .then(|| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// u32s as little-endian bytes.
pub fn words_to_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian bytes as u32s; `None` when the length is not a multiple of 4.
pub fn words_from_bytes(b: &[u8]) -> Option<Vec<u32>> {
    b.len()
        .is_multiple_of(4)
        .then(|| b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// The generated client and server.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod federation {
    include!(concat!(env!("OUT_DIR"), "/foresight.federate.v1.Federation.rs"));
}

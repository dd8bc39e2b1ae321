//! Federated learning of demand models across clusters: each cluster trains the shared
//! forecaster network ([`model`]) on its own series and sends only weight updates; the
//! aggregator combines them ([`aggregate`]), optionally clipped and noised for differential
//! privacy ([`privacy`]). No raw series leaves a cluster.

pub mod aggregate;
pub mod experiment;
pub mod export;
pub mod join;
pub mod model;
pub mod privacy;
pub mod round;
pub mod secagg;
pub mod serve;
pub mod tls;
pub mod wire;

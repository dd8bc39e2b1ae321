//! The Kubernetes backend. So far: demand, CPU and latency history from a Prometheus server's
//! HTTP API ([`prometheus`]); observing and acting on clusters through kube-rs follow.

pub mod prometheus;

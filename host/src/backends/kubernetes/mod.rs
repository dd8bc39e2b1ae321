//! The Kubernetes backend: observes clusters through kube-rs reflectors, `metrics.k8s.io`
//! and a Prometheus server's history, and acts through the API with absolute, idempotent
//! writes — HPA floors, Deployment scale, CapacityBuffers, Bindings, OCM placement scores —
//! an Event on each, only while holding the leader Lease.

pub mod actuate;
pub mod api;
mod backend;
#[cfg(test)]
pub mod fake;
pub mod lease;
pub mod prometheus;
pub mod rbac;
pub mod reflect;
pub mod resources;
pub mod snapshot;
pub mod view;

pub use backend::KubeBackend;
#[cfg(test)]
mod tests;

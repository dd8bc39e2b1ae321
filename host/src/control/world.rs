//! The backend the daemon runs on: the built-in simulator or real clusters. The loop sees
//! only [`Observer`] and outcomes; what only the simulator has (its clock, its ledger) is
//! asked for explicitly.

use crate::act::Outcome;
use crate::backends::kubernetes::KubeBackend;
use crate::backends::sim::Simulator;
use crate::decide::Decision;
use crate::observe::{Observation, ObserveError, Observer};

/// Where observations come from and decisions go.
pub enum World {
    /// The built-in simulator.
    Sim(Box<Simulator>),
    /// Kubernetes clusters.
    Kube(Box<KubeBackend>),
}

impl World {
    /// The backend as the loop reads it.
    pub fn observer(&self) -> &dyn Observer {
        match self {
            Self::Sim(s) => s.as_ref(),
            Self::Kube(k) => k.as_ref(),
        }
    }

    /// Observes now.
    pub fn observe(&mut self) -> Result<Observation, ObserveError> {
        match self {
            Self::Sim(s) => s.observe(),
            Self::Kube(k) => k.observe(),
        }
    }

    /// Carries out decisions (the Kubernetes backend puts their reasons into Events).
    pub fn apply(&mut self, decisions: &[Decision]) -> Vec<Outcome> {
        match self {
            Self::Sim(s) => s.apply(&decisions.iter().map(|d| d.action.clone()).collect::<Vec<_>>()),
            Self::Kube(k) => k.apply_decisions(decisions),
        }
    }

    /// The simulator, when that is the backend.
    pub fn sim(&self) -> Option<&Simulator> {
        match self {
            Self::Sim(s) => Some(s),
            Self::Kube(_) => None,
        }
    }

    /// The simulator, mutably.
    pub fn sim_mut(&mut self) -> Option<&mut Simulator> {
        match self {
            Self::Sim(s) => Some(s),
            Self::Kube(_) => None,
        }
    }

    /// `sim` or `kubernetes`, as status names it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sim(_) => "sim",
            Self::Kube(_) => "kubernetes",
        }
    }
}

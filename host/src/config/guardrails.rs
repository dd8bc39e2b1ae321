//! `[guardrails]`: limits every plan passes through before it reaches a backend.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Limits for one service (or the defaults for all).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Bounds {
    /// Fewest replicas per cluster where the service runs.
    pub min_replicas: u32,
    /// Most replicas per cluster.
    pub max_replicas: u32,
}

impl Default for Bounds {
    fn default() -> Self {
        Self { min_replicas: 1, max_replicas: 500 }
    }
}

/// The guardrails.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Guardrails {
    /// Largest change of a service's replicas in one cluster per tick.
    pub max_replica_change: u32,
    /// Seconds after a scale-in before the same service and cluster may scale in again.
    pub scale_in_cooldown_s: u64,
    /// Whether a forecast alone may scale in (otherwise observed demand must agree).
    pub scale_in_on_forecast: bool,
    /// Bounds for every service.
    #[serde(flatten)]
    pub bounds: Bounds,
    /// Bounds per service, overriding the defaults.
    pub services: BTreeMap<String, Bounds>,
}

impl Default for Guardrails {
    fn default() -> Self {
        Self {
            max_replica_change: 20,
            scale_in_cooldown_s: 300,
            scale_in_on_forecast: false,
            bounds: Bounds::default(),
            services: BTreeMap::new(),
        }
    }
}

impl Guardrails {
    /// The bounds of a service.
    pub fn bounds(&self, service: &str) -> &Bounds {
        self.services.get(service).unwrap_or(&self.bounds)
    }

    /// Checks the numbers, naming the key at fault.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let check = |key: String, b: &Bounds| {
            if b.min_replicas > b.max_replicas {
                Err((
                    key,
                    format!(
                        "min-replicas {} exceeds max-replicas {}; lower min-replicas or raise max-replicas",
                        b.min_replicas, b.max_replicas
                    ),
                ))
            } else {
                Ok(())
            }
        };
        check("guardrails".into(), &self.bounds)?;
        for (service, b) in &self.services {
            check(format!("guardrails.services.{service}"), b)?;
        }
        if self.max_replica_change == 0 {
            return Err((
                "guardrails.max-replica-change".into(),
                "is 0, so nothing could ever change; use at least 1".into(),
            ));
        }
        Ok(())
    }
}

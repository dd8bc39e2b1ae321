//! Lead-time arithmetic: how far ahead each kind of capacity must be decided so that it serves
//! when the forecast says it is needed.
//!
//! A replica decided at a tick is scheduled at once and serves after its startup, from the
//! first step that starts once it is ready; forecasts count leads from the step the
//! observation last reported (one step before now), so that step is one startup, rounded up
//! to whole steps, plus one step ahead. A node takes its provisioning lead time to arrive, and the pods
//! placed on it then still start, so the node capacity that must be ready at `h` is what the
//! replicas serving at `h + startup` need; the cost model requests it at `h − lead` (or now).

/// Lead of the forecast replicas are sized on: the first step a replica decided now serves.
pub fn replica_lead_s(startup_s: u32, step_s: u32) -> u32 {
    let step = step_s.max(1);
    startup_s.div_ceil(step) * step + step
}

/// Lead of the forecast the nodes ready at `horizon_s` must carry: pods placed on them when
/// they arrive serve only after their startup.
pub fn node_forecast_lead_s(horizon_s: u32, startup_s: u32) -> u32 {
    horizon_s + startup_s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_look_one_startup_and_one_step_ahead() {
        // A 60 s startup on one-minute ticks: decided now, serving from the step after next.
        assert_eq!(replica_lead_s(60, 60), 120);
        // Ready 45 s in, it serves from the next step; ready 90 s in, from the one after.
        assert_eq!(replica_lead_s(45, 60), 120);
        assert_eq!(replica_lead_s(90, 60), 180);
        assert_eq!(replica_lead_s(0, 60), 60);
    }

    #[test]
    fn nodes_carry_the_demand_of_their_pods_once_started() {
        // Nodes ready in 300 s host pods that start in 60 s: they must carry the forecast 360 s out.
        assert_eq!(node_forecast_lead_s(300, 60), 360);
    }
}

//! Every answer a plugin gives is checked before the host uses it: right shape, finite numbers,
//! values within range. A plugin that breaks the contract is treated as faulty.

use foresight_sdk::{Candidates, ClusterPlan, ForecastRequest, PlanRequest, Scores};

/// Checks forecasts against the request that produced them.
pub fn forecasts(request: &ForecastRequest, answer: &[Vec<f64>]) -> Result<(), String> {
    if answer.len() != request.series.len() {
        return Err(format!("{} forecasts for {} series", answer.len(), request.series.len()));
    }
    let width = request.quantiles.len();
    for (i, values) in answer.iter().enumerate() {
        if values.len() != request.answer_len() {
            return Err(format!(
                "series {i}: {} values, expected {} horizons × {width} quantiles",
                values.len(),
                request.horizons.len()
            ));
        }
        if let Some(j) = values.iter().position(|v| !v.is_finite()) {
            return Err(format!("series {i}: value {j} is {}", values[j]));
        }
        for (h, row) in values.chunks_exact(width).enumerate() {
            if row.windows(2).any(|w| w[1] < w[0]) {
                return Err(format!(
                    "series {i}, horizon {}: quantiles decrease: {row:?}",
                    request.horizons[h]
                ));
            }
        }
    }
    Ok(())
}

/// Checks scores against the candidates they rate.
pub fn scores(candidates: &Candidates, answer: &Scores) -> Result<(), String> {
    if answer.values.len() != candidates.len() {
        return Err(format!("{} scores for {} candidates", answer.values.len(), candidates.len()));
    }
    if let Some(i) = answer.values.iter().position(|v| !v.is_finite()) {
        return Err(format!("score of candidate {i} is {}", answer.values[i]));
    }
    if !answer.contributions.is_empty() {
        if answer.contributions.len() != candidates.features.len() {
            return Err(format!(
                "{} contributions for a {}×{} feature matrix",
                answer.contributions.len(),
                candidates.len(),
                candidates.width()
            ));
        }
        if answer.contributions.iter().any(|v| !v.is_finite()) {
            return Err("a contribution is not finite".into());
        }
    }
    Ok(())
}

/// Checks capacity plans against the request.
pub fn plans(request: &PlanRequest, answer: &[ClusterPlan]) -> Result<(), String> {
    if answer.len() != request.clusters.len() {
        return Err(format!("{} plans for {} clusters", answer.len(), request.clusters.len()));
    }
    for (plan, cluster) in answer.iter().zip(&request.clusters) {
        let name = &cluster.cluster;
        if !plan.hourly_cost.is_finite() || plan.hourly_cost < 0.0 {
            return Err(format!("cluster `{name}`: hourly cost is {}", plan.hourly_cost));
        }
        if plan.steps.windows(2).any(|w| w[1].request_in_s < w[0].request_in_s) {
            return Err(format!("cluster `{name}`: steps are not in time order"));
        }
        for step in &plan.steps {
            let Some(offering) = cluster.offerings.get(step.offering as usize) else {
                return Err(format!(
                    "cluster `{name}`: step names offering {} of {}",
                    step.offering,
                    cluster.offerings.len()
                ));
            };
            if step.nodes > offering.max_nodes {
                return Err(format!(
                    "cluster `{name}`: {} nodes of `{}` exceed its maximum of {}",
                    step.nodes, offering.name, offering.max_nodes
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use foresight_sdk::{CapacityStep, ClusterDemand, Offering, Series};

    #[test]
    fn forecasts_must_fill_the_grid_with_ordered_finite_values() {
        let request = ForecastRequest {
            series: vec![Series { step: 60, values: vec![1.0], ..Default::default() }],
            horizons: vec![60, 120],
            quantiles: vec![0.1, 0.9],
        };
        forecasts(&request, &[vec![1.0, 2.0, 1.0, 3.0]]).unwrap();
        assert!(forecasts(&request, &[vec![1.0, 2.0, 1.0]]).unwrap_err().contains("3 values"));
        assert!(forecasts(&request, &[vec![1.0, f64::NAN, 1.0, 3.0]]).unwrap_err().contains("NaN"));
        assert!(forecasts(&request, &[vec![2.0, 1.0, 1.0, 3.0]]).unwrap_err().contains("decrease"));
        assert!(forecasts(&request, &[]).unwrap_err().contains("0 forecasts"));
    }

    #[test]
    fn scores_match_candidates() {
        let c = Candidates::new(vec!["a".into()], vec![1.0, 2.0]).unwrap();
        scores(&c, &Scores { values: vec![0.0, 1.0], contributions: vec![] }).unwrap();
        assert!(scores(&c, &Scores { values: vec![0.0], contributions: vec![] }).is_err());
        assert!(scores(&c, &Scores { values: vec![0.0, f64::INFINITY], contributions: vec![] }).is_err());
        assert!(scores(&c, &Scores { values: vec![0.0, 1.0], contributions: vec![1.0] }).is_err());
    }

    #[test]
    fn plans_stay_within_offerings() {
        let request = PlanRequest {
            horizons: vec![600],
            quantiles: vec![0.5],
            clusters: vec![ClusterDemand {
                cluster: "edge".into(),
                cpu: vec![1.0],
                memory_gib: vec![1.0],
                offerings: vec![Offering {
                    name: "small".into(),
                    vcpu: 2.0,
                    max_nodes: 3,
                    ..Default::default()
                }],
            }],
        };
        let ok = ClusterPlan {
            steps: vec![CapacityStep { offering: 0, nodes: 3, request_in_s: 0 }],
            hourly_cost: 1.0,
        };
        plans(&request, std::slice::from_ref(&ok)).unwrap();
        let too_many = ClusterPlan {
            steps: vec![CapacityStep { offering: 0, nodes: 4, request_in_s: 0 }],
            ..ok.clone()
        };
        assert!(plans(&request, &[too_many]).unwrap_err().contains("maximum"));
        let unknown =
            ClusterPlan { steps: vec![CapacityStep { offering: 1, nodes: 1, request_in_s: 0 }], ..ok };
        assert!(plans(&request, &[unknown]).unwrap_err().contains("offering 1"));
    }
}

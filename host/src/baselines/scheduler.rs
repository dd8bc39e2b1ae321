//! kube-scheduler's default node scoring for a pod, as its documentation describes the two
//! resource plugins of the default profile (both weight 1, CPU and memory weight 1 each):
//!
//! * `NodeResourcesFit` with the `LeastAllocated` strategy:
//!   `mean over resources of (allocatable − requested) × 100 / allocatable`;
//! * `NodeResourcesBalancedAllocation`: `(1 − std of the requested fractions) × 100`;
//!
//! where "requested" includes the pod being placed. Nodes the pod does not fit on are filtered
//! out; the highest total wins, ties to the first node (the scheduler picks at random).

use super::autoscaler::PodRequest;
use crate::observe::NodeView;

/// `LeastAllocated`: 0–100, higher for emptier nodes.
pub fn least_allocated(node: &NodeView, pod: PodRequest) -> f64 {
    let cpu = (node.cpu_free - pod.cpu) * 100.0 / node.cpu;
    let memory = (node.memory_free_gib - pod.memory_gib) * 100.0 / node.memory_gib;
    (cpu + memory) / 2.0
}

/// `BalancedAllocation`: 0–100, higher when CPU and memory are requested in equal fractions.
pub fn balanced_allocation(node: &NodeView, pod: PodRequest) -> f64 {
    let cpu = ((node.cpu - node.cpu_free + pod.cpu) / node.cpu).min(1.0);
    let memory = ((node.memory_gib - node.memory_free_gib + pod.memory_gib) / node.memory_gib).min(1.0);
    // The standard deviation of two values is half their distance.
    (1.0 - (cpu - memory).abs() / 2.0) * 100.0
}

/// The node the default scheduler binds the pod to, or `None` when it fits nowhere.
pub fn select(nodes: &[NodeView], pod: PodRequest) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, node) in nodes.iter().enumerate() {
        if !node.fits(pod.cpu, pod.memory_gib) {
            continue;
        }
        let score = least_allocated(node, pod) + balanced_allocation(node, pod);
        if best.is_none_or(|(_, s)| score > s + 1e-9) {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cpu: f64, cpu_free: f64, memory_gib: f64, memory_free_gib: f64) -> NodeView {
        NodeView { pool: 0, cpu, cpu_free, memory_gib, memory_free_gib, pods: 0, serving: Default::default() }
    }

    #[test]
    fn scores_of_the_documentation_formulas() {
        // A 4-core, 16-GiB node with 1 core and 4 GiB requested, placing a 1-core, 4-GiB pod:
        // after it, 2/4 cores and 8/16 GiB are free → LeastAllocated (50 + 50) / 2 = 50, and
        // both fractions are 0.5 → BalancedAllocation 100.
        let n = node(4.0, 3.0, 16.0, 12.0);
        let pod = PodRequest { cpu: 1.0, memory_gib: 4.0 };
        assert!((least_allocated(&n, pod) - 50.0).abs() < 1e-12);
        assert!((balanced_allocation(&n, pod) - 100.0).abs() < 1e-12);
        // A 1-core, 1-GiB pod on an empty 4×16 node: free 75 % and 93.75 % → 84.375; fractions
        // 0.25 and 0.0625 → 100 × (1 − 0.09375) = 90.625.
        let n = node(4.0, 4.0, 16.0, 16.0);
        let pod = PodRequest { cpu: 1.0, memory_gib: 1.0 };
        assert!((least_allocated(&n, pod) - 84.375).abs() < 1e-12);
        assert!((balanced_allocation(&n, pod) - 90.625).abs() < 1e-12);
    }

    #[test]
    fn the_emptiest_fitting_node_wins() {
        let pod = PodRequest { cpu: 1.0, memory_gib: 2.0 };
        let nodes = [node(4.0, 1.0, 16.0, 10.0), node(4.0, 3.0, 16.0, 10.0), node(4.0, 0.5, 16.0, 16.0)];
        assert_eq!(select(&nodes, pod), Some(1));
        assert_eq!(select(&nodes[2..], pod), None);
    }
}

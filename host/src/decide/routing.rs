//! Where each region's demand should go: to clusters whose round trip leaves room for the SLO,
//! edge sites first while they have room, then the cloud; among each kind, in the order the
//! scorer ranks them (nearest first without one). Capacity is shared: the services and regions
//! that can only meet their SLO at the edge take the edge first.

use crate::observe::{ClusterKind, Observation};

use super::sizing::{self, feasible, stretch_of};

/// Demand in req/s per service, region and cluster.
pub type Assignment = Vec<Vec<Vec<f64>>>;

/// Clusters a region's requests for a service may go to, in order of preference.
pub type Candidates = Vec<Vec<Vec<usize>>>;

/// Candidate clusters per service and region: up, within the SLO's reach (for response times
/// `stretch[s]` times the model's), edge sites before cloud regions, each kind in `rank` order
/// (a lower rank is preferred). A list without a cloud region ends with the nearest one, in
/// reach or not, to take the overflow.
pub fn candidates(o: &Observation, stretch: &[f64], rank: impl Fn(usize, usize, usize) -> f64) -> Candidates {
    o.services
        .iter()
        .enumerate()
        .map(|(s, service)| {
            (0..o.regions.len())
                .map(|r| {
                    let up = (0..o.clusters.len()).filter(|&c| o.clusters[c].up);
                    let mut list: Vec<usize> = up
                        .clone()
                        .filter(|&c| {
                            feasible(
                                o.clusters[c].rtt_ms[r],
                                service.slo_p95_ms,
                                service.service_ms,
                                stretch_of(stretch, s),
                            )
                        })
                        .collect();
                    list.sort_by(|&a, &b| {
                        let edge = |c: usize| o.clusters[c].kind != ClusterKind::Edge;
                        edge(a).cmp(&edge(b)).then(rank(s, r, a).total_cmp(&rank(s, r, b)))
                    });
                    // Demand beyond every candidate's room is better served late than dropped:
                    // the nearest elastic cluster takes it, in reach or not.
                    let nearest = |cloud_only: bool| {
                        up.clone()
                            .filter(|&c| !cloud_only || o.clusters[c].kind == ClusterKind::Cloud)
                            .min_by(|&a, &b| o.clusters[a].rtt_ms[r].total_cmp(&o.clusters[b].rtt_ms[r]))
                    };
                    if !list.iter().any(|&c| o.clusters[c].kind == ClusterKind::Cloud) {
                        list.extend(nearest(true).or_else(|| nearest(false).filter(|c| !list.contains(c))));
                    }
                    list
                })
                .collect()
        })
        .collect()
}

/// Share of a service's requests that may take a route beyond the SLO's reach with its p95
/// still within the SLO (the slowest 5 % do not count, less a margin).
pub const SLOW_SHARE: f64 = 0.04;

/// Fills clusters with demand, each cluster taking what its cores hold at the sizing
/// utilisation; what no cluster holds goes to the last candidate (the nearest cloud).
///
/// A cluster's cores are `held[s][c]` (what service `s` already runs there) and `free[c]`
/// (what nobody does): a service grows into free cores, and into another's only where it can
/// meet its SLO nowhere else, since replicas are not taken from one service to give another
/// within a tick. Regions with a cloud region in reach come last: for them the edge is a
/// nicety. The others compete for their edge sites in two rounds. First each takes what keeps
/// its service's overflow within [`SLOW_SHARE`] of the service's demand, smallest first, so
/// when an edge site cannot hold everything as many services as possible still meet their SLO;
/// then each takes what room is left.
pub fn assign(
    o: &Observation,
    stretch: &[f64],
    candidates: &Candidates,
    demand: &[Vec<f64>],
    room: &mut Room,
) -> Assignment {
    let mut out = vec![vec![vec![0.0; o.clusters.len()]; o.regions.len()]; o.services.len()];
    // Cloud regions within the SLO's reach (not the overflow one a list may end with).
    let cloud_options = |s: usize, r: usize| {
        let service = &o.services[s];
        candidates[s][r]
            .iter()
            .filter(|&&c| {
                o.clusters[c].kind == ClusterKind::Cloud
                    && feasible(
                        o.clusters[c].rtt_ms[r],
                        service.slo_p95_ms,
                        service.service_ms,
                        stretch_of(stretch, s),
                    )
            })
            .count()
    };
    // Cores one req/s takes at the sizing utilisation.
    let per_rps = |s: usize| {
        let service = &o.services[s];
        service.service_ms / 1000.0 / sizing::MAX_UTILISATION / service.cpu_per_replica.floor().max(1.0)
            * service.cpu_per_replica
    };
    let mut left: Vec<Vec<f64>> = demand.to_vec();
    let mut fill =
        |s: usize, r: usize, amount: f64, steal: bool, out: &mut Assignment, left: &mut [Vec<f64>]| {
            let mut want = amount.min(left[s][r]);
            for &c in &candidates[s][r] {
                if want <= 0.0 {
                    break;
                }
                let take = want.min(room.available(s, c, steal) / per_rps(s));
                room.take(s, c, take * per_rps(s), steal);
                out[s][r][c] += take;
                want -= take;
                left[s][r] -= take;
            }
        };
    let pairs = (0..o.services.len()).flat_map(|s| (0..o.regions.len()).map(move |r| (s, r)));
    let (mut reach_cloud, mut edge_only): (Vec<_>, Vec<_>) =
        pairs.partition(|&(s, r)| cloud_options(s, r) > 0);
    let must = |s: usize, r: usize| {
        let total: f64 = demand[s].iter().sum();
        (demand[s][r] - SLOW_SHARE * total).max(0.0) * per_rps(s)
    };
    edge_only.sort_by(|a, b| must(a.0, a.1).total_cmp(&must(b.0, b.1)).then(a.cmp(b)));
    for &(s, r) in &edge_only {
        let total: f64 = demand[s].iter().sum();
        fill(s, r, demand[s][r] - SLOW_SHARE * total, true, &mut out, &mut left);
    }
    reach_cloud.sort();
    for &(s, r) in &edge_only {
        fill(s, r, f64::INFINITY, true, &mut out, &mut left);
    }
    for &(s, r) in &reach_cloud {
        fill(s, r, f64::INFINITY, false, &mut out, &mut left);
    }
    for (s, r) in edge_only.into_iter().chain(reach_cloud) {
        if left[s][r] > 0.0
            && let Some(&last) = candidates[s][r].last()
        {
            out[s][r][last] += left[s][r];
            room.take(s, last, left[s][r] * per_rps(s), true);
        }
    }
    out
}

/// Cores each cluster offers a plan, and whose they are.
#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    /// Per service and cluster, cores the service's placed replicas hold.
    held: Vec<Vec<f64>>,
    /// Per cluster, cores nobody holds.
    free: Vec<f64>,
}

impl Room {
    /// What the clusters offer now: an edge site the cores its services' placed replicas hold,
    /// each to its own, and its free cores (less a little for packing) to all; a cloud region
    /// every node its pools may grow to, to all.
    pub fn of(o: &Observation) -> Self {
        let mut held = vec![vec![0.0; o.clusters.len()]; o.services.len()];
        let free = o
            .clusters
            .iter()
            .enumerate()
            .map(|(c, cluster)| match cluster.kind {
                ClusterKind::Edge => {
                    let mut placed = 0.0;
                    for (s, service) in o.services.iter().enumerate() {
                        let p = &service.placements[c];
                        held[s][c] = f64::from(p.ready + p.starting) * service.cpu_per_replica;
                        placed += held[s][c];
                    }
                    (0.95 * cluster.cpu_capacity - placed).max(0.0)
                }
                ClusterKind::Cloud => {
                    cluster.pools.iter().map(|p| f64::from(p.offering.max_nodes) * p.offering.vcpu).sum()
                }
            })
            .collect();
        Self { held, free }
    }

    /// Room with every cluster's cores free, for tests and planning from scratch.
    pub fn free(cores: Vec<f64>, services: usize) -> Self {
        Self { held: vec![vec![0.0; cores.len()]; services], free: cores }
    }

    /// Cores service `s` may plan into at cluster `c`; with `steal`, other services' too.
    fn available(&self, s: usize, c: usize, steal: bool) -> f64 {
        let others: f64 =
            if steal { (0..self.held.len()).filter(|&x| x != s).map(|x| self.held[x][c]).sum() } else { 0.0 };
        (self.held[s][c] + self.free[c] + others).max(0.0)
    }

    /// Takes `cores` at `c` for `s`: its own held cores first, then free ones, then (with
    /// `steal`) others'. What is taken beyond all of them is counted against the free cores.
    fn take(&mut self, s: usize, c: usize, mut cores: f64, steal: bool) {
        let own = cores.min(self.held[s][c]);
        self.held[s][c] -= own;
        cores -= own;
        let free = cores.min(self.free[c].max(0.0));
        self.free[c] -= free;
        cores -= free;
        if steal {
            for x in (0..self.held.len()).filter(|&x| x != s) {
                let t = cores.min(self.held[x][c]);
                self.held[x][c] -= t;
                cores -= t;
            }
        }
        self.free[c] -= cores;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::observe::{ClusterView, Placement, ServiceView};

    fn cluster(name: &str, kind: ClusterKind, rtt: Vec<f64>, cores: f64) -> ClusterView {
        ClusterView {
            name: name.into(),
            kind,
            up: true,
            rtt_ms: rtt,
            peer_rtt_ms: vec![],
            pools: vec![],
            cpu_capacity: cores,
            cpu_allocated: 0.0,
            pending_pods: 0,
        }
    }

    pub(crate) fn observation() -> Observation {
        let placement = Placement { ready: 0, starting: 0, pending: 0, arrival_rps: 0.0, utilisation: 0.0 };
        Observation {
            time: 0,
            step_s: 60,
            regions: vec!["eu".into(), "ap".into()],
            clusters: vec![
                cluster("edge-eu", ClusterKind::Edge, vec![5.0, 170.0], 8.0),
                cluster("edge-ap", ClusterKind::Edge, vec![170.0, 8.0], 8.0),
                cluster("cloud-eu", ClusterKind::Cloud, vec![20.0, 150.0], 400.0),
            ],
            services: vec![ServiceView {
                name: "web".into(),
                slo_p95_ms: 150.0,
                service_ms: 14.0,
                cpu_per_replica: 1.0,
                memory_gib_per_replica: 1.0,
                startup_s: 60,
                demand_rps: vec![0.0, 0.0],
                placements: vec![placement.clone(), placement.clone(), placement],
                routing: vec![vec![0.0, 0.0, 1.0]; 2],
                p95_ms: 0.0,
                dropped_rps: 0.0,
            }],
            events: vec![],
        }
    }

    #[test]
    fn edge_first_within_reach_then_the_cloud() {
        let o = observation();
        let c = candidates(&o, &[], |_, r, c| o.clusters[c].rtt_ms[r]);
        // eu: its edge, then the cloud; ap: only its edge is within the SLO's reach, and the
        // cloud takes what it cannot.
        assert_eq!(c[0], vec![vec![0, 2], vec![1, 2]]);
    }

    #[test]
    fn demand_overflows_the_edge_into_the_cloud() {
        let o = observation();
        let c = candidates(&o, &[], |_, r, c| o.clusters[c].rtt_ms[r]);
        let mut cores = Room::free(vec![4.0, 8.0, 400.0], 1);
        // 14 ms at 70 % busy: 1 req/s takes 0.02 cores, so 4 cores hold 200 req/s.
        let a = assign(&o, &[], &c, &[vec![300.0, 100.0]], &mut cores);
        assert!((a[0][0][0] - 200.0).abs() < 1e-9, "{:?}", a[0][0]);
        assert!((a[0][0][2] - 100.0).abs() < 1e-9);
        assert!((a[0][1][1] - 100.0).abs() < 1e-9);
        assert!(cores.free[0].abs() < 1e-9 && (cores.free[1] - 6.0).abs() < 1e-9);
    }

    #[test]
    fn a_full_edge_goes_first_to_what_keeps_each_service_within_its_slo() {
        let mut o = observation();
        let mut b = o.services[0].clone();
        b.name = "b".into();
        o.services.push(b);
        let c = candidates(&o, &[], |_, r, c| o.clusters[c].rtt_ms[r]);
        // `web` sends 10 % of its requests from ap, `b` all of them; the ap edge holds 400 req/s.
        // `web` may send 4 % of its 1000 req/s elsewhere and keep its p95, so it needs 60 at the
        // edge; `b` gets the other 340 and sends its remaining 60 to the cloud.
        let mut cores = Room::free(vec![0.0, 8.0, 400.0], 2);
        let a = assign(&o, &[], &c, &[vec![900.0, 100.0], vec![0.0, 400.0]], &mut cores);
        assert!((a[0][1][1] - 60.0).abs() < 1e-9, "{:?}", a[0][1]);
        assert!((a[0][1][2] - 40.0).abs() < 1e-9);
        assert!((a[1][1][1] - 340.0).abs() < 1e-9, "{:?}", a[1][1]);
        assert!((a[1][1][2] - 60.0).abs() < 1e-9);
    }

    #[test]
    fn overflow_beyond_the_slo_goes_to_the_nearest_cloud() {
        let mut o = observation();
        let c = candidates(&o, &[], |_, r, c| o.clusters[c].rtt_ms[r]);
        assert_eq!(c[0][1], vec![1, 2]);
        o.clusters[1].up = false;
        let c = candidates(&o, &[], |_, r, c| o.clusters[c].rtt_ms[r]);
        assert_eq!(c[0][1], vec![2]);
    }
}

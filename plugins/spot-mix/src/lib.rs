//! # spot-mix — the reference cost model
//!
//! Plans, per cluster, the cheapest mix of on-demand and spot nodes that covers a chosen
//! forecast quantile of CPU and memory at every horizon, with spot capped both by how much of
//! the demand may ride on interruptible capacity and by how many interruptions the fleet
//! tolerates:
//!
//! ```text
//! need(h)   = Q_τ(demand at h) · (1 + headroom)         τ = `quantile`, interpolated between columns
//! soon(h)   = max need(h') over h < h' ≤ h + scale-in-delay-s          (cores and GiB separately)
//! target(h) = max(need(h), min(target(h⁻), soon(h)))     h⁻: the previous horizon; before it, now
//! mix(h)    = argmin Σₒ nₒ·priceₒ  subject to
//!               Σₒ nₒ·vcpuₒ ≥ cores(h)          Σₒ nₒ·memoryₒ ≥ GiB(h)
//!               Σ_spot nₒ·vcpuₒ ≤ max-spot-share · cores(h)
//!               Σ_spot nₒ·interruption-rateₒ ≤ max-interruptions-per-hour
//!               0 ≤ nₒ ≤ max-nodesₒ
//! ```
//!
//! * **Mix.** Offerings are few, so the mix comes from a branch and bound over node counts.
//!   Each branch is bounded by its linear relaxation (fractional nodes), reached through
//!   Lagrangian relaxation of the memory constraint: at a price β per GiB, taking the cheapest
//!   cores first is optimal, and bisection finds the β that bounds best. Counts nearest the
//!   relaxation's are tried first, so good mixes come early and cut whole subtrees. The mix is
//!   within 0.1 % of the cheapest (large fleets have many mixes a few cents apart), a search
//!   budget bounds the time on huge ones, and ties go to the first mix found, so plans are
//!   deterministic.
//! * **Lead times.** A node added for horizon `h` is requested at `h − lead-time-s` so it is
//!   ready at `h`, or now when that has passed. For each horizon the mix is first sought among
//!   capacity that can be ready in time (offerings whose lead time fits, plus nodes already
//!   held); only when that cannot cover the need are late offerings used too.
//! * **Scale-in.** Capacity is given up only down to what the horizons within
//!   `scale-in-delay-s` need again (`target` above), so nodes are not released only to be
//!   requested back; growth is not pulled forward by it. Nodes the first horizon's mix does
//!   not need are released at once (a plan is made again every tick, so a release due later
//!   would never come due); later horizons release when their mix no longer needs them (make
//!   before break), never while a request for a later horizon of the same offering is under
//!   way. The first mix never drops below what that horizon needs.
//! * **Shortfall.** When every allowed node still cannot cover a horizon, the plan holds every
//!   on-demand node and as many spot nodes as the caps allow, and logs a warning: partial
//!   capacity beats no plan.
//!
//! Steps name only offerings whose count changes, ordered by request time (then offering), and
//! never exceed `max-nodes`; `hourly-cost` prices the mix of the last horizon.
//!
//! ```
//! use foresight_sdk::{ClusterDemand, Config, CostModel, Offering, PlanRequest};
//! use spot_mix::SpotMix;
//!
//! let config = Config::parse("headroom = 0.0", &SpotMix::describe_keys()).unwrap();
//! let mut planner = SpotMix::new(&config).unwrap();
//! let node = |name: &str, price: f64, spot: bool| Offering {
//!     name: name.into(),
//!     vcpu: 4.0,
//!     memory_gib: 16.0,
//!     hourly_price: price,
//!     spot,
//!     interruption_rate: if spot { 0.05 } else { 0.0 },
//!     lead_time_s: 60,
//!     max_nodes: 10,
//!     current_nodes: 0,
//! };
//! let request = PlanRequest {
//!     horizons: vec![300],
//!     quantiles: vec![0.5, 0.9],
//!     clusters: vec![ClusterDemand {
//!         cluster: "eu".into(),
//!         cpu: vec![8.0, 10.0],
//!         memory_gib: vec![20.0, 24.0],
//!         offerings: vec![node("m-4x16", 0.20, false), node("m-4x16-spot", 0.06, true)],
//!     }],
//! };
//! let plan = &planner.plan(&request).unwrap()[0];
//! // 10 cores at p90: half may be spot, so one 4-core spot node and two on-demand nodes,
//! // requested a minute before they are needed.
//! let wanted: Vec<(u32, u32, u32)> = plan.steps.iter().map(|s| (s.offering, s.nodes, s.request_in_s)).collect();
//! assert_eq!(wanted, vec![(0, 2, 240), (1, 1, 240)]);
//! assert!((plan.hourly_cost - 0.46).abs() < 1e-9);
//! ```

use foresight_sdk::{
    CapacityStep, ClusterDemand, ClusterPlan, Config, ConfigKey, CostModel, Descriptor, Offering,
    PlanRequest, PluginError, PluginKind,
};

/// Slack for comparing cores, GiB, prices and interruption rates computed in floating point.
const EPS: f64 = 1e-9;

/// Bisection steps towards the best Lagrange multiplier of the memory constraint.
const MULTIPLIER_STEPS: u32 = 16;

/// Branches whose bound comes within this fraction of the best mix found are not explored:
/// large fleets have many mixes within a few cents of each other, and telling them apart
/// would cost far more search than it saves.
const GAP: f64 = 1e-3;

/// Search calls per mix before settling for the best mix found: bounds a plan's time on huge
/// fleets with many offerings; ordinary requests finish far below it.
const SEARCH_BUDGET: u32 = 100_000;

/// The reference spot-mix cost model.
#[derive(Debug, Clone)]
pub struct SpotMix {
    quantile: f64,
    headroom: f64,
    max_spot_share: f64,
    max_interruptions: f64,
    scale_in_delay_s: u32,
}

impl SpotMix {
    /// The configuration keys, for building a [`Config`] natively.
    pub fn describe_keys() -> Vec<ConfigKey> {
        Self::describe().config_keys
    }

    fn plan_cluster(
        &self,
        horizons: &[u32],
        column: &Column,
        width: usize,
        cluster: &ClusterDemand,
    ) -> ClusterPlan {
        let grow = 1.0 + self.headroom;
        let needs: Vec<Need> = cluster
            .cpu
            .chunks_exact(width)
            .zip(cluster.memory_gib.chunks_exact(width))
            .map(|(cpu, memory)| Need { cores: column.read(cpu) * grow, gib: column.read(memory) * grow })
            .collect();
        let offerings = &cluster.offerings;
        // Nodes beyond an offering's maximum are not the plan's to keep.
        let held: Vec<u32> = offerings.iter().map(|o| o.current_nodes.min(o.max_nodes)).collect();
        let limits: Vec<u32> = offerings.iter().map(|o| o.max_nodes).collect();

        let mut mixes = Vec::with_capacity(horizons.len());
        let mut short = Vec::new();
        let mut kept = offerings.iter().zip(&held).fold(Need::default(), |a, (o, &n)| Need {
            cores: a.cores + f64::from(n) * o.vcpu,
            gib: a.gib + f64::from(n) * o.memory_gib,
        });
        for (j, &horizon) in horizons.iter().enumerate() {
            let target = self.target(horizons, &needs, j, kept);
            kept = target;
            // What can be in place by this horizon: any count of an offering fast enough,
            // at most what is held of the others.
            let in_time: Vec<u32> = offerings
                .iter()
                .zip(&held)
                .map(|(o, &h)| if o.lead_time_s <= horizon { o.max_nodes } else { h })
                .collect();
            let mix = self
                .cheapest(offerings, target, &in_time)
                .or_else(|| self.cheapest(offerings, target, &limits));
            mixes.push(mix.unwrap_or_else(|| {
                short.push(horizon);
                self.fullest(offerings, target, &limits)
            }));
        }
        if !short.is_empty() {
            foresight_sdk::log::warn(&format!(
                "cluster `{}`: no mix within max-nodes and the spot caps covers the demand at horizons {short:?} s; \
                 planning every allowed node",
                cluster.cluster
            ));
        }
        let last = mixes.last().map_or(&[][..], Vec::as_slice);
        let hourly_cost = offerings.iter().zip(last).map(|(o, &n)| f64::from(n) * o.hourly_price).sum();
        ClusterPlan { steps: schedule(offerings, horizons, &held, &mixes), hourly_cost }
    }

    /// The capacity to hold at horizon `j`: its own need, and of the capacity held before
    /// (`kept`) as much as a horizon within `scale-in-delay-s` needs again.
    fn target(&self, horizons: &[u32], needs: &[Need], j: usize, kept: Need) -> Need {
        let until = u64::from(horizons[j]) + u64::from(self.scale_in_delay_s);
        let soon = horizons[j + 1..]
            .iter()
            .zip(&needs[j + 1..])
            .take_while(|(h, _)| u64::from(**h) <= until)
            .fold(Need::default(), |a, (_, n)| Need { cores: a.cores.max(n.cores), gib: a.gib.max(n.gib) });
        Need {
            cores: needs[j].cores.max(kept.cores.min(soon.cores)),
            gib: needs[j].gib.max(kept.gib.min(soon.gib)),
        }
    }

    /// The spot allowance for a need: cores, and interruptions per hour.
    fn spot_caps(&self, need: Need) -> (f64, f64) {
        (self.max_spot_share * need.cores, self.max_interruptions)
    }

    /// The cheapest counts, per offering, that cover `need` with at most `upper` nodes each, or
    /// `None` when no such mix exists (or none was found within the search budget).
    fn cheapest(&self, offerings: &[Offering], need: Need, upper: &[u32]) -> Option<Vec<u32>> {
        let (spot_cores, interruptions) = self.spot_caps(need);
        let mut search = Search::new(offerings, upper);
        search.explore(0, need, spot_cores, interruptions, 0.0);
        let (_, counts) = search.best?;
        let mut mix = vec![0; offerings.len()];
        for (item, n) in search.items.iter().zip(counts) {
            mix[item.offering] = n;
        }
        Some(mix)
    }

    /// The most capacity the limits allow: every on-demand node, then spot nodes cheapest per
    /// core first while the caps last.
    fn fullest(&self, offerings: &[Offering], need: Need, upper: &[u32]) -> Vec<u32> {
        let (mut spot_cores, mut interruptions) = self.spot_caps(need);
        let mut mix: Vec<u32> =
            offerings.iter().zip(upper).map(|(o, &u)| if o.spot { 0 } else { u }).collect();
        for item in Search::new(offerings, upper).items.iter().filter(|i| i.spot) {
            let n = item.most(spot_cores, interruptions);
            mix[item.offering] = n;
            spot_cores -= f64::from(n) * item.vcpu;
            interruptions -= f64::from(n) * item.rate;
        }
        mix
    }
}

/// Cores and GiB.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Need {
    cores: f64,
    gib: f64,
}

/// Reads one quantile level off a row of forecast levels, interpolating linearly between the
/// two nearest columns (the nearest one when the level lies outside them).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Column {
    below: usize,
    above: usize,
    fraction: f64,
}

impl Column {
    fn new(levels: &[f64], level: f64) -> Self {
        let above = levels.partition_point(|&l| l < level);
        if above == 0 {
            Self { below: 0, above: 0, fraction: 0.0 }
        } else if above == levels.len() {
            Self { below: above - 1, above: above - 1, fraction: 0.0 }
        } else {
            let below = above - 1;
            Self { below, above, fraction: (level - levels[below]) / (levels[above] - levels[below]) }
        }
    }

    fn read(&self, row: &[f64]) -> f64 {
        row[self.below] + (row[self.above] - row[self.below]) * self.fraction
    }
}

/// An offering as the search sees it.
#[derive(Debug, Clone, Copy)]
struct Item {
    offering: usize,
    vcpu: f64,
    gib: f64,
    price: f64,
    spot: bool,
    rate: f64,
    upper: u32,
}

impl Item {
    /// Most nodes of a spot item the remaining caps allow; any count for on-demand.
    fn most(&self, spot_cores: f64, interruptions: f64) -> u32 {
        if !self.spot {
            return self.upper;
        }
        let mut most = self.upper.min(whole(spot_cores / self.vcpu));
        if self.rate > 0.0 {
            most = most.min(whole(interruptions / self.rate));
        }
        most
    }

    /// More nodes than this would cover what is left of both resources on their own.
    fn useful(&self, left: Need) -> u32 {
        let for_memory = if self.gib > 0.0 { nodes_for(left.gib / self.gib) } else { 0 };
        nodes_for(left.cores / self.vcpu).max(for_memory)
    }
}

/// Whole nodes that fit in `x` (floor, forgiving rounding error).
fn whole(x: f64) -> u32 {
    (x + EPS).floor().max(0.0) as u32
}

/// Whole nodes that cover `x` (ceiling, forgiving rounding error).
fn nodes_for(x: f64) -> u32 {
    if x <= EPS { 0 } else { (x - EPS).ceil() as u32 }
}

/// Branch and bound over node counts.
struct Search {
    /// Offerings that may be used, cheapest per core first.
    items: Vec<Item>,
    /// From each depth on: the cheapest price per core on demand and on spot, the cheapest
    /// price per GiB, and the most cores and GiB the remaining items could add.
    on_demand_per_core: Vec<f64>,
    spot_per_core: Vec<f64>,
    cores_per_interruption: Vec<f64>,
    per_gib: Vec<f64>,
    cores_left: Vec<f64>,
    gib_left: Vec<f64>,
    counts: Vec<u32>,
    /// Scratch for `dual`'s ordering of the items.
    order: Vec<usize>,
    /// Scratch: cores `dual` takes of each item.
    takes: Vec<f64>,
    /// Cores of each item in the best relaxed solution found at the current node.
    guide: Vec<f64>,
    best: Option<(f64, Vec<u32>)>,
    budget: u32,
}

impl Search {
    fn new(offerings: &[Offering], upper: &[u32]) -> Self {
        let mut items: Vec<Item> = offerings
            .iter()
            .zip(upper)
            .enumerate()
            .filter(|(_, (_, u))| **u > 0)
            .map(|(i, (o, &u))| Item {
                offering: i,
                vcpu: o.vcpu,
                gib: o.memory_gib,
                price: o.hourly_price,
                spot: o.spot,
                rate: o.interruption_rate,
                upper: u,
            })
            .collect();
        // Cheapest per core first; among equals, fewest interruptions per core (a larger node of
        // the same spot family spends less of the budget for the same cores).
        let rank = |i: &Item| (i.price / i.vcpu, if i.spot { i.rate / i.vcpu } else { 0.0 });
        items.sort_by(|a, b| {
            let (ra, rb) = (rank(a), rank(b));
            ra.0.total_cmp(&rb.0).then(ra.1.total_cmp(&rb.1)).then(a.offering.cmp(&b.offering))
        });

        let depth = items.len() + 1;
        let mut s = Self {
            on_demand_per_core: vec![f64::INFINITY; depth],
            spot_per_core: vec![f64::INFINITY; depth],
            cores_per_interruption: vec![0.0; depth],
            per_gib: vec![f64::INFINITY; depth],
            cores_left: vec![0.0; depth],
            gib_left: vec![0.0; depth],
            counts: vec![0; items.len()],
            order: Vec::with_capacity(items.len()),
            takes: vec![0.0; items.len()],
            guide: vec![0.0; items.len()],
            best: None,
            budget: SEARCH_BUDGET,
            items,
        };
        for (d, item) in s.items.iter().enumerate().rev() {
            let per_core = item.price / item.vcpu;
            s.on_demand_per_core[d] = s.on_demand_per_core[d + 1];
            s.spot_per_core[d] = s.spot_per_core[d + 1];
            s.cores_per_interruption[d] = s.cores_per_interruption[d + 1];
            if item.spot {
                s.spot_per_core[d] = s.spot_per_core[d].min(per_core);
                let per_interruption = if item.rate > 0.0 { item.vcpu / item.rate } else { f64::INFINITY };
                s.cores_per_interruption[d] = s.cores_per_interruption[d].max(per_interruption);
            } else {
                s.on_demand_per_core[d] = s.on_demand_per_core[d].min(per_core);
            }
            s.per_gib[d] =
                if item.gib > 0.0 { s.per_gib[d + 1].min(item.price / item.gib) } else { s.per_gib[d + 1] };
            s.cores_left[d] = s.cores_left[d + 1] + f64::from(item.upper) * item.vcpu;
            s.gib_left[d] = s.gib_left[d + 1] + f64::from(item.upper) * item.gib;
        }
        s
    }

    /// Spot cores the items from `depth` on could still add: within the share, and within the
    /// interruption budget at the best cores per interruption any of them offers.
    fn spot_room(&self, depth: usize, spot_cores: f64, interruptions: f64) -> f64 {
        let per_interruption = self.cores_per_interruption[depth];
        let room = spot_cores.max(0.0);
        if per_interruption.is_finite() { room.min(per_interruption * interruptions.max(0.0)) } else { room }
    }

    /// A quick bound on what any completion from `depth` on costs: cores at the cheapest price
    /// per core, spot only up to its room; GiB at the cheapest price per GiB.
    fn lower_bound(&self, depth: usize, left: Need, spot_room: f64) -> f64 {
        let price = |amount: f64, per_unit: f64| if amount > EPS { amount * per_unit } else { 0.0 };
        let (spot, on_demand) = (self.spot_per_core[depth], self.on_demand_per_core[depth]);
        let cores = left.cores.max(0.0);
        let for_cores = if spot < on_demand {
            let on_spot = cores.min(spot_room);
            price(on_spot, spot) + price(cores - on_spot, on_demand)
        } else {
            price(cores, on_demand.min(spot))
        };
        for_cores.max(price(left.gib, self.per_gib[depth]))
    }

    /// The cost of the linear relaxation (fractional nodes within their limits and the spot
    /// caps) of covering `left` with the items from `depth` on, approached from below by
    /// Lagrangian relaxation of the memory constraint: every multiplier β ≥ 0 gives a bound
    /// (`dual`), and bisection on its subgradient (GiB needed − GiB held) seeks the best one.
    fn relaxed_cost(&mut self, depth: usize, left: Need, spot_cores: f64, interruptions: f64) -> f64 {
        let mut bound = self.dual(depth, left, spot_cores, interruptions, 0.0).0;
        self.guide.copy_from_slice(&self.takes);
        if left.gib <= EPS || !bound.is_finite() {
            return bound;
        }
        // Beyond the dearest price per GiB every node pays for itself in memory alone.
        let top =
            self.items[depth..].iter().filter(|i| i.gib > 0.0).map(|i| i.price / i.gib).fold(0.0, f64::max);
        let (mut low, mut high) = (0.0, top);
        for _ in 0..MULTIPLIER_STEPS {
            let beta = 0.5 * (low + high);
            let (value, memory) = self.dual(depth, left, spot_cores, interruptions, beta);
            if value > bound {
                bound = value;
                self.guide.copy_from_slice(&self.takes);
            }
            if memory < left.gib {
                low = beta;
            } else {
                high = beta;
            }
        }
        bound
    }

    /// `L(β) = β·GiB + min Σ (price − β·memory)·x` over fractional node counts `x` covering the
    /// cores within the limits, and the GiB that minimiser holds. Every unit is a core, so
    /// taking the cheapest cores first is optimal, spot up to its cap; cores of negative
    /// reduced price are all worth taking.
    fn dual(
        &mut self,
        depth: usize,
        left: Need,
        spot_cores: f64,
        interruptions: f64,
        beta: f64,
    ) -> (f64, f64) {
        let reduced = |i: &Item| (i.price - beta * i.gib) / i.vcpu;
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        order.extend(depth..self.items.len());
        order.sort_unstable_by(|&a, &b| reduced(&self.items[a]).total_cmp(&reduced(&self.items[b])));
        let (mut cores, mut spot_room) =
            (left.cores.max(0.0), self.spot_room(depth, spot_cores, interruptions));
        let (mut value, mut memory) = (beta * left.gib.max(0.0), 0.0);
        self.takes.fill(0.0);
        for &i in &order {
            let item = &self.items[i];
            let per_core = reduced(item);
            if per_core >= 0.0 && cores <= EPS {
                break;
            }
            let mut room = f64::from(item.upper) * item.vcpu;
            if item.spot {
                room = room.min(spot_room);
                if item.rate > 0.0 {
                    room = room.min(interruptions.max(0.0) / item.rate * item.vcpu);
                }
            }
            let take = if per_core < 0.0 { room } else { room.min(cores) };
            self.takes[i] = take;
            value += per_core * take;
            memory += take * item.gib / item.vcpu;
            cores -= take;
            if item.spot {
                spot_room -= take;
            }
        }
        self.order = order;
        // Not even every allowed core covers the need: no completion exists.
        if cores > EPS { (f64::INFINITY, memory) } else { (value, memory) }
    }

    fn explore(&mut self, depth: usize, left: Need, spot_cores: f64, interruptions: f64, cost: f64) {
        if self.budget == 0 {
            return;
        }
        self.budget -= 1;
        if left.cores <= EPS && left.gib <= EPS {
            if self.best.as_ref().is_none_or(|(best, _)| cost < best - EPS) {
                self.best = Some((cost, self.counts.clone()));
            }
            return;
        }
        if depth == self.items.len()
            || left.cores > self.cores_left[depth] + EPS
            || left.gib > self.gib_left[depth] + EPS
        {
            return;
        }
        let limit = self.best.as_ref().map_or(f64::INFINITY, |(best, _)| best - (GAP * best).max(EPS));
        // The quick bound first; the tighter one costs a few dozen passes over the items.
        if cost + self.lower_bound(depth, left, self.spot_room(depth, spot_cores, interruptions)) >= limit
            || cost + self.relaxed_cost(depth, left, spot_cores, interruptions) >= limit
        {
            return;
        }
        let item = self.items[depth];
        let useful = item.useful(left);
        let most = item.most(spot_cores, interruptions).min(useful);
        // The last offering must cover whatever is left, and more would be waste.
        let fewest = if depth + 1 == self.items.len() { useful } else { 0 };
        // Counts nearest the relaxation's first (n, n + 1, n − 1, ...): good mixes come early
        // and bound the rest of the search.
        let guess = nodes_for(self.guide[depth] / item.vcpu).clamp(fewest, most.max(fewest));
        for i in 0..=2 * (most.saturating_sub(fewest)) {
            let n = if i % 2 == 1 { guess.checked_add(i.div_ceil(2)) } else { guess.checked_sub(i / 2) };
            let Some(n) = n.filter(|n| (fewest..=most).contains(n)) else { continue };
            self.counts[depth] = n;
            let k = f64::from(n);
            let (spot_used, interruptions_used) =
                if item.spot { (k * item.vcpu, k * item.rate) } else { (0.0, 0.0) };
            self.explore(
                depth + 1,
                Need { cores: left.cores - k * item.vcpu, gib: left.gib - k * item.gib },
                spot_cores - spot_used,
                interruptions - interruptions_used,
                cost + k * item.price,
            );
        }
        self.counts[depth] = 0;
    }
}

/// Turns per-horizon mixes into steps. For each offering the count wanted at time `t` is the
/// largest of each horizon's count, from the moment it must be requested (`h − lead`, or now)
/// until the next horizon. Nodes the first horizon does not need go now: a release takes no
/// lead time, the first mix already keeps what the horizons soon after need again, and a plan
/// made again every tick would otherwise never reach a release due later. Nodes it needs more
/// of are requested at `h − lead`, what is held being kept until then. Steps are the times the
/// count changes.
fn schedule(offerings: &[Offering], horizons: &[u32], held: &[u32], mixes: &[Vec<u32>]) -> Vec<CapacityStep> {
    let mut steps = Vec::new();
    for (o, offering) in offerings.iter().enumerate() {
        let mut spans = Vec::with_capacity(mixes.len() + 1);
        for (j, mix) in mixes.iter().enumerate() {
            let until = horizons.get(j + 1).map_or(u64::MAX, |&h| u64::from(h));
            let request = u64::from(horizons[j].saturating_sub(offering.lead_time_s));
            if j == 0 && mix[o] <= held[o] {
                spans.push((0, until, mix[o]));
            } else {
                if j == 0 {
                    spans.push((0, request, held[o]));
                }
                spans.push((request, until, mix[o]));
            }
        }
        let mut times: Vec<u64> =
            spans.iter().map(|s| s.0).chain(horizons.iter().map(|&h| u64::from(h))).collect();
        times.sort_unstable();
        times.dedup();
        let mut count = offering.current_nodes;
        for t in times {
            let wanted = spans.iter().filter(|(from, until, _)| *from <= t && t < *until).map(|s| s.2).max();
            if let Some(wanted) = wanted
                && wanted != count
            {
                // Every time is 0 or a horizon, both u32.
                steps.push(CapacityStep { offering: o as u32, nodes: wanted, request_in_s: t as u32 });
                count = wanted;
            }
        }
    }
    steps.sort_by_key(|s| (s.request_in_s, s.offering));
    steps
}

impl CostModel for SpotMix {
    fn describe() -> Descriptor {
        Descriptor::new(
            "spot-mix",
            env!("CARGO_PKG_VERSION"),
            PluginKind::CostModel,
            "Plans the cheapest on-demand and spot node mix that covers a forecast quantile, with spot capped by interruption risk.",
        )
        .key(ConfigKey::new(
            "quantile",
            "Forecast quantile level to cover, in (0, 1); interpolated between the request's nearest levels.",
            Some("0.9"),
        ))
        .key(ConfigKey::new(
            "headroom",
            "Extra capacity on top of the covered quantile, as a fraction (0.1 = 10 %).",
            Some("0.1"),
        ))
        .key(ConfigKey::new(
            "max-spot-share",
            "Largest fraction of the needed cores that may run on spot nodes, from 0 to 1.",
            Some("0.5"),
        ))
        .key(ConfigKey::new(
            "max-interruptions-per-hour",
            "Expected spot node interruptions per hour tolerated per cluster: Σ spot nodes × interruption rate stays within it.",
            Some("1.0"),
        ))
        .key(ConfigKey::new(
            "scale-in-delay-s",
            "Capacity is kept while a horizon up to this many seconds later needs it again, so nodes are not released only to be requested back.",
            Some("3600"),
        ))
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        let plugin = Self {
            quantile: config.get("quantile")?,
            headroom: config.get("headroom")?,
            max_spot_share: config.get("max-spot-share")?,
            max_interruptions: config.get("max-interruptions-per-hour")?,
            scale_in_delay_s: config.get("scale-in-delay-s")?,
        };
        let invalid = |message: &str| Err(PluginError::InvalidConfig(message.into()));
        if !(plugin.quantile > 0.0 && plugin.quantile < 1.0) {
            return invalid("`quantile` must lie strictly between 0 and 1");
        }
        if !(plugin.headroom.is_finite() && plugin.headroom >= 0.0) {
            return invalid("`headroom` must be a finite, non-negative fraction");
        }
        if !(0.0..=1.0).contains(&plugin.max_spot_share) {
            return invalid("`max-spot-share` must lie between 0 and 1");
        }
        if !(plugin.max_interruptions.is_finite() && plugin.max_interruptions >= 0.0) {
            return invalid("`max-interruptions-per-hour` must be finite and non-negative");
        }
        Ok(plugin)
    }

    fn plan(&mut self, request: &PlanRequest) -> Result<Vec<ClusterPlan>, PluginError> {
        request.validate()?;
        let levels = &request.quantiles;
        let column = Column::new(levels, self.quantile);
        if self.quantile < levels[0] || self.quantile > levels[levels.len() - 1] {
            foresight_sdk::log::warn(&format!(
                "quantile {} lies outside the forecast's levels {levels:?}; planning on the nearest",
                self.quantile
            ));
        }
        Ok(request
            .clusters
            .iter()
            .map(|cluster| self.plan_cluster(&request.horizons, &column, levels.len(), cluster))
            .collect())
    }
}

foresight_sdk::export_cost_model!(SpotMix);

#[cfg(test)]
mod tests {
    use super::*;

    fn planner(config: &str) -> SpotMix {
        SpotMix::new(&Config::parse(config, &SpotMix::describe_keys()).unwrap()).unwrap()
    }

    fn config_error(config: &str) -> String {
        match Config::parse(config, &SpotMix::describe_keys()).and_then(|c| SpotMix::new(&c)) {
            Ok(_) => panic!("`{config}` was accepted"),
            Err(e) => e.to_string(),
        }
    }

    fn on_demand(vcpu: f64, gib: f64, price: f64) -> Offering {
        Offering {
            name: format!("od-{vcpu}x{gib}"),
            vcpu,
            memory_gib: gib,
            hourly_price: price,
            lead_time_s: 60,
            max_nodes: 100,
            ..Default::default()
        }
    }

    fn spot(vcpu: f64, gib: f64, price: f64, rate: f64) -> Offering {
        Offering {
            name: format!("spot-{vcpu}x{gib}"),
            spot: true,
            interruption_rate: rate,
            ..on_demand(vcpu, gib, price)
        }
    }

    /// One cluster whose demand is the same in every quantile column.
    fn request(horizons: &[u32], cores: &[f64], gib: &[f64], offerings: Vec<Offering>) -> PlanRequest {
        PlanRequest {
            horizons: horizons.to_vec(),
            quantiles: vec![0.9],
            clusters: vec![ClusterDemand {
                cluster: "test".into(),
                cpu: cores.to_vec(),
                memory_gib: gib.to_vec(),
                offerings,
            }],
        }
    }

    fn plan_one(p: &mut SpotMix, request: &PlanRequest) -> ClusterPlan {
        p.plan(request).unwrap().remove(0)
    }

    fn steps(plan: &ClusterPlan) -> Vec<(u32, u32, u32)> {
        plan.steps.iter().map(|s| (s.offering, s.nodes, s.request_in_s)).collect()
    }

    fn assert_cost(plan: &ClusterPlan, cost: f64) {
        assert!((plan.hourly_cost - cost).abs() < 1e-9, "cost {} != {cost}", plan.hourly_cost);
    }

    #[test]
    fn hand_computed_mix_of_spot_and_on_demand() {
        let mut p = planner("headroom = 0.0");
        let mut r = request(
            &[300, 600],
            &[8.0, 10.0, 8.0, 10.0],
            &[0.0; 4],
            vec![on_demand(4.0, 16.0, 0.20), spot(4.0, 16.0, 0.06, 0.05)],
        );
        r.quantiles = vec![0.5, 0.9];
        // 10 cores at p90; spot may hold 5 of them: one 4-core spot node, the other 6 cores on
        // two on-demand nodes. $0.06 + 2 × $0.20, where all on demand would cost $0.60.
        let plan = plan_one(&mut p, &r);
        assert_eq!(steps(&plan), vec![(0, 2, 240), (1, 1, 240)]);
        assert_cost(&plan, 0.46);
        // The default 10 % headroom asks for 11 cores: the same nodes still cover it.
        assert_cost(&plan_one(&mut planner(""), &r), 0.46);
    }

    #[test]
    fn the_quantile_is_read_between_columns() {
        let levels = [0.5, 0.9];
        assert!((Column::new(&levels, 0.7).read(&[4.0, 12.0]) - 8.0).abs() < 1e-9);
        assert_eq!(Column::new(&levels, 0.9).read(&[4.0, 12.0]), 12.0);
        assert_eq!(Column::new(&levels, 0.99).read(&[4.0, 12.0]), 12.0, "above every level: the top one");
        assert_eq!(Column::new(&levels, 0.1).read(&[4.0, 12.0]), 4.0, "below every level: the bottom one");
        let mut r = request(
            &[300],
            &[4.0, 12.0],
            &[0.0; 2],
            vec![on_demand(4.0, 16.0, 0.20), spot(4.0, 16.0, 0.06, 0.05)],
        );
        r.quantiles = levels.to_vec();
        // 8 cores at p70: one spot node (4 of 8 cores may be spot) and one on demand.
        assert_cost(&plan_one(&mut planner("headroom = 0.0\nquantile = 0.7"), &r), 0.26);
        // 4 cores at p50: spot may hold only 2, too few for a node: one on demand.
        assert_cost(&plan_one(&mut planner("headroom = 0.0\nquantile = 0.5"), &r), 0.20);
    }

    #[test]
    fn the_interruption_budget_caps_spot_below_its_share() {
        let offerings = |rate| vec![on_demand(4.0, 16.0, 0.20), spot(4.0, 16.0, 0.06, rate)];
        let mut p = planner("headroom = 0.0\nmax-interruptions-per-hour = 1.0");
        // 40 cores: the share allows 20 spot cores (5 nodes) at 0.05 interruptions each...
        let plan = plan_one(&mut p, &request(&[300], &[40.0], &[0.0], offerings(0.05)));
        assert_eq!(steps(&plan), vec![(0, 5, 240), (1, 5, 240)]);
        assert_cost(&plan, 5.0 * 0.20 + 5.0 * 0.06);
        // ...but at 0.5 interruptions per node-hour only two fit in the budget of one.
        let plan = plan_one(&mut p, &request(&[300], &[40.0], &[0.0], offerings(0.5)));
        assert_eq!(steps(&plan), vec![(0, 8, 240), (1, 2, 240)]);
        assert_cost(&plan, 8.0 * 0.20 + 2.0 * 0.06);
        // No spot at all when the share is zero.
        let plan = plan_one(
            &mut planner("max-spot-share = 0.0"),
            &request(&[300], &[40.0], &[0.0], offerings(0.05)),
        );
        assert!(plan.steps.iter().all(|s| s.offering == 0));
    }

    #[test]
    fn nodes_are_requested_a_lead_time_ahead_or_now_when_late() {
        let slow = Offering { lead_time_s: 900, ..on_demand(4.0, 16.0, 0.20) };
        let mut p = planner("headroom = 0.0");
        // Nothing can be ready by 600 s: request now. The growth for 3600 s goes out at 2700 s.
        let plan = plan_one(&mut p, &request(&[600, 3600], &[8.0, 16.0], &[0.0; 2], vec![slow]));
        assert_eq!(steps(&plan), vec![(0, 2, 0), (0, 4, 2700)]);
        assert_cost(&plan, 0.80);
    }

    #[test]
    fn late_offerings_are_used_only_when_nothing_in_time_covers_the_need() {
        let fast = on_demand(4.0, 16.0, 0.20);
        let slow_spot = Offering { lead_time_s: 900, ..spot(4.0, 16.0, 0.06, 0.05) };
        let mut p = planner("headroom = 0.0");
        let plan = plan_one(&mut p, &request(&[300, 3600], &[8.0, 8.0], &[0.0; 2], vec![fast, slow_spot]));
        // On demand covers the first horizon in time; spot takes half once it can be ready, and
        // the on-demand node it replaces goes only when the spot node is there.
        assert_eq!(steps(&plan), vec![(0, 2, 240), (1, 1, 2700), (0, 1, 3600)]);
        assert_cost(&plan, 0.26);
    }

    #[test]
    fn memory_bound_demand_picks_the_memory_rich_offering() {
        let general = on_demand(4.0, 16.0, 0.20);
        let memory = on_demand(2.0, 32.0, 0.25);
        let plan = plan_one(
            &mut planner("headroom = 0.0"),
            &request(&[300], &[4.0], &[64.0], vec![general, memory]),
        );
        // Two 2×32 nodes ($0.50) beat four 4×16 nodes ($0.80) and any mix of the two ($0.65).
        assert_eq!(steps(&plan), vec![(1, 2, 240)]);
        assert_cost(&plan, 0.50);
    }

    #[test]
    fn max_nodes_is_never_exceeded_and_a_shortfall_still_plans() {
        let od = Offering { max_nodes: 2, current_nodes: 9, ..on_demand(4.0, 16.0, 0.20) };
        let sp = Offering { max_nodes: 5, ..spot(4.0, 16.0, 0.06, 0.05) };
        let plan = plan_one(&mut planner(""), &request(&[300, 600], &[40.0, 400.0], &[0.0; 2], vec![od, sp]));
        // Every allowed node; the nine held on demand come down to the maximum at once.
        assert_eq!(steps(&plan), vec![(0, 2, 0), (1, 5, 240)]);
        assert_cost(&plan, 2.0 * 0.20 + 5.0 * 0.06);
    }

    #[test]
    fn zero_demand_scales_to_zero_now() {
        let od = Offering { current_nodes: 3, ..on_demand(4.0, 16.0, 0.20) };
        let sp = Offering { current_nodes: 1, ..spot(4.0, 16.0, 0.06, 0.05) };
        let plan = plan_one(&mut planner(""), &request(&[600, 3600], &[0.0; 2], &[0.0; 2], vec![od, sp]));
        // Nothing needs them at any horizon, so they go at once rather than at the first one.
        assert_eq!(steps(&plan), vec![(0, 0, 0), (1, 0, 0)]);
        assert_cost(&plan, 0.0);
    }

    #[test]
    fn nodes_needed_again_soon_are_kept() {
        let od = Offering { current_nodes: 4, ..on_demand(4.0, 16.0, 0.20) };
        let r = request(&[600, 1200, 1800], &[16.0, 4.0, 16.0], &[0.0; 3], vec![od]);
        let plan = plan_one(&mut planner("headroom = 0.0"), &r);
        assert!(plan.steps.is_empty(), "{:?}", plan.steps);
        assert_cost(&plan, 0.80);
        // Without the delay the dip is followed, and the nodes requested back a lead time early.
        let plan = plan_one(&mut planner("headroom = 0.0\nscale-in-delay-s = 0"), &r);
        assert_eq!(steps(&plan), vec![(0, 1, 1200), (0, 4, 1740)]);
        // A scale-out requested before an earlier scale-in would happen cancels it.
        let slow = Offering { lead_time_s: 900, current_nodes: 4, ..on_demand(4.0, 16.0, 0.20) };
        let r = request(&[600, 1200, 1800], &[16.0, 4.0, 16.0], &[0.0; 3], vec![slow]);
        assert!(plan_one(&mut planner("headroom = 0.0\nscale-in-delay-s = 0"), &r).steps.is_empty());
    }

    #[test]
    fn empty_requests_get_empty_plans() {
        let mut p = planner("");
        let mut r = request(&[300], &[10.0], &[10.0], vec![]);
        // No offerings: nothing to plan, and no failure.
        assert_eq!(p.plan(&r).unwrap(), vec![ClusterPlan::default()]);
        r.clusters.clear();
        assert!(p.plan(&r).unwrap().is_empty());
        // Malformed requests are refused.
        r.horizons = vec![0];
        assert!(p.plan(&r).is_err());
    }

    /// Every mix of `offerings` within their `max_nodes`, as counts.
    fn every_mix(offerings: &[Offering]) -> Vec<Vec<u32>> {
        offerings.iter().fold(vec![vec![]], |mixes, o| {
            mixes.iter().flat_map(|m| (0..=o.max_nodes).map(move |n| [m.clone(), vec![n]].concat())).collect()
        })
    }

    #[test]
    fn the_search_finds_the_cheapest_mix() {
        // Against exhaustive enumeration on small problems with awkward sizes, prices and
        // interruption rates: every mix found obeys the constraints, costs within the search's
        // tolerance of the cheapest, and none is missed.
        let families = [
            vec![
                Offering { max_nodes: 6, ..on_demand(4.0, 16.0, 0.19) },
                Offering { max_nodes: 6, ..spot(4.0, 16.0, 0.06, 0.3) },
                Offering { max_nodes: 4, ..on_demand(16.0, 32.0, 0.68) },
                Offering { max_nodes: 6, ..on_demand(2.0, 64.0, 0.34) },
            ],
            vec![
                Offering { max_nodes: 5, ..on_demand(8.0, 32.0, 0.40) },
                Offering { max_nodes: 5, ..spot(8.0, 32.0, 0.11, 0.2) },
                Offering { max_nodes: 5, ..spot(2.0, 8.0, 0.025, 0.1) },
                Offering { max_nodes: 3, ..on_demand(4.0, 96.0, 0.52) },
                Offering { max_nodes: 4, ..on_demand(1.5, 3.0, 0.07) },
            ],
        ];
        for (config, offerings) in
            ["max-spot-share = 0.6", "max-interruptions-per-hour = 0.5"].iter().zip(&families)
        {
            let p = planner(config);
            let limits: Vec<u32> = offerings.iter().map(|o| o.max_nodes).collect();
            let mixes = every_mix(offerings);
            let total = |mix: &[u32], f: &dyn Fn(&Offering) -> f64| -> f64 {
                offerings.iter().zip(mix).map(|(o, &n)| f64::from(n) * f(o)).sum()
            };
            for cores in [0.0, 3.0, 9.5, 17.0, 30.0, 55.0] {
                for gib in [0.0, 40.0, 130.0, 300.0] {
                    let need = Need { cores, gib };
                    let (spot_cores, interruptions) = p.spot_caps(need);
                    let feasible = |mix: &[u32]| {
                        total(mix, &|o| o.vcpu) >= cores - EPS
                            && total(mix, &|o| o.memory_gib) >= gib - EPS
                            && total(mix, &|o| if o.spot { o.vcpu } else { 0.0 }) <= spot_cores + EPS
                            && total(mix, &|o| if o.spot { o.interruption_rate } else { 0.0 })
                                <= interruptions + EPS
                    };
                    let cheapest = mixes
                        .iter()
                        .filter(|m| feasible(m))
                        .map(|m| total(m, &|o| o.hourly_price))
                        .min_by(f64::total_cmp);
                    let found = p.cheapest(offerings, need, &limits);
                    let case = format!("{config}: {cores} cores, {gib} GiB, found {found:?}");
                    match (&found, cheapest) {
                        (Some(mix), Some(best)) => {
                            assert!(feasible(mix), "{case}");
                            assert!(mix.iter().zip(&limits).all(|(n, l)| n <= l), "{case}");
                            let cost = total(mix, &|o| o.hourly_price);
                            assert!(cost <= best * (1.0 + GAP) + EPS, "{case}: {cost} vs {best}");
                        }
                        (None, None) => {}
                        _ => panic!("{case}, cheapest {cheapest:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn plans_are_deterministic_ordered_and_within_limits() {
        let offerings = vec![
            Offering { current_nodes: 2, max_nodes: 50, ..on_demand(4.0, 16.0, 0.19) },
            Offering { current_nodes: 2, max_nodes: 50, lead_time_s: 180, ..spot(4.0, 16.0, 0.06, 0.05) },
            Offering { current_nodes: 2, max_nodes: 50, ..on_demand(16.0, 32.0, 0.68) },
            Offering { current_nodes: 2, max_nodes: 50, ..on_demand(4.0, 64.0, 0.34) },
        ];
        let horizons = [600, 3600, 6 * 3600];
        let mut r = request(&horizons, &[], &[], offerings);
        r.quantiles = vec![0.1, 0.5, 0.9];
        let grid = |base: f64| -> Vec<f64> {
            (0..3)
                .flat_map(|h| [0.1, 0.5, 0.9].map(move |q| base * (1.0 + 0.2 * h as f64) * (0.6 + q)))
                .collect()
        };
        r.clusters[0].cpu = grid(55.0);
        r.clusters[0].memory_gib = grid(165.0);
        let mut p = planner("");
        let plan = plan_one(&mut p, &r);
        assert_eq!(plan, plan_one(&mut p, &r));
        assert!(plan.steps.windows(2).all(|w| w[0].request_in_s <= w[1].request_in_s));
        assert!(plan.steps.iter().all(|s| s.nodes <= 50));
        assert!(plan.hourly_cost > 0.0 && plan.hourly_cost.is_finite());
    }

    #[test]
    fn bad_config_is_refused_by_key_name() {
        assert!(config_error("quantile = 1.5").contains("`quantile`"));
        assert!(config_error("quantile = 0").contains("`quantile`"));
        assert!(config_error("headroom = -0.1").contains("`headroom`"));
        assert!(config_error("max-spot-share = 1.2").contains("`max-spot-share`"));
        assert!(config_error("max-interruptions-per-hour = -1").contains("`max-interruptions-per-hour`"));
        assert!(config_error("scale-in-delay-s = -5").contains("`scale-in-delay-s`"));
        assert!(config_error("spot-share = 0.5").contains("unknown key `spot-share`"));
    }
}

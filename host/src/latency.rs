//! How long a request takes: the network round trip of its route plus its response time in the
//! queue of the cluster it lands in.
//!
//! # Model
//!
//! In a cluster the replicas of a service form an M/M/c queue: Poisson arrivals at rate λ,
//! exponential service with mean s = 1/μ, c identical servers, first come first served. With
//! offered load a = λ/μ (Erlangs) and utilisation ρ = a/c the queue is stable iff ρ < 1, and then:
//!
//! * **Erlang C**, the probability that an arrival has to wait, from the Erlang B loss
//!   probability: `B(0) = 1`, `B(k) = a·B(k−1) / (k + a·B(k−1))`, and
//!   `C(c, a) = B(c, a) / (1 − ρ·(1 − B(c, a)))`.
//! * **Waiting time** W: `P(W > t) = C·e^{−(cμ−λ)t}` for t ≥ 0, hence `E[W] = C / (cμ − λ)`.
//! * **Response time** T = W + S, where the service time S ~ Exp(μ) is independent of W. With
//!   δ = cμ − λ − μ = (c − 1 − a)·μ,
//!   `P(T > t) = e^{−μt}·(1 + C·μ·(1 − e^{−δt})/δ)`, whose limit as δ → 0 is
//!   `e^{−μt}·(1 + C·μ·t)`; this is the time-in-system distribution of the sources below,
//!   W convolved with Exp(μ). Its density is
//!   `(1 − C)·μ·e^{−μt} + C·μ·(cμ − λ)·(e^{−μt} − e^{−(cμ−λ)t})/δ`.
//!
//! A route adds a deterministic RTT to T. A service's latency is the mixture of its routes
//! weighted by their shares of its requests; a route into an unstable queue contributes requests
//! that are never answered, i.e. an atom at +∞.
//!
//! Sources: A. K. Erlang (1917), "Solution of some problems in the theory of probabilities of
//! significance in automatic telephone exchanges"; L. Kleinrock, *Queueing Systems, Vol. 1:
//! Theory* (Wiley, 1975), §3.5 (M/M/m); D. Gross, J. F. Shortle, J. M. Thompson and C. M. Harris,
//! *Fundamentals of Queueing Theory*, 4th ed. (Wiley, 2008), §2.3 (M/M/c, including the
//! waiting-time and time-in-system distributions); D. L. Jagerman (1974), "Some properties of the
//! Erlang loss function", *Bell System Technical Journal* 53(3) (the Erlang B recurrence).
//!
//! # Numerics
//!
//! Every function returns a finite number or +∞, never NaN, for finite non-negative inputs:
//! factorials and powers never appear, the degenerate δ = 0 is a removable singularity handled
//! by a series, and the exponentials are arranged so that none is subtracted from another.
//! Quantiles come from Newton's method on the log of the tail, kept inside a bracket derived from
//! lower and upper bounds on every route's tail, so that a bad step falls back to bisection.

/// Relative accuracy of quantiles: a microsecond on a second is far below anything an SLO
/// distinguishes.
const TOLERANCE: f64 = 1e-6;

/// Newton needs a handful of steps; the cap only bounds the bisection fallback, which takes
/// about 50 halvings to shrink any bracket to [`TOLERANCE`].
const MAX_ITERATIONS: usize = 100;

/// Route sets up to this size are prepared on the stack, so the simulator's hot path never
/// allocates.
const INLINE_ROUTES: usize = 8;

/// `2/√e`, the maximum of `(1 + y)·e^{−y/2}` over y ≥ 0: it bounds an Erlang-2 tail by an
/// exponential one, which can be inverted in closed form.
const ERLANG2_BOUND: f64 = 1.213_061_319_425_266_8;

/// Erlang C: the probability that an arriving request waits, for `servers` servers and offered
/// load `offered_load` = λ/μ in Erlangs.
///
/// 1.0 when the queue is saturated (`offered_load >= servers`, which includes `servers == 0`);
/// 0.0 when nothing is offered. O(`servers`) time, no allocation, no overflow for any `servers`.
pub fn erlang_c(servers: u32, offered_load: f64) -> f64 {
    if servers == 0 {
        return 1.0;
    }
    if offered_load.is_nan() || offered_load <= 0.0 {
        return 0.0;
    }
    let c = f64::from(servers);
    if offered_load >= c {
        return 1.0;
    }
    // C = B / (1 − ρ(1 − B)) = 1 / ((1 − ρ)/B + ρ): written with 1/B, a B that underflows is
    // an infinite 1/B and gives exactly C = 0 rather than 0/0.
    let rho = offered_load / c;
    1.0 / ((c - offered_load) / c * inverse_erlang_b(servers, offered_load) + rho)
}

/// 1/B(c, a) by the Erlang B recurrence written for the reciprocal,
/// `1/B(k) = 1 + (k/a)·1/B(k−1)`. It is the same recurrence as `B(k) = a·B(k−1)/(k + a·B(k−1))`,
/// but without a division in the loop, so one step is a multiply-add on the critical path instead
/// of a division. All terms are positive and each step damps the error carried in, so it is as
/// stable as the textbook form. 1/B grows with k, and once it overflows B is below 1e−308 and
/// stays there, so the loop stops early.
fn inverse_erlang_b(servers: u32, offered_load: f64) -> f64 {
    let per_server = 1.0 / offered_load;
    let mut inverse_b = 1.0;
    let mut k = 0.0;
    let mut left = servers;
    while left > 0 {
        // Checking for overflow once per block keeps the branch off the critical path.
        let block = left.min(64);
        for _ in 0..block {
            k += 1.0;
            inverse_b = 1.0 + inverse_b * (k * per_server);
        }
        if inverse_b == f64::INFINITY {
            break;
        }
        left -= block;
    }
    inverse_b
}

/// One cluster's replicas of a service, seen as an M/M/c queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Queue {
    /// Arrival rate λ, requests per second.
    pub arrival_rate: f64,
    /// Mean service time s = 1/μ of one request on one server, seconds.
    pub service_time_s: f64,
    /// Number of identical servers c.
    pub servers: u32,
}

impl Queue {
    /// Offered load a = λ·s, in Erlangs: how many servers the arrivals keep busy on average.
    pub fn offered_load(&self) -> f64 {
        // A queue without arrivals or without work is idle whatever the other factor says.
        if self.arrival_rate == 0.0 || self.service_time_s == 0.0 {
            0.0
        } else {
            self.arrival_rate * self.service_time_s
        }
    }

    /// Utilisation ρ = λ·s / c: 0 without arrivals, +∞ with arrivals but no servers.
    pub fn utilisation(&self) -> f64 {
        if self.arrival_rate == 0.0 {
            0.0
        } else if self.servers == 0 {
            f64::INFINITY
        } else {
            self.offered_load() / f64::from(self.servers)
        }
    }

    /// Whether the queue reaches a steady state, ρ < 1. A queue without servers never does:
    /// a request routed to it is never served, even if none arrive.
    pub fn is_stable(&self) -> bool {
        self.servers > 0 && self.utilisation() < 1.0
    }

    /// Probability that an arriving request has to wait (Erlang C); 1 when unstable.
    pub fn wait_probability(&self) -> f64 {
        erlang_c(self.servers, self.offered_load())
    }

    /// Mean waiting time before service, `C / (cμ − λ)` seconds; +∞ when unstable.
    pub fn mean_wait_s(&self) -> f64 {
        if !self.is_stable() {
            return f64::INFINITY;
        }
        let wait = self.wait_probability();
        if wait == 0.0 {
            return 0.0;
        }
        // cμ − λ = (c − a)/s keeps the subtraction exact in Erlangs, where it matters as ρ → 1.
        wait * self.service_time_s / (f64::from(self.servers) - self.offered_load())
    }

    /// Mean response time, waiting plus service, seconds; +∞ when unstable.
    pub fn mean_response_s(&self) -> f64 {
        self.mean_wait_s() + self.service_time_s
    }

    /// P(response time > `t_s`), closed form (see the module docs); the degenerate
    /// cμ − λ = μ is its continuous limit. 1 for negative `t_s` and for an unstable queue.
    pub fn response_tail(&self, t_s: f64) -> f64 {
        if !self.is_stable() || t_s.is_nan() || t_s < 0.0 {
            return 1.0;
        }
        RouteTail::new(self, 1.0, 0.0).at(t_s).0
    }

    /// The `q`-quantile of the response time, seconds: 0 for q ≤ 0, +∞ for q ≥ 1 (unless service
    /// is instantaneous) and whenever the queue is unstable.
    pub fn response_quantile(&self, q: f64) -> f64 {
        if !self.is_stable() {
            return f64::INFINITY;
        }
        if q.is_nan() || q <= 0.0 {
            return 0.0;
        }
        quantile_s(&[RouteTail::new(self, 1.0, 0.0)], (1.0 - q).max(0.0))
    }

    /// Most requests per second the queue can serve, c / s; +∞ if service is instantaneous.
    pub fn capacity(&self) -> f64 {
        if self.servers == 0 { 0.0 } else { f64::from(self.servers) / self.service_time_s }
    }
}

/// One route's share of a service's requests: its RTT and the queue it lands in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Route {
    /// Weight of the route among the service's routes; need not be normalised.
    pub share: f64,
    /// Network round trip of the route, milliseconds.
    pub rtt_ms: f64,
    /// The queue the route's requests join.
    pub queue: Queue,
    /// Coefficient of variation of the service time (1 for the exponential of M/M/c).
    pub cv: f64,
}

/// The `q`-quantile of end-to-end latency (ms) over a mixture of routes.
///
/// Shares are normalised; routes without a positive share are ignored. Requests on unstable
/// routes are never answered, so the result is +∞ when those routes together carry more than
/// 1 − q of the requests (in particular when one of them alone does), and otherwise the exact
/// mixture quantile to a relative accuracy of 1e−6. q ≤ 0 gives the smallest RTT among stable
/// routes; no stable route with a positive share gives +∞.
pub fn latency_quantile_ms(routes: &[Route], q: f64) -> f64 {
    let (mut stable, mut unstable) = (0.0, 0.0);
    for route in routes.iter().filter(|r| r.share > 0.0) {
        if route.queue.is_stable() {
            stable += route.share;
        } else {
            unstable += route.share;
        }
    }
    if stable == 0.0 {
        return f64::INFINITY;
    }
    if q.is_nan() || q <= 0.0 {
        let fastest =
            routes.iter().filter(|r| r.share > 0.0 && r.queue.is_stable()).map(rtt_s).reduce(f64::min);
        return fastest.unwrap_or(f64::INFINITY) * 1000.0;
    }
    // Tail mass p = 1 − q of the whole mixture; the unstable routes hold `unstable` of it at +∞,
    // and the stable routes, renormalised among themselves, must supply the rest.
    let excess = (1.0 - q) * (stable + unstable) - unstable;
    if excess < 0.0 {
        return f64::INFINITY;
    }
    let level = excess / stable;
    let usable = |r: &&Route| r.share > 0.0 && r.queue.is_stable();
    let phases: usize = routes.iter().filter(usable).map(|r| phase_count(r.cv)).sum();
    let seconds = if phases <= INLINE_ROUTES {
        let mut inline = [RouteTail::EMPTY; INLINE_ROUTES];
        let mut n = 0;
        for route in routes.iter().filter(usable) {
            prepare(route, route.share / stable, |tail| {
                inline[n] = tail;
                n += 1;
            });
        }
        quantile_s(&inline[..n], level)
    } else {
        let mut prepared = Vec::with_capacity(phases);
        for route in routes.iter().filter(usable) {
            prepare(route, route.share / stable, |tail| prepared.push(tail));
        }
        quantile_s(&prepared, level)
    };
    seconds * 1000.0
}

/// Allen–Cunneen's factor on the waiting time of M/M/c for a general service time with
/// coefficient of variation `cv` and Poisson arrivals: (c²ₐ + c²ₛ)/2 with c²ₐ = 1.
pub fn wait_factor(cv: f64) -> f64 {
    0.5 * (1.0 + cv * cv)
}

/// Service phases a route with this coefficient of variation is prepared as.
fn phase_count(cv: f64) -> usize {
    if cv > 1.0 { 2 } else { 1 }
}

/// Hands the tails of one stable route to `push`: one for exponential service (exact M/M/c),
/// otherwise the M/G/c approximation of Allen and Cunneen — the probability of waiting is
/// Erlang C, the wait given that there is one is exponential with its mean scaled by
/// [`wait_factor`] — with the service time S of mean s matched in its first two moments:
/// for `cv` < 1 a shifted exponential (s·(1 − cv) plus an exponential of mean s·cv), for
/// `cv` > 1 a two-phase hyperexponential with balanced means (phase i taken with probability
/// pᵢ, mean s/(2pᵢ), p₁ = (1 + √((cv² − 1)/(cv² + 1)))/2).
///
/// Sources: A. O. Allen, *Probability, Statistics, and Queueing Theory* (Academic Press,
/// 2nd ed. 1990), §6 (the Allen–Cunneen formula); W. Whitt (1993), "Approximations for the
/// GI/G/m queue", *Production and Operations Management* 2(2); the balanced-means H2 fit is
/// in Whitt (1982), "Approximating a point process by a renewal process", *Operations
/// Research* 30(1).
fn prepare(route: &Route, weight: f64, mut push: impl FnMut(RouteTail)) {
    let rtt = rtt_s(route);
    let cv = route.cv;
    if cv == 1.0 || !cv.is_finite() || cv <= 0.0 {
        push(RouteTail::new(&route.queue, weight, rtt));
        return;
    }
    let q = &route.queue;
    let mean = q.service_time_s;
    let load = q.offered_load();
    let wait = erlang_c(q.servers, load);
    // (c − a)/s is cμ − λ, the M/M/c waiting rate; Allen–Cunneen stretches the wait.
    let gamma = (f64::from(q.servers) - load) / mean / wait_factor(cv);
    if cv < 1.0 {
        push(RouteTail::phase(weight, rtt + mean * (1.0 - cv), 1.0 / (mean * cv), gamma, wait));
    } else {
        let c2 = cv * cv;
        let p = 0.5 * (1.0 + ((c2 - 1.0) / (c2 + 1.0)).sqrt());
        push(RouteTail::phase(weight * p, rtt, 2.0 * p / mean, gamma, wait));
        push(RouteTail::phase(weight * (1.0 - p), rtt, 2.0 * (1.0 - p) / mean, gamma, wait));
    }
}

/// Mean end-to-end latency (ms) over the mixture of routes with a positive share; +∞ if any of
/// them is unstable or none exists.
pub fn mean_latency_ms(routes: &[Route]) -> f64 {
    let (mut total, mut weighted) = (0.0, 0.0);
    for route in routes.iter().filter(|r| r.share > 0.0) {
        if !route.queue.is_stable() {
            return f64::INFINITY;
        }
        total += route.share;
        let cv = if route.cv.is_finite() && route.cv > 0.0 { route.cv } else { 1.0 };
        let response = route.queue.mean_wait_s() * wait_factor(cv) + route.queue.service_time_s;
        weighted += route.share * (route.rtt_ms.max(0.0) + 1000.0 * response);
    }
    if total == 0.0 { f64::INFINITY } else { weighted / total }
}

/// A route's RTT in seconds; a negative one would put answers before questions.
fn rtt_s(route: &Route) -> f64 {
    route.rtt_ms.max(0.0) / 1000.0
}

/// A stable route prepared for repeated evaluation of its latency tail: everything that does not
/// depend on time is computed once, so one evaluation costs at most two `exp`.
#[derive(Debug, Clone, Copy)]
struct RouteTail {
    /// Share of the route among the stable routes, normalised.
    weight: f64,
    /// RTT, seconds.
    rtt_s: f64,
    /// Service rate μ; +∞ when service is instantaneous.
    mu: f64,
    /// cμ − λ, the rate of the waiting time given that there is a wait.
    gamma: f64,
    /// Erlang C.
    wait: f64,
    /// min(μ, cμ − λ): the rate at which the tail ultimately decays.
    decay: f64,
    /// |δ| = |cμ − λ − μ|.
    gap: f64,
    /// 1/|δ|, so that evaluations multiply instead of divide.
    inverse_gap: f64,
    /// μ ≤ cμ − λ: the service time, not the wait, sets the ultimate decay.
    service_decays_slower: bool,
}

impl RouteTail {
    /// Filler for unused inline slots; never evaluated.
    const EMPTY: Self = Self {
        weight: 0.0,
        rtt_s: 0.0,
        mu: f64::INFINITY,
        gamma: f64::INFINITY,
        wait: 0.0,
        decay: f64::INFINITY,
        gap: 0.0,
        inverse_gap: f64::INFINITY,
        service_decays_slower: true,
    };

    /// Prepares a stable queue reached after `rtt_s` seconds, with weight `weight`.
    fn new(queue: &Queue, weight: f64, rtt_s: f64) -> Self {
        let mu = 1.0 / queue.service_time_s;
        let load = queue.offered_load();
        let wait = erlang_c(queue.servers, load);
        if !mu.is_finite() || wait == 0.0 {
            // No wait: T = S exactly, with μ = +∞ meaning no time at all.
            return Self { weight, rtt_s, mu, gamma: mu, wait: 0.0, decay: mu, ..Self::EMPTY };
        }
        let c = f64::from(queue.servers);
        // Both rates from exact differences in Erlangs: cμ − λ − μ itself would cancel badly.
        let gamma = (c - load) * mu;
        let excess = c - 1.0 - load;
        Self::with_rates(weight, rtt_s, mu, gamma, wait, excess.abs() * mu, excess >= 0.0)
    }

    /// A tail of service phase rate `mu` after a wait that happens with probability `wait` and
    /// then lasts an exponential time of rate `gamma`, reached after `rtt_s` seconds.
    fn phase(weight: f64, rtt_s: f64, mu: f64, gamma: f64, wait: f64) -> Self {
        if !mu.is_finite() || wait == 0.0 {
            return Self { weight, rtt_s, mu, gamma: mu, wait: 0.0, decay: mu, ..Self::EMPTY };
        }
        Self::with_rates(weight, rtt_s, mu, gamma, wait, (gamma - mu).abs(), mu <= gamma)
    }

    /// A tail with a wait, from its rates and |γ − μ| (computed by the caller as exactly as it
    /// can).
    fn with_rates(
        weight: f64,
        rtt_s: f64,
        mu: f64,
        gamma: f64,
        wait: f64,
        gap: f64,
        service_decays_slower: bool,
    ) -> Self {
        Self {
            weight,
            rtt_s,
            mu,
            gamma,
            wait,
            decay: if service_decays_slower { mu } else { gamma },
            gap,
            inverse_gap: 1.0 / gap,
            service_decays_slower,
        }
    }

    fn is_instantaneous(&self) -> bool {
        self.mu == f64::INFINITY
    }

    /// (P(T > x), density of T at x) for the response time alone, x in seconds after the RTT.
    fn at(&self, x: f64) -> (f64, f64) {
        if x < 0.0 {
            return (1.0, 0.0);
        }
        if self.is_instantaneous() || x == f64::INFINITY {
            return (0.0, 0.0);
        }
        let e_decay = (-self.decay * x).exp();
        if self.wait == 0.0 {
            return (e_decay, self.mu * e_decay);
        }
        if e_decay == 0.0 {
            // Both terms are e^{−min(μ,γ)x} times factors far from overflow, so the tail is 0 as a
            // double; stopping here also keeps ∞·0 out of the products below.
            return (0.0, 0.0);
        }
        let y = self.gap * x;
        let e_gap = (-y).exp();
        // x·φ(y) with φ(y) = (1 − e^{−y})/y: the series near y = 0 removes the singularity at
        // δ = 0 and the cancellation in 1 − e^{−y}; its error there is below y⁵/720 < 2e−13.
        let x_phi = if y < 1e-2 {
            x * (1.0 - y * (0.5 - y * (1.0 / 6.0 - y * (1.0 / 24.0 - y / 120.0))))
        } else {
            (1.0 - e_gap) * self.inverse_gap
        };
        let e_mu = if self.service_decays_slower { e_decay } else { e_decay * e_gap };
        // μ·(e^{−μx} − e^{−γx})/δ written so that neither exponential is subtracted from the other.
        let spread = self.mu * x_phi * e_decay;
        let tail = e_mu + self.wait * spread;
        let density = self.mu * (1.0 - self.wait) * e_mu + self.wait * self.gamma * spread;
        (tail.min(1.0), density)
    }

    /// Bounds [lower, upper] on the quantile of T alone where its tail falls to e^{−`depth`}: T ≥ S
    /// gives the lower one, an exponential bound on P(T > x) the upper one. This runs for every
    /// route of every quantile, so it spends one `ln` in the common case.
    fn bounds(&self, depth: f64) -> (f64, f64) {
        if self.is_instantaneous() {
            return (0.0, 0.0);
        }
        let service_only = depth / self.mu;
        if self.wait == 0.0 {
            return (service_only, service_only);
        }
        // P(T > x) = e^{−μx} + k·(e^{−μx} − e^{−γx}) with k = Cμ/δ, which is
        // ≤ (1 + k)·e^{−μx} when μ ≤ γ, and ≤ max(1, k)·e^{−γx} when γ < μ.
        let k = self.wait * self.mu * self.inverse_gap;
        let excess = if self.service_decays_slower { k.ln_1p() } else { k.max(1.0).ln() };
        let exponential = (excess + depth) / self.decay;
        if excess <= depth {
            // The bound below is at least 2·depth/decay: no better.
            return (service_only, exponential);
        }
        // As δ → 0, k → ∞ and the exponential bound degrades; this one holds at any δ:
        // P(T > x) ≤ (1 + Cμx)·e^{−min(μ,γ)x} ≤ 2/√e·(1 + Cμ/min(μ,γ))·e^{−min(μ,γ)x/2}.
        let erlang2 =
            2.0 * ((ERLANG2_BOUND * (1.0 + self.wait * self.mu / self.decay)).ln() + depth) / self.decay;
        (service_only, exponential.min(erlang2))
    }
}

/// (P(L > t), density of L at t) for the mixture L, t in seconds.
fn mixture_at(tails: &[RouteTail], t: f64) -> (f64, f64) {
    tails.iter().fold((0.0, 0.0), |(tail, density), route| {
        let (p, f) = route.at(t - route.rtt_s);
        (tail + route.weight * p, density + route.weight * f)
    })
}

/// The smallest t with P(L > t) ≤ `level` for the mixture L of stable routes, seconds.
///
/// Safeguarded Newton on ln P(L > t) − ln level: every tail is asymptotically exponential, so the
/// log is nearly linear and Newton needs few steps. The answer is only accepted once a bracket
/// narrower than [`TOLERANCE`] encloses it, and a step that leaves the bracket or stops halving
/// it is replaced by a split, so the iteration always converges.
fn quantile_s(tails: &[RouteTail], level: f64) -> f64 {
    let fastest = tails.iter().map(|r| r.rtt_s).fold(f64::INFINITY, f64::min);
    if level >= 1.0 {
        return fastest;
    }
    // At any t < lo every route is above `level`, at hi every route is at or below it, so the
    // mixture crosses `level` inside [lo, hi].
    let depth = -level.ln();
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for route in tails {
        let (lower, upper) = route.bounds(depth);
        lo = lo.min(route.rtt_s + lower);
        hi = hi.max(route.rtt_s + upper);
    }
    if !hi.is_finite() {
        return f64::INFINITY;
    }
    if tails.iter().any(RouteTail::is_instantaneous) {
        // Instantaneous routes make the tail jump at their RTTs, where Newton is blind: settle
        // the jumps first so that the tail is continuous inside the bracket.
        for route in tails.iter().filter(|r| r.is_instantaneous()) {
            let t = route.rtt_s;
            if t >= lo && t < hi {
                if mixture_at(tails, t).0 <= level {
                    hi = t;
                } else {
                    lo = t;
                }
            }
        }
        if tails.iter().all(RouteTail::is_instantaneous) {
            return hi;
        }
    }
    if lo >= hi {
        return hi;
    }
    let mut t = hi;
    let (mut last_step, mut step_before) = (hi - lo, hi - lo);
    for _ in 0..MAX_ITERATIONS {
        let (tail, density) = mixture_at(tails, t);
        let short = tail > level;
        if short {
            lo = t;
        } else {
            hi = t;
        }
        let newton =
            if tail > 0.0 && density > 0.0 { t + (tail.ln() + depth) * tail / density } else { f64::NAN };
        if hi - lo <= TOLERANCE * hi {
            return if newton >= lo && newton <= hi { newton } else { 0.5 * (lo + hi) };
        }
        // A small Newton step proves nothing: just past the RTT of a route with fast service the
        // density is huge and the step tiny while the tail is still far from `level`. Only a
        // narrow bracket is proof, so once the step is that small, aim a hair past its target to
        // land on the other side of the quantile and close the bracket.
        let margin = 0.25 * TOLERANCE * t;
        let aim = match (newton - t).abs() <= 2.0 * margin {
            true if short => newton + margin,
            true => newton - margin,
            false => newton,
        };
        // NaN fails every comparison and falls back.
        let next = if aim > lo && aim < hi && 2.0 * (aim - t).abs() <= step_before.abs() {
            aim
        } else {
            // Newton stalls mostly on a kink, where a route's RTT ends and its tail starts to
            // fall; splitting there removes the kink from the bracket for good. Otherwise bisect,
            // geometrically while the bracket spans orders of magnitude, as it does when a small
            // route near saturation sets the upper bound.
            let split = if lo > 0.0 && hi > 4.0 * lo { (lo * hi).sqrt() } else { 0.5 * (lo + hi) };
            tails.iter().map(|r| r.rtt_s).find(|&k| k > lo && k < hi).unwrap_or(split)
        };
        step_before = last_step;
        last_step = next - t;
        t = next;
    }
    0.5 * (lo + hi)
}

/// A queue is cut off at this utilisation: requests beyond it are dropped, as a load balancer
/// with a bounded queue would, and counted.
pub const MAX_UTILISATION: f64 = 0.98;

/// One step of a service's demand through its routes.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// Requests/s arriving per cluster.
    pub arrivals: Vec<f64>,
    /// Admitted over capacity per cluster (1 when requests arrive where nothing serves).
    pub utilisation: Vec<f64>,
    /// Requests/s dropped: beyond [`MAX_UTILISATION`], or where nothing serves.
    pub dropped: f64,
    /// p95 latency of the served requests, ms (infinite when demand found nothing serving).
    pub p95_ms: f64,
}

/// Serves `demand[r]` (per region) split by `routing[r][c]` over clusters with `servers[c]`
/// servers each (0 where down), `rtt_ms(c, r)` away; service times have mean
/// `service_time_s` and coefficient of variation `cv` (1: M/M/c exactly; otherwise the
/// Allen–Cunneen M/G/c approximation of [`latency_quantile_ms`]). Drops are spread over a
/// cluster's routes in proportion to what reaches it. `routes` is scratch space, reused
/// across calls.
pub fn serve(
    demand: &[f64],
    routing: &[Vec<f64>],
    servers: &[u32],
    service_time_s: f64,
    cv: f64,
    rtt_ms: impl Fn(usize, usize) -> f64,
    routes: &mut Vec<Route>,
) -> Served {
    let clusters = servers.len();
    let mut arrivals = vec![0.0; clusters];
    for (d, row) in demand.iter().zip(routing) {
        for (a, w) in arrivals.iter_mut().zip(row) {
            *a += d * w;
        }
    }
    let mut utilisation = vec![0.0; clusters];
    let mut dropped = 0.0;
    let queues: Vec<(Queue, f64)> = (0..clusters)
        .map(|c| {
            let capacity = f64::from(servers[c]) / service_time_s;
            let admitted = arrivals[c].min(MAX_UTILISATION * capacity);
            dropped += arrivals[c] - admitted;
            utilisation[c] =
                if servers[c] == 0 { if arrivals[c] > 0.0 { 1.0 } else { 0.0 } } else { admitted / capacity };
            let admit = if arrivals[c] > 0.0 { admitted / arrivals[c] } else { 0.0 };
            (Queue { arrival_rate: admitted, service_time_s, servers: servers[c] }, admit)
        })
        .collect();
    routes.clear();
    for (r, (d, row)) in demand.iter().zip(routing).enumerate() {
        for (c, w) in row.iter().enumerate() {
            let (queue, admit) = queues[c];
            let share = d * w * admit;
            if share > 0.0 {
                routes.push(Route { share, rtt_ms: rtt_ms(c, r), queue, cv });
            }
        }
    }
    let total: f64 = demand.iter().sum();
    let p95_ms = if routes.is_empty() {
        if total > 0.0 { f64::INFINITY } else { 0.0 }
    } else {
        latency_quantile_ms(routes, 0.95)
    };
    Served { arrivals, utilisation, dropped, p95_ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(arrival_rate: f64, service_time_s: f64, servers: u32) -> Queue {
        Queue { arrival_rate, service_time_s, servers }
    }

    fn route(share: f64, rtt_ms: f64, queue: Queue) -> Route {
        Route { share, rtt_ms, queue, cv: 1.0 }
    }

    fn close(actual: f64, expected: f64, relative: f64) -> bool {
        (actual - expected).abs() <= relative * expected.abs().max(1e-300)
    }

    /// Xorshift64*: a fixed seed makes the Monte-Carlo checks exact replays.
    struct XorShift(u64);

    impl XorShift {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            // In (0, 1], so that its logarithm is finite.
            ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 1.0) / (1u64 << 53) as f64
        }

        fn exponential(&mut self, rate: f64) -> f64 {
            -self.uniform().ln() / rate
        }
    }

    /// Response times of `n` consecutive requests of an FCFS M/M/c queue, after a warm-up: each
    /// request starts when it arrives or when the earliest server frees up, whichever is later.
    fn simulate(queue: Queue, n: usize, rng: &mut XorShift) -> Vec<f64> {
        simulate_with(queue, n, rng, |rng| rng.exponential(1.0 / queue.service_time_s))
    }

    /// The same with service times drawn by `service`.
    fn simulate_with(
        queue: Queue,
        n: usize,
        rng: &mut XorShift,
        mut service: impl FnMut(&mut XorShift) -> f64,
    ) -> Vec<f64> {
        let warm_up = n / 10;
        let mut free_at = vec![0.0f64; queue.servers as usize];
        let mut now = 0.0;
        let mut responses = Vec::with_capacity(n);
        for i in 0..warm_up + n {
            now += rng.exponential(queue.arrival_rate);
            let (server, free) =
                free_at.iter().copied().enumerate().min_by(|a, b| a.1.total_cmp(&b.1)).expect("servers");
            let done = now.max(free) + service(rng);
            free_at[server] = done;
            if i >= warm_up {
                responses.push(done - now);
            }
        }
        responses
    }

    fn empirical_quantile(mut samples: Vec<f64>, q: f64) -> f64 {
        samples.sort_by(f64::total_cmp);
        samples[((samples.len() as f64 * q).ceil() as usize).saturating_sub(1)]
    }

    #[test]
    fn erlang_c_matches_closed_forms_and_tables() {
        for rho in [0.0, 0.1, 0.5, 0.9, 0.999] {
            assert!(close(erlang_c(1, rho), rho, 1e-12), "M/M/1 waits with probability ρ");
        }
        assert!(close(erlang_c(2, 1.0), 1.0 / 3.0, 1e-12));
        // C(2, a) = a² / (2 + a) for two servers.
        assert!(close(erlang_c(2, 1.5), 2.25 / 3.5, 1e-12));
        // Published Erlang C table value.
        assert!((erlang_c(10, 8.0) - 0.4092).abs() < 5e-5, "{}", erlang_c(10, 8.0));
    }

    #[test]
    fn erlang_c_agrees_with_the_textbook_recurrence() {
        for (servers, load) in [(3, 2.2), (17, 11.0), (250, 240.0), (1000, 0.5)] {
            let mut b = 1.0;
            for k in 1..=servers {
                b = load * b / (f64::from(k) + load * b);
            }
            let rho = load / f64::from(servers);
            let textbook = b / (1.0 - rho * (1.0 - b));
            assert!(close(erlang_c(servers, load), textbook, 1e-12), "c={servers} a={load}");
        }
    }

    #[test]
    fn erlang_c_edges_are_saturated_or_idle() {
        assert_eq!(erlang_c(0, 0.0), 1.0);
        assert_eq!(erlang_c(0, 3.0), 1.0);
        assert_eq!(erlang_c(4, 0.0), 0.0);
        assert_eq!(erlang_c(4, 4.0), 1.0);
        assert_eq!(erlang_c(4, 9.0), 1.0);
        let huge = erlang_c(100_000, 99_900.0);
        assert!(huge > 0.0 && huge < 1.0, "{huge}");
        assert_eq!(erlang_c(100_000, 10.0), 0.0);
        assert!(erlang_c(100_000, 99_999.999) > 0.99);
    }

    #[test]
    fn mm1_mean_wait_and_tail_are_the_textbook_ones() {
        let (lambda, mu) = (7.0, 10.0);
        let q = queue(lambda, 1.0 / mu, 1);
        let rho = lambda / mu;
        assert!(close(q.utilisation(), rho, 1e-12));
        assert!(close(q.mean_wait_s(), rho / (mu - lambda), 1e-12));
        assert!(close(q.mean_response_s(), 1.0 / (mu - lambda), 1e-12));
        for t in [0.0, 0.01, 0.1, 0.5, 2.0] {
            assert!(close(q.response_tail(t), (-(mu - lambda) * t).exp(), 1e-12), "t={t}");
        }
        assert!(close(q.response_quantile(0.95), 20f64.ln() / (mu - lambda), 1e-9));
    }

    #[test]
    fn quantile_inverts_the_tail() {
        let queues = [
            queue(7.0, 0.1, 1),
            queue(1.5, 1.0, 2),
            queue(80.0, 0.05, 5),
            queue(95.0, 0.1, 10),
            queue(0.3, 1.0, 3),
            queue(9_990.0, 0.01, 100),
            queue(99_000.0, 1.0, 100_000),
        ];
        for q in queues {
            for level in [0.01, 0.5, 0.9, 0.95, 0.99, 0.999_999] {
                let t = q.response_quantile(level);
                assert!(t.is_finite() && t > 0.0, "{q:?} q={level}");
                assert!(close(q.response_tail(t), 1.0 - level, 1e-5), "{q:?} q={level} t={t}");
            }
        }
    }

    #[test]
    fn the_degenerate_rate_is_continuous_with_its_neighbours() {
        // c = 3, s = 1: cμ − λ = μ exactly at λ = 2.
        let at = queue(2.0, 1.0, 3);
        for t in [0.1f64, 1.0, 5.0, 20.0] {
            let c = at.wait_probability();
            let limit = (-t).exp() * (1.0 + c * t);
            assert!(close(at.response_tail(t), limit, 1e-12), "t={t}");
            for nudge in [1e-9, 1e-6, 1e-3] {
                for lambda in [2.0 - nudge, 2.0 + nudge] {
                    let near = queue(lambda, 1.0, 3).response_tail(t);
                    assert!(close(near, limit, 20.0 * nudge), "t={t} λ={lambda} {near} vs {limit}");
                }
            }
        }
        let p95 = at.response_quantile(0.95);
        for lambda in [2.0 - 1e-7, 2.0 + 1e-7] {
            assert!(close(queue(lambda, 1.0, 3).response_quantile(0.95), p95, 1e-5));
        }
    }

    #[test]
    fn latency_grows_with_load_and_shrinks_with_servers() {
        let mut previous = 0.0;
        for step in 0..50 {
            let q = queue(f64::from(step) * 0.199, 0.05, 4);
            let (p95, mean) = (q.response_quantile(0.95), q.mean_response_s());
            assert!(p95 >= previous, "λ step {step}");
            assert!(q.wait_probability() <= queue(q.arrival_rate + 0.1, 0.05, 4).wait_probability());
            assert!(mean <= queue(q.arrival_rate + 0.1, 0.05, 4).mean_response_s());
            previous = p95;
        }
        let mut previous = f64::INFINITY;
        for servers in 4..60 {
            let q = queue(70.0, 0.05, servers);
            let p95 = q.response_quantile(0.95);
            assert!(p95 <= previous, "c={servers}");
            assert!(q.wait_probability() <= erlang_c(servers - 1, 3.5));
            previous = p95;
        }
    }

    #[test]
    fn a_mixture_lies_between_its_routes() {
        let a = route(3.0, 10.0, queue(30.0, 0.02, 1));
        let b = route(1.0, 40.0, queue(150.0, 0.05, 10));
        let c = route(2.0, 25.0, queue(5.0, 0.2, 2));
        for q in [0.5, 0.9, 0.95, 0.99] {
            let own: Vec<f64> = [a, b, c].iter().map(|r| latency_quantile_ms(&[*r], q)).collect();
            let mixed = latency_quantile_ms(&[a, b, c], q);
            let (min, max) = own.iter().fold((f64::INFINITY, 0.0f64), |(l, h), x| (l.min(*x), h.max(*x)));
            assert!(mixed >= min && mixed <= max, "q={q} {mixed} not in [{min}, {max}]");
            // Its tail at the answer is the mixture's tail level.
            let total = 6.0;
            let tail: f64 = [a, b, c]
                .iter()
                .map(|r| r.share / total * r.queue.response_tail((mixed - r.rtt_ms) / 1000.0))
                .sum();
            assert!(close(tail, 1.0 - q, 1e-5), "q={q}");
        }
    }

    #[test]
    fn a_single_route_is_its_queue_shifted_by_the_rtt() {
        let q = queue(150.0, 0.05, 10);
        for share in [0.1, 1.0, 42.0] {
            let got = latency_quantile_ms(&[route(share, 30.0, q)], 0.95);
            assert!(close(got, 30.0 + 1000.0 * q.response_quantile(0.95), 1e-6));
        }
        let mean = mean_latency_ms(&[route(2.0, 30.0, q)]);
        assert!(close(mean, 30.0 + 1000.0 * q.mean_response_s(), 1e-12));
        // Zero-share routes do not count, however bad.
        let ignored = route(0.0, 500.0, queue(1e6, 1.0, 1));
        assert_eq!(
            latency_quantile_ms(&[route(1.0, 30.0, q), ignored], 0.95),
            latency_quantile_ms(&[route(1.0, 30.0, q)], 0.95)
        );
        assert!(close(mean_latency_ms(&[ignored, route(2.0, 30.0, q)]), mean, 1e-12));
    }

    #[test]
    fn saturation_is_infinite() {
        let saturated = queue(200.0, 0.05, 10);
        assert!(!saturated.is_stable());
        assert_eq!(saturated.utilisation(), 1.0);
        assert_eq!(saturated.mean_wait_s(), f64::INFINITY);
        assert_eq!(saturated.response_quantile(0.5), f64::INFINITY);
        assert_eq!(saturated.response_tail(100.0), 1.0);
        assert_eq!(queue(1.0, 0.05, 0).utilisation(), f64::INFINITY);
        let fine = queue(50.0, 0.05, 10);
        // 10 % of requests unanswered: the p95 is infinite, the p50 is not.
        let routes = [route(9.0, 20.0, fine), route(1.0, 20.0, saturated)];
        assert_eq!(latency_quantile_ms(&routes, 0.95), f64::INFINITY);
        assert_eq!(mean_latency_ms(&routes), f64::INFINITY);
        // Two unstable routes at 3 % each hold 6 % of the requests together: still infinite.
        let routes =
            [route(94.0, 20.0, fine), route(3.0, 20.0, saturated), route(3.0, 5.0, queue(1.0, 1.0, 0))];
        assert_eq!(latency_quantile_ms(&routes, 0.95), f64::INFINITY);
        // 1 % unanswered: the p95 of everything is the p(94/99) of the rest.
        let routes = [route(99.0, 20.0, fine), route(1.0, 20.0, saturated)];
        let expected = latency_quantile_ms(&[route(1.0, 20.0, fine)], 1.0 - (0.05 - 0.01) / 0.99);
        assert!(close(latency_quantile_ms(&routes, 0.95), expected, 1e-6));
        assert_eq!(latency_quantile_ms(&[], 0.95), f64::INFINITY);
        assert_eq!(mean_latency_ms(&[]), f64::INFINITY);
    }

    #[test]
    fn an_idle_queue_costs_the_rtt_plus_a_service_quantile() {
        let idle = queue(0.0, 0.05, 3);
        assert_eq!(idle.utilisation(), 0.0);
        assert_eq!(idle.wait_probability(), 0.0);
        assert_eq!(idle.mean_wait_s(), 0.0);
        let expected = 12.0 + 1000.0 * 0.05 * 20f64.ln();
        assert!(close(latency_quantile_ms(&[route(1.0, 12.0, idle)], 0.95), expected, 1e-9));
        assert!(close(mean_latency_ms(&[route(1.0, 12.0, idle)]), 62.0, 1e-12));
        // Instantaneous service leaves only the RTTs, a step function.
        let instant = queue(5.0, 0.0, 1);
        assert_eq!(instant.capacity(), f64::INFINITY);
        assert_eq!(instant.response_quantile(0.99), 0.0);
        assert_eq!(instant.response_quantile(1.0), 0.0);
        let steps = [route(1.0, 10.0, instant), route(1.0, 30.0, instant), route(2.0, 50.0, instant)];
        assert_eq!(latency_quantile_ms(&steps, 0.2), 10.0);
        assert_eq!(latency_quantile_ms(&steps, 0.5), 30.0);
        assert_eq!(latency_quantile_ms(&steps, 0.95), 50.0);
        assert_eq!(latency_quantile_ms(&steps, 1.0), 50.0);
        let mixed = [route(1.0, 10.0, instant), route(1.0, 30.0, idle)];
        assert!(close(latency_quantile_ms(&mixed, 0.5), 10.0, 1e-6));
        let upper = latency_quantile_ms(&mixed, 0.9);
        assert!(close(upper, 30.0 + 1000.0 * 0.05 * 5f64.ln(), 1e-6), "{upper}");
    }

    #[test]
    fn quantile_levels_at_the_edges() {
        let q = queue(150.0, 0.05, 10);
        assert_eq!(q.response_quantile(0.0), 0.0);
        assert_eq!(q.response_quantile(1.0), f64::INFINITY);
        let routes = [route(1.0, 30.0, q), route(1.0, 10.0, q)];
        assert_eq!(latency_quantile_ms(&routes, 0.0), 10.0);
        assert_eq!(latency_quantile_ms(&routes, 1.0), f64::INFINITY);
        assert!(latency_quantile_ms(&routes, 1e-12) >= 10.0);
    }

    #[test]
    fn no_input_yields_nan() {
        let rates = [0.0, 1e-300, 1e-3, 1.0, 99.999_999, 100.0, 1e6, 1e300];
        let services = [0.0, 1e-300, 1e-6, 0.01, 1.0, 1e6];
        let servers = [0, 1, 2, 7, 1000, 100_000];
        for &arrival_rate in &rates {
            for &service_time_s in &services {
                for &c in &servers {
                    let q = queue(arrival_rate, service_time_s, c);
                    let outputs = [
                        q.utilisation(),
                        q.wait_probability(),
                        q.mean_wait_s(),
                        q.mean_response_s(),
                        q.response_tail(0.0),
                        q.response_tail(0.37),
                        q.response_tail(1e300),
                        q.response_quantile(0.95),
                        q.response_quantile(0.5),
                        q.capacity(),
                        latency_quantile_ms(&[route(1.0, 5.0, q), route(0.5, 0.0, queue(1.0, 0.1, 1))], 0.95),
                        mean_latency_ms(&[route(1.0, 5.0, q)]),
                    ];
                    for (i, x) in outputs.iter().enumerate() {
                        assert!(!x.is_nan() && *x >= 0.0, "output {i} = {x} for {q:?}");
                    }
                    let tail = q.response_tail(0.37);
                    assert!((0.0..=1.0).contains(&tail));
                }
            }
        }
    }

    #[test]
    fn near_saturation_stays_finite_and_large() {
        for (servers, margin) in [(1, 1e-9), (10, 1e-6), (100_000, 1e-3)] {
            let q = queue(f64::from(servers) - margin, 1.0, servers);
            assert!(q.is_stable());
            let p99 = q.response_quantile(0.99);
            assert!(p99.is_finite() && p99 > 1.0 / margin, "c={servers}: {p99}");
            assert!(close(q.response_tail(p99), 0.01, 1e-5));
        }
    }

    #[test]
    fn mm2_p95_matches_a_simulation() {
        let q = queue(1.6, 1.0, 2);
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let simulated = empirical_quantile(simulate(q, 400_000, &mut rng), 0.95);
        let model = q.response_quantile(0.95);
        assert!(close(simulated, model, 0.03), "simulated {simulated} model {model}");
    }

    #[test]
    fn a_mixture_p95_matches_a_simulation() {
        let (fast, slow) = (queue(30.0, 0.02, 1), queue(12.0, 0.1, 2));
        let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
        let mut samples: Vec<f64> =
            simulate(fast, 300_000, &mut rng).iter().map(|t| 10.0 + 1000.0 * t).collect();
        samples.extend(simulate(slow, 100_000, &mut rng).iter().map(|t| 40.0 + 1000.0 * t));
        let simulated = empirical_quantile(samples, 0.95);
        let model = latency_quantile_ms(&[route(3.0, 10.0, fast), route(1.0, 40.0, slow)], 0.95);
        assert!(close(simulated, model, 0.03), "simulated {simulated} model {model}");
    }

    #[test]
    #[ignore = "timing; run with --release --ignored --nocapture"]
    fn cost_per_latency_quantile() {
        use std::hint::black_box;
        use std::time::Instant;
        let sets: Vec<Vec<Route>> = (0..64)
            .map(|i| {
                (0..8)
                    .map(|j| {
                        let servers = 1 + ((i * 7 + j * 3) % 24) as u32;
                        let rho = 0.2 + 0.75 * f64::from(((i * 13 + j * 5) % 20) as u32) / 20.0;
                        let s = 0.005 + 0.001 * f64::from(j as u32);
                        route(
                            1.0 + j as f64,
                            5.0 + 7.0 * j as f64,
                            queue(rho * f64::from(servers) / s, s, servers),
                        )
                    })
                    .collect()
            })
            .collect();
        for width in [1, 4, 8] {
            let calls = 100_000;
            let start = Instant::now();
            let mut sum = 0.0;
            for n in 0..calls {
                sum += latency_quantile_ms(black_box(&sets[n % sets.len()][..width]), black_box(0.95));
            }
            let per_call = start.elapsed().as_secs_f64() / calls as f64;
            println!("{width} routes: {:.0} ns per latency_quantile_ms (checksum {sum:.3})", per_call * 1e9);
        }
    }

    #[test]
    fn serving_drops_beyond_the_cut_off_and_spreads_the_rest_by_route() {
        // One 10 ms server takes 100 req/s at most; 98 % of it is admitted, 2 req/s dropped.
        let mut routes = Vec::new();
        let s = serve(&[100.0], &[vec![1.0, 0.0]], &[1, 4], 0.010, 1.0, |_, _| 5.0, &mut routes);
        assert!((s.dropped - 2.0).abs() < 1e-9 && (s.utilisation[0] - 0.98).abs() < 1e-12);
        assert_eq!((s.arrivals.clone(), s.utilisation[1]), (vec![100.0, 0.0], 0.0));
        assert!(s.p95_ms.is_finite() && s.p95_ms > 5.0);
        // Demand sent where nothing serves is dropped, and its p95 is unbounded.
        let s = serve(&[10.0], &[vec![0.0, 1.0]], &[1, 0], 0.010, 1.0, |_, _| 5.0, &mut routes);
        assert_eq!((s.dropped, s.utilisation[1], s.p95_ms), (10.0, 1.0, f64::INFINITY));
        let s = serve(&[0.0], &[vec![1.0, 0.0]], &[1, 0], 0.010, 1.0, |_, _| 5.0, &mut routes);
        assert_eq!(s.p95_ms, 0.0);
    }

    /// Service times of mean `mean` and coefficient of variation `cv`, drawn as the judge
    /// models them: shifted exponential below 1, balanced-means hyperexponential above.
    fn service_sampler(mean: f64, cv: f64) -> impl FnMut(&mut XorShift) -> f64 {
        let c2 = cv * cv;
        let p = 0.5 * (1.0 + ((c2 - 1.0).max(0.0) / (c2 + 1.0)).sqrt());
        move |rng: &mut XorShift| {
            if cv < 1.0 {
                mean * (1.0 - cv) + rng.exponential(1.0 / (mean * cv))
            } else if rng.uniform() <= p {
                rng.exponential(2.0 * p / mean)
            } else {
                rng.exponential(2.0 * (1.0 - p) / mean)
            }
        }
    }

    #[test]
    fn the_general_service_time_p95_is_close_to_a_simulated_fcfs_queue() {
        // Allen–Cunneen is an approximation: within 12 % of a long FCFS simulation over
        // utilisations and variabilities a planner meets (its error grows towards saturation).
        let mut rng = XorShift(0x5eed_1234_abcd_0001);
        for (servers, rho) in [(4u32, 0.6), (4, 0.85), (16, 0.8)] {
            for cv in [0.5, 1.5, 2.0] {
                let mean = 0.020;
                let q = queue(rho * f64::from(servers) / mean, mean, servers);
                let model = latency_quantile_ms(&[Route { share: 1.0, rtt_ms: 0.0, queue: q, cv }], 0.95);
                let simulated = 1000.0
                    * empirical_quantile(
                        simulate_with(q, 300_000, &mut rng, service_sampler(mean, cv)),
                        0.95,
                    );
                assert!(
                    close(model, simulated, 0.12),
                    "c={servers} ρ={rho} cv={cv}: model {model:.2} ms, simulated {simulated:.2} ms"
                );
            }
        }
    }

    #[test]
    fn an_exponential_service_time_is_m_m_c_exactly_and_more_variability_costs_more() {
        let q = queue(140.0, 0.020, 4);
        let at = |cv: f64| latency_quantile_ms(&[Route { share: 1.0, rtt_ms: 5.0, queue: q, cv }], 0.95);
        assert_eq!(at(1.0), latency_quantile_ms(&[route(1.0, 5.0, q)], 0.95));
        assert!(
            at(0.5) < at(1.0) && at(1.0) < at(1.5) && at(1.5) < at(2.5),
            "{} {} {} {}",
            at(0.5),
            at(1.0),
            at(1.5),
            at(2.5)
        );
        // Mean: the wait scales by (1 + cv²)/2.
        let mean = |cv: f64| mean_latency_ms(&[Route { share: 1.0, rtt_ms: 0.0, queue: q, cv }]);
        assert!(close(mean(2.0) - 20.0, 2.5 * (mean(1.0) - 20.0), 1e-9));
    }
}

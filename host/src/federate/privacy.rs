//! Differential privacy for updates, as in DP-FedAvg: each agent clips its update to L2 norm
//! `S` and adds Gaussian noise of standard deviation `σ = z·S/n` to the average of `n`
//! updates (so each agent adds `z·S/√n`, and the sum carries `z·S`). The privacy spent over
//! rounds is tracked with Rényi DP of the Gaussian mechanism and reported as (ε, δ).

/// Scales `delta` down to L2 norm at most `clip`; returns the norm before.
pub fn clip(delta: &mut [f32], clip: f64) -> f64 {
    let norm = delta.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    if norm > clip && norm > 0.0 {
        let k = (clip / norm) as f32;
        delta.iter_mut().for_each(|v| *v *= k);
    }
    norm
}

/// Adds the agent's share of the noise: N(0, (z·S)²/n) per coordinate, so the sum of `n`
/// agents' updates carries N(0, (z·S)²) and their mean σ = z·S/n.
pub fn add_noise(delta: &mut [f32], z: f64, clip: f64, agents: usize, normal: &mut impl FnMut() -> f64) {
    let sd = z * clip / (agents.max(1) as f64).sqrt();
    delta.iter_mut().for_each(|v| *v += (sd * normal()) as f32);
}

/// Standard normal draws from the operating system's randomness (Box–Muller over
/// `getrandom` bytes): the privacy of the noise rests on it being unpredictable, which a
/// seeded generator is not.
pub fn os_normal() -> impl FnMut() -> f64 {
    let rng = ring::rand::SystemRandom::new();
    let mut buf = [0u8; 4096];
    let mut at = buf.len();
    let mut next = move || {
        if at + 8 > buf.len() {
            ring::rand::SecureRandom::fill(&rng, &mut buf).expect("the operating system provides randomness");
            at = 0;
        }
        let v = u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
        at += 8;
        ((v >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    move || {
        let (u, v) = (next(), next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// The (ε, δ) spent after `rounds` rounds of the Gaussian mechanism with noise multiplier `z`
/// (every agent in every round): RDP ε(α) = rounds·α/(2z²), converted at the best order α.
pub fn epsilon(z: f64, rounds: u32, delta: f64) -> f64 {
    if z <= 0.0 || rounds == 0 {
        return if rounds == 0 { 0.0 } else { f64::INFINITY };
    }
    let orders = (2..=512).map(f64::from).chain([1.25, 1.5, 1.75]);
    orders
        .map(|a| f64::from(rounds) * a / (2.0 * z * z) + (1.0 / delta).ln() / (a - 1.0))
        .fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::sim::Rng;

    #[test]
    fn clipping_bounds_the_norm_and_leaves_small_updates_alone() {
        let mut big = vec![3.0f32, 4.0];
        assert_eq!(clip(&mut big, 1.0), 5.0);
        assert!((big[0] - 0.6).abs() < 1e-6 && (big[1] - 0.8).abs() < 1e-6);
        let mut small = vec![0.3f32, 0.4];
        clip(&mut small, 1.0);
        assert_eq!(small, vec![0.3, 0.4]);
    }

    #[test]
    fn noise_of_n_agents_sums_to_the_mechanisms_sigma() {
        let mut rng = Rng::new(3);
        let (z, s, n) = (1.1, 0.5, 4);
        let mut sums = vec![0.0f64; 20_000];
        for _ in 0..n {
            let mut d = vec![0.0f32; sums.len()];
            add_noise(&mut d, z, s, n, &mut || rng.normal());
            sums.iter_mut().zip(&d).for_each(|(t, v)| *t += f64::from(*v));
        }
        let sd = (sums.iter().map(|v| v * v).sum::<f64>() / sums.len() as f64).sqrt();
        assert!((sd - z * s).abs() < 0.02, "{sd}");
    }

    #[test]
    fn os_noise_is_standard_normal() {
        let mut normal = os_normal();
        let draws: Vec<f64> = (0..50_000).map(|_| normal()).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.03, "{mean} {var}");
    }

    #[test]
    fn epsilon_grows_with_rounds_and_shrinks_with_noise() {
        let e1 = epsilon(1.0, 10, 1e-5);
        assert!(e1 > 0.0 && e1 < epsilon(1.0, 40, 1e-5) && epsilon(2.0, 10, 1e-5) < e1);
        // Once at z = 1, δ = 1e-5: min over α of α/2 + ln(1e5)/(α − 1), ≈ 5.3 at α ≈ 5.8.
        let once = epsilon(1.0, 1, 1e-5);
        assert!((once - 5.3).abs() < 0.05, "{once}");
        assert_eq!(epsilon(1.0, 0, 1e-5), 0.0);
    }
}

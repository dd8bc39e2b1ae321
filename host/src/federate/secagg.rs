//! Secure aggregation with pairwise masks (the core of Bonawitz et al.): every pair of agents
//! agrees on a secret by X25519 through keys the aggregator relays; each agent encodes its
//! update in fixed point and adds, for every peer, a mask expanded from their shared secret —
//! `+` towards peers after it, `−` towards those before — so the masks cancel in the sum and
//! the aggregator learns the sum and nothing else. A masked update is uniformly random to
//! anyone without the agent's secrets.
//!
//! Every agent that published a key must submit: without secret sharing of the seeds, a
//! dropout's masks cannot be removed, so a round under secure aggregation needs them all.

use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

/// Fixed-point scale: updates are encoded as `round(x · 2^16)` modulo 2^32.
const SCALE: f64 = 65_536.0;

/// The largest magnitude a decoded sum can have: beyond 2^15 the sum wraps modulo 2^32 and
/// decodes as a wrong value with nothing to show it went wrong.
pub const RANGE: f64 = 32_768.0;

/// Whether `update` can be one of `members` masked updates without their sum wrapping: every
/// coordinate finite (masking would turn NaN into a silent 0) and within `RANGE / members`.
pub fn in_range(update: &[f32], members: usize) -> bool {
    let bound = RANGE / members.max(1) as f64;
    update.iter().all(|v| v.is_finite() && f64::from(v.abs()) < bound)
}

/// An agent's key for one round.
pub struct RoundKey {
    secret: StaticSecret,
    /// What the aggregator relays to the others.
    pub public: [u8; 32],
}

impl RoundKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .expect("the operating system provides randomness");
        Self::from_bytes(bytes)
    }

    /// A key from given bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        let public = PublicKey::from(&secret).to_bytes();
        Self { secret, public }
    }

    /// `update` masked for the round: `me` is this agent's index in `publics` (every agent's
    /// key, in the order the aggregator relayed them), `round` binds the masks to the round.
    pub fn mask(&self, update: &[f32], me: usize, publics: &[[u8; 32]], round: u64) -> Vec<u32> {
        let mut out: Vec<u32> = update.iter().map(|v| encode(*v)).collect();
        for (peer, public) in publics.iter().enumerate() {
            if peer == me {
                continue;
            }
            let shared = self.secret.diffie_hellman(&PublicKey::from(*public));
            let stream = expand(shared.as_bytes(), round, out.len());
            for (o, m) in out.iter_mut().zip(stream) {
                *o = if me < peer { o.wrapping_add(m) } else { o.wrapping_sub(m) };
            }
        }
        out
    }
}

fn encode(v: f32) -> u32 {
    (f64::from(v) * SCALE).round() as i64 as u32
}

/// The sum of masked updates, decoded: the masks cancel, the plain values add.
pub fn unmask_sum(masked: &[Vec<u32>]) -> Vec<f32> {
    let n = masked.first().map_or(0, Vec::len);
    (0..n)
        .map(|i| {
            let sum = masked.iter().fold(0u32, |acc, m| acc.wrapping_add(m[i]));
            (f64::from(sum as i32) / SCALE) as f32
        })
        .collect()
}

/// A mask of `len` words from a shared secret and the round: SHA-256 in counter mode.
fn expand(secret: &[u8; 32], round: u64, len: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(len);
    let mut block = 0u64;
    while out.len() < len {
        let digest = Sha256::new()
            .chain_update(secret)
            .chain_update(round.to_le_bytes())
            .chain_update(block.to_le_bytes())
            .finalize();
        out.extend(digest.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        block += 1;
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aggregator_holds_only_masked_updates_and_their_sum_is_exact() {
        let updates: Vec<Vec<f32>> =
            (0..4).map(|a| (0..1_000).map(|i| ((a * 31 + i) % 17) as f32 / 100.0 - 0.08).collect()).collect();
        let keys: Vec<RoundKey> = (0..4u8).map(|a| RoundKey::from_bytes([a + 1; 32])).collect();
        let publics: Vec<[u8; 32]> = keys.iter().map(|k| k.public).collect();
        // What the aggregator receives.
        let masked: Vec<Vec<u32>> =
            keys.iter().enumerate().map(|(i, k)| k.mask(&updates[i], i, &publics, 7)).collect();
        for (m, u) in masked.iter().zip(&updates) {
            // A masked update reveals nothing of its update: decoded on its own it is noise
            // spread over the whole range, not values near ±0.1.
            let decoded = unmask_sum(std::slice::from_ref(m));
            let near = decoded.iter().zip(u).filter(|(d, u)| (*d - *u).abs() < 1.0).count();
            assert!(near < 10, "{near} of 1000 coordinates readable");
        }
        let sum = unmask_sum(&masked);
        for (i, s) in sum.iter().enumerate() {
            let want: f32 = updates.iter().map(|u| u[i]).sum();
            assert!((s - want).abs() < 1e-4, "coordinate {i}: {s} vs {want}");
        }
        // Masks are bound to the round: another round's masks do not cancel these.
        let mut mixed = masked.clone();
        mixed[0] = keys[0].mask(&updates[0], 0, &publics, 8);
        let wrong = unmask_sum(&mixed);
        assert!(wrong.iter().zip(&sum).filter(|(a, b)| (*a - *b).abs() > 1.0).count() > 900);
    }

    #[test]
    fn updates_that_could_wrap_the_sum_are_out_of_range() {
        assert!(in_range(&[1_000.0, -1_000.0], 4));
        // Four of 9,000 each could sum to 36,000, past what the fixed point holds.
        assert!(!in_range(&[9_000.0], 4));
        assert!(in_range(&[9_000.0], 3));
        assert!(!in_range(&[f32::NAN], 2));
        assert!(!in_range(&[f32::INFINITY], 2));
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(RoundKey::generate().public, RoundKey::generate().public);
    }
}

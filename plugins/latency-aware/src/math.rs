//! `ρ^k` for the queueing estimate, from polynomials and bit manipulation only.
//!
//! A scorer evaluates this for every candidate of every placement, so it must be cheap in the
//! sandbox as well as natively. A libm `pow` is branchy, table-driven code that runs about
//! twice as slowly once compiled to Wasm; the straight-line arithmetic below costs the same on
//! both sides and gives bit-identical results on both, because every step is IEEE-exact
//! (`+ − × ÷ √`, integer ops). Relative error is below 1e-9 over the range used, far finer
//! than any latency estimate; the polynomials are short and evaluated in Estrin's scheme so
//! consecutive candidates overlap in the pipeline instead of waiting on one long chain.

const LN_2: f64 = std::f64::consts::LN_2;
// ln 2 = LN2_HI + LN2_LO, the high part with trailing zero bits (fdlibm's split).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const TWO_52: f64 = 4_503_599_627_370_496.0;
/// The mantissa bits of √2.
const SQRT_2_MANTISSA: u64 = SQRT_2.to_bits() & 0x000f_ffff_ffff_ffff;
const ROUND: f64 = 6_755_399_441_055_744.0;
const SQRT_2: f64 = std::f64::consts::SQRT_2;

/// Natural logarithm of a positive, finite `x`.
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    // x = m · 2^e with m in [√½, √2): then ln x = e·ln 2 + ln m, both read off the bits.
    let bits = x.to_bits();
    let biased = f64::from_bits((bits >> 52) | 0x4330_0000_0000_0000) - TWO_52;
    let mantissa = bits & 0x000f_ffff_ffff_ffff;
    // 1 when m ≥ √2, from the sign of an integer difference: data-dependent, so it must not
    // become a branch (a mispredicted one costs more than this whole function).
    let big = (SQRT_2_MANTISSA.wrapping_sub(mantissa) >> 63) as f64;
    let m = f64::from_bits(mantissa | 0x3ff0_0000_0000_0000) * (1.0 - 0.5 * big);
    let e = biased - 1023.0 + big;
    // ln m = 2·atanh(t), t = (m − 1)/(m + 1), |t| < 0.172: the odd series to t^13 errs by
    // less than 1e-11.
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let t4 = t2 * t2;
    let series = (1.0 + t2 * (1.0 / 3.0))
        + t4 * ((1.0 / 5.0 + t2 * (1.0 / 7.0)) + t4 * ((1.0 / 9.0 + t2 * (1.0 / 11.0)) + t4 * (1.0 / 13.0)));
    e * LN_2 + 2.0 * t * series
}

/// e^y for y ≤ 0 (what `ρ^k` with ρ < 1 needs); underflows to 0 below −708.
#[inline(always)]
pub fn exp_nonpositive(y: f64) -> f64 {
    let underflow = y < -708.0;
    let y = if underflow { -708.0 } else { y };
    // y = n·ln 2 + r with n the nearest integer, so |r| ≤ ln2/2; e^y = 2^n · e^r. Adding
    // 1.5·2^52 rounds to the nearest integer in the low mantissa bits (no float-to-int
    // conversion, which is slow in Wasm); ln 2 is split in two (Cody–Waite) so n·ln 2 is
    // subtracted without losing r's low bits.
    let shifted = y * (1.0 / LN_2) + ROUND;
    let n_float = shifted - ROUND;
    let n = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let r = (y - n_float * LN2_HI) - n_float * LN2_LO;
    // Taylor series of e^r to r^11/11!: error below 1e-13 for |r| ≤ 0.35.
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let sum = ((1.0 + r) + r2 * (1.0 / 2.0 + r * (1.0 / 6.0)))
        + r4 * ((1.0 / 24.0 + r * (1.0 / 120.0)) + r2 * (1.0 / 720.0 + r * (1.0 / 5040.0)))
        + r8 * ((1.0 / 40_320.0 + r * (1.0 / 362_880.0))
            + r2 * (1.0 / 3_628_800.0 + r * (1.0 / 39_916_800.0)));
    // 2^n from its exponent bits; n ≥ −1021 here, so the result is a normal number.
    let scale = f64::from_bits(n.wrapping_add(1023) << 52);
    if underflow { 0.0 } else { sum * scale }
}

/// `base^exponent` for `base` in [0, 1) and a positive exponent.
#[inline(always)]
pub fn pow_unit(base: f64, exponent: f64) -> f64 {
    let zero = base <= 0.0;
    let safe = if zero { 0.5 } else { base };
    let value = exp_nonpositive(exponent * ln(safe));
    if zero { 0.0 } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn ln_matches_std() {
        for i in 1..2000 {
            let x = i as f64 * 0.000_731 + 1e-6;
            assert!(close(ln(x), x.ln(), 1e-11) || (ln(x) - x.ln()).abs() < 1e-14, "ln({x})");
        }
        for x in [1e-300, 1e-10, 0.5, 1.0, 2.0, 1e10] {
            assert!((ln(x) - x.ln()).abs() <= 1e-11 * x.ln().abs().max(1.0), "ln({x})");
        }
    }

    #[test]
    fn exp_matches_std() {
        for i in 0..2950 {
            let y = -(i as f64) * 0.237;
            assert!(
                close(exp_nonpositive(y), y.exp(), 1e-12),
                "exp({y}) = {} vs {}",
                exp_nonpositive(y),
                y.exp()
            );
        }
        assert_eq!(exp_nonpositive(-800.0), 0.0);
        assert_eq!(exp_nonpositive(0.0), 1.0);
    }

    #[test]
    fn pow_unit_matches_std_over_the_queueing_range() {
        for i in 0..1000 {
            let base = i as f64 / 1000.0;
            for c in 1..=128 {
                let k = (2.0 * (c as f64 + 1.0)).sqrt() - 1.0;
                let (ours, std) = (pow_unit(base, k), base.powf(k));
                assert!(close(ours, std, 1e-9) || (ours - std).abs() < 1e-300, "{base}^{k}: {ours} vs {std}");
            }
        }
    }
}

//! Small statistics forecasters share: quantiles of samples and of the normal distribution.
//! Pure Rust (`libm` for the logarithm), so a component and its native build agree bit for bit.

/// Quantile of sorted, non-empty data by linear interpolation between order statistics
/// (Hyndman & Fan's type 7, the default of R and NumPy).
pub fn empirical_quantile(sorted: &[f64], level: f64) -> f64 {
    let position = level * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
}

/// The standard normal quantile for a level in (0, 1), by Acklam's rational approximation
/// (relative error below 1.2e-9, far finer than any band needs). The logarithm comes from the
/// pure-Rust `libm`, so the component and the native build give bit-identical bands.
pub fn normal_quantile(level: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    // Below this level (and above its mirror) the central approximation loses accuracy.
    const TAIL: f64 = 0.024_25;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if level < TAIL {
        tail((-2.0 * libm::log(level)).sqrt())
    } else if level > 1.0 - TAIL {
        -tail((-2.0 * libm::log(1.0 - level)).sqrt())
    } else {
        let q = level - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_known_values() {
        assert_eq!(normal_quantile(0.5), 0.0);
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((normal_quantile(0.1) + 1.281_551_566).abs() < 1e-8);
        assert!((normal_quantile(0.001) + 3.090_232_306).abs() < 1e-8);
        let sorted = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(empirical_quantile(&sorted, 0.0), 1.0);
        assert_eq!(empirical_quantile(&sorted, 0.5), 3.0);
        assert!((empirical_quantile(&sorted, 0.9) - 6.8).abs() < 1e-12);
        assert_eq!(empirical_quantile(&sorted, 1.0), 8.0);
    }
}

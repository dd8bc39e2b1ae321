//! From the levels the model answers (by default p10, p50, p90) to the levels a request asks
//! for: linear on the normal scale between the model's levels, and along the outermost
//! segment beyond them. With p10/p50/p90 that is a two-piece normal — each side's spread set
//! by its own outer quantile — so a skewed band stays skewed and a 1 % or 99 % level lands
//! where a normal tail would put it.

use foresight_sdk::stats::normal_quantile;

/// Values at the requested `levels`, from the model's `values` at its (ascending) `known`
/// levels. `values` is sorted first: independently estimated quantiles can cross.
pub fn at_levels(known: &[f64], values: &mut [f64], levels: &[f64], out: &mut Vec<f64>) {
    values.sort_by(f64::total_cmp);
    let z: Vec<f64> = known.iter().map(|&q| normal_quantile(q)).collect();
    for &level in levels {
        if let Some(i) = known.iter().position(|&q| q == level) {
            out.push(values[i]);
            continue;
        }
        out.push(match z.len() {
            0 => f64::NAN,
            1 => values[0],
            n => {
                let target = normal_quantile(level);
                // The segment holding the level, or the outermost one on its side.
                let i = z.partition_point(|&zi| zi <= target).clamp(1, n - 1) - 1;
                let slope = (values[i + 1] - values[i]) / (z[i + 1] - z[i]);
                values[i] + slope * (target - z[i])
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn known_levels_come_back_and_others_follow_a_two_piece_normal() {
        let known = [0.1, 0.5, 0.9];
        let mut values = [80.0, 100.0, 140.0];
        let mut out = Vec::new();
        at_levels(&known, &mut values, &[0.1, 0.5, 0.9], &mut out);
        assert_eq!(out, vec![80.0, 100.0, 140.0]);

        out.clear();
        at_levels(&known, &mut values, &[0.01, 0.25, 0.75, 0.99], &mut out);
        // Below the median the spread is 20 / z(0.9), above it 40 / z(0.9).
        let (low, high) = (20.0 / normal_quantile(0.9), 40.0 / normal_quantile(0.9));
        assert!(close(out[0], 100.0 + low * normal_quantile(0.01)), "{out:?}");
        assert!(close(out[1], 100.0 + low * normal_quantile(0.25)), "{out:?}");
        assert!(close(out[2], 100.0 + high * normal_quantile(0.75)), "{out:?}");
        assert!(close(out[3], 100.0 + high * normal_quantile(0.99)), "{out:?}");
        assert!(out.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn crossed_model_outputs_are_sorted_and_a_single_level_is_a_point() {
        let mut values = [120.0, 100.0, 90.0];
        let mut out = Vec::new();
        at_levels(&[0.1, 0.5, 0.9], &mut values, &[0.1, 0.5, 0.9], &mut out);
        assert_eq!(out, vec![90.0, 100.0, 120.0]);
        out.clear();
        at_levels(&[0.5], &mut [7.0], &[0.05, 0.95], &mut out);
        assert_eq!(out, vec![7.0, 7.0]);
    }

    #[test]
    fn the_normal_quantile_matches_known_values() {
        assert!(close(normal_quantile(0.5), 0.0));
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((normal_quantile(0.1) + 1.281_551_566).abs() < 1e-8);
        assert!((normal_quantile(0.001) + 3.090_232_306).abs() < 1e-8);
    }
}

//! `Moments`, `Extrema` and `Ewma` against naive recomputation.

use std::collections::VecDeque;

use monitor_core::stats::{Ewma, Extrema, Moments, exact_quantile};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::{Naive, QUANTILES, assert_close, series};

/// For each sample, how many removals come before it is added, and which.
fn removals() -> impl Strategy<Value = Vec<(u8, Index, Index)>> {
    prop::collection::vec((0u8..=3, any::<Index>(), any::<Index>()), 400)
}

proptest! {
    #[test]
    fn moments_follow_any_order_of_additions_and_removals(values in series(400), plan in removals()) {
        // Moments alone cannot see the samples it still holds, so a removal
        // leaves rounding of the order of EPSILON * x² for the largest x that
        // ever passed through (the windows recompute to shed it). The
        // tolerance is relative to that history, plus the usual 1e-9.
        let mut moments = Moments::new();
        let mut held: Vec<f64> = Vec::new();
        let mut history = 0.0_f64;
        for (&x, &(removes, first, second)) in values.iter().zip(&plan) {
            for k in 0..removes {
                if held.is_empty() {
                    break;
                }
                let i = if k % 2 == 0 { first.index(held.len()) } else { second.index(held.len()) };
                moments.remove(held.swap_remove(i));
                check_moments(&moments, &held, history)?;
            }
            moments.add(x);
            held.push(x);
            history = history.max(x.abs());
            check_moments(&moments, &held, history)?;
        }
    }

    #[test]
    fn moments_of_additions_alone_are_tight(values in series(400)) {
        let mut moments = Moments::new();
        for (i, &x) in values.iter().enumerate() {
            moments.add(x);
            check_moments(&moments, &values[..=i], 0.0)?;
        }
    }

    #[test]
    fn removing_from_empty_moments_is_a_no_op(x in -1e6..1e6f64) {
        let mut m = Moments::new();
        m.remove(x);
        prop_assert_eq!(m, Moments::new());
    }

    #[test]
    fn extrema_follow_a_fifo(values in series(400), pops in prop::collection::vec(0u8..=3, 400)) {
        let mut extrema = Extrema::new();
        let mut fifo: VecDeque<f64> = VecDeque::new();
        for (&x, &pop) in values.iter().zip(&pops) {
            for _ in 0..pop {
                extrema.pop_front();
                fifo.pop_front();
                check_extrema(&extrema, &fifo)?;
            }
            extrema.push_back(x);
            fifo.push_back(x);
            check_extrema(&extrema, &fifo)?;
        }
        // Draining past empty stays empty and consistent.
        for _ in 0..fifo.len() + 2 {
            extrema.pop_front();
            fifo.pop_front();
            check_extrema(&extrema, &fifo)?;
        }
        extrema.push_back(1.0);
        prop_assert_eq!((extrema.min(), extrema.max()), (Some(1.0), Some(1.0)));
    }

    #[test]
    fn ewma_is_the_weighted_sum_of_its_samples(values in prop::collection::vec(-1e3..1e3f64, 1..200), alpha in 0.001..=1.0f64) {
        // z_n = (1 - a)^n x_0 + sum_{i=1..n} a (1 - a)^(n - i) x_i, pandas' adjust=False.
        let mut z = Ewma::new(alpha);
        prop_assert_eq!(z.value(), None);
        for (n, &x) in values.iter().enumerate() {
            z.add(x);
            let mut want = (1.0 - alpha).powi(n as i32) * values[0];
            for (i, &xi) in values.iter().enumerate().take(n + 1).skip(1) {
                want += alpha * (1.0 - alpha).powi((n - i) as i32) * xi;
            }
            assert_close("ewma", z.value(), Some(want), 1e-9 * 1e3)?;
        }
    }

    #[test]
    fn ewma_half_life_halves_the_weight(h in 0.5..1e4f64) {
        let a = Ewma::from_half_life(h).alpha();
        prop_assert!((0.0..=1.0).contains(&a));
        // (1 - a)^h = 1/2.
        prop_assert!(((1.0 - a).powf(h) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn exact_quantile_is_the_nearest_rank(values in series(200), q in 0.0..=1.0f64) {
        let naive = Naive::of(&values);
        for q in QUANTILES.iter().copied().chain([q]) {
            let mut scratch = values.clone();
            prop_assert_eq!(exact_quantile(&mut scratch, q), naive.quantile(q), "q = {}", q);
        }
        let mut scratch = values.clone();
        prop_assert_eq!(exact_quantile(&mut scratch, 1.5), None);
        prop_assert_eq!(exact_quantile(&mut scratch, -0.1), None);
    }
}

/// Checks `m` against `held`; `history` is the largest magnitude removed
/// samples may have had (0 when nothing was removed).
fn check_moments(m: &Moments, held: &[f64], history: f64) -> Result<(), TestCaseError> {
    let naive = Naive::of(held);
    prop_assert_eq!(m.count(), held.len() as u64);
    let mean = (!held.is_empty()).then_some(naive.mean);
    assert_close("mean", m.mean(), mean, naive.mean_tol() + 1e-12 * history)?;
    let var_tol = naive.variance_tol() + 1e-12 * history * history;
    assert_close("variance", m.variance(), naive.variance(), var_tol)?;
    assert_close("sample variance", m.sample_variance(), naive.sample_variance(), 2.0 * var_tol)?;
    assert_close("std dev", m.std_dev(), naive.variance().map(f64::sqrt), var_tol.sqrt())?;
    Ok(())
}

fn check_extrema(e: &Extrema, fifo: &VecDeque<f64>) -> Result<(), TestCaseError> {
    let min = fifo.iter().copied().reduce(f64::min);
    let max = fifo.iter().copied().reduce(f64::max);
    prop_assert_eq!((e.min(), e.max()), (min, max), "window {:?}", fifo);
    Ok(())
}

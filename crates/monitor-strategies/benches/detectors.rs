//! Throughput of the detectors and the two-sample statistics.
//!
//! ```text
//! cargo bench -p monitor-strategies --bench detectors -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Streams come from `monitor_strategies::synth`; `scripts/bench_peers.py`
//! times River, SciPy and numpy on the same data and prints the ratios.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use monitor_core::detector::DriftStatus;
use monitor_strategies::stats::{Bins, SortedSample, ks_2samp, ks_2samp_sorted, psi, psi_binned, sort_f64};
use monitor_strategies::synth::{Segment, bernoulli_stream, gaussian_stream};
use monitor_strategies::{Adwin, Cusum, Ddm, Eddm, Ewma, HddmA, HddmW, Kswin, PageHinkley};

/// 1M samples: 500 000 of N(0, 1), then 500 000 of N(0.5, 1).
fn gauss() -> Vec<f64> {
    gaussian_stream(1, &[Segment::new(500_000, 0.0, 1.0), Segment::new(500_000, 0.5, 1.0)])
}

/// 1M error indicators: rate 0.1, then 0.3.
fn errors() -> Vec<f64> {
    bernoulli_stream(2, &[Segment::bernoulli(500_000, 0.1), Segment::bernoulli(500_000, 0.3)])
}

fn run<D>(xs: &[f64], mut d: D, mut update: impl FnMut(&mut D, f64) -> DriftStatus) -> usize {
    let mut drifts = 0;
    for &x in xs {
        drifts += usize::from(update(&mut d, black_box(x)) == DriftStatus::Drift);
    }
    drifts
}

fn streaming(c: &mut Criterion) {
    let g = gauss();
    let e = errors();
    let mut group = c.benchmark_group("update");
    group.sample_size(10);
    group.throughput(Throughput::Elements(g.len() as u64));
    group.bench_function("adwin", |b| b.iter(|| run(&g, Adwin::default(), Adwin::update)));
    group.bench_function("page_hinkley", |b| b.iter(|| run(&g, PageHinkley::default(), PageHinkley::update)));
    group.bench_function("cusum", |b| b.iter(|| run(&g, Cusum::default(), Cusum::update)));
    group.bench_function("ewma", |b| b.iter(|| run(&g, Ewma::default(), Ewma::update)));
    group.bench_function("ddm", |b| b.iter(|| run(&e, Ddm::default(), Ddm::update)));
    group.bench_function("eddm", |b| b.iter(|| run(&e, Eddm::default(), Eddm::update)));
    group.bench_function("hddm_a", |b| b.iter(|| run(&e, HddmA::default(), HddmA::update)));
    group.bench_function("hddm_w", |b| b.iter(|| run(&e, HddmW::default(), HddmW::update)));
    let short = &g[..100_000];
    group.throughput(Throughput::Elements(short.len() as u64));
    group.bench_function("kswin", |b| b.iter(|| run(short, Kswin::default(), Kswin::update)));
    group.finish();
}

fn two_sample(c: &mut Criterion) {
    let mut group = c.benchmark_group("stats");
    group.sample_size(10);
    // Same distribution (the usual case) and a 0.01-sigma shift, which for
    // 1M samples pushes the p-value into the long Smirnov sum.
    for (n, shift) in [(10_000usize, 0.0), (10_000, 0.05), (1_000_000, 0.0), (1_000_000, 0.01)] {
        let reference = SortedSample::new(gaussian_stream(3, &[Segment::new(n, 0.0, 1.0)]));
        let current = gaussian_stream(4, &[Segment::new(n, shift, 1.0)]);
        // The reference is sorted once, outside; the current window is sorted in the timing.
        group.bench_function(format!("ks_2samp_presorted_{n}_shift_{shift}"), |b| {
            b.iter_batched_ref(
                || current.clone(),
                |cur| {
                    sort_f64(cur);
                    ks_2samp_sorted(reference.as_slice(), cur)
                },
                BatchSize::LargeInput,
            )
        });
    }
    let reference = SortedSample::new(gaussian_stream(5, &[Segment::new(100_000, 0.0, 1.0)]));
    let bins = Bins::from_sorted(&reference, 10);
    let current = gaussian_stream(6, &[Segment::new(1_000_000, 0.1, 1.0)]);
    group.bench_function("psi_1000000", |b| b.iter(|| psi_binned(&bins, black_box(&current))));

    // As a user calls them: two unsorted samples of 500 000; `ks_2samp`
    // sorts both, `psi` finds the reference's quantile edges itself.
    let reference = gaussian_stream(7, &[Segment::new(500_000, 0.0, 1.0)]);
    for shift in [0.0, 0.01] {
        let current = gaussian_stream(8, &[Segment::new(500_000, shift, 1.0)]);
        group.bench_function(format!("ks_2samp_user_500000_shift_{shift}"), |b| {
            b.iter(|| ks_2samp(black_box(&reference), black_box(&current)))
        });
    }
    let current = gaussian_stream(8, &[Segment::new(500_000, 0.1, 1.0)]);
    group.bench_function("psi_user_500000", |b| b.iter(|| psi(black_box(&reference), black_box(&current), 10)));
    group.finish();
}

criterion_group!(benches, streaming, two_sample);
criterion_main!(benches);

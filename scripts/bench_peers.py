"""Times River, SciPy and numpy on the data the criterion benches use, and
prints a table with the Rust numbers and the ratios.

    cargo bench -p monitor-strategies --bench detectors -- --warm-up-time 1 --measurement-time 3
    python3 scripts/bench_peers.py

The Rust numbers are read from target/criterion (the mean of the last run);
the peers are timed here, in the same run of this script, on streams from
streams.py (bit-identical to monitor_strategies::synth).
"""

import json
import os
import time

import numpy as np
import river
import scipy
from river import drift
from scipy import stats

from streams import bernoulli_stream, gaussian_stream

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CRITERION = os.path.join(ROOT, "target", "criterion")


def best_of(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def per_update(make, xs, repeat=3):
    def run():
        d = make()
        for x in xs:
            d.update(x)
    return best_of(run, repeat) / len(xs)


def rust_float(x):
    """A float as Rust's `{}` prints it (0 rather than 0.0)."""
    return repr(x).rstrip("0").rstrip(".") if "." in repr(x) else repr(x)


def rust(name):
    path = os.path.join(CRITERION, *name.split("/"), "new", "estimates.json")
    try:
        with open(path) as fh:
            return json.load(fh)["mean"]["point_estimate"] * 1e-9
    except OSError:
        return None


def main():
    n = 200_000
    gauss = gaussian_stream(1, [(n // 2, 0.0, 1.0), (n // 2, 0.5, 1.0)])
    errs = [x == 1.0 for x in bernoulli_stream(2, [(n // 2, 0.1), (n // 2, 0.3)])]
    rows = []

    def streaming(name, make, xs, per=1_000_000):
        peer = per_update(make, xs)
        mine = rust(f"update/{name}")
        rows.append((f"`{name}` update", mine / per if mine else None, peer, f"River {river.__version__}"))

    streaming("adwin", drift.ADWIN, gauss)
    streaming("page_hinkley", drift.PageHinkley, gauss)
    streaming("ddm", drift.binary.DDM, errs)
    streaming("eddm", drift.binary.EDDM, errs)
    streaming("hddm_a", drift.binary.HDDMA, errs)
    streaming("hddm_w", drift.binary.HDDMW, errs)
    streaming("kswin", lambda: drift.KSWIN(seed=42), gauss[:3000], per=100_000)

    for size, shift in [(10_000, 0.0), (10_000, 0.05), (1_000_000, 0.0), (1_000_000, 0.01)]:
        ref = np.array(gaussian_stream(3, [(size, 0.0, 1.0)]))
        cur = np.array(gaussian_stream(4, [(size, shift, 1.0)]))
        peer = best_of(lambda: stats.ks_2samp(ref, cur), 3)
        rows.append((
            f"`ks_2samp` {size} vs {size}, shift {shift}",
            rust(f"stats/ks_2samp_presorted_{size}_shift_{rust_float(shift)}"),
            peer,
            f"SciPy {scipy.__version__} (sorts both)",
        ))

    ref = np.array(gaussian_stream(5, [(100_000, 0.0, 1.0)]))
    cur = np.array(gaussian_stream(6, [(1_000_000, 0.1, 1.0)]))

    def numpy_psi():
        edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
        r = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1) / len(ref)
        c = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1) / len(cur)
        r = np.where(r == 0, 1e-4, r)
        c = np.where(c == 0, 1e-4, c)
        return np.sum((c - r) * np.log(c / r))

    def numpy_psi_current_only(edges=np.unique(np.quantile(ref, np.arange(1, 10) / 10))):
        return np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1)

    rows.append(("`psi` 1M current, reference bins precomputed", rust("stats/psi_1000000"),
                 best_of(numpy_psi), f"numpy {np.__version__}, quantiles included"))
    rows.append(("`psi` 1M current, reference bins precomputed", rust("stats/psi_1000000"),
                 best_of(numpy_psi_current_only), f"numpy {np.__version__}, binning the current only"))

    # As a user calls them: two unsorted samples of 500 000.
    ref = np.array(gaussian_stream(7, [(500_000, 0.0, 1.0)]))
    for shift in [0.0, 0.01]:
        cur = np.array(gaussian_stream(8, [(500_000, shift, 1.0)]))
        rows.append((
            f"`ks_2samp(reference, current)` 500000 vs 500000 unsorted, shift {shift}",
            rust(f"stats/ks_2samp_user_500000_shift_{rust_float(shift)}"),
            best_of(lambda: stats.ks_2samp(ref, cur), 5),
            f"SciPy {scipy.__version__}",
        ))
    cur = np.array(gaussian_stream(8, [(500_000, 0.1, 1.0)]))
    rows.append(("`psi(reference, current, 10)` 500000 vs 500000, edges computed", rust("stats/psi_user_500000"),
                 best_of(numpy_psi, 5), f"numpy {np.__version__}, quantiles included"))

    print("| benchmark | model-monitor | peer | peer time | speed-up |")
    print("| --- | ---: | --- | ---: | ---: |")
    for name, mine, peer, who in rows:
        def fmt(t):
            if t is None:
                return "n/a"
            if t < 1e-6:
                return f"{t * 1e9:.1f} ns"
            if t < 1e-3:
                return f"{t * 1e6:.1f} µs"
            return f"{t * 1e3:.1f} ms"
        ratio = f"{peer / mine:.0f}×" if mine else "n/a"
        print(f"| {name} | {fmt(mine)} | {who} | {fmt(peer)} | {ratio} |")


if __name__ == "__main__":
    main()

"""CBPE and PCA reconstruction drift, NannyML 0.13.1 against model-monitor,
in one run on the same data, for docs/PERFORMANCE.md.

    pip install nannyml==0.13.1 pyarrow
    CARGO_BUILD_JOBS=1 cargo build --release -p monitor-cli
    NML_DISABLE_USAGE_LOGGING=1 python3 scripts/bench_nannyml_estimation.py [--dir DIR] [--runs 3]

Writes two Parquet files (and their 250k-record cuts) and a config for each
task into DIR (a new temporary directory by default):

- CBPE: a binary classifier, 50,000 labelled reference records then
  1,000,000 analysis records without labels (the second half shifted
  towards the decision boundary, where the model is less sure); chunks of
  5,000; all six metrics (accuracy, precision, recall, F1, specificity,
  ROC AUC) estimated.
- Reconstruction: 50,000 reference records then 1,000,000 analysis
  records of 20 numeric features driven by 5 latent factors; in the second
  half five features change sign against the factors (their marginals are
  unchanged, their correlations flip); chunks of 5,000; 65% of the
  variance kept.

Each tool runs as its own process, timed whole (wall time, from start to
exit: imports, reading the file, fitting, every chunk) with its peak RSS
from the kernel (`wait4`'s ru_maxrss); the median of `--runs` runs is
printed, with the ratios. NannyML reads the Parquet file with pandas, fits
on the reference rows and computes the analysis rows; its own fit and
compute time (without imports and reading) is printed beside. model-monitor
is `model-monitor replay FILE --config CONFIG --format json --shards 1`:
the file streamed a row group at a time, the values of each window given
to an `adaptive_threshold` (mean ± 3σ of the reference windows, as
NannyML's thresholds). Each tool then runs once on the 250k cut, to show
whether peak memory grows with the stream.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BINARY = os.path.join(ROOT, "target", "release", "model-monitor")

REFERENCE = 50_000
ANALYSIS = 1_000_000
SHORT = 250_000
CHUNK = 5_000
FEATURES = [f"f{i:02}" for i in range(20)]
METRICS = ["roc_auc", "f1", "precision", "recall", "specificity", "accuracy"]
ROW_GROUP = 65_536

CBPE_CONFIG = f"""
[input]
default_model = "bench"
ts = "ts"
prediction = "y_pred"
label = "y_true"
metrics = ["y_pred_proba"]

[[performance]]
problem = "binary"
score = "metrics.y_pred_proba"
window = {CHUNK}
estimate = {{ reference = {REFERENCE} }}

[[monitors]]
signal = "estimated.*"
detector = {{ kind = "adaptive_threshold", window = 1, reference_windows = {REFERENCE // CHUNK} }}
"""

# The same input read and routed through the engine with nothing computed:
# what reading a record costs before any estimate or reconstruction.
CBPE_BASELINE = CBPE_CONFIG.split("[[performance]]")[0]

RECON_CONFIG = f"""
[input]
default_model = "bench"
ts = "ts"
features = {json.dumps(FEATURES)}

[[reconstruction]]
features = {json.dumps(FEATURES)}
window = {CHUNK}
reference = {REFERENCE}

[[monitors]]
signal = "multivariate.reconstruction_error"
detector = {{ kind = "adaptive_threshold", window = 1, reference_windows = {REFERENCE // CHUNK} }}
"""

RECON_BASELINE = RECON_CONFIG.split("[[reconstruction]]")[0]

# What the NannyML child process runs: read, fit on the reference rows,
# compute the analysis rows; prints its own fit and compute time and the
# chunks it flagged.
NANNYML_CBPE = f"""
import json, os, sys, time
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
import nannyml as nml
import pandas as pd
df = pd.read_parquet(sys.argv[1])
reference = df.iloc[:{REFERENCE}].copy()
reference["y_true"] = reference["y_true"].astype(int)
analysis = df.iloc[{REFERENCE}:].drop(columns=["y_true"])
t = time.perf_counter()
cbpe = nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="y_true", metrics={METRICS!r},
                chunk_size={CHUNK}, problem_type="classification_binary")
cbpe.fit(reference)
result = cbpe.estimate(analysis).to_df()
elapsed = time.perf_counter() - t
alerts = sum(int(result[(m, "alert")].sum()) for m in {METRICS!r})
print(json.dumps({{"compute": elapsed, "alerts": alerts, "chunks": len(result)}}))
"""

NANNYML_RECON = f"""
import json, os, sys, time
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
import nannyml as nml
import pandas as pd
df = pd.read_parquet(sys.argv[1])
reference = df.iloc[:{REFERENCE}]
analysis = df.iloc[{REFERENCE}:]
t = time.perf_counter()
calc = nml.DataReconstructionDriftCalculator(column_names={FEATURES!r}, chunk_size={CHUNK})
calc.fit(reference)
result = calc.calculate(analysis).to_df()
elapsed = time.perf_counter() - t
alerts = int(result[("reconstruction_error", "alert")].sum())
print(json.dumps({{"compute": elapsed, "alerts": alerts, "chunks": len(result)}}))
"""


def timestamps(n):
    return pa.array(np.datetime64("2024-01-01T00:00:00", "s") + np.arange(n), type=pa.timestamp("s"))


def write(path, columns, rows):
    table = pa.table({name: col[:rows] if not isinstance(col, pa.Array) else col.slice(0, rows) for name, col in columns.items()})
    pq.write_table(table, path, row_group_size=ROW_GROUP, compression="snappy")


def cbpe_data(rng):
    """Scores of a slightly overconfident model; labels from the true
    probability; the analysis' second half moves towards the boundary."""
    n = REFERENCE + ANALYSIS
    x = rng.normal(0.0, 1.0, n)
    shifted = REFERENCE + ANALYSIS // 2
    x[shifted:] = rng.normal(0.0, 0.6, n - shifted)
    truth = 1.0 / (1.0 + np.exp(-2.0 * x))
    y_true = rng.random(n) < truth
    score = np.round(1.0 / (1.0 + np.exp(-2.6 * x - 0.1)), 4)
    label = pa.array(np.where(y_true, 1, 0), mask=np.arange(n) >= REFERENCE, type=pa.int64())
    return {
        "ts": timestamps(n),
        "y_pred_proba": score,
        "y_pred": (score >= 0.5).astype(np.int64),
        "y_true": label,
    }


def recon_data(rng):
    """20 features from 5 latent factors plus noise; in the analysis'
    second half features 0 to 4 load on the factors with the opposite sign."""
    n = REFERENCE + ANALYSIS
    latent = rng.normal(0.0, 1.0, (n, 5))
    loadings = rng.normal(0.0, 1.0, (5, 20))
    x = latent @ loadings + rng.normal(0.0, 0.5, (n, 20))
    shifted = REFERENCE + ANALYSIS // 2
    flipped = latent[shifted:] @ (-loadings[:, :5]) + rng.normal(0.0, 0.5, (n - shifted, 5))
    x[shifted:, :5] = flipped
    columns = {"ts": timestamps(n)}
    for j, name in enumerate(FEATURES):
        columns[name] = np.round(x[:, j], 6)
    return columns


def run(cmd, env=None):
    """Runs `cmd` to completion: (wall seconds, peak RSS in MiB, stdout).

    The peak RSS is GNU time's (`%M`, the child's ru_maxrss): run under
    this script directly, a child's ru_maxrss would start from this
    process's own RSS, which holds the generated data, because Linux
    carries the high-water mark across fork and exec."""
    out = tempfile.TemporaryFile()
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        start = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd],
            stdout=out,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        wall = time.perf_counter() - start
        peak = int(rss.read().split()[-1]) / 1024.0
    out.seek(0)
    text = out.read().decode()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.decode()[-2000:]}")
    return wall, peak, text


def model_monitor(data, config, env=None):
    def go():
        cmd = [BINARY, "replay", data, "--config", config, "--format", "json", "--shards", "1"]
        wall, rss, out = run(cmd, env)
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        findings = [e for e in events if e["type"] == "finding"]
        first = min((e["seq"] for e in findings), default=None)
        detail = f"{len(findings)} findings, first at record {first}"
        return wall, rss, detail, None
    return go


def nannyml(data, code):
    def go():
        wall, rss, out = run([sys.executable, "-c", code, data])
        summary = json.loads(out.strip().splitlines()[-1])
        detail = f"{summary['alerts']} alerts in {summary['chunks']} chunks"
        return wall, rss, detail, summary["compute"]
    return go


def median_of(go, runs):
    results = [go() for _ in range(runs)]
    wall = statistics.median(r[0] for r in results)
    rss = statistics.median(r[1] for r in results)
    computes = [r[3] for r in results if r[3] is not None]
    compute = statistics.median(computes) if computes else None
    return wall, rss, results[-1][2], compute, [r[0] for r in results]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", help="where to write the data (default: a new temporary directory)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep the Parquet files already in --dir")
    args = parser.parse_args()
    if not os.path.exists(BINARY):
        sys.exit(f"{BINARY} is missing: cargo build --release -p monitor-cli")
    work = args.dir or tempfile.mkdtemp(prefix="bench-nannyml-")
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(20240101)

    tasks = []
    for name, make, config, baseline, code in [
        ("CBPE, 6 metrics", cbpe_data, CBPE_CONFIG, CBPE_BASELINE, NANNYML_CBPE),
        ("reconstruction, 20 features", recon_data, RECON_CONFIG, RECON_BASELINE, NANNYML_RECON),
    ]:
        stem = "cbpe" if name.startswith("CBPE") else "recon"
        columns = make(rng)
        full = os.path.join(work, f"{stem}.parquet")
        short = os.path.join(work, f"{stem}_250k.parquet")
        if not (args.reuse and os.path.exists(full) and os.path.exists(short)):
            write(full, columns, REFERENCE + ANALYSIS)
            write(short, columns, REFERENCE + SHORT)
        toml = os.path.join(work, f"{stem}.toml")
        with open(toml, "w") as f:
            f.write(config)
        bare = os.path.join(work, f"{stem}_baseline.toml")
        with open(bare, "w") as f:
            f.write(baseline)
        tasks.append((name, full, short, toml, bare, code))

    print(f"data in {work}; {args.runs} runs each, median; load average {os.getloadavg()}")
    print()
    rows = []
    for name, full, short, toml, bare, code in tasks:
        mm = median_of(model_monitor(full, toml), args.runs)
        mm_bare = median_of(model_monitor(full, bare), args.runs)
        nml = median_of(nannyml(full, code), args.runs)
        mm_short = median_of(model_monitor(short, toml), 1)
        nml_short = median_of(nannyml(short, code), 1)
        # mimalloc keeps freed pages a while before returning them: without
        # that delay, what the process holds is seen.
        eager = {"MIMALLOC_PURGE_DELAY": "0"}
        mm_eager = median_of(model_monitor(full, toml, eager), 1)
        mm_eager_short = median_of(model_monitor(short, toml, eager), 1)
        rows.append((name, mm, nml, mm_short, nml_short))
        print(f"## {name}: {REFERENCE:,} reference + {ANALYSIS:,} analysis records, chunks of {CHUNK:,}")
        print(f"  model-monitor: {mm[0]:.2f} s wall (runs {', '.join(f'{w:.2f}' for w in mm[4])}), "
              f"peak RSS {mm[1]:.0f} MiB; {mm[2]}")
        print(f"  model-monitor reading and routing the same records, nothing computed: {mm_bare[0]:.2f} s wall, "
              f"peak RSS {mm_bare[1]:.0f} MiB")
        print(f"  NannyML 0.13.1: {nml[0]:.2f} s wall (runs {', '.join(f'{w:.2f}' for w in nml[4])}), "
              f"fit + compute {nml[3]:.2f} s, peak RSS {nml[1]:.0f} MiB; {nml[2]}")
        print(f"  ratio (NannyML / model-monitor): wall {nml[0] / mm[0]:.1f}x, "
              f"NannyML's fit + compute alone {nml[3] / mm[0]:.1f}x, peak RSS {nml[1] / mm[1]:.1f}x")
        print(f"  peak RSS at {SHORT:,} analysis records: model-monitor {mm_short[1]:.0f} MiB "
              f"({mm_short[0]:.2f} s), NannyML {nml_short[1]:.0f} MiB ({nml_short[0]:.2f} s)")
        print(f"  model-monitor with MIMALLOC_PURGE_DELAY=0: peak RSS {mm_eager_short[1]:.0f} MiB at {SHORT:,}, "
              f"{mm_eager[1]:.0f} MiB at {ANALYSIS:,} ({mm_eager[0]:.2f} s)")
        print()
    print(f"load average after: {os.getloadavg()}")
    print()
    print("| task | model-monitor wall | NannyML wall (fit + compute) | speed-up | model-monitor peak RSS 250k / 1M | NannyML peak RSS 250k / 1M |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, mm, nml, mm_short, nml_short in rows:
        print(f"| {name} | {mm[0]:.2f} s | {nml[0]:.2f} s ({nml[3]:.2f} s) | {nml[0] / mm[0]:.0f}× "
              f"| {mm_short[1]:.0f} / {mm[1]:.0f} MiB | {nml_short[1]:.0f} / {nml[1]:.0f} MiB |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""model-monitor against NannyML and a pandas + SciPy loop: the same job on
the same data, whole process (imports, reading, computing), in one run.

    NML_DISABLE_USAGE_LOGGING=1 python3 scripts/compare_peers.py \
        --bin target/release/model-monitor --dir /tmp/peers [--wide-rows 1000000]

Three jobs, each timed as a child process under /usr/bin/time (wall time and
peak RSS), median of --repeat runs (3):

1. car-loan (NannyML's synthetic car-loan data, 50,000 reference + 50,000
   analysis rows): KS on the four numeric and chi-square on the three
   categorical features, chunks of 5,000. NannyML's UnivariateDriftCalculator
   reads the rows from Parquet; `model-monitor replay` reads them as NDJSON.
2. 10,000 models x 5 numeric signals: KS per model and signal, the first
   `--per-model / 2` records of each model the reference and the rest one
   window. A pandas (read from Parquet) + scipy.stats.ks_2samp loop against
   `model-monitor replay` of the same rows as NDJSON, with the default shard
   count and with `--shards 1`.
3. Wide: --wide-rows x 20 numeric features, KS per feature against the first
   50,000 rows, chunks of 5,000: NannyML reading Parquet, model-monitor
   reading NDJSON.

Then it checks the findings: the chunks each side flags, and where the
methods are the same (chi-square statistics; KS D and p-values against
scipy.stats.ks_2samp on the same samples) the largest absolute difference.
model-monitor reports a window's values when its state changes (a finding or
a recovery), so values are compared on those windows; a chunk's flag is the
state after its window.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

CHUNK = 5000
REFERENCE = 50_000
CAR_NUMERIC = ["car_value", "debt_to_income_ratio", "loan_length", "driver_tenure"]
CAR_CATEGORICAL = ["salary_range", "repaid_loan_on_prev_car", "size_of_downpayment"]
SIGNALS = 5
WIDE_FEATURES = 20


def write_ndjson(path, records):
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r, separators=(",", ":")))
            f.write("\n")


def config(path, monitors):
    with open(path, "w") as f:
        for signal, kind, reference, window in monitors:
            f.write(
                f'[[monitors]]\nsignal = "{signal}"\ndetector = {{ kind = "{kind}", '
                f"reference = {reference}, window = {window}, alpha = 0.05, "
                'correction = "none", min_effect = 0.0 }\n'
            )


# --- data -----------------------------------------------------------------


def prepare(d, wide_rows, models, per_model):
    import nannyml as nml
    import numpy as np
    import pandas as pd

    reference, analysis, _ = nml.load_synthetic_car_loan_dataset()
    rows = pd.concat([reference, analysis], ignore_index=True)[CAR_NUMERIC + CAR_CATEGORICAL]
    rows.to_parquet(os.path.join(d, "car.parquet"))
    cols = list(rows.columns)
    write_ndjson(
        os.path.join(d, "car.ndjson"),
        (
            {"model": "car-loan", "id": str(i), "features": {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(cols, r)}}
            for i, r in enumerate(rows.itertuples(index=False))
        ),
    )
    config(
        os.path.join(d, "car.toml"),
        [(f"features.{c}", "ks", REFERENCE, CHUNK) for c in CAR_NUMERIC]
        + [(f"features.{c}", "chi_square", REFERENCE, CHUNK) for c in CAR_CATEGORICAL],
    )

    # Many models: one round of `per_model / 2` reference records per model,
    # then one window; a tenth of the models shift one signal by 0.5 sigma.
    rng = np.random.default_rng(7)
    half = per_model // 2
    values = rng.normal(size=(models, per_model, SIGNALS)).round(4)
    values[: models // 10, half:, 0] += 0.5
    frame = pd.DataFrame(
        {
            "model": np.repeat([f"m{m}" for m in range(models)], per_model),
            "pos": np.tile(np.arange(per_model), models),
            **{f"s{s}": values[:, :, s].ravel() for s in range(SIGNALS)},
        }
    )
    frame.to_parquet(os.path.join(d, "many.parquet"))
    listed = values.tolist()
    with open(os.path.join(d, "many.ndjson"), "w") as f:
        for pos in range(per_model):
            for m in range(models):
                v = listed[m][pos]
                f.write(
                    f'{{"model":"m{m}","features":{{"s0":{v[0]!r},"s1":{v[1]!r},"s2":{v[2]!r},"s3":{v[3]!r},"s4":{v[4]!r}}}}}\n'
                )
    config(os.path.join(d, "many.toml"), [("features.*", "ks", half, per_model - half)])

    # Wide: 20 features, the last 10 drifting (mean and scale) after 60% of rows.
    wide = rng.normal(size=(wide_rows, WIDE_FEATURES)).round(4)
    cut = int(wide_rows * 0.6)
    wide[cut:, 10:] = wide[cut:, 10:] * 1.1 + 0.05
    names = [f"f{i}" for i in range(WIDE_FEATURES)]
    pd.DataFrame(wide, columns=names).to_parquet(os.path.join(d, "wide.parquet"))
    with open(os.path.join(d, "wide.ndjson"), "w") as f:
        for row in wide:
            f.write('{"model":"wide","features":{' + ",".join(f'"f{i}":{x!r}' for i, x in enumerate(row.tolist())) + "}}\n")
    config(os.path.join(d, "wide.toml"), [("features.*", "ks", REFERENCE, CHUNK)])


# --- the peers, run as child processes ------------------------------------


def worker_nannyml(parquet, out, numeric, categorical):
    import nannyml as nml
    import pandas as pd

    rows = pd.read_parquet(parquet)
    reference, analysis = rows.iloc[:REFERENCE], rows.iloc[REFERENCE:]
    calc = nml.UnivariateDriftCalculator(
        column_names=numeric + categorical,
        treat_as_categorical=categorical,
        continuous_methods=["kolmogorov_smirnov"],
        categorical_methods=["chi2"],
        chunk_size=CHUNK,
    )
    calc.fit(reference)
    df = calc.calculate(analysis).filter(period="analysis").to_df()
    result = {}
    for c in numeric + categorical:
        method = "chi2" if c in categorical else "kolmogorov_smirnov"
        result[c] = {
            "value": df[(c, method, "value")].tolist(),
            "alert": [bool(a) for a in df[(c, method, "alert")]],
        }
    with open(out, "w") as f:
        json.dump(result, f)


def worker_evidently(parquet, out):
    """Evidently 0.7's `ValueDrift` per column and chunk: KS on the numeric
    columns, chi-square on the categorical ones, p-values at 0.05."""
    import pandas as pd
    from evidently import Report
    from evidently.metrics import ValueDrift

    rows = pd.read_parquet(parquet)
    reference, analysis = rows.iloc[:REFERENCE], rows.iloc[REFERENCE:]
    metrics = [ValueDrift(column=c, method="ks") for c in CAR_NUMERIC]
    metrics += [ValueDrift(column=c, method="chisquare") for c in CAR_CATEGORICAL]
    result = {c: {"p_value": []} for c in CAR_NUMERIC + CAR_CATEGORICAL}
    for start in range(0, len(analysis), CHUNK):
        snapshot = Report(metrics).run(current_data=analysis.iloc[start : start + CHUNK], reference_data=reference)
        for m in snapshot.dict()["metrics"]:
            result[m["config"]["column"]]["p_value"].append(float(m["value"]))
    with open(out, "w") as f:
        json.dump(result, f)


def worker_pandas(parquet, out):
    import pandas as pd
    from scipy.stats import ks_2samp

    frame = pd.read_parquet(parquet)
    half = (frame["pos"].max() + 1) // 2
    result = {}
    for model, rows in frame.groupby("model", sort=False):
        ref = rows[rows["pos"] < half]
        cur = rows[rows["pos"] >= half]
        for s in range(SIGNALS):
            t = ks_2samp(ref[f"s{s}"].to_numpy(), cur[f"s{s}"].to_numpy())
            result[f"{model}/features.s{s}"] = [float(t.statistic), float(t.pvalue)]
    with open(out, "w") as f:
        json.dump(result, f)


def timed(cmd, stdout_path):
    tfile = stdout_path + ".time"
    with open(stdout_path, "w") as out:
        subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", tfile] + cmd, stdout=out, check=True)
    with open(tfile) as f:
        wall, rss = f.read().split()[-2:]
    return float(wall), int(rss) / 1024


def measure(name, cmd, stdout_path, repeat):
    runs = [timed(cmd, stdout_path) for _ in range(repeat)]
    walls = sorted(w for w, _ in runs)
    rss = statistics.median(r for _, r in runs)
    print(f"  {name}: {', '.join(f'{w:.2f}' for w in walls)} s, peak {rss:.0f} MiB", flush=True)
    return {"min": walls[0], "median": statistics.median(walls), "rss": rss}


def events(path):
    """`signal -> [(seq, type, statistic, p_value)]` of one model's findings and recoveries."""
    out = {}
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            if e.get("type") in ("finding", "recovered"):
                out.setdefault((e["model"], e["signal"]), []).append(
                    (e["seq"], e["type"], e.get("statistic"), e.get("p_value"))
                )
    return out


def flags_by_chunk(evs, chunks, first_seq):
    """A chunk's flag: the state after its window (a finding opens, a recovery closes)."""
    state, flags, by_chunk = False, [], {}
    for seq, kind, stat, p in evs:
        by_chunk[(seq - first_seq + 1) // CHUNK - 1] = (kind, stat, p)
    for k in range(chunks):
        if k in by_chunk:
            state = by_chunk[k][0] == "finding"
        flags.append(state)
    return flags, by_chunk


def chunk_samples(parquet, column, k):
    import pandas as pd

    s = pd.read_parquet(parquet, columns=[column])[column]
    return s.iloc[:REFERENCE].dropna(), s.iloc[REFERENCE + k * CHUNK : REFERENCE + (k + 1) * CHUNK].dropna()


def compare_chunked(d, name, nml_out, mm_out, numeric, categorical, model):
    from scipy.stats import chi2_contingency, ks_2samp
    import pandas as pd

    with open(nml_out) as f:
        nml_res = json.load(f)
    evs = events(mm_out)
    parquet = os.path.join(d, f"{name}.parquet")
    chunks = len(next(iter(nml_res.values()))["alert"])
    same_flags, ks_d, ks_p, ks_nml_d, chi = 0, 0.0, 0.0, 0.0, 0.0
    print(f"  flags per chunk of the analysis period (NannyML | model-monitor), X = flagged:")
    for c in numeric + categorical:
        flags, by_chunk = flags_by_chunk(evs.get((model, f"features.{c}"), []), chunks, REFERENCE)
        nml_flags = nml_res[c]["alert"]
        same_flags += flags == nml_flags
        row = lambda fl: "".join("X" if x else "." for x in fl)  # noqa: E731
        print(f"    {c:<26} {row(nml_flags)} | {row(flags)}")
        for k, (_, stat, p) in by_chunk.items():
            ref, cur = chunk_samples(parquet, c, k)
            if c in numeric:
                t = ks_2samp(ref.to_numpy(), cur.to_numpy())
                ks_d = max(ks_d, abs(stat - t.statistic))
                ks_p = max(ks_p, abs(p - t.pvalue))
                ks_nml_d = max(ks_nml_d, abs(stat - nml_res[c]["value"][k]))
            else:
                table = pd.concat([ref.value_counts(), cur.value_counts()], axis=1).fillna(0)
                s, _, _, _ = chi2_contingency(table)
                chi = max(chi, abs(stat - s), abs(stat - nml_res[c]["value"][k]))
    return {
        "same_flags": f"{same_flags} of {len(numeric + categorical)} features",
        "ks_d_vs_scipy": ks_d,
        "ks_p_vs_scipy": ks_p,
        "ks_d_vs_nannyml_binned": ks_nml_d,
        "chi2_vs_nannyml_and_scipy": chi,
    }


def compare_evidently(ev_out, mm_out):
    """Evidently's p-values against model-monitor's on the windows it reported,
    and the chunks each flags at p < 0.05."""
    with open(ev_out) as f:
        ev = json.load(f)
    evs = events(mm_out)
    chunks = len(next(iter(ev.values()))["p_value"])
    same_flags, p_diff = 0, 0.0
    for c, res in ev.items():
        flags, by_chunk = flags_by_chunk(evs.get(("car-loan", f"features.{c}"), []), chunks, REFERENCE)
        same_flags += flags == [p < 0.05 for p in res["p_value"]]
        for k, (_, _, p) in by_chunk.items():
            if p is not None:
                p_diff = max(p_diff, abs(p - res["p_value"][k]))
    return {"same_flags": f"{same_flags} of {len(ev)} features", "p_value_vs_evidently": p_diff}


def report(rows, checks):
    print()
    print("| job | peer | model-monitor (NDJSON) min / median | peer min / median | speed-up (median) | peak RSS model-monitor / peer |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for job, peer, m, n in rows:
        print(
            f"| {job} | {peer} | {m['min']:.2f} / {m['median']:.2f} s | {n['min']:.2f} / {n['median']:.2f} s "
            f"| {n['median'] / m['median']:.1f}x | {m['rss']:.0f} / {n['rss']:.0f} MiB ({n['rss'] / m['rss']:.1f}x) |"
        )
    print()
    for job, c in checks.items():
        print(f"{job}: " + ", ".join(f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {v}" for k, v in c.items()))


def compare_many(pandas_out, mm_out):
    with open(pandas_out) as f:
        ref = json.load(f)
    evs = events(mm_out)
    mm = {f"{m}/{s}": e[0] for (m, s), e in evs.items() if e[0][1] == "finding"}
    py = {k for k, (_, p) in ref.items() if p <= 0.05}
    d = max((abs(e[2] - ref[k][0]) for k, e in mm.items()), default=0.0)
    p = max((abs(e[3] - ref[k][1]) for k, e in mm.items()), default=0.0)
    return {
        "tests": len(ref),
        "flagged_pandas": len(py),
        "flagged_model_monitor": len(mm),
        "same_set": set(mm) == py,
        "ks_d_diff": d,
        "ks_p_diff": p,
    }


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        kind, parquet, out = sys.argv[2:5]
        if kind == "nannyml-car":
            worker_nannyml(parquet, out, CAR_NUMERIC, CAR_CATEGORICAL)
        elif kind == "nannyml-wide":
            worker_nannyml(parquet, out, [f"f{i}" for i in range(WIDE_FEATURES)], [])
        elif kind == "evidently-car":
            worker_evidently(parquet, out)
        else:
            worker_pandas(parquet, out)
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/model-monitor")
    ap.add_argument("--dir", default="/tmp/peers")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--wide-rows", type=int, default=1_000_000)
    ap.add_argument("--models", type=int, default=10_000)
    ap.add_argument("--per-model", type=int, default=200)
    ap.add_argument("--skip-prepare", action="store_true")
    ap.add_argument("--evidently-python", help="a Python with evidently 0.7.23 (it needs pandas < 3)")
    ap.add_argument("--jobs", default="car,many,wide", help="which jobs to run, comma-separated")
    a = ap.parse_args()
    d, mm, py, me = a.dir, os.path.abspath(a.bin), sys.executable, os.path.abspath(__file__)
    os.makedirs(d, exist_ok=True)
    if not a.skip_prepare:
        t = time.perf_counter()
        prepare(d, a.wide_rows, a.models, a.per_model)
        print(f"data written in {time.perf_counter() - t:.0f} s", flush=True)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    replay = lambda n: [mm, "replay", p(f"{n}.ndjson"), "-c", p(f"{n}.toml"), "--format", "json", "-q", "--strict"]  # noqa: E731
    rows, checks = [], {}

    jobs = a.jobs.split(",")
    if "car" in jobs:
        print("car-loan", flush=True)
        m = measure("model-monitor", replay("car"), p("car.mm.jsonl"), a.repeat)
        n = measure("NannyML", [py, me, "worker", "nannyml-car", p("car.parquet"), p("car.nml.json")], p("car.nml.log"), a.repeat)
        rows.append(("car-loan, 100k rows, 4 KS + 3 chi-square, chunks of 5,000", "NannyML 0.13.1 (Parquet)", m, n))
        checks["car-loan"] = compare_chunked(d, "car", p("car.nml.json"), p("car.mm.jsonl"), CAR_NUMERIC, CAR_CATEGORICAL, "car-loan")
        if a.evidently_python:
            cmd = [a.evidently_python, me, "worker", "evidently-car", p("car.parquet"), p("car.ev.json")]
            e = measure("Evidently", cmd, p("car.ev.log"), a.repeat)
            rows.append(("car-loan, the same", "Evidently 0.7.23 `ValueDrift` (Parquet)", m, e))
            checks["car-loan, Evidently p-values"] = compare_evidently(p("car.ev.json"), p("car.mm.jsonl"))

    if "many" in jobs:
        print("many models", flush=True)
        m = measure("model-monitor", replay("many"), p("many.mm.jsonl"), a.repeat)
        m1 = measure("model-monitor --shards 1", replay("many") + ["--shards", "1"], p("many.mm1.jsonl"), a.repeat)
        n = measure("pandas + SciPy", [py, me, "worker", "pandas", p("many.parquet"), p("many.py.json")], p("many.py.log"), a.repeat)
        job = f"{a.models:,} models x 5 signals, {a.models * a.per_model:,} records, KS per model and signal"
        rows.append((job, "pandas + scipy ks_2samp loop (Parquet)", m, n))
        rows.append((job + ", `--shards 1`", "pandas + scipy ks_2samp loop (Parquet)", m1, n))
        checks["many models"] = compare_many(p("many.py.json"), p("many.mm.jsonl"))
        checks["many models, --shards 1"] = compare_many(p("many.py.json"), p("many.mm1.jsonl"))

    if "wide" in jobs:
        print("wide", flush=True)
        m = measure("model-monitor", replay("wide"), p("wide.mm.jsonl"), a.repeat)
        cmd = [py, me, "worker", "nannyml-wide", p("wide.parquet"), p("wide.nml.json")]
        n = measure("NannyML", cmd, p("wide.nml.log"), a.repeat)
        job = f"wide, {a.wide_rows:,} x 20 numeric, KS per feature, chunks of 5,000"
        rows.append((job, "NannyML 0.13.1 (Parquet)", m, n))
        wide = [f"f{i}" for i in range(WIDE_FEATURES)]
        checks["wide"] = compare_chunked(d, "wide", p("wide.nml.json"), p("wide.mm.jsonl"), wide, [], "wide")
    report(rows, checks)


if __name__ == "__main__":
    main()

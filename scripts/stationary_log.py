#!/usr/bin/env python3
"""Writes a stationary inference log: one model, latency only (deterministic).

Usage: python3 scripts/stationary_log.py OUT.ndjson [N] [SEED]

N records (default 1 000 000) of `stationary` v1, one every 100 ms of event
time, latency lognormal (median 20 ms, sigma 0.5) rounded to 0.001 ms: the
stream behind the false-alarm investigation in docs/DETECTORS.md. Nothing in
it changes, so every finding a replay raises on it is a false alarm.
"""
import json
import random
import sys
from datetime import datetime, timedelta, timezone

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 12
rng = random.Random(seed)
start = datetime(2026, 11, 23, tzinfo=timezone.utc)
with open(out, "w") as f:
    for i in range(n):
        ts = (start + timedelta(milliseconds=100 * i)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        r = {"model": "stationary", "version": "v1", "ts": ts, "latency_ms": round(rng.lognormvariate(3.0, 0.5), 3)}
        f.write(json.dumps(r, separators=(",", ":")) + "\n")

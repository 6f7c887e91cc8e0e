#!/usr/bin/env bash
# Runs schemathesis (pip install schemathesis) against the OpenAPI document
# of `model-monitor serve`, for a bounded time, and fails on any finding.
#
# It builds the binary (debug, or release with --release), starts it on
# 127.0.0.1 with a port of the system's choosing and a config of its own in a
# temporary directory (a token for writes, small limits so that the limits'
# answers are reached), seeds a model, points schemathesis at
# GET /v1/openapi.json with the checks of scripts/schemathesis.toml (all, but
# one that does not apply to batches), and stops the daemon with SIGTERM at the end, whatever happened.
# Strings are generated in ASCII: the record's limits are in bytes, which
# JSON Schema cannot state, and its `maxLength` counts characters, the same
# in ASCII.
#
# usage: scripts/schemathesis.sh [--release] [--seconds N] [--examples N] [--seed N]
#   --seconds   the time budget of the whole run (default 120)
#   --examples  test cases per operation and phase at most (default 200)
#   --seed      schemathesis' random seed, to repeat a run
# Anything after `--` is passed to `schemathesis run`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
profile=debug
seconds=120
examples=200
seed=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --release) profile=release ;;
    --seconds) seconds=$2; shift ;;
    --examples) examples=$2; shift ;;
    --seed) seed=$2; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "schemathesis.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if ! command -v schemathesis >/dev/null; then
  echo "schemathesis.sh: schemathesis is not installed: pip install schemathesis" >&2
  exit 2
fi

build=(cargo build --quiet -p monitor-cli)
[ "$profile" = release ] && build+=(--release)
(cd "$root" && "${build[@]}")
bin="$root/target/$profile/model-monitor"

tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/config.toml" <<'EOF'
[[monitors]]
signal = "latency_ms"
detector = { kind = "threshold", statistic = "mean", window = 2, max = 100.0 }

[[monitors]]
signal = "features.*"
detector = { kind = "ks", reference = 20, window = 20 }

[policy]
min_samples = 2

[engine]
shards = 2

[server]
token_env = "MODEL_MONITOR_TOKEN"
max_body_bytes = 65536
max_line_bytes = 4096
max_queued_records = 1000
max_reported_rejections = 5
EOF

export MODEL_MONITOR_TOKEN="schemathesis-$$-$RANDOM"
"$bin" serve --config "$tmp/config.toml" --listen 127.0.0.1:0 >"$tmp/stdout" 2>"$tmp/stderr" &
pid=$!
url=""
for _ in $(seq 1 200); do
  url=$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' "$tmp/stdout")
  [ -n "$url" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "schemathesis.sh: the daemon did not start:" >&2
    cat "$tmp/stderr" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "schemathesis.sh: the daemon printed no address" >&2
  exit 1
fi
echo "schemathesis.sh: model-monitor serve on $url ($profile); $seconds s, $examples examples per operation"

# Records of `fraud` (the document's example model), latencies that drift
# and late labels, so that the model, its detectors, findings and events
# exist for the read endpoints to describe.
seed_records() {
  for i in $(seq 1 40); do
    latency=$((i > 20 ? 400 : 20))
    printf '{"model": "fraud", "version": "v%d", "id": "r%d", "latency_ms": %d, "prediction": "fraud", "features": {"amount": %d, "country": "DE"}}\n' $((i % 2)) "$i" "$latency" "$i"
    printf '{"model": "fraud", "id": "r%d", "label": "legit"}\n' "$i"
  done
}
seed_records | curl -sS --fail -o /dev/null -H "Authorization: Bearer $MODEL_MONITOR_TOKEN" \
  -H 'Content-Type: application/x-ndjson' --data-binary @- "$url/v1/records"

args=(--config-file "$root/scripts/schemathesis.toml" run "$url/v1/openapi.json"
  --max-time "$seconds"
  --max-examples "$examples"
  --header "Authorization: Bearer $MODEL_MONITOR_TOKEN"
  --request-timeout 10
  --generation-database none
  --generation-codec ascii
  --report junit --report-dir "$tmp/report"
  --no-color)
[ -n "$seed" ] && args+=(--seed "$seed")
status=0
(cd "$tmp" && schemathesis "${args[@]}" "${extra[@]}") || status=$?

if ! kill -0 "$pid" 2>/dev/null; then
  echo "schemathesis.sh: the daemon died during the run:" >&2
  tail -n 40 "$tmp/stderr" >&2
  exit 1
fi
if grep -q "panicked" "$tmp/stderr"; then
  echo "schemathesis.sh: the daemon panicked:" >&2
  grep -A5 "panicked" "$tmp/stderr" >&2
  status=1
fi
exit "$status"

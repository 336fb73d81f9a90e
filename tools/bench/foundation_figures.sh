#!/usr/bin/env bash
# foundation_figures.sh: the foundation figures of docs/benchmarks.md in one command — standalone
# sessiond beside Redis, measured back to back on this machine, repeated, medians reported.
#
#   tools/bench/foundation_figures.sh [--build DIR] [--reps N] [--duration-s S]
#                                     [--mem-sessions N] [--out DIR]
#
# For each repetition, in this order (so every comparison runs back to back):
#   a. throughput, 50 connections, closed loop (one request in flight per connection):
#      sessiond Get (no touch), redis-benchmark HGETALL, redis-direct Get (sessiond-bench's own
#      Redis client: HGETALL); then sessiond Update, redis-benchmark HSET, redis-direct Update
#      (HSET + PEXPIRE pipelined). redis-benchmark is given the request count sessiond served
#      (at least 100 000).
#   b. one client, one request at a time: sessiond Get over TCP and over its Unix socket,
#      redis-benchmark -c 1 HGETALL over TCP and over its Unix socket.
#   c. resident bytes per session: a fresh sessiond, VmRSS before and after creating
#      --mem-sessions sessions with two 50-byte attributes; a fresh redis-server, used_memory and
#      VmRSS before and after loading as many equivalent hashes (docs/redis.md's layout, with TTL)
#      through redis-cli --pipe.
# Everything listens on 127.0.0.1 (ports picked free) or Unix sockets in a scratch directory.
# Prints one table of medians (with min-max over the repetitions) and writes it, with every raw
# number, to OUT/foundation.md and OUT/raw.tsv.
set -euo pipefail

build=build
reps=3
duration_s=5
warmup_s=1
mem_sessions=1000000
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --duration-s) duration_s="$2"; shift 2 ;;
    --mem-sessions) mem_sessions="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

sessiond="$build/bin/sessiond"
bench="$build/bin/sessiond-bench"
for tool in "$sessiond" "$bench"; do
  [[ -x "$tool" ]] || { echo "$tool is missing: build the sessiond and sessiond-bench targets" >&2; exit 2; }
done
for tool in redis-server redis-cli redis-benchmark python3; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/foundation.XXXXXX")
[[ -n "$out" ]] || out="$work/out"
mkdir -p "$out"
raw="$out/raw.tsv"
printf 'rep\tfigure\tsystem\tvalue\n' >"$raw"
# Every process started here, stopped (by pid) on exit.
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work/run"
  # The scratch directory goes too unless the results were written inside it.
  [[ "$out" == "$work"/* ]] || rm -rf "$work"
}
trap cleanup EXIT

conns=50
sessions=10000  # the working set of the throughput and latency runs
attrs=2
value_bytes=50

record() { printf '%s\t%s\t%s\t%s\n' "$rep" "$1" "$2" "$3" >>"$raw"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_bytes() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$1/status"; }

# Starts a standalone sessiond on a free port and a Unix socket; sets sd_pid, sd_tcp, sd_unix.
start_sessiond() {
  local dir="$work/run/sessiond-$1"
  mkdir -p "$dir"
  sd_unix="$dir/sessiond.sock"
  "$sessiond" --mode standalone --node-id n1 --listen 127.0.0.1:0 --unix "$sd_unix" \
    --admin-listen 127.0.0.1:0 --port-file "$dir/ports.json" --log-level warn \
    >"$dir/log" 2>&1 &
  sd_pid=$!
  pids+=("$sd_pid")
  for _ in $(seq 100); do [[ -s "$dir/ports.json" ]] && break; sleep 0.1; done
  [[ -s "$dir/ports.json" ]] || { echo "sessiond did not start:"; cat "$dir/log"; exit 1; } >&2
  sd_tcp=127.0.0.1:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client"])' "$dir/ports.json")
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# Starts a redis-server with no persistence; sets rd_pid, rd_port, rd_unix.
start_redis() {
  local dir="$work/run/redis-$1"
  mkdir -p "$dir"
  rd_port=$(free_port)
  rd_unix="$dir/redis.sock"
  redis-server --bind 127.0.0.1 --port "$rd_port" --unixsocket "$rd_unix" --save '' \
    --appendonly no --dir "$dir" --logfile "$dir/log" &
  rd_pid=$!
  pids+=("$rd_pid")
  for _ in $(seq 100); do redis-cli -p "$rd_port" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "redis-server did not start" >&2
  exit 1
}

# The RESP stream of `count` sessions laid out as docs/redis.md lays them out (22-character ids,
# meta fields v c a i, attributes .attr0 .attr1 of 50 bytes, PEXPIRE one hour). With `numbered`,
# ids are redis-benchmark's __rand_int__ form (12 digits) so its commands find them.
session_stream() {
  python3 - "$1" "$2" <<'EOF'
import os, sys, time, base64
count, numbered = int(sys.argv[1]), sys.argv[2] == "numbered"
now = str(int(time.time() * 1000)).encode()
value = b"x" * 50
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)
chunk = []
for i in range(count):
    sid = b"%012d" % i if numbered else base64.urlsafe_b64encode(os.urandom(17))[:22]
    key = b"sd:s:" + sid
    chunk.append(cmd(b"HSET", key, b"v", b"1", b"c", now, b"a", now, b"i", b"3600",
                     b".attr0", value, b".attr1", value))
    chunk.append(cmd(b"PEXPIRE", key, b"3600000"))
    if len(chunk) >= 20000:
        out.write(b"".join(chunk)); chunk = []
out.write(b"".join(chunk))
EOF
}

# sessiond-bench against `target` (or its own cluster when target is "-"), printing
# "<ops/s> <p50 ms> <p99 ms>" of its first result row.
run_bench() {
  local name="$1" target="$2" mix="$3" connections="$4" threads="$5"; shift 5
  local dir="$work/run/bench-$name"
  mkdir -p "$dir"
  local where=(--target "$target")
  [[ "$target" == "-" ]] && where=(--sessiond "$sessiond" --nodes 1)
  "$bench" "${where[@]}" --sessions "${bench_sessions:-$sessions}" --attrs "$attrs" --value-bytes "$value_bytes" \
    --mix "$mix" --no-touch --connections "$connections" --threads "$threads" \
    --warmup-s "$warmup_s" --duration-s "$duration_s" --out-dir "$dir" --no-charts "$@" \
    >"$dir/log" 2>&1 || { echo "sessiond-bench $name failed:"; tail -20 "$dir/log"; exit 1; } >&2
  python3 - "$dir/results.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
if r.get("status") not in ("", "ok", None) and "throughput_ops_per_s" not in r:
    sys.exit("no numbers: " + r.get("reason", "?"))
lat = r["requests"]["latency_ms"]
print(r["throughput_ops_per_s"], lat["p50"], lat["p99"])
EOF
}

# redis-benchmark, printing "<ops/s> <p50 ms> <p99 ms>".
run_redis_benchmark() {
  redis-benchmark --csv "$@" | python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
head, row = rows[0], rows[-1]
get = dict(zip(head, row))
print(get["rps"], get["p50_latency_ms"], get["p99_latency_ms"])'
}

echo "foundation figures: $reps repetitions, ${duration_s}s measured per run, scratch $work" >&2
for rep in $(seq "$reps"); do
  mkdir -p "$work/run"
  echo "== repetition $rep/$reps (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
  record "load average at start" machine "$(cut -d' ' -f1 /proc/loadavg)"

  # a + b: one sessiond and one redis-server serve every throughput and latency run of this rep.
  start_sessiond "$rep"
  start_redis "$rep"
  session_stream "$sessions" numbered | redis-cli -p "$rd_port" --pipe >/dev/null
  attr_value=$(printf 'y%.0s' $(seq "$value_bytes"))

  for op in get update; do
    if [[ $op == get ]]; then mix=100:0:0; rcmd=(HGETALL sd:s:__rand_int__)
    else mix=0:100:0; rcmd=(HSET sd:s:__rand_int__ .attr0 "$attr_value"); fi
    read -r ops p50 p99 < <(run_bench "sd-$op-$rep" "$sd_tcp" "$mix" "$conns" 2)
    record "$op c$conns ops/s" sessiond "$ops"
    echo "  $op x$conns: sessiond $ops ops/s" >&2
    # The request count sessiond served, at least 100 000 so that a slow sessiond run does not
    # leave Redis's run too short to measure.
    n=$(python3 -c "print(max(100000, int(float('$ops') * $duration_s)))")
    read -r rops _ _ < <(run_redis_benchmark -p "$rd_port" -c "$conns" -n "$n" -r "$sessions" "${rcmd[@]}")
    record "$op c$conns ops/s" redis-benchmark "$rops"
    echo "  $op x$conns: redis-benchmark $rops ops/s ($n requests)" >&2
    read -r dops _ _ < <(run_bench "rd-$op-$rep" - "$mix" "$conns" 2 --modes redis-direct)
    record "$op c$conns ops/s" redis-direct "$dops"
    echo "  $op x$conns: redis-direct $dops ops/s" >&2
  done

  read -r _ p50 p99 < <(run_bench "sd-tcp1-$rep" "$sd_tcp" 100:0:0 1 1)
  record "get c1 p50 ms" "sessiond tcp" "$p50"; record "get c1 p99 ms" "sessiond tcp" "$p99"
  read -r _ p50 p99 < <(run_bench "sd-unix1-$rep" "unix:$sd_unix" 100:0:0 1 1)
  record "get c1 p50 ms" "sessiond unix" "$p50"; record "get c1 p99 ms" "sessiond unix" "$p99"
  n=$(python3 -c "print(int($duration_s * 20000))")
  read -r _ p50 p99 < <(run_redis_benchmark -p "$rd_port" -c 1 -n "$n" -r "$sessions" HGETALL sd:s:__rand_int__)
  record "get c1 p50 ms" "redis tcp" "$p50"; record "get c1 p99 ms" "redis tcp" "$p99"
  read -r _ p50 p99 < <(run_redis_benchmark -s "$rd_unix" -c 1 -n "$n" -r "$sessions" HGETALL sd:s:__rand_int__)
  record "get c1 p50 ms" "redis unix" "$p50"; record "get c1 p99 ms" "redis unix" "$p99"
  echo "  one client: done" >&2
  stop_pid "$sd_pid"
  stop_pid "$rd_pid"

  # c: memory per session, each system fresh.
  start_sessiond "mem-$rep"
  before=$(rss_bytes "$sd_pid")
  bench_sessions=$mem_sessions run_bench "sd-mem-$rep" "$sd_tcp" 100:0:0 8 2 >/dev/null
  after=$(rss_bytes "$sd_pid")
  record "bytes/session rss" sessiond "$(( (after - before) / mem_sessions ))"
  echo "  memory: sessiond $(( (after - before) / mem_sessions )) B/session" >&2
  stop_pid "$sd_pid"

  start_redis "mem-$rep"
  before=$(rss_bytes "$rd_pid")
  used_before=$(redis-cli -p "$rd_port" info memory | awk -F: '/^used_memory:/ {print $2+0}')
  session_stream "$mem_sessions" random | redis-cli -p "$rd_port" --pipe >/dev/null
  keys=$(redis-cli -p "$rd_port" dbsize)
  used_after=$(redis-cli -p "$rd_port" info memory | awk -F: '/^used_memory:/ {print $2+0}')
  after=$(rss_bytes "$rd_pid")
  record "bytes/session rss" redis "$(( (after - before) / keys ))"
  record "bytes/session used_memory" redis "$(( (used_after - used_before) / keys ))"
  echo "  memory: redis $(( (after - before) / keys )) B/session RSS, $(( (used_after - used_before) / keys )) used_memory ($keys keys)" >&2
  stop_pid "$rd_pid"
  rm -rf "$work/run"
done

python3 - "$raw" "$reps" "$duration_s" "$mem_sessions" <<'EOF' | tee "$out/foundation.md"
import collections, statistics, sys
raw, reps, duration, mem = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
values = collections.OrderedDict()
for line in open(raw).read().splitlines()[1:]:
    rep, figure, system, value = line.split("\t")
    values.setdefault((figure, system), []).append(float(value))
def cell(key):
    v = values.get(key)
    if not v: return "-"
    med, lo, hi = statistics.median(v), min(v), max(v)
    fmt = (lambda x: f"{x:,.0f}") if med >= 100 else (lambda x: f"{x:.3f}")
    spread = f" ({fmt(lo)}-{fmt(hi)}, ±{(hi - lo) / 2 / med * 100:.0f}%)" if len(v) > 1 and med else ""
    return fmt(med) + spread
print(f"medians of {reps} repetitions (min-max, ± half the range as % of the median); "
      f"{duration}s measured per throughput/latency run; memory at {mem} sessions\n")
print("| figure | sessiond | redis-benchmark | redis-direct (sessiond-bench) |")
print("|---|---|---|---|")
for op in ("get", "update"):
    f = f"{op} c50 ops/s"
    print(f"| {op} throughput, 50 connections (ops/s) | {cell((f, 'sessiond'))} | "
          f"{cell((f, 'redis-benchmark'))} | {cell((f, 'redis-direct'))} |")
for p in ("p50", "p99"):
    f = f"get c1 {p} ms"
    print(f"| get {p}, one client, TCP (ms) | {cell((f, 'sessiond tcp'))} | {cell((f, 'redis tcp'))} | |")
    print(f"| get {p}, one client, Unix socket (ms) | {cell((f, 'sessiond unix'))} | {cell((f, 'redis unix'))} | |")
print(f"| resident bytes per session (RSS delta) | {cell(('bytes/session rss', 'sessiond'))} | "
      f"{cell(('bytes/session rss', 'redis'))} (redis-server) | |")
print(f"| bytes per session (Redis used_memory delta) | | {cell(('bytes/session used_memory', 'redis'))} | |")
print(f"\nload average (2 cores) at the start of each repetition: "
      f"{', '.join(f'{x:.1f}' for x in values.get(('load average at start', 'machine'), []))}")
EOF
echo "raw numbers: $raw" >&2

#!/usr/bin/env bash
# The daemon's cost: the same operations embedded (an engine in the client's process) and
# attached (through `mavfs serve`'s socket), in the same run, on tmpfs, best of N rounds that
# alternate the two, so that ratios hold on a noisy shared machine.
#
#   1. latency: 64 KiB write, read (a 64 KiB `cat`) and `stat` on /vram (`mavfs bench`, 2000 of
#      each): p50 and p99, embedded and attached
#   2. a large `cat`: `mavfs exec 'cat /vram/big'` of a 1 GiB /vram file into a pipe, timed from
#      the pipe's first byte to its end, so that both sides pay the same shell, output and pipe;
#      embedded, the same process first pulls the file into its own /vram (not timed)
#   3. `mavfs exec 'ls /vram'` as a whole process (mean of RUNS runs), embedded and attached,
#      with the default mounts and with /vram on a private redis-server (if installed)
#   4. a 1 GiB push /vram -> /vdisk in the daemon with 10 subscribed clients (`mavfs events
#      --json`) against none
#   5. the daemon's memory: RSS with 200 idle connections (before any file is stored), and its
#      peak with 20 clients streaming `cat` of the 1 GiB file at once
#
# Usage: benches/daemon.sh [ROUNDS] [RUNS]      (defaults: 5 rounds, 30 runs of `exec`)
#        MAVFS=path/to/mavfs benches/daemon.sh  (that binary; otherwise a release build)
#        SIZE_MIB=1024                          (the large file)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
RUNS=${2:-30}
SIZE_MIB=${SIZE_MIB:-1024}
if [ -z "${MAVFS:-}" ]; then
  cargo build --release -q --bin mavfs
  BIN=$PWD/target/release/mavfs
else
  BIN=$(realpath "$MAVFS")
fi
WORK=$(mktemp -d /dev/shm/mavfs-daemon-bench.XXXXXX)
export HOME=$WORK XDG_RUNTIME_DIR=$WORK/run XDG_CONFIG_HOME=$WORK/xdg XDG_STATE_HOME=$WORK/state
unset MAVFS_SOCKET RUST_LOG
cd "$WORK"
mkdir -p block_dir
SERVE= REDIS_SERVE= REDIS=
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}" $SERVE $REDIS_SERVE $REDIS; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}" $SERVE $REDIS_SERVE $REDIS; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts `mavfs ARGS` (a `serve` command line) in the background, logging to LOG, and waits
# for SOCKET. Sets STARTED to its pid.
start_daemon() {
  local log=$1 socket=$2
  shift 2
  "$BIN" "$@" 2>"$log" &
  STARTED=$!
  for _ in $(seq 200); do [ -S "$socket" ] && return 0; sleep 0.05; done
  echo "the daemon did not start" >&2
  cat "$log" >&2
  exit 1
}
SOCK=$WORK/run/mavfs/mavfs.sock
start_daemon serve.log "$SOCK" serve
SERVE=$STARTED

py() { python3 -c "$@"; }
now() { date +%s.%N; }
rss() { awk '/^VmRSS/ {print $2 " kB"}' "/proc/$SERVE/status"; }
hwm() { awk '/^VmHWM/ {print $2 " kB"}' "/proc/$SERVE/status"; }

echo "# mavfs $("$BIN" --version 2>/dev/null | head -1), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== 1. latency: 64 KiB x 2000 on /vram, best of $ROUNDS rounds (embedded, attached alternating)"
# `mavfs bench` prints one line per op: MOUNT BACKEND OP SIZE UNIT ITERS P50 UNIT P99 UNIT ...
for _ in $(seq "$ROUNDS"); do
  "$BIN" --embedded bench --bench-mount /vram --bench-iters 2000 | sed 's/^/embedded /' >>latency.txt
  "$BIN" bench --bench-mount /vram --bench-iters 2000 | sed 's/^/attached /' >>latency.txt
done
py '
import sys
us = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
best = {}
for line in open("latency.txt"):
    f = line.split()
    if len(f) < 11 or f[1] != "/vram":
        continue
    mode, op = f[0], f[3]
    p50, p99 = float(f[7]) * us[f[8]], float(f[9]) * us[f[10]]
    b = best.setdefault((op, mode), [p50, p99])
    b[0], b[1] = min(b[0], p50), min(b[1], p99)
print("%-6s %13s %9s %13s %9s   (us; best p50 and best p99 of the rounds)" % ("op", "embedded p50", "p99", "attached p50", "p99"))
for op in ("write", "read", "stat"):
    e, a = best[(op, "embedded")], best[(op, "attached")]
    print(f"{op:<6} {e[0]:>13.1f} {e[1]:>9.1f} {a[0]:>13.1f} {a[1]:>9.1f}")
'

echo "== 5a. the daemon's memory (before any file is stored)"
echo "idle, no clients:               $(rss)"
python3 - "$SOCK" <<'PY' &
import socket, struct, sys, time
hello = b'J{"type":"hello","version":1}'
conns = []
for _ in range(200):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(struct.pack(">I", len(hello)) + hello)
    conns.append(s)
time.sleep(3)
PY
IDLE=$!
sleep 2
echo "200 idle connections:           $(rss)"
wait "$IDLE"

echo "== 2. cat of a $SIZE_MIB MiB /vram file into a pipe, first byte to end, best of $ROUNDS rounds"
head -c $((SIZE_MIB << 20)) /dev/urandom >block_dir/big
"$BIN" exec 'pull /vdisk/big /vram/big' 2>/dev/null
# Reads stdin to its end in 1 MiB reads; prints seconds from the first byte to the end.
cat >drain.py <<'PY'
import os, sys, time
buf = bytearray(1 << 20)
n = os.readv(0, [buf])
start = time.perf_counter()
total = n
while n:
    n = os.readv(0, [buf])
    total += n
print(f"{time.perf_counter() - start:.6f} {total}")
PY
for _ in $(seq "$ROUNDS"); do
  "$BIN" --embedded exec 'pull /vdisk/big /vram/big' 'cat /vram/big' 2>/dev/null | python3 drain.py | sed 's/^/embedded /' >>cat.txt
  "$BIN" exec 'cat /vram/big' | python3 drain.py | sed 's/^/attached /' >>cat.txt
done
py '
import sys
best, size = {}, int(sys.argv[1]) << 20
for line in open("cat.txt"):
    mode, secs, n = line.split()
    assert int(n) == size, f"{mode} cat gave {n} bytes"
    best[mode] = min(best.get(mode, 1e9), float(secs))
e, a = best["embedded"], best["attached"]
mib = size / (1 << 20)
print(f"embedded {e * 1000:.0f} ms ({mib / e:.0f} MiB/s), attached {a * 1000:.0f} ms ({mib / a:.0f} MiB/s): attached/embedded throughput {e / a:.2f}x")
' "$SIZE_MIB"

# Mean milliseconds per `mavfs ARGS exec 'ls /vram'`, RUNS runs.
exec_ms() {
  local start
  start=$(now)
  for _ in $(seq "$RUNS"); do "$BIN" "$@" exec 'ls /vram' >/dev/null; done
  py 'import sys, time; print(f"{(time.time() - float(sys.argv[1])) * 1000 / int(sys.argv[2]):.2f}")' "$start" "$RUNS"
}
# Best of ROUNDS alternating rounds of `exec_ms EMBEDDED_ARGS` and `exec_ms ATTACHED_ARGS`
# (each a word list in a string).
compare_exec() {
  local embedded=$1 attached=$2 e=() a=()
  for _ in $(seq "$ROUNDS"); do
    # shellcheck disable=SC2086
    e+=("$(exec_ms $embedded)")
    # shellcheck disable=SC2086
    a+=("$(exec_ms $attached)")
  done
  py 'import sys; e, a = map(lambda s: min(map(float, s.split())), sys.argv[1:3]); print(f"embedded {e:.2f} ms, attached {a:.2f} ms: attached takes {a / e:.2f}x the time")' "${e[*]}" "${a[*]}"
}
echo "== 3. mavfs exec 'ls /vram', whole process, mean of $RUNS runs, best of $ROUNDS rounds"
echo -n "memory /vram, disk /vdisk:   "
compare_exec "--embedded" "--connect"
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
  port=$(py 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p redis
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK/redis" \
    --maxmemory 256mb --maxmemory-policy noeviction --daemonize no >redis/log 2>&1 &
  REDIS=$!
  until [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; do sleep 0.05; done
  cat >redis.toml <<TOML
[[mount]]
path = "/vram"
backend = "redis"
url = "redis://127.0.0.1:$port/0"
namespace = "bench"

[[mount]]
path = "/vdisk"
backend = "disk"
root = "$WORK/block_dir"
tier = "cold"
TOML
  "$BIN" -c redis.toml exec 'mkdir /vram/d' 'touch /vram/f'
  RSOCK=$WORK/redis.sock
  start_daemon redis-serve.log "$RSOCK" -c redis.toml serve --socket "$RSOCK"
  REDIS_SERVE=$STARTED
  echo -n "redis /vram, disk /vdisk:    "
  compare_exec "-c redis.toml" "--connect=$RSOCK"
  kill "$REDIS_SERVE" && wait "$REDIS_SERVE" || true
  REDIS_SERVE=
  kill "$REDIS" && wait "$REDIS" || true
  REDIS=
else
  echo "(redis-server is not installed: no Redis run)"
fi

echo "== 4. push $SIZE_MIB MiB /vram -> /vdisk in the daemon, without and with 10 subscribers, best of $ROUNDS rounds alternating"
# Milliseconds of one attached `push /vram/big /vdisk/copy`, whole process.
push_ms() {
  local start t
  "$BIN" exec 'rm -rf /vdisk/copy' >/dev/null 2>&1 || true
  start=$(now)
  "$BIN" exec 'push /vram/big /vdisk/copy' 2>/dev/null
  t=$(py 'import sys, time; print(f"{(time.time() - float(sys.argv[1])) * 1000:.1f}")' "$start")
  "$BIN" exec 'rm -rf /vdisk/copy' >/dev/null
  echo "$t"
}
none=() ten=()
for _ in $(seq "$ROUNDS"); do
  none+=("$(push_ms)")
  SUBS=()
  connected=$(grep -c "client connected" serve.log || true)
  for _ in $(seq 10); do "$BIN" events --json >/dev/null 2>&1 & SUBS+=($!); done
  PIDS=("${SUBS[@]}")
  # Until all ten are attached (each connects once), so that their start-up is not timed.
  for _ in $(seq 400); do
    [ "$(grep -c "client connected" serve.log || true)" -ge $((connected + 10)) ] && break
    sleep 0.05
  done
  sleep 0.5
  ten+=("$(push_ms)")
  kill "${SUBS[@]}" 2>/dev/null || true
  wait "${SUBS[@]}" 2>/dev/null || true
  PIDS=()
done
py 'import sys; n, t = map(lambda s: min(map(float, s.split())), sys.argv[1:3]); print(f"no subscribers {n:.0f} ms, 10 subscribers {t:.0f} ms: throughput with them {n / t:.3f}x")' "${none[*]}" "${ten[*]}"

echo "== 5b. the daemon's memory with the $SIZE_MIB MiB file stored"
# Reset the peak to now (Linux: clear_refs 5), so it is this step's.
echo 5 >"/proc/$SERVE/clear_refs" 2>/dev/null || echo "(cannot reset the peak; it includes the steps above)"
echo "before the cats:                $(rss)"
READERS=()
for _ in $(seq 20); do "$BIN" exec 'cat /vram/big' >/dev/null & READERS+=($!); done
wait "${READERS[@]}"
echo "after 20 concurrent $SIZE_MIB MiB cats: peak $(hwm) (the memory store itself holds the $SIZE_MIB MiB file)"

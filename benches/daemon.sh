#!/usr/bin/env bash
# The daemon's cost: the same operations embedded (an engine in the client's process) and
# attached (through `mavfs serve`'s socket), in the same run, on tmpfs, so that ratios hold on a
# noisy shared machine.
#
#   1. 64 KiB write/read/stat latency on /vram (`mavfs bench`), embedded vs attached
#   2. a large read of a /vram file (`bench --bench-size 512MiB`), embedded vs attached
#   3. `mavfs exec 'ls /vram'` as a whole process, embedded vs attached (mean of N runs)
#   4. a 512 MiB push /vram -> /vdisk in the daemon with 10 subscribed clients (`mavfs events`)
#      against none (best of 3 each)
#   5. the daemon's memory: RSS with 200 idle connections, and its peak with 20 clients
#      streaming `cat` of a 512 MiB file at once
#
# Usage: benches/daemon.sh [N_EXEC_RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-30}
cargo build --release -q
BIN=$PWD/target/release/mavfs
WORK=$(mktemp -d /dev/shm/mavfs-daemon-bench.XXXXXX)
export HOME=$WORK XDG_RUNTIME_DIR=$WORK/run XDG_CONFIG_HOME=$WORK/xdg XDG_STATE_HOME=$WORK/state
unset MAVFS_SOCKET RUST_LOG
cd "$WORK"
mkdir -p block_dir
SERVE=
cleanup() {
  [ -n "$SERVE" ] && kill "$SERVE" 2>/dev/null && wait "$SERVE" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
"$BIN" serve 2>serve.log &
SERVE=$!
for _ in $(seq 100); do [ -S run/mavfs/mavfs.sock ] && break; sleep 0.05; done
[ -S run/mavfs/mavfs.sock ] || { echo "the daemon did not start" >&2; cat serve.log >&2; exit 1; }

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{(float(sys.argv[2]) - float(sys.argv[1])) * 1000:.1f}')" "$1" "$(now)"; }
rss() { awk '/^VmRSS/ {print $2 " kB"}' "/proc/$SERVE/status"; }
hwm() { awk '/^VmHWM/ {print $2 " kB"}' "/proc/$SERVE/status"; }

echo "== 1. 64 KiB x 2000 on /vram: embedded, then attached"
"$BIN" --embedded bench --bench-mount /vram --bench-iters 2000
"$BIN" bench --bench-mount /vram --bench-iters 2000 | tail -n +2

echo "== 2. 512 MiB x 2 on /vram (read = a large cat): embedded, then attached"
"$BIN" --embedded bench --bench-mount /vram --bench-size 512MiB --bench-iters 2
"$BIN" bench --bench-mount /vram --bench-size 512MiB --bench-iters 2 | tail -n +2

echo "== 3. mavfs exec 'ls /vram', whole process, mean of $RUNS runs (ms)"
for mode in --embedded --connect; do
  start=$(now)
  for _ in $(seq "$RUNS"); do "$BIN" $mode exec 'ls /vram' >/dev/null; done
  total=$(since "$start")
  python3 -c "import sys; print(f'{sys.argv[1]:<12} {float(sys.argv[2]) / int(sys.argv[3]):.2f} ms')" "$mode" "$total" "$RUNS"
done

echo "== 4. push 512 MiB /vram -> /vdisk in the daemon, best of 3 (ms), without and with 10 subscribers"
head -c $((512 << 20)) /dev/urandom > block_dir/big
"$BIN" exec 'pull /vdisk/big /vram/big' 2>/dev/null
best_push() {
  local best=
  for i in 1 2 3; do
    "$BIN" exec "rm -rf /vdisk/copy$i" >/dev/null 2>&1 || true
    start=$(now)
    "$BIN" exec "push /vram/big /vdisk/copy$i" 2>/dev/null
    t=$(since "$start")
    "$BIN" exec "rm /vdisk/copy$i" >/dev/null
    best=$(python3 -c "import sys; a=sys.argv[1]; b=float(sys.argv[2]); print(b if not a else min(float(a), b))" "$best" "$t")
  done
  echo "$best"
}
none=$(best_push)
if ! "$BIN" events --help >/dev/null 2>&1; then
  echo "(this build has no 'mavfs events': no subscribers to add; no-subscriber time ${none} ms)"
else
SUBS=()
for _ in $(seq 10); do "$BIN" events --json >/dev/null 2>&1 & SUBS+=($!); done
sleep 0.5
ten=$(best_push)
kill "${SUBS[@]}" 2>/dev/null || true
wait "${SUBS[@]}" 2>/dev/null || true
python3 -c "import sys; n,t=float(sys.argv[1]),float(sys.argv[2]); print(f'no subscribers {n:.0f} ms, 10 subscribers {t:.0f} ms: throughput ratio {n / t:.3f}')" "$none" "$ten"
fi

echo "== 5. the daemon's memory"
echo "idle daemon:                    $(rss)"
python3 - "$WORK/run/mavfs/mavfs.sock" <<'PY' &
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
# Reset the peak to now (Linux: clear_refs 5), so it is this step's.
echo 5 > "/proc/$SERVE/clear_refs" 2>/dev/null || echo "(cannot reset the peak; it includes the steps above)"
echo "before the cats:                $(rss)"
READERS=()
for _ in $(seq 20); do "$BIN" exec 'cat /vram/big' >/dev/null & READERS+=($!); done
wait "${READERS[@]}"
echo "after 20 concurrent 512 MiB cats: peak $(hwm) (the memory store itself holds the 512 MiB file)"

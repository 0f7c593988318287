#!/usr/bin/env bash
# Throttling, measured through the real binary on tmpfs, figures as ratios in the same run:
#
#   rates  a 1 GiB push /vram -> /vdisk at --bwlimit 100MiB/s, 500MiB/s and 1GiB/s, and
#          unthrottled: the rate over the whole job (bytes / the job's elapsed time, from its
#          `finished` event) against the limit, best of N. Target: within 3% of the limit
#          (1 GiB/s only means something if the unthrottled push reaches it).
#   cost   what the throttle machinery costs with no limit set: a push of 8 x 128 MiB and of
#          20,000 x 4 KiB, with it (this tree) and without it (this tree with
#          benches/throttle-bypass.patch applied: Pace::ready and Pace::admit do nothing and
#          the -j slots are gone, concurrency fixed at -j instead), alternating, best of N.
#          Target: within noise.
#   stop   how long after `stop %1` returns the byte counter stops moving: a throttled push in
#          a daemon (`mavfs serve`), `jobs --json` polled as fast as `mavfs exec` runs, the
#          time of the last change seen. Target: under 100 ms.
#
# Why a patch for "without" rather than the commit before pacing: some sixty commits (disk
# usage counters, store changes) separate that commit from this tree, so it would measure them
# too; the patch removes exactly the pacing calls from this tree. It is built in a copy of the
# tree, into target/throttle-bypass (seeded from target/release the first time, so only the
# two crates of the workspace compile).
#
# Usage: benches/throttle.sh [rates|cost|stop|all] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}
N=${2:-3}
ROOT=$PWD
# HOME moves to the scratch directory below; cargo must still find its toolchain.
export RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup} CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
cargo build --release -q
BIN=$ROOT/target/release/mavfs

WORK=$(mktemp -d /dev/shm/mavfs-throttle-bench.XXXXXX)
SERVE=
cleanup() {
  if [ -n "$SERVE" ]; then kill "$SERVE" 2>/dev/null || true; wait "$SERVE" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
export HOME=$WORK XDG_RUNTIME_DIR=$WORK/run XDG_CONFIG_HOME=$WORK/xdg XDG_STATE_HOME=$WORK/state
unset MAVFS_SOCKET RUST_LOG
cd "$WORK"
mkdir -p block_dir

# Reads a transfer's JSON lines; prints "BYTES SECONDS" from its `finished` event.
finished() {
  python3 -c '
import sys, json
# Every line is read to the end (a reader that stops early would break the pipe of the writer);
# a small-file push reports more events than a slow reader keeps up with, so some lines are
# `{"type":"lagged",...}` notices rather than events.
for line in sys.stdin:
    k = json.loads(line).get("kind") or {}
    if k.get("type") == "finished":
        print(k["bytes"], k["elapsed"]["secs"] + k["elapsed"]["nanos"] / 1e9)
'
}

# Runs exec lines in one embedded engine; prints one "BYTES SECONDS" per push.
pushes() {
  local bin=$1
  shift
  "$bin" --embedded exec "$@" | finished
}

rates() {
  echo "== rates: 1 GiB push /vram -> /vdisk, rate over the whole job, best of $N"
  head -c $((1 << 30)) /dev/zero >block_dir/big
  local lines=('pull /vdisk/big /vram/big')
  local limits=(100MiB/s 500MiB/s 1GiB/s off)
  for _ in $(seq "$N"); do
    for l in "${limits[@]}"; do
      if [ "$l" = off ]; then lines+=("push --json /vram/big /vdisk/copy"); else
        lines+=("push --json --bwlimit $l /vram/big /vdisk/copy"); fi
      lines+=("rm /vdisk/copy")
    done
  done
  pushes "$BIN" "${lines[@]}" 2>/dev/null | python3 -c '
import sys
limits = sys.argv[1:]
runs = [tuple(map(float, l.split())) for l in sys.stdin]
mib = {"100MiB/s": 100, "500MiB/s": 500, "1GiB/s": 1024, "off": None}
best = {}
for i, (b, s) in enumerate(runs):
    l = limits[i % len(limits)]
    rate = b / s / 2**20
    best.setdefault(l, []).append(rate)
for l in limits:
    r = best[l]
    line = "%9s: best %8.2f MiB/s  (all: %s)" % (l, max(r), " ".join("%.1f" % x for x in r))
    if mib[l]:
        line += f"  best/limit {max(r) / mib[l]:.4f}"
    print(line)
' "${limits[@]}"
  rm -f block_dir/big
}

bypass_build() {
  local target=$ROOT/target/throttle-bypass
  local src=$ROOT/target/throttle-bypass-src
  if [ ! -d "$target" ] && [ -d "$ROOT/target/release" ]; then
    mkdir -p "$target" && cp -a "$ROOT/target/release" "$target/release"
  fi
  rm -rf "$src" && mkdir -p "$src"
  # The working tree as it is (committed or not), without target/.
  (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 tar -c) | tar -x -C "$src"
  (cd "$src" && git apply "$ROOT/benches/throttle-bypass.patch")
  (cd "$src" && CARGO_TARGET_DIR=$target cargo build --release -q --bin mavfs)
  BYPASS=$target/release/mavfs
}

cost() {
  bypass_build
  echo "== cost of the throttle machinery with no limit: push /vram -> /vdisk, best of $N (s)"
  mkdir -p block_dir/large block_dir/small
  for i in $(seq 8); do head -c $((128 << 20)) /dev/zero >block_dir/large/f$i; done
  python3 -c '
import os
for d in range(20):
    os.makedirs(f"block_dir/small/d{d:02}", exist_ok=True)
for i in range(20000):
    with open(f"block_dir/small/d{i % 20:02}/f{i:05}", "wb") as f:
        f.write(os.urandom(4096))
'
  for load in large small; do
    local with=() without=()
    for _ in $(seq "$N"); do
      for which in with without; do
        local bin=$BIN
        [ "$which" = without ] && bin=$BYPASS
        local t
        t=$(pushes "$bin" "pull /vdisk/$load /vram/$load" "push --json /vram/$load /vdisk/copy" \
          2>>"$WORK/cost.err" | awk '{print $2}')
        rm -rf block_dir/copy
        [ -n "$t" ] || { echo "$load push failed:" >&2; cat "$WORK/cost.err" >&2; exit 1; }
        if [ "$which" = with ]; then with+=("$t"); else without+=("$t"); fi
      done
    done
    python3 -c '
import sys
load, n = sys.argv[1], int(sys.argv[2])
w = [float(x) for x in sys.argv[3:3 + n]]
wo = [float(x) for x in sys.argv[3 + n:]]
def fmt(xs):
    return " ".join("%.3f" % x for x in xs)
print("%6s: with %.3f s, without %.3f s, with/without %.3f  (with: %s; without: %s)"
      % (load, min(w), min(wo), min(w) / min(wo), fmt(w), fmt(wo)))
' "$load" "$N" "${with[@]}" "${without[@]}"
  done
  rm -rf block_dir/large block_dir/small
}

stop() {
  echo "== stop: bytes_done after 'stop %N' returns, a 200 MiB/s push in a daemon, $N runs"
  "$BIN" serve 2>serve.log &
  SERVE=$!
  for _ in $(seq 100); do [ -S run/mavfs/mavfs.sock ] && break; sleep 0.05; done
  [ -S run/mavfs/mavfs.sock ] || { echo "the daemon did not start" >&2; cat serve.log >&2; exit 1; }
  head -c $((1 << 30)) /dev/zero >block_dir/big
  "$BIN" exec 'pull /vdisk/big /vram/big' >/dev/null
  rm -f block_dir/big
  for i in $(seq "$N"); do
    "$BIN" exec "push --bwlimit 200MiB/s /vram/big /vdisk/c$i &" >/dev/null
    sleep 1
    python3 - "$BIN" "$i" <<'EOF'
import json, subprocess, sys, time
bin, run = sys.argv[1], sys.argv[2]
def bytes_done():
    out = subprocess.run([bin, "exec", "jobs --json"], capture_output=True, text=True).stdout
    job = max(json.loads(out), key=lambda j: j["id"])
    return job["id"], job["progress"]["bytes_done"]
job, _ = bytes_done()
issued = time.monotonic()
subprocess.run([bin, "exec", f"stop %{job}"], capture_output=True, check=True)
stopped = time.monotonic()
# The first poll after the stop is the reference: the counter must not move after it. Its time
# bounds the stop latency from above (the resolution is one `mavfs exec`).
_, first = bytes_done()
first_at = time.monotonic() - stopped
moved_after, polls = None, 1
while time.monotonic() < stopped + 1.0:
    _, b = bytes_done()
    polls += 1
    if b != first and moved_after is None:
        moved_after = time.monotonic() - stopped
subprocess.run([bin, "exec", f"kill %{job}"], capture_output=True)
if moved_after is None:
    print(f"run {run}: stopped within {1000 * first_at:.1f} ms of stop returning"
          f" ({1000 * (stopped - issued):.1f} ms after it was issued)"
          f" (bytes_done unchanged over {polls} polls in the next second)")
else:
    print(f"run {run}: bytes_done still moved {1000 * moved_after:.1f} ms after stop returned")
EOF
  done
}

case $WHAT in
  rates) rates ;;
  cost) cost ;;
  stop) stop ;;
  all) rates; cost; stop ;;
  *) echo "usage: $0 [rates|cost|stop|all] [N]" >&2; exit 2 ;;
esac

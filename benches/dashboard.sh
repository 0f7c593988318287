#!/usr/bin/env bash
# The dashboard's cost, in one run on tmpfs, every view a real ratatui one in a tmux pane
# (120x40), with a release build:
#
#   1. CPU of `mavfs dashboard`, idle, attached to `mavfs serve` and embedded (--embedded)
#   2. CPU of `mavfs dashboard` attached while the daemon runs 50 jobs
#      (`pull --bwlimit 2MiB/s ... &`), and the daemon's own CPU with none, 1, 5 and again none
#   3. CPU of an embedded shell running 50 such jobs, at the prompt and then in its `dashboard`:
#      the jobs run in the same process, so the dashboard's cost is the difference
#   4. a 1 GiB push /vram -> /vdisk in the daemon with 5 dashboards attached against none,
#      ROUNDS rounds alternating, best of each (the job's own elapsed time, from --json)
#
# CPU is percent of one core: utime + stime from /proc/PID/stat over WINDOW seconds.
# The machine is shared: compare figures within one run, not across runs.
#
# Needs tmux and python3. Holds up to ~5 GiB in /vram during steps 2 and 3 (50 jobs x 110 MiB
# at WINDOW=10).
# Usage: benches/dashboard.sh [ROUNDS] (default 5); WINDOW=S sets the CPU window (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
WINDOW=${WINDOW:-10}
JOBS=50
command -v tmux >/dev/null || { echo "benches/dashboard.sh needs tmux" >&2; exit 1; }
cargo build --release -q
BIN=$PWD/target/release/mavfs
WORK=$(mktemp -d /dev/shm/mavfs-dashboard-bench.XXXXXX)
export HOME=$WORK XDG_RUNTIME_DIR=$WORK/run XDG_CONFIG_HOME=$WORK/xdg XDG_STATE_HOME=$WORK/state
unset MAVFS_SOCKET RUST_LOG
cd "$WORK"
mkdir -p block_dir
TMUX_NAME=mavfs-dashboard-bench-$$
tm() { tmux -L "$TMUX_NAME" -f /dev/null "$@"; }
SERVE=
cleanup() {
  tm kill-server 2>/dev/null || true
  [ -n "$SERVE" ] && kill "$SERVE" 2>/dev/null && wait "$SERVE" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
HZ=$(getconf CLK_TCK)

# One tmux server for the run; its first window only keeps it alive.
tm new-session -d -s bench -x 120 -y 40 -c "$WORK" "exec sleep 100000"

# `open NAME CMD...`: a window running CMD (exec'd, so that the pane's pid is mavfs's).
open() { local name=$1; shift; tm new-window -d -t bench -n "$name" -c "$WORK" "exec $*"; }
pane_pid() { tm display-message -p -t "bench:$1" '#{pane_pid}'; }
close() { tm kill-window -t "bench:$1" 2>/dev/null || true; }
# `wait_screen NAME TEXT`: until window NAME shows TEXT (30 s at most).
wait_screen() {
  for _ in $(seq 300); do
    tm capture-pane -p -t "bench:$1" | grep -qF -- "$2" && return 0
    sleep 0.1
  done
  echo "window $1 never showed '$2':" >&2
  tm capture-pane -p -t "bench:$1" >&2
  exit 1
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# `cpu PID...`: percent of one core each PID used over WINDOW seconds, one figure a line.
cpu() {
  local before=() after=() i
  for p in "$@"; do before+=("$(ticks "$p")"); done
  sleep "$WINDOW"
  for p in "$@"; do after+=("$(ticks "$p")"); done
  for i in "${!before[@]}"; do
    python3 -c "import sys; print(f'{(int(sys.argv[2]) - int(sys.argv[1])) / int(sys.argv[3]) / float(sys.argv[4]) * 100:.1f}%')" \
      "${before[$i]}" "${after[$i]}" "$HZ" "$WINDOW"
  done
}

start_daemon() {
  "$BIN" serve 2>serve.log &
  SERVE=$!
  for _ in $(seq 100); do [ -S run/mavfs/mavfs.sock ] && return 0; sleep 0.05; done
  echo "the daemon did not start" >&2; cat serve.log >&2; exit 1
}
start_daemon

# Sparse sources for the 50 jobs: reading them costs no memory; each lasts long enough at
# 2 MiB/s for the windows below.
SRC_MIB=$((2 * (4 * WINDOW + 15)))
for i in $(seq "$JOBS"); do truncate -s "${SRC_MIB}M" "block_dir/src$i"; done
pulls() {
  local line=
  for i in $(seq "$JOBS"); do line+="pull --bwlimit 2MiB/s /vdisk/src$i /vram/dst$i & "; done
  echo "$line"
}

echo "(CPU figures resolve $(python3 -c "import sys; print(100 / int(sys.argv[1]) / float(sys.argv[2]))" "$HZ" "$WINDOW")% of one core: one clock tick over the window)"
echo "== 1. idle dashboard, % of one core over ${WINDOW} s"
open idle-attached "$BIN" dashboard
wait_screen idle-attached " tiers "
echo "attached:            $(cpu "$(pane_pid idle-attached)")"
close idle-attached
open idle-embedded "$BIN" --embedded dashboard
wait_screen idle-embedded " tiers "
echo "embedded:            $(cpu "$(pane_pid idle-embedded)")"
close idle-embedded

echo "== 2. $JOBS jobs (pull --bwlimit 2MiB/s) in the daemon, % of one core over ${WINDOW} s"
"$BIN" exec "$(pulls)" 2>/dev/null
sleep 1
echo "daemon, no dashboard:       $(cpu "$SERVE")"
open busy-attached "$BIN" dashboard
wait_screen busy-attached "jobs ($JOBS)"
read -r dash daemon <<<"$(cpu "$(pane_pid busy-attached)" "$SERVE" | tr '\n' ' ')"
echo "dashboard (attached):       $dash"
echo "daemon, with 1 dashboard:   $daemon"
for d in 2 3 4 5; do open "busy$d" "$BIN" dashboard; done
for d in 2 3 4 5; do wait_screen "busy$d" "jobs ($JOBS)"; done
echo "daemon, with 5 dashboards:  $(cpu "$SERVE")"
for d in 2 3 4 5; do close "busy$d"; done
close busy-attached
echo "daemon, no dashboard again: $(cpu "$SERVE")"
ids=$("$BIN" exec 'jobs --json' | python3 -c "import json, sys; print(' '.join(str(j['id']) for j in json.load(sys.stdin) if j['state'] in ('running', 'stopped')))")
# Cancelled, they leave nothing in /vram.
for id in $ids; do "$BIN" exec "kill %$id" >/dev/null 2>&1 || true; done

echo "== 3. $JOBS jobs in an embedded shell, % of one core over ${WINDOW} s (jobs and view in one process)"
open shell "$BIN" --embedded shell
wait_screen shell 'mavfs:/vram$'
tm send-keys -t bench:shell -l "$(pulls)"
tm send-keys -t bench:shell Enter
wait_screen shell "[$JOBS] pull"
sleep 1
SHELL_PID=$(pane_pid shell)
at_prompt=$(cpu "$SHELL_PID")
echo "shell at the prompt:      $at_prompt"
tm send-keys -t bench:shell -l dashboard
tm send-keys -t bench:shell Enter
wait_screen shell "jobs ($JOBS)"
in_view=$(cpu "$SHELL_PID")
echo "shell in its dashboard:   $in_view"
python3 -c "import sys; a, b = (float(x.rstrip('%')) for x in sys.argv[1:]); print(f'the dashboard (difference): {b - a:.1f}%')" "$at_prompt" "$in_view"
close shell

echo "== 4. push 1 GiB /vram -> /vdisk in the daemon, without and with 5 dashboards attached ($ROUNDS rounds, alternating)"
head -c $((1 << 30)) /dev/urandom > block_dir/big
"$BIN" exec 'pull /vdisk/big /vram/big' 2>/dev/null
rm block_dir/big
# The job's own elapsed time in seconds, from the `finished` event of `--json`, and the CPU
# seconds the daemon spent meanwhile (steadier than wall time on a loaded machine).
push_secs() {
  local before after secs
  before=$(ticks "$SERVE")
  secs=$("$BIN" --json exec 'push /vram/big /vdisk/copy' | tail -1 | python3 -c "
import json, sys
e = json.load(sys.stdin)['kind']['elapsed']
print(round(e['secs'] + e['nanos'] / 1e9, 4))")
  after=$(ticks "$SERVE")
  "$BIN" exec 'rm /vdisk/copy' >/dev/null
  echo "$secs/$(python3 -c "import sys; print((int(sys.argv[2]) - int(sys.argv[1])) / int(sys.argv[3]))" "$before" "$after" "$HZ")"
}
NONE=()
FIVE=()
for round in $(seq "$ROUNDS"); do
  NONE+=("$(push_secs)")
  for d in 1 2 3 4 5; do open "dash$d" "$BIN" dashboard; done
  for d in 1 2 3 4 5; do wait_screen "dash$d" " tiers "; done
  FIVE+=("$(push_secs)")
  for d in 1 2 3 4 5; do close "dash$d"; done
  echo "round $round (elapsed s/daemon CPU s): none ${NONE[-1]}, five ${FIVE[-1]}"
done
python3 - "${NONE[*]}" "${FIVE[*]}" <<'PY'
import sys
none = [tuple(map(float, x.split("/"))) for x in sys.argv[1].split()]
five = [tuple(map(float, x.split("/"))) for x in sys.argv[2].split()]
n, f = min(t for t, _ in none), min(t for t, _ in five)
print(f"best elapsed: none {n:.3f} s ({1 / n:.2f} GiB/s), five dashboards {f:.3f} s "
      f"({1 / f:.2f} GiB/s): throughput ratio {n / f:.3f}")
spread = max(t for t, _ in none) / n
print(f"  (noise: the slowest no-dashboard round took {spread:.2f}x the best)")
cn, cf = min(c for _, c in none), min(c for _, c in five)
print(f"least daemon CPU per push: none {cn:.2f} s, five dashboards {cf:.2f} s: ratio {cn / cf:.3f}")
PY

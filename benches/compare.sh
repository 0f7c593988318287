#!/usr/bin/env bash
# Compares MAVFS transfers with `cp -r` (and `rclone copy`, when installed) on the same data, in the
# same run, and prints each as a ratio. Absolute times drift on shared machines; ratios hold.
#
# Workloads, created in tmpfs (/dev/shm):
#   large: 8 files of 128 MiB      small: 20,000 files of 4 KiB in 100 directories
# For each workload:
#   push  /vram -> /vdisk   vs  cp -r tmpfs -> disk        (hot to cold)
#   pull  /vdisk -> /vram   vs  cp -r disk -> tmpfs        (cold to hot)
# MAVFS first loads the tree into /vram from a tmpfs-backed disk mount (untimed), then times its
# own transfer from the summary line each transfer prints.
#
# Usage: benches/compare.sh [large|small]...   (default: both)
#   DEST_DIR=/path   where the disk-side copies go (default: target/compare, on the repo's disk)
#   MAVFS=/path      the binary (default: target/release/mavfs, built if missing)
#   RUNS=N           repetitions; the best of N is reported for each tool (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/workloads.sh
. benches/workloads.sh

workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(large small)
runs=${RUNS:-3}
mavfs=${MAVFS:-target/release/mavfs}
if [ ! -x "$mavfs" ] || [ -z "${MAVFS:-}" ]; then
  cargo build --release --quiet --bin mavfs
fi
dest_root=${DEST_DIR:-$PWD/target/compare}
mkdir -p "$dest_root"
shm=$(mktemp -d /dev/shm/mavfs-compare.XXXXXX)
dest=$(mktemp -d "$dest_root/run.XXXXXX")
trap 'rm -rf "$shm" "$dest"' EXIT

now() { date +%s.%N; }
# Puts every timed step on the same footing: nothing dirty left to write back, no page cache
# left from earlier steps (when this user may drop it), which a later writer would first have
# to reclaim, and the step's source, if given, read into the cache, so that a pull measures the
# tool rather than the device, whichever tool comes first.
settle() {
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then echo 1 > /proc/sys/vm/drop_caches; fi
  if [ -n "${1:-}" ]; then find "$1" -type f -exec cat {} + >/dev/null; fi
}
# Runs "${@:2}" after `settle "$1"` and prints its wall time in seconds.
timed() {
  local t0 t1
  settle "$1"; shift
  t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
  echo "$t1 - $t0" | bc -l
}
best() { printf '%s\n' "$@" | sort -g | head -n1; }

config="$shm/mavfs.toml"
cat > "$config" <<TOML
[[mount]]
path = "/vram"
backend = "memory"

[[mount]]
path = "/src"
backend = "disk"
root = "$shm/data"
tier = "cold"

[[mount]]
path = "/vdisk"
backend = "disk"
root = "$dest"
tier = "cold"
TOML



printf '%-6s %-5s %-14s %10s %10s\n' WORK DIR TOOL SECONDS "VS CP -R"
for w in "${workloads[@]}"; do
  mkdir -p "$shm/data"
  "make_$w" "$shm/data/$w"
  bytes=$(du -sb "$shm/data/$w" | cut -f1)
  cp_push=(); cp_pull=(); rc_push=(); mv_push=(); mv_pull=()
  for r in $(seq 1 "$runs"); do
    # Every copy goes to a directory of its own, and the disk-side copies are deleted only after
    # the last run: on ext4, creating files right after deleting thousands costs far more than
    # on a fresh directory, which would penalise whichever tool came second.
    run="$dest/$w.$r"
    mkdir -p "$run"
    cp_push+=("$(timed "" cp -r "$shm/data/$w" "$run/cp")")
    cp_pull+=("$(timed "$run/cp" cp -r "$run/cp" "$shm/back")")
    rm -rf "$shm/back"
    if command -v rclone >/dev/null 2>&1; then
      rc_push+=("$(timed "" rclone copy --transfers 4 "$shm/data/$w" "$run/rclone")")
    fi
    settle
    # The load into /vram is untimed: only the push's time (the second summary) counts.
    mv_push+=("$(mavfs_seconds "pull /src/$w /vram/$w" "push /vram/$w /vdisk/$w.$r/mavfs" | tail -n1)")
    settle "$run/mavfs"
    mv_pull+=("$(mavfs_seconds "pull /vdisk/$w.$r/mavfs /vram/back")")
  done
  rm -rf "$dest/$w".*
  c=$(best "${cp_push[@]}"); m=$(best "${mv_push[@]}")
  printf '%-6s %-5s %-14s %10.3f %10s\n' "$w" push "cp -r" "$c" 1.00
  if [ ${#rc_push[@]} -gt 0 ]; then
    rc=$(best "${rc_push[@]}")
    printf '%-6s %-5s %-14s %10.3f %10s\n' "$w" push "rclone copy" "$rc" "$(ratio "$c" "$rc")"
  fi
  printf '%-6s %-5s %-14s %10.3f %10s\n' "$w" push "mavfs push" "$m" "$(ratio "$c" "$m")"
  c=$(best "${cp_pull[@]}"); m=$(best "${mv_pull[@]}")
  printf '%-6s %-5s %-14s %10.3f %10s\n' "$w" pull "cp -r" "$c" 1.00
  printf '%-6s %-5s %-14s %10.3f %10s\n' "$w" pull "mavfs pull" "$m" "$(ratio "$c" "$m")"
  echo "($w: $bytes bytes; 'vs cp -r' is cp's time over the tool's: above 1.00 is faster than cp)"
  rm -rf "$shm/data"
done

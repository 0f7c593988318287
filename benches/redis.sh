#!/usr/bin/env bash
# MAVFS transfers into and out of Redis, next to redis-benchmark's SET and GET on the same private
# server in the same run, printed as ratios (absolute figures drift on shared machines).
#
# Workloads, created in tmpfs (/dev/shm), as in compare.sh:
#   large: 8 files of 128 MiB      small: 20,000 files of 4 KiB in 100 directories
# For each workload, with /vram in Redis, /src a disk mount on tmpfs and /mem a memory mount:
#   into Redis:   pull /src/W /vram/W (from disk), pull /mem/W /vram/W (from memory)
#                 vs  redis-benchmark SET at the workload's value size
#   out of Redis: push /vram/W /mem/W (to memory), push /vram/W /src/W.out (to disk)
#                 vs  redis-benchmark GET at the same size, and the bound the page faults
#                 alone put on a push into memory (touching as many fresh pages as the
#                 workload's bytes fill, measured in the same run), and for a push into the
#                 disk mount the time a C loop takes to create, write and rename as many files
#                 of the same size on the same tmpfs, one at a time (if `cc` is installed)
# (large: 1 MiB values, -P 4; small: 4 KiB values, -P 16). redis-benchmark overwrites one key, so
# Redis never allocates; the "SET -r 1024" row spreads the same SETs over 1024 keys, and the "new
# keys" row stores as many values as the workload has chunks, each under a key of its own, which
# is what a MAVFS write into Redis must do. MAVFS times come from the summary line each transfer prints;
# files per second for the small workload.
#
# memory: 20,000 files in 100 directories of 0, 100, 1,024 and 4,096 bytes each, pulled from
# /src into /vram by one process; printed per file: the server's used_memory after less before
# (both with no client connected but redis-cli, so connection buffers are not counted) and the
# sum of MEMORY USAGE over the namespace's keys, each as bytes, as a ratio to the file's size,
# and as overhead (bytes above the file's size).
#
# Usage: benches/redis.sh [large|small|memory]...   (default: large small memory)
#   MAVFS=/path   the binary (default: target/release/mavfs, built if missing)
#   RUNS=N        repetitions; the best of N is reported (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/workloads.sh
. benches/workloads.sh

workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(large small memory)
runs=${RUNS:-3}
mavfs=${MAVFS:-target/release/mavfs}
if [ -z "${MAVFS:-}" ]; then
  cargo build --release --quiet --bin mavfs
fi
for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "redis.sh: $tool is not installed" >&2; exit 1; }
done
shm=$(mktemp -d /dev/shm/mavfs-redis.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The large workload holds 1 GiB at a time; the limit keeps a runaway run off the shared machine.
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$shm" \
  --maxmemory 3gb --maxmemory-policy noeviction --logfile redis.log --daemonize no >/dev/null 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null; rm -rf "$shm"' EXIT
until [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; do sleep 0.05; done


config="$shm/mavfs.toml"
cat > "$config" <<TOML
[[mount]]
path = "/vram"
backend = "redis"
url = "redis://127.0.0.1:$port/0"
namespace = "bench"

[[mount]]
path = "/src"
backend = "disk"
root = "$shm/data"
tier = "cold"

[[mount]]
path = "/mem"
backend = "memory"
tier = "cold"
TOML
mkdir -p "$shm/data"

# redis-benchmark's SET and GET requests per second (as "SET GET") at SIZE bytes with PIPE
# pipelining, N requests each, and any further redis-benchmark flags. One run does both, so the
# GETs read what the SETs wrote.
bench_rps() {
  local out
  out=$(redis-benchmark -p "$port" -t set,get -d "$1" -P "$2" -n "$3" "${@:4}" -q 2>/dev/null | tr '\r' '\n')
  printf '%s %s\n' \
    "$(printf '%s\n' "$out" | grep -E '^SET: [0-9.]+ requests' | sed -E 's/^SET: ([0-9.]+) .*/\1/')" \
    "$(printf '%s\n' "$out" | grep -E '^GET: [0-9.]+ requests' | sed -E 's/^GET: ([0-9.]+) .*/\1/')"
}
# Seconds to touch BYTES of fresh anonymous memory, a byte per page: the page faults a process
# pays to keep that much new data, as a push into a memory mount does (redis-benchmark's GET
# keeps nothing). The loop over pages runs in C (an extended slice assignment).
fresh_pages_seconds() {
  python3 - "$1" <<'PY'
import mmap, sys, time
n = int(sys.argv[1])
m = mmap.mmap(-1, n)
t = time.perf_counter()
m[::mmap.PAGESIZE] = b"\1" * len(range(0, n, mmap.PAGESIZE))
print(f"{time.perf_counter() - t:.4f}")
PY
}
# Seconds a C loop takes to commit $2 files of $3 bytes each into directory $1 as a push into a
# disk mount must, one at a time: create a temp file, write it, close it, rename it into one of
# 100 directories. What the file system alone costs; empty when there is no C compiler.
commit_loop_seconds() {
  local probe="$shm/commit-probe"
  if [ ! -x "$probe" ]; then
    command -v cc >/dev/null || return 0
    cat > "$probe.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  const char *root = argv[1];
  int files = atoi(argv[2]), size = atoi(argv[3]);
  char *buf = malloc(size > 0 ? size : 1), tmp[4096], dst[4096];
  memset(buf, 'x', size > 0 ? size : 1);
  for (int d = 0; d < 100; d++) {
    snprintf(dst, sizeof dst, "%s/dir%d", root, d);
    mkdir(dst, 0755);
  }
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < files; i++) {
    snprintf(tmp, sizeof tmp, "%s/.tmp%d", root, i);
    snprintf(dst, sizeof dst, "%s/dir%d/f%d", root, i % 100, i);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 || write(fd, buf, size) != size || close(fd) || rename(tmp, dst)) {
      perror("commit probe");
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.4f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
  return 0;
}
C
    cc -O2 -o "$probe" "$probe.c" || return 0
  fi
  rm -rf "$1"; mkdir -p "$1"
  "$probe" "$1" "$2" "$3"
  rm -rf "$1"
}
best_min() { printf '%s\n' "$@" | sort -g | head -n1; }
best_max() { printf '%s\n' "$@" | sort -g | tail -n1; }

# used_memory of the server, in bytes.
used_memory() { redis-cli -p "$port" info memory | tr -d '\r' | sed -n 's/^used_memory://p'; }
# The sum of MEMORY USAGE (every element counted) over the keys of namespace bench.
keys_memory() {
  # One redis-cli for all the keys (they hold no spaces).
  redis-cli -p "$port" --scan --pattern 'bench:*' | sed 's/^/MEMORY USAGE /; s/$/ SAMPLES 0/' |
    redis-cli -p "$port" | awk '{ s += $1 } END { print s + 0 }'
}
# Per file, for files of SIZE bytes: bytes, ratio to SIZE (when not 0) and overhead.
per_file() {
  local bytes=$1 size=$2 files=$3 each
  each=$(echo "scale=0; $bytes / $files" | bc -l)
  if [ "$size" -gt 0 ]; then
    printf '%6s B (%sx, +%s B)' "$each" "$(ratio "$each" "$size")" "$((each - size))"
  else
    printf '%6s B (+%s B)' "$each" "$each"
  fi
}
if [[ " ${workloads[*]} " == *" memory "* ]]; then
  printf '%-6s %-12s %-30s %s\n' WORK "FILE SIZE" "used_memory PER FILE" "MEMORY USAGE OF KEYS PER FILE"
  for size in 0 100 1024 4096; do
    dir="$shm/data/mem$size"
    block=$(head -c "$size" /dev/urandom | base64 -w0 | head -c "$size")
    for d in $(seq 1 100); do
      mkdir -p "$dir/dir$d"
      for f in $(seq 1 200); do printf '%s' "$block" > "$dir/dir$d/f$f"; done
    done
    redis-cli -p "$port" flushall >/dev/null
    before=$(used_memory)
    "$mavfs" -c "$config" exec "pull /src/mem$size /vram/mem$size" >/dev/null 2>&1
    after=$(used_memory)
    keys=$(keys_memory)
    printf '%-6s %-12s %-30s %s\n' memory "$size B" "$(per_file $((after - before)) "$size" 20000)" \
      "$(per_file "$keys" "$size" 20000)"
    rm -rf "$dir"
  done
  redis-cli -p "$port" flushall >/dev/null
fi

[[ " ${workloads[*]} " =~ " large "|" small " ]] &&
  printf '%-6s %-13s %-34s %14s %s\n' WORK DIRECTION TOOL RATE "VS BENCH"
for w in "${workloads[@]}"; do
  [ "$w" = memory ] && continue
  case $w in
    large) make_large "$shm/data/$w"; files=8; chunks=1024; bytes=$((8 * 128 << 20)); size=1048576; pipe=4; n=2000 ;;
    small) make_small "$shm/data/$w"; files=20000; chunks=20000; bytes=$((20000 * 4096)); size=4096; pipe=16; n=200000 ;;
    *) echo "unknown workload $w" >&2; exit 2 ;;
  esac
  from_disk=(); from_mem=(); to_mem=(); to_disk=(); sets=(); gets=(); rsets=(); nsets=(); pages=()
  commits=()
  for _ in $(seq 1 "$runs"); do
    redis-cli -p "$port" flushall >/dev/null
    rm -rf "${shm:?}/data/$w.out"
    mapfile -t t < <(mavfs_seconds "pull /src/$w /vram/$w" "push /vram/$w /mem/$w" \
      "push /vram/$w /src/$w.out" "rm -r /vram/$w" "pull /mem/$w /vram/$w")
    from_disk+=("${t[0]}"); to_mem+=("${t[1]}"); to_disk+=("${t[2]}"); from_mem+=("${t[3]}")
    rm -rf "${shm:?}/data/$w.out"
    redis-cli -p "$port" flushall >/dev/null
    read -r set_rps get_rps < <(bench_rps $size $pipe $n)
    sets+=("$set_rps"); gets+=("$get_rps")
    redis-cli -p "$port" flushall >/dev/null
    read -r set_rps _ < <(bench_rps $size $pipe $n -r 1024)
    rsets+=("$set_rps")
    redis-cli -p "$port" flushall >/dev/null
    read -r set_rps _ < <(bench_rps $size $pipe $chunks -r 1000000000)
    nsets+=("$set_rps")
    pages+=("$(fresh_pages_seconds "$bytes")")
    commit_s=$(commit_loop_seconds "$shm/data/$w.probe" "$files" $((bytes / files)))
    [ -z "$commit_s" ] || commits+=("$commit_s")
  done
  set_rps=$(best_max "${sets[@]}"); get_rps=$(best_max "${gets[@]}"); rset_rps=$(best_max "${rsets[@]}")
  nset_rps=$(best_max "${nsets[@]}"); pages_s=$(best_min "${pages[@]}")
  if [ "$w" = large ]; then
    unit="MiB/s"; set_unit="MiB/s"; get_unit="MiB/s"
    # MiB/s of a MAVFS transfer that took $1 seconds, or of redis-benchmark at $1 requests/s.
    mavfs_rate() { echo "scale=1; $bytes / 1048576 / $1" | bc -l; }
    bench_rate() { echo "scale=1; $1 * $size / 1048576" | bc -l; }
  else
    unit="files/s"; set_unit="SET/s"; get_unit="GET/s"
    mavfs_rate() { echo "scale=0; $files / $1" | bc -l; }
    bench_rate() { echo "scale=0; $1 / 1" | bc -l; }
  fi
  set_rate=$(bench_rate "$set_rps"); rset_rate=$(bench_rate "$rset_rps"); get_rate=$(bench_rate "$get_rps")
  nset_rate=$(bench_rate "$nset_rps")
  row() { printf '%-6s %-13s %-34s %14s %s\n' "$w" "$1" "$2" "$3" "$4"; }
  # A MAVFS row: direction, label, the benchmark rate it is set against, the times of its runs.
  mavfs_row() {
    local dir=$1 label=$2 against=$3 rate vs
    shift 3
    rate=$(mavfs_rate "$(best_min "$@")")
    vs=$(ratio "$rate" "$against")
    if [ "$dir" = "into Redis" ]; then
      vs="$vs  (vs SET -r 1024: $(ratio "$rate" "$rset_rate"); vs new keys: $(ratio "$rate" "$nset_rate"))"
    fi
    row "$dir" "$label" "$rate $unit" "$vs"
  }
  row "into Redis" "redis-benchmark SET -P $pipe" "$set_rate $set_unit" "1.00"
  row "into Redis" "redis-benchmark SET -P $pipe -r 1024" "$rset_rate $set_unit" "$(ratio "$rset_rate" "$set_rate")"
  row "into Redis" "redis-benchmark SET -P $pipe, new keys" "$nset_rate $set_unit" "$(ratio "$nset_rate" "$set_rate")"
  mavfs_row "into Redis" "mavfs pull /src -> /vram (disk)" "$set_rate" "${from_disk[@]}"
  mavfs_row "into Redis" "mavfs pull /mem -> /vram (memory)" "$set_rate" "${from_mem[@]}"
  row "out of Redis" "redis-benchmark GET -P $pipe" "$get_rate $get_unit" "1.00"
  mavfs_row "out of Redis" "mavfs push /vram -> /mem (memory)" "$get_rate" "${to_mem[@]}"
  mavfs_row "out of Redis" "mavfs push /vram -> /src (disk)" "$get_rate" "${to_disk[@]}"
  # A push into a memory mount keeps the bytes in new memory, so on one thread (the client's
  # runtime has one worker) it takes at least the page faults' time, besides receiving them and
  # everything else it does: the bound that alone puts on its rate.
  bound=$(mavfs_rate "$pages_s")
  row "out of Redis" "bound: fresh pages alone (memory)" "$bound $unit" \
    "$(ratio "$bound" "$get_rate")  (touching $((bytes >> 20)) MiB of fresh pages: $(echo "$pages_s * 1000 / 1" | bc) ms)"
  # A push into a disk mount commits each file by a rename of its own temp file: what the same
  # system calls cost in a C loop on one thread, run on the same tmpfs.
  if [ ${#commits[@]} -gt 0 ]; then
    commit_s=$(best_min "${commits[@]}")
    bound=$(mavfs_rate "$commit_s")
    row "out of Redis" "bound: C create+write+rename (disk)" "$bound $unit" \
      "$(ratio "$bound" "$get_rate")  ($files files in $(echo "$commit_s * 1000 / 1" | bc) ms)"
  else
    row "out of Redis" "bound: C create+write+rename (disk)" "-" "(no C compiler: not measured)"
  fi
  rm -rf "${shm:?}/data/$w"
done

#!/usr/bin/env bash
# How MAVFS's cost grows with the size of a tree (issue 13, point 3). For each N (default
# 20000 200000 1000000) it builds a tree of N files of 1 KiB in 1,000 directories, and a flat
# directory of N empty files, on a fresh loop-mounted ext4 (image in /dev/shm; a plain tmpfs
# directory, said so on stderr, when it cannot mount one), then, for each store behind /vram
# (memory, disk on that ext4, Redis on a private redis-server this script starts and stops), times:
#   pull   /src/t -> /vram/t (disk mount -> /vram)    push   /vram/t -> /out/t (a fresh disk dir)
#   cp -r  /vram/t /vram/t2                           rm -r  /vram/t2
#   du -s  /vram/t                                    ls     /vram/flat (N entries; pulled first)
#   ls -U  /vram/flat (unsorted, streamed page by page)
# and, as baselines on the same ext4, GNU cp -r, rm -r, du -s, ls and ls -U (store "gnu").
# All operations on one tree run in one `mavfs exec` process (the memory store lives only as long
# as it), separated by `echo` markers; a filter timestamps each marker as it arrives and reads the
# process's peak RSS since the previous marker from /proc (VmHWM, reset through clear_refs, so
# each row has its own peak; without clear_refs it is the peak so far). `ls` runs in a second
# process, after pulling the flat directory, so its RSS is not inflated by the tree.
# Printed, one table: seconds, µs per file, that per-file time as a ratio to the smallest N,
# peak RSS in MiB, and RSS bytes per file above the session's start and the data the process
# itself holds (the 1 KiB files in the memory store; 0 for disk and Redis). RSS the allocator keeps
# after an operation counts in the rows after it (the tree session's base is its start); the ls
# rows' base is the RSS after pulling the flat directory, so they show what listing adds (each
# its own peak). ADDED B/FILE is what the operation itself added: its peak RSS above the RSS when
# it started, less the file bytes it added to the memory store (a memory store's own bookkeeping
# for the files an operation creates, about 180 bytes a file, counts as added). Issue 13's
# targets: ratio <= 1.3 and <= 300 B/file; mavfs ls within 2x of GNU ls in time and peak RSS;
# ls -U in bounded memory (its RSS B/FILE falls as N grows). One run, not best-of: large N
# takes minutes.
#
# Usage: benches/scaling.sh [N...]    (run as root for the ext4 loop mount and clear_refs)
#   MAVFS=/path     the binary (default: target/release/mavfs, built once)
#   STORES="memory disk redis"   which stores back /vram
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(20000 200000 1000000)
stores=(${STORES:-memory disk redis})
mavfs=${MAVFS:-target/release/mavfs}
if [ -z "${MAVFS:-}" ]; then
  cargo build --release --quiet --bin mavfs
fi
mavfs=$(realpath "$mavfs")
for tool in redis-server redis-cli python3 perl; do
  command -v "$tool" >/dev/null || { echo "scaling.sh: $tool is not installed" >&2; exit 1; }
done

work=$(mktemp -d /dev/shm/mavfs-scaling.XXXXXX)
mnt="$work/mnt"
mkdir -p "$mnt"
mounted=""
redis_pid=""
cleanup() {
  [ -z "$redis_pid" ] || { kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null || true; }
  [ -z "$mounted" ] || umount "$mnt" 2>/dev/null || true
  # The raw rows outlive the run, so that a run that stops late still leaves its figures.
  [ ! -f "$work/rows" ] || cp "$work/rows" "${SCALING_ROWS:-/tmp/mavfs-scaling-rows.txt}"
  rm -rf "$work"
}
trap cleanup EXIT

# A fresh filesystem for the trees of N files: ext4 with 1 KiB blocks (a 1 KiB file takes one
# block) and inodes for every copy; the image lives in /dev/shm so the machine's disk is not the
# bottleneck (nor filled). Falls back to a tmpfs directory when mounting is not allowed.
fresh_fs() {
  local n=$1
  [ -z "$mounted" ] || { umount "$mnt"; mounted=""; }
  rm -rf "${mnt:?}"/* "$work/ext4.img"
  if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null; then
    truncate -s $((n * 8 * 1024 + (512 << 20))) "$work/ext4.img"
    # large_dir: with 1 KiB blocks a two-level htree holds only about 500,000 names.
    if mkfs.ext4 -q -F -b 1024 -N $((n * 6 + 20000)) -O large_dir \
         -E lazy_itable_init=0,lazy_journal_init=0 \
         "$work/ext4.img" && mount -o loop,noatime "$work/ext4.img" "$mnt"; then
      mounted=1
      fs="ext4 (loop, image in /dev/shm)"
      return
    fi
    rm -f "$work/ext4.img"
  fi
  fs="tmpfs directory (no loop mount: not root or mount failed)"
  echo "scaling.sh: cannot mount a loop ext4; using a tmpfs directory instead" >&2
}

# Tree of $2 files of 1 KiB in 1,000 directories under $1, and $2 empty files in directory $3.
make_trees() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, sys
root, n, flat = sys.argv[1], int(sys.argv[2]), sys.argv[3]
block = (b"0123456789abcdef" * 64)[:1024]
per = n // 1000
for d in range(1000):
    dd = os.path.join(root, "d%04d" % d)
    os.makedirs(dd)
    for f in range(per + (1 if d < n % 1000 else 0)):
        with open(os.path.join(dd, "f%d" % f), "wb") as fh:
            fh.write(block)
os.makedirs(flat)
for f in range(n):
    open(os.path.join(flat, "e%07d" % f), "wb").close()
PY
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a private redis-server with room for two trees of $1 files and the flat directory.
start_redis() {
  local n=$1
  redis_port=$(free_port)
  mkdir -p "$work/redis"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/redis" \
    --maxmemory $((n * 6000 + (256 << 20))) --logfile redis.log --daemonize no >/dev/null 2>&1 &
  redis_pid=$!
  until [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ]; do sleep 0.05; done
}
stop_redis() {
  kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null || true
  redis_pid=""
}

# The config for /vram on store $1: /src (the trees) and /out (push target) are disk mounts.
write_config() {
  local vram
  case $1 in
    memory) vram='backend = "memory"' ;;
    disk) mkdir -p "$mnt/vram"; vram="backend = \"disk\"
root = \"$mnt/vram\"" ;;
    redis) vram="backend = \"redis\"
url = \"redis://127.0.0.1:$redis_port/0\"
namespace = \"scaling\"" ;;
  esac
  mkdir -p "$mnt/out"
  cat > "$work/mavfs.toml" <<TOML
[[mount]]
path = "/vram"
$vram
tier = "hot"

[[mount]]
path = "/src"
backend = "disk"
root = "$mnt/src"
tier = "cold"

[[mount]]
path = "/out"
backend = "disk"
root = "$mnt/out"
tier = "cold"
TOML
}

# Runs one `mavfs exec` session of "$@", where an argument "@NAME" becomes a marker. Prints one
# line per marker: NAME, seconds since the epoch, peak RSS (KiB) since the previous marker,
# current RSS (KiB). Everything else mavfs prints goes to $work/mavfs.log.
timed_exec() {
  local args=() a
  for a in "$@"; do
    if [[ $a == @* ]]; then args+=("echo @@MARK ${a#@}"); else args+=("$a"); fi
  done
  rm -f "$work/pid"
  set +e
  # shellcheck disable=SC2016
  sh -c 'echo $$ > "$0"; exec "$@"' "$work/pid" "$mavfs" --embedded -c "$work/mavfs.toml" exec \
      "${args[@]}" 2>&1 | perl -MTime::HiRes=time -e '
    my ($pidfile, $log) = @ARGV; my $pid;
    open(my $lf, ">>", $log) or die; $| = 1;
    sub field { my ($f) = @_; open(my $s, "<", "/proc/$pid/status") or return 0;
      while (<$s>) { return $1 if /^$f:\s+(\d+)/ } return 0 }
    while (my $l = <STDIN>) {
      if ($l =~ /^\@\@MARK (\S+)/) {
        my $t = time; my $name = $1;
        unless ($pid) { open(my $p, "<", $pidfile) or die; $pid = <$p>; chomp $pid; }
        printf "%s %.6f %d %d\n", $name, $t, field("VmHWM"), field("VmRSS");
        if (open(my $c, ">", "/proc/$pid/clear_refs")) { print $c "5\n"; close $c; }
      } else { print $lf $l; }
    }' "$work/pid" "$work/mavfs.log"
  local rc=("${PIPESTATUS[@]}")
  set -e
  [ "${rc[*]}" = "0 0" ] || { echo "scaling.sh: mavfs exec failed (exit codes of mavfs, filter: ${rc[*]}); its output:" >&2;
                     tail -20 "$work/mavfs.log" >&2; exit 1; }
}

# Appends a row: operation, store, N, seconds, peak RSS KiB, RSS bytes per file above the data,
# RSS bytes per file the operation added at its peak above the data it added.
row() { printf '%s %s %s %s %s %s %s\n' "$@" >> "$work/rows"; }

# Turns marker lines (from timed_exec, in file $1) into rows for store $2 at size $3; $4 is the
# bytes per file the process holds as data for store memory, by operation ("pull:1" = N x 1 KiB).
rows_from_marks() {
  local file=$1 store=$2 n=$3 held=$4
  awk -v store="$store" -v n="$n" -v held="$held" '
    BEGIN { split(held, h, " "); for (i in h) { split(h[i], kv, ":"); k[kv[1]] = kv[2] } }
    NR == 1 { t0 = $2; base = $4; cur = $4; held = 0; next }
    { data = (store == "memory" ? k[$1] * 1024 * n : 0)
      printf "%s %s %d %.6f %d %.0f %.0f\n", $1, store, n, $2 - t0, $3,
             ($3 * 1024 - base * 1024 - data) / n, ($3 * 1024 - cur * 1024 - (data - held)) / n
      t0 = $2; cur = $4; held = data }' "$file" >> "$work/rows"
}

# Times GNU tool "$@" on the ext4: seconds and peak RSS (KiB, 0 without /usr/bin/time), as "S KIB".
gnu_time() {
  local t0 t1 rss=0
  t0=$EPOCHREALTIME
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -o "$work/time" -f '%M' "$@" >/dev/null
    rss=$(tail -1 "$work/time")
  else
    "$@" >/dev/null
  fi
  t1=$EPOCHREALTIME
  echo "$(echo "$t1 - $t0" | bc -l) $rss"
}

for n in "${sizes[@]}"; do
  fresh_fs "$n"
  echo "scaling.sh: N=$n on $fs: generating" >&2
  mkdir -p "$mnt/src"
  make_trees "$mnt/src/t" "$n" "$mnt/src/flat"
  sync

  # Baselines: GNU tools on the same ext4.
  read -r s k < <(gnu_time cp -r "$mnt/src/t" "$mnt/gnu-t2"); row cp-r gnu "$n" "$s" "$k" - -
  read -r s k < <(gnu_time du -s "$mnt/gnu-t2"); row du-s gnu "$n" "$s" "$k" - -
  read -r s k < <(gnu_time rm -r "$mnt/gnu-t2"); row rm-r gnu "$n" "$s" "$k" - -
  read -r s k < <(gnu_time sh -c "ls '$mnt/src/flat' | cat"); row ls gnu "$n" "$s" "$k" - -
  read -r s k < <(gnu_time sh -c "ls -U '$mnt/src/flat' | cat"); row ls-U gnu "$n" "$s" "$k" - -

  for store in "${stores[@]}"; do
    echo "scaling.sh: N=$n store=$store" >&2
    [ "$store" != redis ] || start_redis "$n"
    rm -rf "${mnt:?}/out" "${mnt:?}/vram"
    write_config "$store"
    timed_exec @start 'pull /src/t /vram/t' @pull 'cp -r /vram/t /vram/t2' @cp-r \
      'rm -r /vram/t2' @rm-r 'du -s /vram/t' @du-s 'push /vram/t /out/t' @push \
      'rm -r /vram/t' > "$work/marks"
    # The memory store's cp shares the copied chunks (Bytes), so the data stays N x 1 KiB.
    rows_from_marks "$work/marks" "$store" "$n" "pull:1 cp-r:1 rm-r:1 du-s:1 push:1"
    rm -rf "${mnt:?}/out"; mkdir -p "$mnt/out"
    # ls -U first: RSS the allocator keeps after the sorted ls would count in the row after it.
    timed_exec 'pull /src/flat /vram/flat' @start 'ls -U /vram/flat' @ls-U 'ls /vram/flat' @ls \
      'rm -r /vram/flat' > "$work/marks"
    rows_from_marks "$work/marks" "$store" "$n" "ls:0 ls-U:0"
    [ "$store" != redis ] || stop_redis
  done
done

echo "filesystem: $fs; mavfs: $mavfs"
# The table: µs/file ratio against the same operation and store at the smallest N.
sort -k1,1 -k2,2 -k3,3n "$work/rows" | awk '
  BEGIN { printf "%-10s %-7s %8s %9s %9s %6s %9s %10s %12s\n",
          "OPERATION", "STORE", "N", "SECONDS", "US/FILE", "RATIO", "RSS MIB", "RSS B/FILE",
          "ADDED B/FILE" }
  NF < 7 || $3 == 0 { print "scaling.sh: skipped a malformed row: " $0 > "/dev/stderr"; next }
  { key = $1 " " $2; us = $4 * 1e6 / $3
    if (!(key in first)) first[key] = us
    ratio = first[key] > 0 ? sprintf("%.2f", us / first[key]) : "-"
    printf "%-10s %-7s %8d %9.3f %9.2f %6s %9.1f %10s %12s\n",
           $1, $2, $3, $4, us, ratio, $5 / 1024, $6, $7 }'

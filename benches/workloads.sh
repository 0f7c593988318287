# Shared by compare.sh and redis.sh (sourced, not run), so that both time the same workloads
# the same way. Expects $mavfs (the binary) and $config (its config file) when timing.

# 8 files of 128 MiB of random bytes, in directory $1.
make_large() {
  mkdir -p "$1"
  for i in $(seq 1 8); do head -c $((128 << 20)) /dev/urandom > "$1/file$i"; done
}

# 20,000 files of 4 KiB, 200 in each of 100 directories, in directory $1.
make_small() {
  mkdir -p "$1"
  local block; block=$(head -c 4096 /dev/urandom | base64 -w0 | head -c 4096)
  for d in $(seq 1 100); do
    mkdir -p "$1/dir$d"
    for f in $(seq 1 200); do printf '%s' "$block" > "$1/dir$d/f$f"; done
  done
}

# Runs one `mavfs exec` session of commands "$@" and prints the seconds of each transfer, one
# per line, read from the summary lines ("push: ... in 0.412 s (...)").
mavfs_seconds() {
  local out
  out=$("$mavfs" -c "$config" exec "$@" 2>&1 >/dev/null) || { echo "mavfs failed: $out" >&2; exit 1; }
  printf '%s\n' "$out" | grep -E '^(push|pull|cp|mv): ' | sed -E 's/.* in ([0-9.]+) s .*/\1/'
}

# $1 / $2, to two decimals.
ratio() { echo "scale=2; $1 / $2" | bc -l; }

#!/bin/sh
# Quantizes a synthetic F16 model larger than the memory the process is allowed, and prints
# peak RSS and throughput. Run by hand (CI does not): it writes SIZE_GB + the output to WORK.
#
#   benches/larger-than-memory.sh [SIZE_GB=6] [LIMIT=2G] [TYPE=Q8_0] [WORK=$TMPDIR/ingot-ltm]
#
# The memory limit is applied with the first method that works here:
#   1. systemd-run --scope -p MemoryMax=LIMIT   (needs systemd as init)
#   2. a cgroup v2 child of this shell's own cgroup, memory.max = LIMIT
#   3. a cgroup v1 memory child of this shell's own memory cgroup, memory.limit_in_bytes
# (2 and 3 need write access to the cgroup tree, e.g. root in a container). The cgroup is
# removed afterwards; files in WORK are deleted unless KEEP=1. Needs python3 with the gguf
# package (tests/requirements.txt) and GNU time (/usr/bin/time).
#
# Measured 2026-11-22 (AMD EPYC, 2 vCPUs, load average 15 from other jobs; systemd-run does not
# work in this container, the cgroup v1 memory child did): 6.19 GB F16 (14 layers of a
# 4096/11008 llama) -> Q8_0 3.29 GB under memory.limit_in_bytes=2G: completed in 153 s
# (40 MB/s of input), peak RSS 21 MB (tensor data is read with pread, not through the map),
# cgroup peak 2047 MB (page cache, reclaimed 27,747 times at the limit), output read back by
# gguf-py.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
size=${1:-6}
limit=${2:-2G}
type=${3:-Q8_0}
work=${4:-${TMPDIR:-/tmp}/ingot-ltm}
target=${CARGO_TARGET_DIR:-$root/target}

bytes_of() { # 2G -> bytes
    echo "$1" | awk '/[Gg]$/ {printf "%d", $1 * 1073741824; next}
                     /[Mm]$/ {printf "%d", $1 * 1048576; next} {printf "%d", $1}'
}
limit_bytes=$(bytes_of "$limit")

(cd "$root" && cargo build --release -q -p ingot-tools --bin quantize)
bin=$target/release/quantize
mkdir -p "$work"
in=$work/in.f16.gguf
out=$work/out.gguf
cleanup() {
    [ -n "${cg:-}" ] && [ -d "$cg" ] && rmdir "$cg" 2>/dev/null || true
    [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== writing a ${size} GB synthetic F16 model to $in"
python3 "$root/benches/larger-than-memory.py" "$in" "$size"
in_bytes=$(stat -c %s "$in")
sync

cmd="/usr/bin/time -v $bin $in $out $type"
method=""
cg=""
if systemd-run --scope -q -p MemoryMax="$limit" true >/dev/null 2>&1; then
    method="systemd-run --scope -p MemoryMax=$limit"
    run() { systemd-run --scope -q -p MemoryMax="$limit" $cmd; }
else
    v2=$(sed -n 's/^0:://p' /proc/self/cgroup)
    v1mnt=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ {print $2; exit}' /proc/mounts)
    v1=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3; exit}' /proc/self/cgroup)
    if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers \
        && mkdir "/sys/fs/cgroup$v2/ingot-ltm-$$" 2>/dev/null; then
        cg=/sys/fs/cgroup$v2/ingot-ltm-$$
        echo "$limit_bytes" > "$cg/memory.max"
        echo 0 > "$cg/memory.swap.max" 2>/dev/null || true
        method="cgroup v2 $cg, memory.max=$limit"
        peak_file=$cg/memory.peak
    elif [ -n "$v1mnt" ] && mkdir "$v1mnt$v1/ingot-ltm-$$" 2>/dev/null; then
        cg=$v1mnt$v1/ingot-ltm-$$
        echo "$limit_bytes" > "$cg/memory.limit_in_bytes"
        method="cgroup v1 memory $cg, memory.limit_in_bytes=$limit"
        peak_file=$cg/memory.max_usage_in_bytes
    else
        echo "no way to limit memory here (no systemd, no writable cgroup)" >&2
        exit 1
    fi
    run() { sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' _ "$cg" $cmd; }
fi

echo "== quantizing to $type under $method"
start=$(date +%s.%N)
run > "$work/stdout" 2> "$work/stderr" || { tail -30 "$work/stderr"; exit 1; }
end=$(date +%s.%N)
out_bytes=$(stat -c %s "$out")
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/stderr")
grep -E 'bits/weight|MB/s' "$work/stderr" | tail -2
echo "== results ($(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg))"
awk -v i="$in_bytes" -v o="$out_bytes" -v s="$start" -v e="$end" -v r="$rss_kb" -v l="$limit_bytes" 'BEGIN {
    t = e - s
    printf "input  %.2f GB F16 (%.1f x the %.2f GB limit)\n", i / 1e9, i / l, l / 1e9
    printf "output %.2f GB\n", o / 1e9
    printf "wall   %.1f s, throughput %.1f MB/s of input\n", t, i / t / 1e6
    printf "peak RSS %.0f MB (file-backed mapped pages included)\n", r / 1024
}'
if [ -n "$cg" ] && [ -f "${peak_file:-}" ]; then
    echo "cgroup peak usage $(( $(cat "$peak_file") / 1048576 )) MB (page cache included)"
    [ -f "$cg/memory.events" ] && grep -E 'oom' "$cg/memory.events" | tr '\n' ' '
    [ -f "$cg/memory.failcnt" ] && echo "cgroup limit hits (failcnt, reclaim): $(cat "$cg/memory.failcnt")"
fi
python3 - "$out" <<'PY'
import sys
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
print(f"output reads back with gguf-py: {len(r.tensors)} tensors")
PY

#!/usr/bin/env bash
# Benchmarks: the same workloads on a cosfuse mount of the local emulator, on s3fs against the
# same emulator (SigV4, when `s3fs` is installed or --with-s3fs installs it), and on local disk,
# printed as one table. Everything talks to 127.0.0.1 only.
#
#   scripts/bench.sh [--size-mib N] [--files N] [--with-s3fs]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MIB=512
FILES=500
WITH_S3FS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --size-mib) SIZE_MIB=$2; shift 2 ;;
        --files) FILES=$2; shift 2 ;;
        --with-s3fs) WITH_S3FS=1; shift ;;
        *) echo "usage: $0 [--size-mib N] [--files N] [--with-s3fs]" >&2; exit 2 ;;
    esac
done
command -v fusermount3 >/dev/null || { apt-get update -qq && apt-get install -y -qq fuse3 >/dev/null; }
if [ "$WITH_S3FS" = 1 ] && ! command -v s3fs >/dev/null; then apt-get install -y -qq s3fs >/dev/null; fi

cd "$ROOT"
cargo build --release --bins -q
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/release
WORK=$(mktemp -d /tmp/cosfuse-bench.XXXXXX)
ID=AKIDcosfuseBENCH00000000000000000000
KEY=cosfuseBENCHsecretKEY00000000000
BUCKET=bench-1250000000
EMU_PID=
cleanup() {
    for m in "$WORK"/mnt-*; do mountpoint -q "$m" 2>/dev/null && fusermount3 -uz "$m"; done
    [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mkfifo "$WORK/emu.out"
"$TARGET/cosfuse-emulator" --data "$WORK/data" --bucket "$BUCKET" --secret-id "$ID" --secret-key "$KEY" \
    >"$WORK/emu.out" 2>"$WORK/emu.err" &
EMU_PID=$!
read -r first <"$WORK/emu.out"
ENDPOINT=${first#listening on }
echo "emulator at $ENDPOINT"

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
dd if=/dev/urandom of="$WORK/src.bin" bs=1M count="$SIZE_MIB" status=none

mount_cosfuse() {
    mkdir -p "$1"
    COS_SECRET_ID=$ID COS_SECRET_KEY=$KEY "$TARGET/cosfuse" "$BUCKET:/$2" "$1" \
        -o "url=$ENDPOINT,cache=$WORK/cache-$2"
}
mount_s3fs() {
    mkdir -p "$1"
    echo "$ID:$KEY" >"$WORK/s3fs.pw"; chmod 600 "$WORK/s3fs.pw"
    s3fs "$BUCKET:/$2" "$1" -o "url=$ENDPOINT,use_path_request_style,passwd_file=$WORK/s3fs.pw,sigv4"
    for _ in $(seq 1 100); do mountpoint -q "$1" && return 0; sleep 0.1; done
    return 1
}
umount_any() { fusermount3 -u "$1"; for _ in $(seq 1 600); do mountpoint -q "$1" || return 0; sleep 0.1; done; }

# run_suite NAME MOUNT_FN: prints one table row.
run_suite() {
    local name=$1 fn=$2 dir="$WORK/mnt-$1"
    if [ "$fn" = local ]; then mkdir -p "$dir"; else $fn "$dir" "$name"; fi
    local t0 t1 w r c l d
    t0=$(now); dd if="$WORK/src.bin" of="$dir/big.bin" bs=1M status=none conv=fsync; t1=$(now)
    w=$(secs "$t0" "$t1")
    if [ "$fn" != local ]; then umount_any "$dir"; $fn "$dir" "$name"; else sync; echo 3 >/proc/sys/vm/drop_caches || true; fi
    t0=$(now); cat "$dir/big.bin" >/dev/null; t1=$(now); r=$(secs "$t0" "$t1")
    mkdir -p "$dir/small"
    t0=$(now); for i in $(seq 1 "$FILES"); do head -c 4096 "$WORK/src.bin" >"$dir/small/f$i"; done; sync -f "$dir/small/f1" 2>/dev/null || true; t1=$(now)
    c=$(secs "$t0" "$t1")
    if [ "$fn" != local ]; then umount_any "$dir"; $fn "$dir" "$name"; fi
    t0=$(now); ls -l "$dir/small" >/dev/null; t1=$(now); l=$(secs "$t0" "$t1")
    t0=$(now); rm -r "$dir/small"; t1=$(now); d=$(secs "$t0" "$t1")
    printf '%-10s %12.1f %12.1f %14.0f %12.3f %12.3f\n' "$name" \
        "$(echo "$SIZE_MIB / $w" | bc -l)" "$(echo "$SIZE_MIB / $r" | bc -l)" \
        "$(echo "$FILES / $c" | bc -l)" "$l" "$d"
    [ "$fn" != local ] && umount_any "$dir"
    return 0
}

command -v bc >/dev/null || { apt-get install -y -qq bc >/dev/null; }
printf '%-10s %12s %12s %14s %12s %12s\n' "target" "write MiB/s" "read MiB/s" "create files/s" "ls -l s" "rm -r s"
run_suite cosfuse mount_cosfuse
if command -v s3fs >/dev/null; then run_suite s3fs mount_s3fs || echo "s3fs: failed against the emulator"; fi
run_suite local local
echo "(${SIZE_MIB} MiB sequential file, ${FILES} files of 4 KiB; write includes fsync; read is cold after a remount)"

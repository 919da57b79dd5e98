#!/usr/bin/env bash
# Soak: a bounded run that mixes workloads and faults on a real mount of a local emulator,
# then verifies every file byte for byte from a fresh mount.
#   bash scripts/soak.sh [SECONDS=300] [--release]
# Faults: the emulator answers 503 SlowDown every 7th request and drops every 11th connection;
# every ~30 s the daemon is killed with SIGKILL and mounted again on the same cache directory
# (crash recovery). Workloads: files of random sizes written with cp and dd, appends,
# renames of files and directories, rm -r of directories. At the end: unmount, mount again
# with an empty cache, compare md5 sums with the local reference tree. Prints
# "soak: N files, B bytes, K crashes, F faults injected, L lost".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
cd "$ROOT"
ensure_packages fuse3
secs=${1:-300}
profile=debug
[ "${2:-}" = "--release" ] && profile=release
if [ "$profile" = release ]; then cargo build --release --bins; else cargo build --bins; fi
BIN="$(target_dir)/$profile"
W=$(mktemp -d /tmp/cosfuse-soak.XXXXXX)
BUCKET=soak-1250000000
export COS_SECRET_ID=AKIDcosfuseSOAK0000000000000000000 COS_SECRET_KEY=cosfuseSOAKsecretKEY000000000000
mkdir -p "$W/data" "$W/mnt" "$W/cache" "$W/ref" "$W/check"
cleanup() {
    for d in "$W/mnt" "$W/check"; do fusermount3 -uz "$d" 2>/dev/null || true; done
    pkill -f "cosfuse $BUCKET $W/" 2>/dev/null || true
    [ -f "$W/emu.pid" ] && kill "$(cat "$W/emu.pid")" 2>/dev/null || true
}
trap cleanup EXIT
"$BIN/cosfuse-emulator" --data "$W/data" --listen 127.0.0.1:0 --bucket "$BUCKET" \
    --secret-id "$COS_SECRET_ID" --secret-key "$COS_SECRET_KEY" \
    --slowdown-every 7 --drop-every 11 >"$W/emu.out" 2>"$W/emu.log" &
echo $! >"$W/emu.pid"
URL=""
for _ in $(seq 1 300); do URL=$(sed -n '1s/^listening on //p' "$W/emu.out"); [ -n "$URL" ] && break; sleep 0.1; done
[ -n "$URL" ] || { echo "emulator did not start" >&2; exit 1; }
mount_it() { # dir cache
    "$BIN/cosfuse" "$BUCKET" "$1" -f -o "url=$URL,cache=$2,retry_max_delay=2" 2>>"$W/cosfuse.log" &
    echo $! >"$W/fs.pid"
    for _ in $(seq 1 300); do grep -qs " $1 " /proc/self/mountinfo && return 0; sleep 0.1; done
    echo "mount failed" >&2; tail "$W/cosfuse.log" >&2; exit 1
}
mount_it "$W/mnt" "$W/cache"
crashes=0; n=0; end=$((SECONDS + secs)); next_crash=$((SECONDS + 30))
while [ $SECONDS -lt $end ]; do
    n=$((n + 1)); d="d$((n % 7))"
    mkdir -p "$W/ref/$d" "$W/mnt/$d"
    size=$(( (RANDOM * 37 + RANDOM) % (3 << 20) ))
    head -c "$size" /dev/urandom >"$W/ref/$d/f$n"
    case $((n % 5)) in
        0) dd if="$W/ref/$d/f$n" of="$W/mnt/$d/f$n" bs=64k status=none ;;
        1) cp "$W/ref/$d/f$n" "$W/mnt/$d/f$n"; printf 'tail %s\n' "$n" | tee -a "$W/ref/$d/f$n" >>"$W/mnt/$d/f$n" ;;
        2) cp "$W/ref/$d/f$n" "$W/mnt/$d/.tmp$n" && mv "$W/mnt/$d/.tmp$n" "$W/mnt/$d/f$n" ;;
        3) cp "$W/ref/$d/f$n" "$W/mnt/$d/f$n"; sync "$W/mnt/$d/f$n" ;;
        *) cp "$W/ref/$d/f$n" "$W/mnt/$d/f$n" ;;
    esac
    if [ $((n % 50)) -eq 0 ]; then
        # A directory moves, another goes away (in both trees).
        mv "$W/mnt/d1" "$W/mnt/m$n" && mv "$W/ref/d1" "$W/ref/m$n"
        rm -r "$W/mnt/d2" && rm -r "$W/ref/d2"
    fi
    if [ $SECONDS -ge $next_crash ]; then
        kill -9 "$(cat "$W/fs.pid")"; wait "$(cat "$W/fs.pid")" 2>/dev/null || true
        fusermount3 -uz "$W/mnt" 2>/dev/null || true
        crashes=$((crashes + 1)); next_crash=$((SECONDS + 30))
        mount_it "$W/mnt" "$W/cache"
    fi
done
fusermount3 -u "$W/mnt"
for _ in $(seq 1 3000); do kill -0 "$(cat "$W/fs.pid")" 2>/dev/null || break; sleep 0.1; done
mount_it "$W/check" "$(mktemp -d /tmp/cosfuse-soak-cache.XXXXXX)"
files=0; bytes=0; lost=0
while IFS= read -r -d '' f; do
    rel=${f#"$W/ref/"}
    files=$((files + 1)); bytes=$((bytes + $(stat -c %s "$f")))
    if ! cmp -s "$f" "$W/check/$rel"; then lost=$((lost + 1)); echo "MISMATCH $rel"; fi
done < <(find "$W/ref" -type f -print0)
extra=$(cd "$W/check" && find . -type f | sed 's|^\./||' | while read -r r; do [ -e "$W/ref/$r" ] || echo "$r"; done | wc -l)
faults=$(curl -s "$URL/-/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("faults_injected", "?"))' 2>/dev/null || echo "?")
echo "soak: $files files, $bytes bytes, $crashes crashes, $faults faults injected, $lost lost, $extra resurrected"
[ "$lost" -eq 0 ] && [ "$extra" -eq 0 ]

#!/usr/bin/env bash
# Benchmarks of issue 12: the same workloads on cosfuse, s3fs, rclone (`--vfs-cache-mode writes`
# and `off`, S3 backend) — all mounting one bucket of one local `cosfuse-emulator` — and on local
# disk; REPEATS rounds, the targets interleaved within each round; one table of medians with the
# ratio cosfuse / best peer (also per round), the daemons' peak RSS (VmHWM), requests per operation counted at
# the emulator's `/-/stats`, and the emulator's own multipart PUT rate (examples/emu_multipart.rs)
# with cosfuse's write as a fraction of it. Everything talks to 127.0.0.1 only. Release build.
#
#   scripts/bench.sh [--issue] [--size-mib N] [--random N] [--files N] [--tar-files N]
#                    [--ls N] [--rename N] [--repeats N] [--only a,b]
#
# `cosfuse-nowait` is cosfuse with `-o close_wait=0` (close does not wait for COS), run on the
# small-file workloads only (create, untar). Defaults fit ~12 minutes on a 2-core machine; --issue uses issue 12's sizes (512 MiB file,
# 2 000 random reads, 1 000 files, 5 000 objects). Missing tools (fuse3, s3fs, rclone, bc) are
# installed from Debian's packages. Results go to stdout and to $BENCH_OUT (default
# /tmp/cosfuse-bench.md).
#
# "Until on the server" is checked without requests: the emulator's metadata sidecars
# (data/buckets/B/objects/<sha256[:2]>/<sha256>.json) are polled until every key has its size.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MIB=256 RANDOM_N=1000 FILES=300 TAR_FILES=300 LS_N=2000 RENAME_N=200 REPEATS=2
ONLY=cosfuse,cosfuse-nowait,s3fs,rclone-writes,rclone-off,local
while [ $# -gt 0 ]; do
    case "$1" in
        --issue) SIZE_MIB=512 RANDOM_N=2000 FILES=1000 TAR_FILES=316 LS_N=5000; shift ;;
        --size-mib) SIZE_MIB=$2; shift 2 ;;
        --random) RANDOM_N=$2; shift 2 ;;
        --files) FILES=$2; shift 2 ;;
        --tar-files) TAR_FILES=$2; shift 2 ;;
        --ls) LS_N=$2; shift 2 ;;
        --rename) RENAME_N=$2; shift 2 ;;
        --repeats) REPEATS=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        *) sed -n '2,17p' "$0" >&2; exit 2 ;;
    esac
done
need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need fusermount3 fuse3; need bc bc; need python3 python3
case ",$ONLY," in *,s3fs,*) need s3fs s3fs ;; esac
case ",$ONLY," in *,rclone*) need rclone rclone ;; esac
need rclone rclone # also loads the shared objects for ls/stat/rename (one client, uncounted)

cd "$ROOT"
cargo build --release --bins --example emu_multipart -q
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
HOSTPORT=${ENDPOINT#http://}
echo "emulator at $ENDPOINT; work in $WORK"
# The AWS SDK inside rclone refuses a custom CA bundle with its transport; the emulator is plain http.
unset AWS_CA_BUNDLE
export RCLONE_CONFIG="$WORK/rclone.conf"; : >"$RCLONE_CONFIG"
export RCLONE_CONFIG_EMU_TYPE=s3 RCLONE_CONFIG_EMU_PROVIDER=Other RCLONE_CONFIG_EMU_ENV_AUTH=false
export RCLONE_CONFIG_EMU_ACCESS_KEY_ID=$ID RCLONE_CONFIG_EMU_SECRET_ACCESS_KEY=$KEY
export RCLONE_CONFIG_EMU_ENDPOINT=$ENDPOINT RCLONE_CONFIG_EMU_FORCE_PATH_STYLE=true
echo "$ID:$KEY" >"$WORK/s3fs.pw"; chmod 600 "$WORK/s3fs.pw"

H="$WORK/helper.py"
cat >"$H" <<'PY'
import hashlib, json, os, random, sys, time
cmd = sys.argv[1]
if cmd == "random":  # random FILE N SEED: N preads of 4 KiB at 4 KiB-aligned offsets
    path, n, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    fd = os.open(path, os.O_RDONLY); size = os.fstat(fd).st_size; rnd = random.Random(seed)
    for _ in range(n):
        os.pread(fd, 4096, rnd.randrange(size // 4096) * 4096)
    os.close(fd)
elif cmd == "create":  # create DIR N: N files of 4 KiB
    d, n = sys.argv[2], int(sys.argv[3]); body = os.urandom(4096)
    for i in range(n):
        with open(os.path.join(d, "f%d" % i), "wb") as f: f.write(body)
elif cmd == "stat":  # stat DIR N: os.stat of f0..f(N-1), no listing first
    d, n = sys.argv[2], int(sys.argv[3])
    for i in range(n): os.stat(os.path.join(d, "f%d" % i))
elif cmd == "wait":  # wait DATA BUCKET PREFIX N SIZE: until keys PREFIXf0.. have SIZE bytes
    data, bucket, prefix, n, size = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    root = os.path.join(data, "buckets", bucket, "objects")
    todo = ["%sf%d" % (prefix, i) for i in range(n)] if n > 0 else [prefix]
    deadline = time.time() + 600
    while todo and time.time() < deadline:
        left = []
        for k in todo:
            h = hashlib.sha256(k.encode()).hexdigest()
            try:
                with open(os.path.join(root, h[:2], h + ".json")) as f: ok = json.load(f)["size"] == size
            except Exception: ok = False
            if not ok: left.append(k)
        todo = left
        if todo: time.sleep(0.01)  # polling the server's files, not synchronising a test
    sys.exit(1 if todo else 0)
elif cmd == "table":  # table RESULTS: medians, ratios, RSS, requests per op
    rows = {}
    for line in open(sys.argv[2]):
        t, w, v = line.split()
        rows.setdefault(w, {}).setdefault(t, []).append(float(v))
    def med(v):
        v = sorted(v); m = len(v) // 2
        return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2
    order = [x for x in sys.argv[3].split(",")]
    spec = json.loads(sys.argv[4])
    def versus(c, peers, higher):  # (cosfuse / best peer, best peer), or None when undefined
        best_t = (max if higher else min)(peers, key=peers.get)
        b = peers[best_t]
        return ((c / b) if higher else (b / c), best_t) if b > 0 and c > 0 else None
    mine = [t for t in ("cosfuse", "cosfuse-nowait") if t in order]
    out = ["| workload | " + " | ".join(order) + " | " + " | ".join("%s / best peer" % t for t in mine) + " |",
           "|---|" + "---|" * (len(order) + len(mine))]
    for w, (label, unit, higher) in spec.items():
        if w not in rows: continue
        vals = {t: med(rows[w][t]) for t in order if t in rows[w]}
        peers = {t: v for t, v in vals.items() if t not in ("cosfuse", "cosfuse-nowait", "local")}
        cells = []
        for t in order:
            v = vals.get(t)
            cells.append("—" if v is None else (("%.0f" % v) if abs(v) >= 100 else ("%.3g" % v)) + " " + unit)
        ratios = []
        for me in mine:
            v = versus(vals[me], peers, higher) if me in vals and peers else None
            ratios.append("%.2f (%s)" % v if v else "—")
        out.append("| %s | %s | %s |" % (label, " | ".join(cells), " | ".join(ratios)))
    print("\n".join(out))
    print()
    if "mpu" in rows and "cosfuse" in rows.get("write", {}):
        m, c = med(rows["mpu"]["emulator"]), med(rows["write"]["cosfuse"])
        print("Emulator's own multipart PUT rate (8 MiB parts, 16 in flight): %.0f MiB/s; "
              "cosfuse sequential write / it: %.2f (goal: at least 0.8)" % (m, c / m))
        print()
    # Per round: the targets run one after another within a round, so a round's ratio compares
    # minutes close together (a VM whose speed drifts moves the medians of far-apart rounds).
    print("cosfuse / best peer in each round:")
    print()
    rounds = max(len(v) for w in rows.values() for v in w.values())
    print("| workload | " + " | ".join("round %d" % (i + 1) for i in range(rounds)) + " |")
    print("|---|" + "---|" * rounds)
    for w, (label, unit, higher) in spec.items():
        r = rows.get(w, {})
        ps = [t for t in r if t not in ("cosfuse", "cosfuse-nowait", "local")]
        if "cosfuse" not in r or not ps or len({len(r[t]) for t in ["cosfuse"] + ps}) != 1:
            continue
        cells = []
        for i in range(len(r["cosfuse"])):
            v = versus(r["cosfuse"][i], {t: r[t][i] for t in ps}, higher)
            cells.append("%.2f" % v[0] if v else "—")
        print("| %s | %s |" % (label, " | ".join(cells)))
    print()
    print("Requests per operation at the emulator (median; writes/reads of the big file: per MiB):")
    print()
    print("| workload | " + " | ".join(order) + " |")
    print("|---|" + "---|" * len(order))
    for w, (label, unit, higher) in spec.items():
        r = rows.get("req-" + w)
        if not r: continue
        print("| %s | %s |" % (label, " | ".join(("%.2f" % med(r[t])) if t in r else "—" for t in order)))
PY

now() { date +%s.%N; }
el() { echo "$(now) - $1" | bc -l; }
reqs() { python3 -c 'import json,sys,urllib.request as u; print(sum(json.load(u.urlopen(sys.argv[1]+"/-/stats"))["requests"].values()))' "$ENDPOINT"; }
RESULTS="$WORK/results"; : >"$RESULTS"
rec() { echo "$1 $2 $3" >>"$RESULTS"; }
dropcaches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

# mount_T DIR; every daemon gets a fresh cache dir per target (kept across its remounts).
mount_target() {
    local t=$1 dir=$2
    mkdir -p "$dir"
    case "$t" in
        cosfuse) COS_SECRET_ID=$ID COS_SECRET_KEY=$KEY "$TARGET/cosfuse" "$BUCKET" "$dir" \
            -o "url=$ENDPOINT,cache=$WORK/cache-cosfuse" ;;
        cosfuse-nowait) COS_SECRET_ID=$ID COS_SECRET_KEY=$KEY "$TARGET/cosfuse" "$BUCKET" "$dir" \
            -o "url=$ENDPOINT,cache=$WORK/cache-cosfuse-nowait,close_wait=0" ;;
        s3fs) s3fs "$BUCKET" "$dir" -o "url=$ENDPOINT,use_path_request_style,passwd_file=$WORK/s3fs.pw,sigv4" ;;
        rclone-writes) rclone mount "emu:$BUCKET" "$dir" --daemon --vfs-cache-mode writes --vfs-write-back 0s \
            --cache-dir "$WORK/cache-rclone" ;;
        rclone-off) rclone mount "emu:$BUCKET" "$dir" --daemon --vfs-cache-mode off --cache-dir "$WORK/cache-rclone-off" ;;
        local) return 0 ;;
    esac
    for _ in $(seq 1 300); do mountpoint -q "$dir" && return 0; sleep 0.1; done
    echo "$t: mount failed" >&2; return 1
}
daemon_pid() { pgrep -n -f -- " $1( |\$)" || true; }
umount_target() {
    [ "$1" = local ] && return 0
    local pid; pid=$(daemon_pid "$2")
    fusermount3 -u "$2"
    # The daemon finishes its uploads and exits; bounded wait (60 s).
    for _ in $(seq 1 600); do { [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; } && return 0; sleep 0.1; done
}
# Cold = remount + drop_caches + no file data left in a daemon's disk cache (rclone keeps its VFS
# cache across mounts; cosfuse empties its read cache at mount; s3fs runs without use_cache).
remount() {
    umount_target "$1" "$2"
    [ "$1" = rclone-writes ] && rm -rf "$WORK/cache-rclone"
    dropcaches; mount_target "$1" "$2"
}
hwm() { local pid; pid=$(daemon_pid "$1"); [ -n "$pid" ] && awk '/VmHWM/ {print $2/1024}' "/proc/$pid/status" || echo 0; }

# Shared read-only data, loaded once at the server with rclone (not counted for any target):
# LS_N objects for ls/stat; a tarball of TAR_FILES small files.
mkdir -p "$WORK/seed/ls"
python3 -c 'import sys
for i in range(int(sys.argv[2])): open("%s/f%d" % (sys.argv[1], i), "w").write("x" * (i % 7 + 1))' "$WORK/seed/ls" "$LS_N"
rclone copy "$WORK/seed/ls" "emu:$BUCKET/ls" --transfers 16 --s3-no-check-bucket -q
mkdir -p "$WORK/tarsrc"
python3 -c 'import os, sys
for i in range(int(sys.argv[2])):
    d = "%s/d%d" % (sys.argv[1], i % 12); os.makedirs(d, exist_ok=True)
    open("%s/f%d" % (d, i), "wb").write(os.urandom((i * 2713) % 60000 + 100))' "$WORK/tarsrc" "$TAR_FILES"
tar -C "$WORK/tarsrc" -cf "$WORK/src.tar" .
dd if=/dev/urandom of="$WORK/src.bin" bs=1M count="$SIZE_MIB" status=none

# suite TARGET ROUND: every workload once, into $RESULTS.
suite() {
    local t=$1 r=$2 dir="$WORK/mnt-$1" p="$1-$2" t0 q0
    on_server() { [ "$t" = local ] || python3 "$H" wait "$WORK/data" "$BUCKET" "$@"; }
    mount_target "$t" "$dir"
    [ "$t" = cosfuse-nowait ] || big_file "$t" "$r" "$dir" "$p"
    small_files "$t" "$dir" "$p"
    [ "$t" = cosfuse-nowait ] || tree "$t" "$dir" "$p"
    umount_target "$t" "$dir"
    [ "$t" = local ] && rm -rf "$dir"
    return 0
}

# 1-3: the big file (write, cold read, cold random reads).
big_file() {
    local t=$1 r=$2 dir=$3 p=$4 t0 q0
    # 1. sequential write until on the server.
    q0=$(reqs); t0=$(now)
    dd if="$WORK/src.bin" of="$dir/big-$p.bin" bs=1M conv=fsync status=none
    on_server "big-$p.bin" 0 $((SIZE_MIB << 20))
    rec "$t" write "$(echo "$SIZE_MIB / $(el "$t0")" | bc -l)"
    rec "$t" req-write "$(echo "($(reqs) - $q0) / $SIZE_MIB" | bc -l)"
    rec "$t" rss-write "$(hwm "$dir")"
    # 2. cold sequential read (remount + drop_caches).
    remount "$t" "$dir"
    q0=$(reqs); t0=$(now)
    dd if="$dir/big-$p.bin" of=/dev/null bs=1M status=none
    rec "$t" read "$(echo "$SIZE_MIB / $(el "$t0")" | bc -l)"
    rec "$t" req-read "$(echo "($(reqs) - $q0) / $SIZE_MIB" | bc -l)"
    rec "$t" rss-read "$(hwm "$dir")"
    # 3. cold random 4 KiB reads.
    remount "$t" "$dir"
    q0=$(reqs); t0=$(now)
    python3 "$H" random "$dir/big-$p.bin" "$RANDOM_N" "$r"
    rec "$t" random "$(echo "$RANDOM_N / $(el "$t0")" | bc -l)"
    rec "$t" req-random "$(echo "($(reqs) - $q0) / $RANDOM_N" | bc -l)"
    rm -f "$dir/big-$p.bin"
}

# 4-5: small files (create until on the server, untar).
small_files() {
    local t=$1 dir=$2 p=$3 t0 q0
    # 4. small files created, until all are on the server.
    mkdir -p "$dir/small-$p"
    q0=$(reqs); t0=$(now)
    python3 "$H" create "$dir/small-$p" "$FILES"
    on_server "small-$p/" "$FILES" 4096
    rec "$t" create "$(echo "$FILES / $(el "$t0")" | bc -l)"
    rec "$t" req-create "$(echo "($(reqs) - $q0) / $FILES" | bc -l)"
    # 5. untar (the command's time; uploads may continue after it).
    mkdir -p "$dir/tar-$p"
    q0=$(reqs); t0=$(now)
    tar -C "$dir/tar-$p" -xf "$WORK/src.tar"
    rec "$t" untar "$(echo "$TAR_FILES / $(el "$t0")" | bc -l)"
    rec "$t" req-untar "$(echo "($(reqs) - $q0) / $TAR_FILES" | bc -l)"
}

# 6-8: listing, stat and rename.
tree() {
    local t=$1 dir=$2 p=$3 t0 q0
    # 6. ls -l of LS_N objects, cold (after a remount) then warm; 7. stat of each, cold.
    local lsdir="$dir/ls"; [ "$t" = local ] && { lsdir="$WORK/seed/ls"; }
    remount "$t" "$dir"
    q0=$(reqs); t0=$(now); ls -l "$lsdir" >/dev/null
    rec "$t" ls-cold "$(el "$t0")"; rec "$t" req-ls-cold "$(echo "$(reqs) - $q0" | bc -l)"
    q0=$(reqs); t0=$(now); ls -l "$lsdir" >/dev/null
    rec "$t" ls-warm "$(el "$t0")"; rec "$t" req-ls-warm "$(echo "$(reqs) - $q0" | bc -l)"
    remount "$t" "$dir"
    q0=$(reqs); t0=$(now); python3 "$H" stat "$lsdir" "$LS_N"
    rec "$t" stat "$(el "$t0")"; rec "$t" req-stat "$(echo "($(reqs) - $q0) / $LS_N" | bc -l)"
    # 8. rename of a directory of RENAME_N files (made through the mount, then a fresh mount).
    mkdir -p "$dir/ren-$p"
    python3 "$H" create "$dir/ren-$p" "$RENAME_N"
    on_server "ren-$p/" "$RENAME_N" 4096
    remount "$t" "$dir"
    ls "$dir/ren-$p" >/dev/null
    q0=$(reqs); t0=$(now); mv "$dir/ren-$p" "$dir/renamed-$p"
    rec "$t" rename "$(el "$t0")"; rec "$t" req-rename "$(echo "($(reqs) - $q0) / $RENAME_N" | bc -l)"
}

IFS=, read -r -a TARGETS <<<"$ONLY"
for r in $(seq 1 "$REPEATS"); do
    # The emulator's own multipart PUT rate: a plain client (the crate's COS client, 8 MiB
    # parts, 16 in flight) uploading the same file; the reference for cosfuse's write.
    echo "round $r: emulator multipart PUT"
    rec emulator mpu "$(COS_SECRET_ID=$ID COS_SECRET_KEY=$KEY "$TARGET/examples/emu_multipart" \
        "$ENDPOINT" "$BUCKET" "mpu-$r.bin" "$WORK/src.bin")"
    for t in "${TARGETS[@]}"; do
        echo "round $r: $t"
        suite "$t" "$r" || { echo "$t: round $r failed" >&2; umount_target "$t" "$WORK/mnt-$t" || true; }
    done
done

SPEC=$(cat <<JSON
{"write": ["sequential write ${SIZE_MIB} MiB, dd bs=1M conv=fsync, until on the server", "MiB/s", true],
 "read": ["sequential read, cold, dd bs=1M", "MiB/s", true],
 "random": ["random 4 KiB reads, cold, ${RANDOM_N} in the ${SIZE_MIB} MiB file", "/s", true],
 "create": ["${FILES} × 4 KiB files created, until all are on the server", "files/s", true],
 "untar": ["untar ${TAR_FILES} files", "files/s", true],
 "ls-cold": ["ls -l of ${LS_N} objects, cold", "s", false],
 "ls-warm": ["ls -l of ${LS_N} objects, warm (again)", "s", false],
 "stat": ["stat of ${LS_N} files, cold", "s", false],
 "rename": ["rename of a ${RENAME_N}-file directory", "s", false],
 "rss-write": ["peak RSS of the daemon, sequential write", "MiB", false],
 "rss-read": ["peak RSS of the daemon, sequential read", "MiB", false]}
JSON
)
OUT=${BENCH_OUT:-/tmp/cosfuse-bench.md}
{
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); ${REPEATS} rounds, medians"
    echo "(s3fs $(s3fs --version 2>/dev/null | head -1 | grep -o 'V[0-9.]*' || true); $(rclone version 2>/dev/null | head -1 || true))"
    echo
    python3 "$H" table "$RESULTS" "$ONLY" "$SPEC"
} | tee "$OUT"
cp "$RESULTS" "${OUT%.md}.raw"

#!/usr/bin/env bash
# The README's first command: on a fresh Debian machine (root, Rust toolchain present) it installs
# what is missing, builds cosfuse, starts the local COS emulator on 127.0.0.1, mounts a bucket,
# shows `ls -l` and a copy in and out, and leaves the mount running. The last line it prints is
# the one command that unmounts and stops everything.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
WORK=${COSFUSE_DEMO_DIR:-/tmp/cosfuse-demo}
BUCKET=demo-1250000000
SECRET_ID=AKIDcosfuseDEMO0000000000000000000
SECRET_KEY=cosfuseDEMOsecretKEY000000000000

ensure_packages fuse3 attr rsync sqlite3 curl

echo "==> building (cargo build --release)"
cd "$ROOT"
cargo build --release --bins
BIN="$(target_dir)/release"

# A previous demo still running: stop it first so this run starts clean.
if [ -x "$WORK/stop.sh" ]; then
    bash "$WORK/stop.sh" >/dev/null 2>&1 || true
fi
mkdir -p "$WORK/data" "$WORK/mnt" "$WORK/cache"

echo "==> starting cosfuse-emulator (data in $WORK/data)"
setsid "$BIN/cosfuse-emulator" --data "$WORK/data" --listen 127.0.0.1:0 --bucket "$BUCKET" \
    --secret-id "$SECRET_ID" --secret-key "$SECRET_KEY" \
    >"$WORK/emulator.out" 2>"$WORK/emulator.log" </dev/null &
echo $! >"$WORK/emulator.pid"
URL=""
for _ in $(seq 1 300); do
    URL=$(sed -n '1s/^listening on //p' "$WORK/emulator.out" 2>/dev/null || true)
    [ -n "$URL" ] && break
    kill -0 "$(cat "$WORK/emulator.pid")" 2>/dev/null || { cat "$WORK/emulator.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$URL" ] || { echo "emulator did not start; see $WORK/emulator.log" >&2; exit 1; }
echo "    emulator at $URL, bucket $BUCKET"

cat >"$WORK/stop.sh" <<STOP
#!/usr/bin/env bash
# Unmounts the demo (waiting for pending uploads) and stops the emulator.
if grep -qs " $WORK/mnt " /proc/self/mountinfo; then
    fusermount3 -u "$WORK/mnt" || fusermount3 -uz "$WORK/mnt"
fi
for _ in \$(seq 1 600); do pgrep -f "cosfuse $BUCKET $WORK/mnt" >/dev/null || break; sleep 0.1; done
kill "\$(cat "$WORK/emulator.pid")" 2>/dev/null || true
rm -f "$WORK/emulator.pid"
echo "demo stopped (data kept in $WORK/data)"
STOP
chmod +x "$WORK/stop.sh"

# Credentials in cosfs's passwd-file format; cosfuse refuses it unless it is mode 600.
printf '%s:%s\n' "$SECRET_ID" "$SECRET_KEY" >"$WORK/passwd-cosfs"
chmod 600 "$WORK/passwd-cosfs"

echo "==> mounting: cosfuse $BUCKET $WORK/mnt -o url=$URL,passwd_file=$WORK/passwd-cosfs,cache=$WORK/cache"
"$BIN/cosfuse" "$BUCKET" "$WORK/mnt" -o "url=$URL,passwd_file=$WORK/passwd-cosfs,cache=$WORK/cache"
grep " $WORK/mnt " /proc/self/mountinfo

echo "==> copy in: README.md and the src/ tree"
cp "$ROOT/README.md" "$WORK/mnt/README.md"
mkdir -p "$WORK/mnt/demo"
cp -r "$ROOT/src" "$WORK/mnt/demo/src"
echo "==> ls -l $WORK/mnt"
ls -l "$WORK/mnt"
echo "==> copy out and verify"
rm -rf "$WORK/out" && mkdir -p "$WORK/out"
cp "$WORK/mnt/README.md" "$WORK/out/README.md"
cp -r "$WORK/mnt/demo/src" "$WORK/out/src"
cmp "$ROOT/README.md" "$WORK/out/README.md"
diff -r "$ROOT/src" "$WORK/out/src"
echo "    identical: README.md and $(find "$ROOT/src" -type f | wc -l) files under src/"
echo "==> object metadata as xattrs (getfattr -d -m user.cos README.md)"
attrs=$(getfattr -d -m user.cos "$WORK/mnt/README.md" 2>/dev/null || true)
if [ -n "$attrs" ]; then echo "$attrs"; else echo "    (no user.cos.* xattrs in this build)"; fi
echo "==> upload queue (cosfuse tasks $WORK/mnt, first lines)"
"$BIN/cosfuse" tasks "$WORK/mnt" >"$WORK/tasks.txt" || true
head -n 6 "$WORK/tasks.txt"
echo "    ... $(($(wc -l <"$WORK/tasks.txt") - 1)) task(s) in all"
echo
echo "The bucket stays mounted on $WORK/mnt. To unmount and stop everything:"
echo "  bash $WORK/stop.sh"

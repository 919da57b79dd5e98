#!/usr/bin/env bash
# Runs Tencent's official Python SDK (cos-python-sdk-v5) against a fresh cosfuse-emulator.
#
# Owns: the venv with the SDK, building and starting the emulator on 127.0.0.1:0 with a temporary
# data dir, handing its address to tests/sdk/test_python_sdk.py, and always stopping it.
#
# Usage: tests/sdk/run.sh [test_name ...]     (names select tests in test_python_sdk.py)
# Environment:
#   CARGO_TARGET_DIR   honoured for the build (default: <repo>/target)
#   SDK_VENV           venv to create/reuse (default: <repo>/target/sdk-venv, git-ignored)
#   PYTHON             interpreter used to create the venv (default: python3)
#   EMULATOR_BIN       use this emulator binary instead of building one
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SDK_VERSION="1.9.44" # the version tests/vectors/ was captured with
VENV="${SDK_VENV:-$REPO/target/sdk-venv}"
PY="${PYTHON:-python3}"
BUCKET="examplebucket-1250000000"
# Fake credentials, used only between this script and its own emulator.
SECRET_ID="AKIDsdkTESTexample000000000000000000"
SECRET_KEY="sdkTESTsecretKEYexample0000000000"
RESTORE_DELAY=2
START_DEADLINE_S=60

# 1. The SDK, in a venv of our own (reused when it already has the pinned version).
if ! "$VENV/bin/python" -c "import qcloud_cos, requests, crcmod, sys; \
        from qcloud_cos.version import __version__ as v; sys.exit(v not in ('$SDK_VERSION', '5.$SDK_VERSION'))" 2>/dev/null; then
    echo "sdk: installing cos-python-sdk-v5==$SDK_VERSION into $VENV" >&2
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "cos-python-sdk-v5==$SDK_VERSION" requests
fi

# 2. The emulator.
if [[ -z "${EMULATOR_BIN:-}" ]]; then
    (cd "$REPO" && cargo build --quiet --bin cosfuse-emulator)
    EMULATOR_BIN="${CARGO_TARGET_DIR:-$REPO/target}/debug/cosfuse-emulator"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cosfuse-sdk-test.XXXXXX")"
EMU_PID=""
cleanup() {
    if [[ -n "$EMU_PID" ]] && kill -0 "$EMU_PID" 2>/dev/null; then
        kill "$EMU_PID" 2>/dev/null || true
        wait "$EMU_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 130" INT TERM # exit runs the EXIT trap, so the emulator is always stopped

mkdir -p "$WORK/data"
"$EMULATOR_BIN" --data "$WORK/data" --listen 127.0.0.1:0 --bucket "$BUCKET" \
    --secret-id "$SECRET_ID" --secret-key "$SECRET_KEY" --restore-delay "$RESTORE_DELAY" \
    >"$WORK/emulator.out" 2>"$WORK/emulator.err" &
EMU_PID=$!

# 3. Its address: the first stdout line is `listening on http://127.0.0.1:PORT` (bounded wait).
ADDR=""
deadline=$((SECONDS + START_DEADLINE_S))
while ((SECONDS < deadline)); do
    line="$(head -n 1 "$WORK/emulator.out" 2>/dev/null || true)"
    if [[ "$line" =~ ^listening\ on\ http://(127\.0\.0\.1:[0-9]+) ]]; then
        ADDR="${BASH_REMATCH[1]}"
        break
    fi
    if ! kill -0 "$EMU_PID" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [[ -z "$ADDR" ]]; then
    echo "sdk: the emulator did not announce its address; stdout/stderr follow" >&2
    cat "$WORK/emulator.out" "$WORK/emulator.err" >&2 || true
    exit 1
fi
echo "sdk: emulator at http://$ADDR (data $WORK/data)" >&2

# 4. The test itself.
status=0
EMULATOR_ADDR="$ADDR" COS_BUCKET="$BUCKET" COS_REGION="ap-guangzhou" \
    COS_SECRET_ID="$SECRET_ID" COS_SECRET_KEY="$SECRET_KEY" \
    "$VENV/bin/python" "$REPO/tests/sdk/test_python_sdk.py" "$@" || status=$?
if ((status != 0)); then
    echo "sdk: emulator stderr (last 40 lines):" >&2
    tail -n 40 "$WORK/emulator.err" >&2 || true
fi
exit "$status"

#!/usr/bin/env bash
# The README's second command (and what .ci/run runs): installs what a fresh machine lacks, then
# formatting, lints, every cargo test (unit + real FUSE mounts against the emulator), and the
# official-SDK test against the emulator when present.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
cd "$ROOT"

ensure_packages fuse3 attr rsync sqlite3 curl git

echo "==> cargo fmt --check"
cargo fmt --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
echo "==> cargo test"
cargo test

# The official SDK test (issue 2): any tests/sdk* script; Python deps from its requirements.txt.
shopt -s nullglob
sdk_scripts=(tests/sdk*.sh tests/sdk/run.sh tests/sdk*.py tests/sdk/*_test.py tests/sdk/test_*.py)
if [ ${#sdk_scripts[@]} -gt 0 ]; then
    cargo build --bins
    export COSFUSE_EMULATOR="$(target_dir)/debug/cosfuse-emulator"
    for req in tests/sdk*/requirements.txt tests/sdk-requirements.txt; do
        echo "==> pip install -r $req"
        python3 -m pip install -q -r "$req"
    done
    for s in "${sdk_scripts[@]}"; do
        echo "==> SDK test $s"
        case "$s" in
            *.sh) bash "$s" ;;
            *.py) python3 "$s" ;;
        esac
    done
fi
echo "==> all tests passed"

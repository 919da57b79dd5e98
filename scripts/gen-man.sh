#!/usr/bin/env bash
# Rewrites the generated options part of man/cosfuse.1 (between the "BEGIN/END GENERATED
# OPTIONS" comment lines) from the clap definitions in src/cli.rs; the prose around it is kept.
# tests/man_page.rs fails until this has been run after a change to the command line.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
cd "$ROOT"
cargo build --quiet --bin cosfuse
tmp=$(mktemp "$ROOT/man/.cosfuse.1.XXXXXX")
trap 'rm -f "$tmp"' EXIT
"$(target_dir)/debug/cosfuse" generate-man man/cosfuse.1 >"$tmp"
if cmp -s "$tmp" man/cosfuse.1; then
    echo "man/cosfuse.1 is up to date"
else
    mv "$tmp" man/cosfuse.1
    echo "man/cosfuse.1 rewritten"
fi

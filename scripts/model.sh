#!/usr/bin/env bash
# Long runs of the reference-model test (tests/mount_model.rs) on real mounts: N sequences per
# round, ROUNDS rounds with fresh seeds; stops at the first failure and prints its seed.
#   bash scripts/model.sh [SEQUENCES_PER_ROUND=200] [ROUNDS=5]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
cd "$ROOT"
ensure_packages fuse3 attr rsync
per=${1:-200}
rounds=${2:-5}
for r in $(seq "$rounds"); do
    seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
    echo "==> round $r: $per sequences from seed $seed"
    COSFUSE_SEED=$seed COSFUSE_MODEL_SEQUENCES=$per \
        timeout 3600 cargo test --release --test mount_model -- --nocapture
done
echo "==> $((per * rounds)) sequences passed"

#!/usr/bin/env bash
# Fails when a direct dependency in Cargo.toml ([dependencies] and [dev-dependencies]) is a major
# version (for 0.x crates: a minor version) behind the newest release on crates.io, unless its
# line carries a `# behind: REASON` comment (on the line itself or in the comment block right
# above it). Run by scripts/test.sh (issue 13).
#
# The newest release comes from `cargo info NAME` (`cargo search` is not served by every
# registry mirror). When `cargo info` names a pre-release (rustls 0.24.0-dev.2, say), that is not
# a release to move to, so the next compatible series after ours (`NAME@0.24`, `NAME@2`, which
# match releases only) is asked for instead.
#
# crates.io unreachable: a warning and exit 0, so an offline build is not failed by this check.
# Exit 1: a dependency is behind without a reason. Exit 2: Cargo.toml could not be read.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MANIFEST=${1:-$ROOT/Cargo.toml}
[ -r "$MANIFEST" ] || { echo "check-deps: cannot read $MANIFEST" >&2; exit 2; }

# `cargo info` run outside the workspace, so it reports the registry and not our Cargo.lock.
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

# "NAME VERSION REASON" for each registry dependency (path/git ones have no version to compare).
deps() {
    awk '
        /^\[/ { sect = $0; above = ""; next }
        sect != "[dependencies]" && sect != "[dev-dependencies]" { next }
        /^[ \t]*#/ { above = above " " $0; next }
        /^[ \t]*$/ { above = ""; next }
        {
            line = $0
            name = line; sub(/[ \t]*=.*/, "", name)
            ver = ""
            if (match(line, /^[^=]+=[ \t]*"[^"]*"/)) {
                ver = substr(line, RSTART, RLENGTH); sub(/^[^"]*"/, "", ver); sub(/"$/, "", ver)
            } else if (match(line, /version[ \t]*=[ \t]*"[^"]*"/)) {
                ver = substr(line, RSTART, RLENGTH); sub(/^[^"]*"/, "", ver); sub(/"$/, "", ver)
            }
            reason = ""
            text = line " " above
            if (match(text, /# *behind:[^#]*/)) {
                reason = substr(text, RSTART, RLENGTH); sub(/# *behind: */, "", reason); sub(/[ \t]+$/, "", reason)
            }
            above = ""
            if (ver != "") print name "\t" ver "\t" reason
        }' "$MANIFEST" | sort -u -t$'\t' -k1,1
}

# The compatibility series of a version or requirement: 1.2.3 -> 1, 0.12 -> 0.12, 0.0.3 -> 0.0.3.
series() {
    local v=${1#[=^~]} major minor patch
    v=${v%%-*}
    IFS=. read -r major minor patch <<<"$v"
    minor=${minor:-0}
    patch=${patch:-0}
    if [ "$major" != 0 ]; then echo "$major"
    elif [ "$minor" != 0 ]; then echo "0.$minor"
    else echo "0.0.$patch"
    fi
}

# The series after this one: 1 -> 2, 0.12 -> 0.13, 0.0.3 -> 0.0.4.
next_series() {
    local s=$1
    case $s in
        0.0.*) echo "0.0.$((${s#0.0.} + 1))" ;;
        0.*) echo "0.$((${s#0.} + 1))" ;;
        *) echo "$((s + 1))" ;;
    esac
}

# Is series $1 older than series $2? (Compared as version numbers.)
older() {
    [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]
}

# Prints the version `cargo info SPEC` reports; status 1 when the registry has no such crate
# or version, 3 when the registry could not be asked.
newest() {
    local out
    # Bounded retries and timeout: an unreachable registry should cost seconds, not minutes.
    if out=$(cd "$SCRATCH" && CARGO_NET_RETRY=1 CARGO_HTTP_TIMEOUT=20 cargo info --quiet "$1" 2>&1); then
        sed -n 's/^version: \([^ ]*\).*/\1/p' <<<"$out" | head -1
        return 0
    fi
    if grep -q "could not find" <<<"$out"; then return 1; fi
    return 3
}

behind=0
checked=0
while IFS=$'\t' read -r name ver reason; do
    ours=$(series "$ver")
    status=0
    latest=$(newest "$name") || status=$?
    if [ $status -eq 3 ]; then
        echo "check-deps: WARNING: crates.io could not be reached; dependency versions not checked" >&2
        exit 0
    fi
    [ $status -eq 0 ] || { echo "check-deps: $name is not on crates.io" >&2; behind=1; continue; }
    newer=""
    if [[ $latest == *-* ]]; then
        # Newest is a pre-release: is there a release of a later series than ours?
        # (0.x crates may also jump straight to 1.)
        for s in "$(next_series "$ours")" "$( [[ $ours == 0.* ]] && echo 1)"; do
            [ -n "$s" ] || continue
            status=0
            v=$(newest "$name@$s") || status=$?
            [ $status -eq 3 ] && { echo "check-deps: WARNING: crates.io could not be reached; dependency versions not checked" >&2; exit 0; }
            [ $status -eq 0 ] && { newer=$v; break; }
        done
    elif older "$ours" "$(series "$latest")"; then
        newer=$latest
    fi
    checked=$((checked + 1))
    [ -n "$newer" ] || continue
    if [ -n "$reason" ]; then
        echo "check-deps: $name $ver is behind $newer (accepted: $reason)"
    else
        echo "check-deps: $name $ver is behind $newer and Cargo.toml gives no '# behind: REASON'" >&2
        behind=1
    fi
done < <(deps)

if [ $behind -ne 0 ]; then
    echo "check-deps: FAILED: move the dependencies above to the current release, or write why not" >&2
    exit 1
fi
echo "check-deps: $checked dependencies checked, none behind without a reason"

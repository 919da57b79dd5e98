# Shared helpers for scripts/*.sh (sourced, not run).

# Installs the Debian packages named as arguments when any is missing (root or sudo).
ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

# The cargo target directory (honours CARGO_TARGET_DIR).
target_dir() {
    echo "${CARGO_TARGET_DIR:-$ROOT/target}"
}

#!/usr/bin/env bash
# Builds cosfuse in release mode and installs:
#   $PREFIX/bin/cosfuse, $PREFIX/bin/cosfuse-emulator      (PREFIX defaults to /usr/local)
#   /sbin/mount.cosfuse                                    (for `mount -t cosfuse`)
#   $PREFIX/share/man/man1/cosfuse.1
#   shell completions: $PREFIX/share/bash-completion/completions/cosfuse,
#   $PREFIX/share/zsh/site-functions/_cosfuse, $PREFIX/share/fish/vendor_completions.d/cosfuse.fish
# `mount -t fuse.cosfuse` and fstab lines of type fuse.cosfuse use fuse3's mount.fuse3, which runs
# `cosfuse` from the default PATH (/usr/local/bin is on it) - so both forms work after this.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/lib.sh"
PREFIX=${PREFIX:-/usr/local}
SBIN=${SBIN:-/sbin}

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (it writes to $PREFIX and $SBIN)" >&2
    exit 1
fi
ensure_packages fuse3
cd "$ROOT"
cargo build --release --bins
BIN="$(target_dir)/release"
install -d "$PREFIX/bin" "$PREFIX/share/man/man1" "$SBIN"
install -m 0755 "$BIN/cosfuse" "$PREFIX/bin/cosfuse"
install -m 0755 "$BIN/cosfuse-emulator" "$PREFIX/bin/cosfuse-emulator"
install -m 0755 "$ROOT/scripts/mount.cosfuse" "$SBIN/mount.cosfuse"
install -m 0644 "$ROOT/man/cosfuse.1" "$PREFIX/share/man/man1/cosfuse.1"
install -m 0644 "$ROOT/man/cosfuse-emulator.1" "$PREFIX/share/man/man1/cosfuse-emulator.1"
# Completions go where each shell's packaged completions are looked up for this PREFIX
# (bash-completion loads $PREFIX/share/bash-completion/completions on demand; zsh's fpath and
# fish's vendor directories include the /usr/local ones by default).
BASH_COMP=${BASH_COMP:-$PREFIX/share/bash-completion/completions}
ZSH_COMP=${ZSH_COMP:-$PREFIX/share/zsh/site-functions}
FISH_COMP=${FISH_COMP:-$PREFIX/share/fish/vendor_completions.d}
install -d "$BASH_COMP" "$ZSH_COMP" "$FISH_COMP"
"$BIN/cosfuse" completions bash >"$BASH_COMP/cosfuse"
"$BIN/cosfuse" completions zsh >"$ZSH_COMP/_cosfuse"
"$BIN/cosfuse" completions fish >"$FISH_COMP/cosfuse.fish"
chmod 0644 "$BASH_COMP/cosfuse" "$ZSH_COMP/_cosfuse" "$FISH_COMP/cosfuse.fish"
# allow_other for non-root users needs user_allow_other in /etc/fuse.conf.
if [ -f /etc/fuse.conf ] && ! grep -q '^user_allow_other' /etc/fuse.conf; then
    echo "note: add 'user_allow_other' to /etc/fuse.conf to let non-root users use -o allow_other"
fi
echo "installed: $PREFIX/bin/cosfuse $PREFIX/bin/cosfuse-emulator $SBIN/mount.cosfuse, man pages, completions"
echo "try:  mount -t fuse.cosfuse BUCKET-APPID /mnt -o url=URL,passwd_file=/etc/passwd-cosfs"

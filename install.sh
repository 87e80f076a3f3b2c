#!/usr/bin/env bash
# Build and install docker-volume-backup, standalone and as a Docker CLI plugin.
#
#   ./install.sh              build (release) and install; safe to run again
#   ./install.sh --uninstall  remove what the install put in place
#
# Environment:
#   PREFIX         where bin/docker-volume-backup goes      (default: $HOME/.local)
#   DOCKER_CONFIG  Docker's config dir, for cli-plugins/    (default: $HOME/.docker)
#   CARGO          cargo command                             (default: cargo)
#
# Result:
#   $PREFIX/bin/docker-volume-backup                       the binary: `docker-volume-backup save myvol`
#   $DOCKER_CONFIG/cli-plugins/docker-volumebackup          a symlink to it: `docker volumebackup save myvol`
set -euo pipefail

PREFIX="${PREFIX:-$HOME/.local}"
DOCKER_CONFIG_DIR="${DOCKER_CONFIG:-$HOME/.docker}"
CARGO="${CARGO:-cargo}"
BIN_NAME="docker-volume-backup"
# No hyphen after "docker-": the Docker CLI only runs plugins whose name (the part after
# "docker-") matches ^[a-z][a-z0-9]*$, so "docker-volume-backup" would be ignored as a plugin
# ("volume-backup" did not match) while "docker-volumebackup" becomes `docker volumebackup`.
PLUGIN_NAME="docker-volumebackup"

BIN_DIR="$PREFIX/bin"
BIN_PATH="$BIN_DIR/$BIN_NAME"
PLUGIN_DIR="$DOCKER_CONFIG_DIR/cli-plugins"
PLUGIN_PATH="$PLUGIN_DIR/$PLUGIN_NAME"

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

uninstall() {
    local removed=0
    if [ -L "$PLUGIN_PATH" ] || [ -e "$PLUGIN_PATH" ]; then
        rm -f "$PLUGIN_PATH"
        say "removed $PLUGIN_PATH"
        removed=1
    fi
    if [ -e "$BIN_PATH" ] || [ -L "$BIN_PATH" ]; then
        rm -f "$BIN_PATH"
        say "removed $BIN_PATH"
        removed=1
    fi
    [ "$removed" = 1 ] || say "nothing to remove ($BIN_PATH and $PLUGIN_PATH are absent)"
}

install() {
    local repo
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    cd "$repo"
    command -v "$CARGO" >/dev/null 2>&1 || die "cargo not found (install Rust: https://rustup.rs)"

    if [ -f Cargo.lock ]; then
        say "building: $CARGO build --release --locked"
        "$CARGO" build --release --locked
    else
        say "building: $CARGO build --release (no Cargo.lock)"
        "$CARGO" build --release
    fi
    local target_dir="${CARGO_TARGET_DIR:-$repo/target}"
    local built="$target_dir/release/$BIN_NAME"
    [ -x "$built" ] || die "build finished but $built is missing"

    mkdir -p "$BIN_DIR"
    # Copy beside the target then rename: replacing a running binary in place would fail (ETXTBSY)
    # and a half-copied file must never be left under the real name.
    local tmp="$BIN_PATH.tmp.$$"
    cp "$built" "$tmp"
    chmod 0755 "$tmp"
    mv -f "$tmp" "$BIN_PATH"
    say "installed $BIN_PATH"

    mkdir -p "$PLUGIN_DIR"
    if [ -e "$PLUGIN_PATH" ] && [ ! -L "$PLUGIN_PATH" ]; then
        say "replacing the file $PLUGIN_PATH with a symlink"
    fi
    ln -sfn "$BIN_PATH" "$PLUGIN_PATH"
    say "linked  $PLUGIN_PATH -> $BIN_PATH"

    case ":${PATH:-}:" in
        *":$BIN_DIR:"*) ;;
        *) say "warning: $BIN_DIR is not on your PATH; add it to use '$BIN_NAME' directly:"
           say "         export PATH=\"$BIN_DIR:\$PATH\"" ;;
    esac

    if command -v docker >/dev/null 2>&1; then
        say "checking: docker volumebackup --version"
        if ! DOCKER_CONFIG="$DOCKER_CONFIG_DIR" docker volumebackup --version; then
            die "docker does not run the plugin; 'docker info' lists plugins and why one was rejected"
        fi
    else
        say "docker CLI not found; checking the binary alone: $BIN_PATH --version"
        "$BIN_PATH" --version
    fi
}

case "${1:-}" in
    "") install ;;
    --uninstall | uninstall) uninstall ;;
    -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Install (idempotent) the S3-compatible server the tests run on loopback: moto's server from PyPI,
# in its own virtualenv so nothing touches the system's Python.
#
#   scripts/s3-server.sh            install if missing; print the path of moto_server
#
# DVB_S3_VENV chooses the virtualenv (default ~/.cache/docker-volume-backup/moto-venv).
set -euo pipefail

venv="${DVB_S3_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/docker-volume-backup/moto-venv}"
log() { printf 's3-server: %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/moto_server" ]; then
    log "installing moto[server] into $venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6' >&2
fi
"$venv/bin/moto_server" --help >/dev/null 2>&1 || { log "error: $venv/bin/moto_server does not run"; exit 1; }
echo "$venv/bin/moto_server"

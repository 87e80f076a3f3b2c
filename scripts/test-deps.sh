#!/usr/bin/env bash
# Install what the integration tests and the benchmark need on a fresh Debian machine.
#
#   scripts/test-deps.sh
#
# Idempotent: checks each requirement first and runs `apt-get update` + `apt-get install` only when
# something is missing. Needs root (or sudo) only in that case. Prints what it found and what it did.
#
#   busybox-static  /bin/busybox, statically linked: the tests `docker import` it as a local image
#                   (scripts/busybox-image.sh), since no registry can be reached
#   zstd gzip tar   command-line (de)compressors, to check archives made by the tool
#   time            GNU /usr/bin/time, for wall time and peak RSS
#   curl            talks to the Docker socket directly (benchmark baseline)
#   python3         the benchmark's data generator and the TLS terminator of the TLS test
#   openssl         makes the certificates of the TLS test
#   openssh-client  ssh-keygen makes the ssh key of the encryption test; ssh reaches ssh:// contexts
#   openssh-server  /usr/sbin/sshd on loopback for the ssh context and migrate tests (not started
#                   as a service: the tests start their own with a temporary config)
#   iproute2        ip: a bridge of its own for the second dockerd of the migrate test
#   util-linux      setsid: the passphrase tests run the tool without a controlling terminal
#   postgresql      the server and client tools of the db-dump tests' PostgreSQL containers, which
#                   run the host's /usr read-only (scripts/db-images.sh)
#   mariadb-server  the same for the MariaDB containers (mariadbd, mariadb, mariadb-dump)
#   docker-compose  the compose tests (skipped when the docker CLI has `docker compose`)
#   cron            crontab: the schedule tests install (and remove) a user crontab entry
#   podman          the Podman tests start `podman system service` on a temporary socket (as
#                   root, and as the users `dvb-rootless` and `dvb-rootless-ids`, made here when
#                   missing, for the rootless tests: system users without a home or a shell, the
#                   first without subordinate ids, the second with 65536 of them from 1000000)
#   uidmap          newuidmap/newgidmap: the rootless service of `dvb-rootless-ids` maps its
#                   subordinate ids with them
#   restic          the restic tests check the tool's repositories with restic itself
#   libcap2-bin     setcap/getcap: a file capability (security.capability) through a repository
#   rclone          `rclone serve restic`: the REST server of the rest: repository tests (on
#                   loopback, started by the tests)
#
# Then it installs moto's S3 server from PyPI into its own virtualenv (scripts/s3-server.sh), for
# the S3 tests (python3-venv from apt when `python3 -m venv` is missing).
#
# It also reports (without failing) whether the Docker daemon answers and whether cargo's rustfmt and
# clippy are there.
set -euo pipefail

log() { printf 'test-deps: %s\n' "$*"; }

# package name -> a file or command that proves it is there
declare -A probe=(
    [busybox-static]=/bin/busybox
    [zstd]=zstd
    [gzip]=gzip
    [tar]=tar
    [time]=/usr/bin/time
    [curl]=curl
    [python3]=python3
    [openssl]=openssl
    [openssh-client]=ssh-keygen
    [openssh-server]=/usr/sbin/sshd
    [iproute2]=ip
    [util-linux]=setsid
    [docker-compose]=docker-compose
    [postgresql]=/usr/lib/postgresql
    [mariadb-server]=/usr/sbin/mariadbd
    [cron]=crontab
    [podman]=podman
    [restic]=restic
    [libcap2-bin]=/usr/sbin/setcap
    [rclone]=rclone
    [uidmap]=newuidmap
)
order=(busybox-static zstd gzip tar time curl python3 openssl openssh-client openssh-server iproute2 util-linux
    docker-compose postgresql mariadb-server cron podman restic libcap2-bin rclone uidmap)
if ! python3 -m venv --help >/dev/null 2>&1; then
    probe[python3-venv]=venv
    order+=(python3-venv)
fi

is_static_busybox() {
    # Debian's dynamically linked 'busybox' also ships /bin/busybox but cannot run in an empty image.
    [ -x /bin/busybox ] || return 1
    if dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
        return 0
    fi
    command -v file >/dev/null 2>&1 && file -L /bin/busybox | grep -q 'statically linked'
}

have() {
    local pkg="$1" p="${probe[$1]}"
    if [ "$pkg" = busybox-static ]; then
        is_static_busybox
    elif [ "$pkg" = postgresql ]; then
        compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
    elif [ "$pkg" = docker-compose ]; then
        docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1
    elif [ "$pkg" = python3-venv ]; then
        python3 -m venv --help >/dev/null 2>&1
    elif [ "${p#/}" != "$p" ]; then
        [ -x "$p" ]
    else
        command -v "$p" >/dev/null 2>&1
    fi
}

missing=()
for pkg in "${order[@]}"; do
    if have "$pkg"; then
        log "ok       $pkg"
    else
        log "missing  $pkg"
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        log "error: apt-get not found; install by hand: ${missing[*]}"
        exit 1
    fi
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            log "error: not root and no sudo; install by hand: ${missing[*]}"
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    log "running apt-get update"
    "${SUDO[@]}" apt-get update -qq
    log "installing: ${missing[*]}"
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
    for pkg in "${missing[@]}"; do
        have "$pkg" || { log "error: $pkg still missing after apt-get install"; exit 1; }
        log "installed $pkg"
    done
else
    log "nothing to install"
fi

if ! id dvb-rootless >/dev/null 2>&1; then
    SUDO=()
    [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
    "${SUDO[@]}" useradd --system --no-create-home --shell /usr/sbin/nologin dvb-rootless
    log "created user dvb-rootless (rootless Podman tests)"
else
    log "ok       user dvb-rootless"
fi
if ! id dvb-rootless-ids >/dev/null 2>&1; then
    SUDO=()
    [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
    "${SUDO[@]}" useradd --system --no-create-home --shell /usr/sbin/nologin dvb-rootless-ids
    log "created user dvb-rootless-ids (rootless Podman with subordinate ids)"
else
    log "ok       user dvb-rootless-ids"
fi
for f in /etc/subuid /etc/subgid; do
    if ! grep -q '^dvb-rootless-ids:' "$f" 2>/dev/null; then
        SUDO=()
        [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
        echo 'dvb-rootless-ids:1000000:65536' | "${SUDO[@]}" tee -a "$f" >/dev/null
        log "gave dvb-rootless-ids the ids 1000000-1065535 in $f"
    fi
done

log "S3 test server: $("$(dirname "${BASH_SOURCE[0]}")/s3-server.sh")"

# Informational checks: these never fail the script.
if command -v docker >/dev/null 2>&1; then
    if v="$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null)"; then
        log "docker daemon: $v"
    else
        log "warning: the docker daemon does not answer; the integration tests need it"
    fi
else
    log "warning: docker CLI not found; the integration tests need it"
fi
if command -v cargo >/dev/null 2>&1; then
    cargo fmt --version >/dev/null 2>&1 || log "warning: rustfmt missing (rustup component add rustfmt)"
    cargo clippy --version >/dev/null 2>&1 || log "warning: clippy missing (rustup component add clippy)"
else
    log "warning: cargo not found"
fi
log "done"

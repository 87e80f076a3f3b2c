#!/usr/bin/env bash
# Benchmark docker-volume-backup's save and restore against two baselines, on the same data:
#
#   (a) seed   the seed's recipe: `docker run ... tar czf` / `tar xzf` in a (busybox) container
#   (b) pipe   the Engine's archive endpoint in a shell pipeline, on a never-started helper
#              container made from an empty imported image:
#              `curl .../containers/ID/archive?path=/mnt/. | zstd -T0 -3` and
#              `zstd -dc | curl -T - .../containers/ID2/archive?path=/mnt` into a fresh volume
#   (c) tool   target/release/docker-volume-backup save / restore
#   (d) migrate over ssh to a context `ssh://USER@127.0.0.1:PORT` served by a private sshd on loopback
#              (pointing back at this engine): `migrate --to` against the pipe
#              `save -o - | ssh ... docker-volume-backup restore -` (BENCH_MIGRATE)
#   (e) restic `save --to restic:REPO`: first save, unchanged second save, a save after 1% of the
#              files changed, against the engine's raw archive read (`curl ... > /dev/null`), the
#              tool's zstd save (c), and `curl ... | restic backup --stdin` (BENCH_RESTIC)
#
# Usage: scripts/bench.sh        (or `make bench`; `make bench-quick` for BENCH_SCALE=0.1)
#
# Environment:
#   BENCH_DIR        cache + scratch dir (default /var/tmp/dvb-bench); the generated data set is
#                    kept there, keyed by the generator's version, seed and scale, and reused
#   BENCH_SCALE      data set size factor (default 1: ~1 GiB, ~55k entries; 0.1 for a quick try)
#   BENCH_RUNS       runs per measurement; the best (lowest) time is reported (default 1)
#   BENCH_SKIP_TOOL  1 = measure only (a) and (b), without building the tool (default 0)
#   BENCH_TOOL       measure this binary instead of building target/release (e.g. to compare two
#                    builds: BENCH_TOOL=/tmp/before make bench-quick, then BENCH_TOOL=/tmp/after)
#   BENCH_VERIFY     1 = check once that every restored volume equals the source (default 1)
#   BENCH_MIGRATE    1 = also measure (d) (default: 1 when /usr/sbin/sshd is installed)
#   BENCH_MIGRATE_ONLY 1 = measure only (d) (`make bench-migrate`, with BENCH_SCALE=0.1)
#   BENCH_REPORT     also write the markdown report to this file (default $BENCH_DIR/report-scale<S>.md)
#   BENCH_RESTIC     1 = also measure (e) (default: 1 when the restic CLI is installed)
#
# Targets (PASS/MISS is printed; the exit status is 0 either way, it is not a test):
#   save:    seed / tool >= 6        save and restore: tool / pipe <= 1.15
#   tool peak RSS (save and restore) < 64 MiB
#
# Everything it creates in Docker (containers, volumes, images named dvb-bench-*) and its scratch
# files are removed on exit, Ctrl-C included. The data set cache stays.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

BENCH_DIR="${BENCH_DIR:-/var/tmp/dvb-bench}"
BENCH_SCALE="${BENCH_SCALE:-1}"
BENCH_RUNS="${BENCH_RUNS:-1}"
BENCH_SKIP_TOOL="${BENCH_SKIP_TOOL:-0}"
BENCH_VERIFY="${BENCH_VERIFY:-1}"
BENCH_MIGRATE_ONLY="${BENCH_MIGRATE_ONLY:-0}"
if [ -x /usr/sbin/sshd ]; then BENCH_MIGRATE="${BENCH_MIGRATE:-1}"; else BENCH_MIGRATE="${BENCH_MIGRATE:-0}"; fi
[ "$BENCH_MIGRATE_ONLY" != 1 ] || BENCH_MIGRATE=1
if command -v restic >/dev/null 2>&1; then BENCH_RESTIC="${BENCH_RESTIC:-1}"; else BENCH_RESTIC="${BENCH_RESTIC:-0}"; fi
[ "$BENCH_MIGRATE_ONLY" != 1 ] || BENCH_RESTIC=0
[ "$BENCH_SKIP_TOOL" != 1 ] || BENCH_RESTIC=0
SEED=20240601

TOOL="${BENCH_TOOL:-$REPO/target/release/docker-volume-backup}"
BB_IMAGE="dvb-bench-busybox:latest"
EMPTY_IMAGE="dvb-bench-empty:latest"
LABEL="dvb-bench=1"
V_SRC=dvb-bench-src
V_SEED=dvb-bench-seed-r
V_PIPE=dvb-bench-pipe-r
V_TOOL=dvb-bench-dst
V_MIG=dvb-bench-migrate
V_MIGPIPE=dvb-bench-migrate-pipe
C_PIPE_SAVE=dvb-bench-pipe-save
C_PIPE_RESTORE=dvb-bench-pipe-restore
C_RAW=dvb-bench-raw-read
VOLUMES=("$V_SRC" "$V_SEED" "$V_PIPE" "$V_TOOL" "$V_MIG" "$V_MIGPIPE")
SSHD_PID=

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- checks
[[ "$BENCH_RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
[[ "$BENCH_SCALE" =~ ^[0-9]*\.?[0-9]+$ ]] || die "BENCH_SCALE must be a positive number"
BENCH_SCALE="$(LC_ALL=C printf '%g' "$BENCH_SCALE")" # 1.0 and 1 share one cache entry
need=(docker curl zstd python3 tar)
miss=()
for c in "${need[@]}"; do command -v "$c" >/dev/null 2>&1 || miss+=("$c"); done
[ -x /usr/bin/time ] || miss+=(/usr/bin/time)
[ -x /bin/busybox ] || miss+=(busybox-static)
if [ "${#miss[@]}" -gt 0 ]; then
    log "missing: ${miss[*]}; running scripts/test-deps.sh"
    "$REPO/scripts/test-deps.sh"
fi
docker version >/dev/null 2>&1 || die "the Docker daemon does not answer"

# The pipeline baseline talks to the Engine's unix socket directly.
case "${DOCKER_HOST:-unix:///var/run/docker.sock}" in
    unix://*) SOCK="${DOCKER_HOST:-unix:///var/run/docker.sock}"; SOCK="${SOCK#unix://}" ;;
    *) die "DOCKER_HOST=$DOCKER_HOST: this benchmark needs a local engine on a unix socket" ;;
esac
[ -S "$SOCK" ] || die "no docker socket at $SOCK"
API="v$(docker version --format '{{.Server.APIVersion}}' 2>/dev/null || echo 1.41)"
ENGINE="$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')"
URL="http://localhost/$API"

mkdir -p "$BENCH_DIR"
SCRATCH="$(mktemp -d "$BENCH_DIR/run.XXXXXX")"
STEP_PID=
OUT="$SCRATCH/out"
mkdir -p "$OUT"

# ---------------------------------------------------------------- cleanup
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    log "cleaning up"
    if [ -n "${STEP_PID:-}" ] && kill -0 "$STEP_PID" 2>/dev/null; then
        # interrupted during a timed step: stop the command under /usr/bin/time, then /usr/bin/time
        pkill -TERM -P "$STEP_PID" 2>/dev/null
        kill -TERM "$STEP_PID" 2>/dev/null
    fi
    local ids
    ids="$(docker ps -aq --filter "label=$LABEL" 2>/dev/null)"
    # shellcheck disable=SC2086
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1
    for c in "$C_PIPE_SAVE" "$C_PIPE_RESTORE" "$C_RAW"; do docker rm -f "$c" >/dev/null 2>&1; done
    if [ -n "${STEP_PID:-}" ]; then
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$STEP_PID" 2>/dev/null || break; sleep 1; done
    fi
    for v in "${VOLUMES[@]}"; do docker volume rm -f "$v" >/dev/null 2>&1; done
    [ -z "${SSHD_PID:-}" ] || { kill "$SSHD_PID" 2>/dev/null; wait "$SSHD_PID" 2>/dev/null; }
    docker image rm -f "$BB_IMAGE" "$EMPTY_IMAGE" >/dev/null 2>&1
    rm -rf "$SCRATCH"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

# Leftovers of an interrupted earlier run have the same names: remove them first.
for v in "${VOLUMES[@]}"; do
    if docker volume inspect "$v" >/dev/null 2>&1; then
        log "removing leftover volume $v"
        docker volume rm -f "$v" >/dev/null
    fi
done
for c in "$C_PIPE_SAVE" "$C_PIPE_RESTORE"; do docker rm -f "$c" >/dev/null 2>&1 || true; done

# ---------------------------------------------------------------- data set
GEN="$REPO/scripts/gen-dataset.py"
DS_VERSION="$(python3 "$GEN" --print-version)"
DATASET="$BENCH_DIR/dataset-$DS_VERSION-seed$SEED-scale$BENCH_SCALE"
for old in "$BENCH_DIR"/dataset-*; do
    [ -e "$old" ] || continue
    case "$old" in
        "$BENCH_DIR/dataset-$DS_VERSION-"*) ;;
        *) log "removing data set of another generator version: $old"; rm -rf "$old" ;;
    esac
done
if [ -d "$DATASET" ]; then
    log "data set cached: $DATASET"
else
    log "generating data set (scale $BENCH_SCALE) into $DATASET"
    python3 "$GEN" "$DATASET" --scale "$BENCH_SCALE" --seed "$SEED"
fi
DS_ENTRIES="$(find "$DATASET" -mindepth 1 | wc -l)"
DS_BYTES="$(du -sb --apparent-size "$DATASET" | cut -f1)"

need_kib=$(( DS_BYTES * 7 / 1024 ))
for d in "$BENCH_DIR" "$(docker info --format '{{.DockerRootDir}}' 2>/dev/null || echo /var/lib/docker)"; do
    if [ -d "$d" ]; then
        free_kib="$(df -Pk "$d" | awk 'NR==2 {print $4}')"
        [ "$free_kib" -ge "$need_kib" ] || log "warning: $d has $((free_kib / 1024)) MiB free, about $((need_kib / 1024)) MiB may be needed"
    fi
done

# ---------------------------------------------------------------- build, images, source volume
[ "$BENCH_MIGRATE" != 1 ] || [ "$BENCH_SKIP_TOOL" != 1 ] || die "BENCH_MIGRATE needs the tool (BENCH_SKIP_TOOL=1 given)"
if [ "$BENCH_SKIP_TOOL" != 1 ] && [ -z "${BENCH_TOOL:-}" ]; then
    log "building the release binary"
    cargo build --release --quiet
fi
[ "$BENCH_SKIP_TOOL" = 1 ] || [ -x "$TOOL" ] || die "$TOOL missing"

QUIET=1 "$REPO/scripts/busybox-image.sh" "$BB_IMAGE" >/dev/null
tar -cf "$SCRATCH/empty.tar" -T /dev/null
docker import --change "LABEL $LABEL" "$SCRATCH/empty.tar" "$EMPTY_IMAGE" >/dev/null
log "images ready: $BB_IMAGE, $EMPTY_IMAGE"

# (d) a private sshd on loopback that lets a key made here log in as this user; the remote docker
# CLI gets an empty config dir (no context of the user's leaks in). ssh runs with -F, through a
# wrapper first on PATH, so ~/.ssh is never read or written.
if [ "$BENCH_MIGRATE" = 1 ]; then
    SSHDIR="$SCRATCH/ssh"
    mkdir -p "$SSHDIR/bin" "$SSHDIR/remote-config" "$SSHDIR/docker-config"
    ssh-keygen -q -t ed25519 -N '' -f "$SSHDIR/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$SSHDIR/id"
    printf 'environment="DOCKER_CONFIG=%s" %s' "$SSHDIR/remote-config" "$(cat "$SSHDIR/id.pub")" > "$SSHDIR/authorized_keys"
    SSH_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    printf '%s\n' "ListenAddress 127.0.0.1" "HostKey $SSHDIR/host_key" \
        "AuthorizedKeysFile $SSHDIR/authorized_keys" "PidFile none" "StrictModes no" \
        "PermitUserEnvironment yes" "PasswordAuthentication no" "KbdInteractiveAuthentication no" \
        "UsePAM no" "PermitRootLogin prohibit-password" > "$SSHDIR/sshd_config"
    printf '%s\n' "Host *" "  IdentityFile $SSHDIR/id" "  IdentitiesOnly yes" \
        "  UserKnownHostsFile /dev/null" "  StrictHostKeyChecking no" "  BatchMode yes" \
        "  LogLevel ERROR" > "$SSHDIR/ssh_config"
    printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$SSHDIR/ssh_config" > "$SSHDIR/bin/ssh"
    chmod +x "$SSHDIR/bin/ssh"
    [ "$(id -u)" -ne 0 ] || mkdir -p /run/sshd
    /usr/sbin/sshd -D -f "$SSHDIR/sshd_config" -p "$SSH_PORT" 2>"$SSHDIR/sshd.log" &
    SSHD_PID=$!
    SSH_URL="ssh://$(id -un)@127.0.0.1:$SSH_PORT"
    for _ in $(seq 1 50); do
        "$SSHDIR/bin/ssh" -p "$SSH_PORT" "$(id -un)@127.0.0.1" true 2>/dev/null && break
        sleep 0.1
    done
    docker --config "$SSHDIR/docker-config" context create bench-ssh --docker "host=$SSH_URL" >/dev/null 2>"$SSHDIR/context.log" \
        || die "docker context create failed: $(cat "$SSHDIR/context.log")"
    log "sshd on 127.0.0.1:$SSH_PORT, context bench-ssh -> $SSH_URL"
fi

log "filling volume $V_SRC from the data set"
docker volume create --label "$LABEL" "$V_SRC" >/dev/null
tar -C "$DATASET" -cf - . |
    docker run -i --rm --pull never --network none --log-driver none --label "$LABEL" \
        -v "$V_SRC:/data" "$BB_IMAGE" tar -xf - -C /data
log "warm-up: reading the whole volume once (untimed)"
docker run --rm --pull never --network none --log-driver none --label "$LABEL" \
    -v "$V_SRC:/data:ro" "$BB_IMAGE" sh -c 'tar -cf - -C /data . | wc -c' >/dev/null
sync

# ---------------------------------------------------------------- steps
# Each step is a command line run under GNU time. They are written out as bash -c scripts with
# positional arguments so that /usr/bin/time measures the whole pipeline.

# (a) seed recipe
# shellcheck disable=SC2016
SEED_SAVE='docker run --rm --pull never --label "$1" -v "$2":/source:ro -v "$3":/backup "$4" tar czf /backup/seed.tar.gz -C /source .'
# shellcheck disable=SC2016
SEED_RESTORE='docker volume create --label "$1" "$2" >/dev/null && docker run --rm --pull never --label "$1" -v "$2":/target -v "$3":/backup "$4" tar xzf /backup/seed.tar.gz -C /target'

# (b) archive endpoint + zstd; helpers are created and removed through the API (no CLI start-up
# cost in the baseline). $1 socket, $2 API URL, $3 helper name, $4 image, $5 volume, $6 archive.
# shellcheck disable=SC2016
PIPE_SAVE='set -eo pipefail
S=$1 U=$2 C=$3 I=$4 V=$5 A=$6
c() { curl -sS --fail-with-body --unix-socket "$S" "$@"; }
c -o /dev/null -H "Content-Type: application/json" \
  -d "{\"Image\":\"$I\",\"Cmd\":[\"/none\"],\"Labels\":{\"dvb-bench\":\"1\"},\"HostConfig\":{\"Binds\":[\"$V:/mnt:ro\"]}}" \
  "$U/containers/create?name=$C"
c "$U/containers/$C/archive?path=/mnt/." | zstd -T0 -3 -q > "$A"
c -o /dev/null -X DELETE "$U/containers/$C?force=1"'
# shellcheck disable=SC2016
PIPE_RESTORE='set -eo pipefail
S=$1 U=$2 C=$3 I=$4 V=$5 A=$6
c() { curl -sS --fail-with-body --unix-socket "$S" "$@"; }
c -o /dev/null -H "Content-Type: application/json" \
  -d "{\"Name\":\"$V\",\"Labels\":{\"dvb-bench\":\"1\"}}" "$U/volumes/create"
c -o /dev/null -H "Content-Type: application/json" \
  -d "{\"Image\":\"$I\",\"Cmd\":[\"/none\"],\"Labels\":{\"dvb-bench\":\"1\"},\"HostConfig\":{\"Binds\":[\"$V:/mnt\"]}}" \
  "$U/containers/create?name=$C"
zstd -dc -q "$A" | c -o /dev/null -X PUT -T - -H "Content-Type: application/x-tar" -H "Expect:" \
  "$U/containers/$C/archive?path=/mnt"
c -o /dev/null -X DELETE "$U/containers/$C?force=1"'

# (e) the engine's archive endpoint read to the end and thrown away (the floor of any save), or
# piped into a command ($7...). $1 socket, $2 API URL, $3 helper name, $4 image, $5 volume.
# shellcheck disable=SC2016
RAW_READ='set -eo pipefail
S=$1 U=$2 C=$3 I=$4 V=$5
shift 5
c() { curl -sS --fail-with-body --unix-socket "$S" "$@"; }
c -o /dev/null -H "Content-Type: application/json" \
  -d "{\"Image\":\"$I\",\"Cmd\":[\"/none\"],\"Labels\":{\"dvb-bench\":\"1\"},\"HostConfig\":{\"Binds\":[\"$V:/mnt:ro\"]}}" \
  "$U/containers/create?name=$C"
if [ $# -gt 0 ]; then c "$U/containers/$C/archive?path=/mnt/." | "$@"; else c -o /dev/null "$U/containers/$C/archive?path=/mnt/."; fi
c -o /dev/null -X DELETE "$U/containers/$C?force=1"'

# (d) baseline: save to stdout, ssh, restore from stdin on the other side. $1 tool, $2 source
# volume, $3 target volume, $4 ssh port, $5 user@host.
# shellcheck disable=SC2016
MIGRATE_PIPE='set -eo pipefail
"$1" save "$2" -o - -q | ssh -p "$4" "$5" "$1" restore - "$3" -q'

declare -A BEST_T=() MAX_RSS=() SIZE=()
LOADS=()

# other_load: percentage of all cores busy during one second, sampled right before a step while
# nothing of the benchmark runs; more than a few percent means another process competes.
other_load() {
    local a b
    a="$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9; exit}' /proc/stat)"
    sleep 1
    b="$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9; exit}' /proc/stat)"
    awk -v a="$a" -v b="$b" 'BEGIN {split(a, x, " "); split(b, y, " ");
        d = y[2] - x[2]; printf "%.0f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0)}'
}

# timed KEY cmd...: run under /usr/bin/time, keep the best wall time and the largest peak RSS.
timed() {
    local key="$1"
    shift
    sync
    local tf="$SCRATCH/time.$key" load
    load="$(other_load)"
    LOADS+=("$load")
    # In the background + wait, so that Ctrl-C runs the cleanup at once instead of after the step.
    /usr/bin/time -f '%e %M' -o "$tf" "$@" &
    STEP_PID=$!
    if ! wait "$STEP_PID"; then
        STEP_PID=
        cat "$tf" >&2 || true
        die "step $key failed"
    fi
    STEP_PID=
    local t rss
    read -r t rss < <(tail -n1 "$tf")
    log "$(printf '%-13s %7.2f s  peak RSS %6.1f MiB  (CPU busy just before: %s%%)' "$key" "$t" "$(awk -v k="$rss" 'BEGIN {print k/1024}')" "$load")"
    if [ -z "${BEST_T[$key]:-}" ] || awk -v a="$t" -v b="${BEST_T[$key]}" 'BEGIN {exit !(a < b)}'; then
        BEST_T[$key]="$t"
    fi
    if [ -z "${MAX_RSS[$key]:-}" ] || [ "$rss" -gt "${MAX_RSS[$key]}" ]; then
        MAX_RSS[$key]="$rss"
    fi
}

# fingerprint VOLUME: names, types, modes, owners, sizes, link counts, file mtimes, symlink
# targets and file contents, hashed (the volume root itself and directory mtimes excluded).
fingerprint() {
    docker run --rm --pull never --network none --log-driver none --label "$LABEL" \
        -v "$1:/data:ro" "$BB_IMAGE" sh -c 'cd /data && {
            find . -mindepth 1 -type f -exec stat -c "%n f %a %u %g %s %h %Y" {} +
            find . -mindepth 1 -type d -exec stat -c "%n d %a %u %g" {} +
            find . -mindepth 1 -type l -exec stat -c "%N l %u %g" {} +
            find . -mindepth 1 ! -type f ! -type d ! -type l -exec stat -c "%n %F %a %u %g %t %T" {} +
            find . -mindepth 1 -type f -exec md5sum {} +
        } | sort > /tmp/fp && echo "$(md5sum < /tmp/fp | cut -d" " -f1) $(wc -l < /tmp/fp) lines"'
}

remove_volume() { docker volume rm -f "$1" >/dev/null 2>&1 || true; }

verified=()
verify() { # verify LABEL VOLUME
    [ "$BENCH_VERIFY" = 1 ] || return 0
    local got
    got="$(fingerprint "$2")"
    if [ "$got" = "$SRC_FP" ]; then
        verified+=("$1: identical")
    else
        verified+=("$1: DIFFERS from the source")
        log "warning: $2 differs from $V_SRC after the $1 restore"
    fi
}

if [ "$BENCH_VERIFY" = 1 ]; then
    log "fingerprinting $V_SRC"
    SRC_FP="$(fingerprint "$V_SRC")"
    log "source fingerprint: $SRC_FP"
fi

for run in $(seq 1 "$BENCH_RUNS"); do
    log "run $run/$BENCH_RUNS"
    # Delete the previous run's archives and restored volumes now, not right before a timed
    # restore: freeing ~1 GiB of files (ext4 discards, journal) would slow the next step down.
    rm -f "$OUT"/*
    for v in "$V_SEED" "$V_PIPE" "$V_TOOL" "$V_MIG" "$V_MIGPIPE"; do remove_volume "$v"; done
    sync
    sleep 2
    if [ "$BENCH_MIGRATE" = 1 ]; then
        timed migrate_pipe env PATH="$SSHDIR/bin:$PATH" bash -c "$MIGRATE_PIPE" _ "$TOOL" "$V_SRC" "$V_MIGPIPE" "$SSH_PORT" "$(id -un)@127.0.0.1"
        timed migrate env PATH="$SSHDIR/bin:$PATH" "$TOOL" --config "$SSHDIR/docker-config" migrate "$V_SRC" --to bench-ssh --as "$V_MIG" -q
        if [ "$run" = 1 ] && [ "$BENCH_VERIFY" = 1 ]; then
            verify migrate_pipe "$V_MIGPIPE"
            verify migrate "$V_MIG"
        fi
    fi
    [ "$BENCH_MIGRATE_ONLY" != 1 ] || continue
    timed seed_save bash -c "$SEED_SAVE" _ "$LABEL" "$V_SRC" "$OUT" "$BB_IMAGE"
    timed pipe_save bash -c "$PIPE_SAVE" _ "$SOCK" "$URL" "$C_PIPE_SAVE" "$EMPTY_IMAGE" "$V_SRC" "$OUT/pipe.tar.zst"
    if [ "$BENCH_SKIP_TOOL" != 1 ]; then
        timed tool_save "$TOOL" save "$V_SRC" -o "$OUT/t.tar.zst" -q
    fi

    timed seed_restore bash -c "$SEED_RESTORE" _ "$LABEL" "$V_SEED" "$OUT" "$BB_IMAGE"
    timed pipe_restore bash -c "$PIPE_RESTORE" _ "$SOCK" "$URL" "$C_PIPE_RESTORE" "$EMPTY_IMAGE" "$V_PIPE" "$OUT/pipe.tar.zst"
    if [ "$BENCH_SKIP_TOOL" != 1 ]; then
            timed tool_restore "$TOOL" restore "$OUT/t.tar.zst" "$V_TOOL" -q
    fi

    if [ "$run" = 1 ]; then
        SIZE[seed]="$(stat -c %s "$OUT/seed.tar.gz")"
        SIZE[pipe]="$(stat -c %s "$OUT/pipe.tar.zst")"
        [ "$BENCH_SKIP_TOOL" = 1 ] || SIZE[tool]="$(stat -c %s "$OUT/t.tar.zst")"
        if [ "$BENCH_VERIFY" = 1 ]; then
            log "verifying restored volumes against $V_SRC"
            verify seed "$V_SEED"
            verify pipe "$V_PIPE"
            [ "$BENCH_SKIP_TOOL" = 1 ] || verify tool "$V_TOOL"
        fi
    fi
done

# ---------------------------------------------------------------- (e) restic
# After everything else: the 1% step changes the source volume.
declare -A GROWTH=()
if [ "$BENCH_RESTIC" = 1 ]; then
    RREPO="$SCRATCH/restic-repo"
    RCLI="$SCRATCH/restic-cli-repo"
    printf 'bench-password\n' > "$SCRATCH/restic-pw"
    export RESTIC_PASSWORD_FILE="$SCRATCH/restic-pw"
    repo_bytes() { du -sb "$1" | cut -f1; }
    timed raw_read bash -c "$RAW_READ" _ "$SOCK" "$URL" "$C_RAW" "$EMPTY_IMAGE" "$V_SRC"
    timed restic_first "$TOOL" save "$V_SRC" --to "restic:$RREPO" --init -q
    GROWTH[restic_first]="$(repo_bytes "$RREPO")"
    b0="$(repo_bytes "$RREPO")"
    timed restic_second "$TOOL" save "$V_SRC" --to "restic:$RREPO" -q
    GROWTH[restic_second]=$(( $(repo_bytes "$RREPO") - b0 ))
    log "changing 1% of the files of $V_SRC (same sizes, new content)"
    docker run --rm --pull never --network none --log-driver none --label "$LABEL" \
        -v "$V_SRC:/data" "$BB_IMAGE" sh -c 'cd /data && find . -type f | sort | awk "NR % 100 == 0" |
            while IFS= read -r f; do s=$(stat -c %s "$f"); head -c "$s" /dev/urandom > "$f"; done'
    CHANGED="$(docker run --rm --pull never --network none --log-driver none --label "$LABEL" \
        -v "$V_SRC:/data:ro" "$BB_IMAGE" sh -c 'cd /data && find . -type f | sort | awk "NR % 100 == 0" | tr "\n" "\0" | xargs -0 cat | wc -c')"
    b1="$(repo_bytes "$RREPO")"
    timed restic_changed "$TOOL" save "$V_SRC" --to "restic:$RREPO" -q
    GROWTH[restic_changed]=$(( $(repo_bytes "$RREPO") - b1 ))
    restic -r "$RCLI" init --repository-version 2 >/dev/null 2>&1
    b2="$(repo_bytes "$RCLI")"
    timed restic_cli bash -c "$RAW_READ" _ "$SOCK" "$URL" "$C_RAW" "$EMPTY_IMAGE" "$V_SRC" \
        restic -r "$RCLI" --no-cache -q backup --stdin --stdin-filename volume.tar
    GROWTH[restic_cli]=$(( $(repo_bytes "$RCLI") - b2 ))
    if restic -r "$RREPO" --no-cache check --read-data >"$SCRATCH/restic-check.log" 2>&1; then
        RESTIC_CHECK="passed"
    else
        RESTIC_CHECK="FAILED (see the log above)"
        cat "$SCRATCH/restic-check.log" >&2
    fi
fi

# ---------------------------------------------------------------- report
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
kib2mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "inf"}'; }
verdict() { # verdict VALUE OP LIMIT
    awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
        ok = (op == ">=") ? (v >= l) : (op == "<=") ? (v <= l) : (v < l); print ok ? "PASS" : "MISS" }'
}

REPORT_FILE="${BENCH_REPORT:-$BENCH_DIR/report-scale$BENCH_SCALE.md}"
{
    echo "## docker-volume-backup benchmark"
    echo
    echo "Data: $(mib "$DS_BYTES") MiB in $DS_ENTRIES entries (generator $DS_VERSION, seed $SEED, scale $BENCH_SCALE)."
    echo "Docker Engine $ENGINE (API ${API#v}), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ); best of $BENCH_RUNS run(s), warm page cache."
    echo
    if [ "$BENCH_MIGRATE" = 1 ]; then
        mb_s() { awk -v b="$DS_BYTES" -v t="$1" 'BEGIN {printf "%.0f", b / 1e6 / t}'; }
        echo "Migrate over ssh on loopback (context \`$SSH_URL\` pointing back at this engine):"
        echo
        echo "| method | time (s) | MB/s of data | peak RSS (MiB) |"
        echo "| --- | ---: | ---: | ---: |"
        echo "| \`save -o - \\| ssh ... restore -\` (zstd -3 on the wire; checks the stream's checksum) | ${BEST_T[migrate_pipe]} | $(mb_s "${BEST_T[migrate_pipe]}") | $(kib2mib "${MAX_RSS[migrate_pipe]}") (largest process) |"
        echo "| \`migrate --to\` (plain tar on the wire; reads the copy back to verify it) | ${BEST_T[migrate]} | $(mb_s "${BEST_T[migrate]}") | $(kib2mib "${MAX_RSS[migrate]}") |"
        echo
        echo "migrate / pipe: $(ratio "${BEST_T[migrate]}" "${BEST_T[migrate_pipe]}")"
        echo
    fi
    if [ "$BENCH_MIGRATE_ONLY" = 1 ]; then
        [ "${#verified[@]}" -eq 0 ] || echo "Copies compared with the source: ${verified[*]}."
        exit 0
    fi
    echo "| method | save (s) | restore (s) | archive (MiB) | peak RSS save / restore (MiB) |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    echo "| (a) seed recipe: busybox \`tar czf\` / \`tar xzf\` in a container | ${BEST_T[seed_save]} | ${BEST_T[seed_restore]} | $(mib "${SIZE[seed]}") | n/a (in the container) |"
    echo "| (b) archive API: \`curl \| zstd -T0 -3\` / \`zstd -dc \| curl -T -\` | ${BEST_T[pipe_save]} | ${BEST_T[pipe_restore]} | $(mib "${SIZE[pipe]}") | $(kib2mib "${MAX_RSS[pipe_save]}") / $(kib2mib "${MAX_RSS[pipe_restore]}") (largest process) |"
    if [ "$BENCH_SKIP_TOOL" = 1 ]; then
        echo "| (c) docker-volume-backup | skipped | skipped | – | – |"
    else
        echo "| (c) docker-volume-backup | ${BEST_T[tool_save]} | ${BEST_T[tool_restore]} | $(mib "${SIZE[tool]}") | $(kib2mib "${MAX_RSS[tool_save]}") / $(kib2mib "${MAX_RSS[tool_restore]}") |"
    fi
    echo
    load_max="$(printf '%s\n' "${LOADS[@]}" | sort -g | tail -n1)"
    if [ "$load_max" -gt 10 ]; then
        echo "Warning: other processes kept up to ${load_max}% of the $(nproc) cores busy just before a timed"
        echo "step: these times are pessimistic and noisy; rerun on an idle machine."
        echo
    fi
    echo "| target | measured | goal | result |"
    echo "| --- | ---: | ---: | --- |"
    if [ "$BENCH_SKIP_TOOL" = 1 ]; then
        echo "| save speed-up, seed / pipe (for reference) | $(ratio "${BEST_T[seed_save]}" "${BEST_T[pipe_save]}")x | – | – |"
        echo "| restore speed-up, seed / pipe (for reference) | $(ratio "${BEST_T[seed_restore]}" "${BEST_T[pipe_restore]}")x | – | – |"
        echo "| tool targets | – | – | not measured (BENCH_SKIP_TOOL=1) |"
    else
        r1="$(ratio "${BEST_T[seed_save]}" "${BEST_T[tool_save]}")"
        r2="$(ratio "${BEST_T[tool_save]}" "${BEST_T[pipe_save]}")"
        r3="$(ratio "${BEST_T[tool_restore]}" "${BEST_T[pipe_restore]}")"
        r4="$(ratio "${BEST_T[seed_restore]}" "${BEST_T[tool_restore]}")"
        rss=$(( MAX_RSS[tool_save] > MAX_RSS[tool_restore] ? MAX_RSS[tool_save] : MAX_RSS[tool_restore] ))
        echo "| save speed-up, seed / tool | ${r1}x | >= 6x | $(verdict "$r1" ">=" 6) |"
        echo "| save, tool / pipe | $r2 | <= 1.15 | $(verdict "$r2" "<=" 1.15) |"
        echo "| restore, tool / pipe | $r3 | <= 1.15 | $(verdict "$r3" "<=" 1.15) |"
        echo "| tool peak RSS (max of save, restore) | $(kib2mib "$rss") MiB | < 64 MiB | $(verdict "$rss" "<" 65536) |"
        echo "| restore speed-up, seed / tool (for reference) | ${r4}x | – | – |"
    fi
    if [ "$BENCH_RESTIC" = 1 ]; then
        echo
        echo "restic repositories (e): the tool's \`save --to restic:REPO\` (rustic_core 0.13, format 2, compressed)"
        echo "against the raw read of the same volume, the tool's zstd archive and restic $(restic version | cut -d' ' -f2) reading the tar stream:"
        echo
        echo "| step | time (s) | peak RSS (MiB) | repository growth (MiB) |"
        echo "| --- | ---: | ---: | ---: |"
        echo "| engine's raw archive read (\`curl > /dev/null\`) | ${BEST_T[raw_read]} | $(kib2mib "${MAX_RSS[raw_read]}") | – |"
        echo "| tool, zstd archive (c) | ${BEST_T[tool_save]} | $(kib2mib "${MAX_RSS[tool_save]}") | $(mib "${SIZE[tool]}") (archive) |"
        echo "| tool, first save into restic | ${BEST_T[restic_first]} | $(kib2mib "${MAX_RSS[restic_first]}") | $(mib "${GROWTH[restic_first]}") |"
        echo "| tool, second save, unchanged | ${BEST_T[restic_second]} | $(kib2mib "${MAX_RSS[restic_second]}") | $(mib "${GROWTH[restic_second]}") |"
        echo "| tool, save after 1% of the files changed ($(mib "$CHANGED") MiB) | ${BEST_T[restic_changed]} | $(kib2mib "${MAX_RSS[restic_changed]}") | $(mib "${GROWTH[restic_changed]}") |"
        echo "| \`curl ... \| restic backup --stdin\` | ${BEST_T[restic_cli]} | $(kib2mib "${MAX_RSS[restic_cli]}") (largest process) | $(mib "${GROWTH[restic_cli]}") |"
        echo
        r5="$(ratio "${BEST_T[restic_second]}" "${BEST_T[raw_read]}")"
        g2="$(awk -v a="${GROWTH[restic_second]}" -v b="${GROWTH[restic_first]}" 'BEGIN {printf "%.2f", 100 * a / b}')"
        g3="$(awk -v a="${GROWTH[restic_changed]}" -v b="${GROWTH[restic_first]}" 'BEGIN {printf "%.2f", 100 * a / b}')"
        rrss=0
        for k in restic_first restic_second restic_changed; do [ "${MAX_RSS[$k]}" -le "$rrss" ] || rrss="${MAX_RSS[$k]}"; done
        echo "| restic target | measured | goal | result |"
        echo "| --- | ---: | ---: | --- |"
        echo "| unchanged second save / raw read | $r5 | <= 1.3 | $(verdict "$r5" "<=" 1.3) |"
        echo "| unchanged second save, growth | ${g2}% | < 2% | $(verdict "$g2" "<" 2) |"
        echo "| 1% changed, growth (for reference: about 1%) | ${g3}% | ~1% | – |"
        echo "| peak RSS of the restic saves | $(kib2mib "$rrss") MiB | < 256 MiB | $(verdict "$rrss" "<" 262144) |"
        echo "| \`restic check --read-data\` of the tool's repository | $RESTIC_CHECK | passed | – |"
    fi
    if [ "${#verified[@]}" -gt 0 ]; then
        echo
        echo "Restored volumes compared with the source (names, types, modes, owners, sizes, mtimes, links, contents): ${verified[*]}."
    fi
} | tee "$SCRATCH/report.md"
cp "$SCRATCH/report.md" "$REPORT_FILE"
log "report saved to $REPORT_FILE"
exit 0

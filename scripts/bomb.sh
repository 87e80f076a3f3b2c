#!/usr/bin/env bash
# Metadata bombs against the tool's memory bound: crafts a tiny zstd archive that expands to
# thousands of 1 MiB PAX records, runs inspect, verify, restore and backups on it under
# /usr/bin/time -v, and prints each one's exit code, peak RSS and first error line against the
# bound stated in the README. A benchmark, not a test: the exit status is 0 either way
# (tests/it/untrusted.rs checks the refusal and its exit code).
#
#   bomb    BOMB_RECORDS PAX headers of 1 MiB for one entry: refused (exit 6)
#   spread  BOMB_RECORDS/8 entries with one 1 MiB PAX record each: within the limits, read
#
# Usage: scripts/bomb.sh (or `make bomb`)
# Environment:
#   BOMB_TOOL     the binary to measure (default target/release/docker-volume-backup, built if missing)
#   BOMB_RECORDS  PAX headers in the bomb (default 4000: 4 GiB of metadata)
#   BOMB_BOUND_MB the bound to compare with (default 320, the README's)
set -euo pipefail
cd "$(dirname "$0")/.."

TOOL=${BOMB_TOOL:-target/release/docker-volume-backup}
RECORDS=${BOMB_RECORDS:-4000}
BOUND=${BOMB_BOUND_MB:-320}
if [ -z "${BOMB_TOOL:-}" ] && [ ! -x "$TOOL" ]; then
    cargo build --release
fi
for cmd in /usr/bin/time zstd python3 docker; do
    command -v "$cmd" >/dev/null || { echo "bomb: $cmd is missing (scripts/test-deps.sh)" >&2; exit 1; }
done

work=$(mktemp -d)
volume="dvb-bomb-$$"
cleanup() {
    docker volume rm -f "$volume" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

python3 scripts/crafted-archives.py bomb "$work/bomb.tar.zst" "$RECORDS"
python3 scripts/crafted-archives.py spread "$work/spread.tar.zst" $((RECORDS / 8))

# measure NAME ARGS...: one line with exit code, peak RSS (MiB) and the first error line.
measure() {
    local name=$1
    shift
    local code=0
    /usr/bin/time -v -o "$work/time" "$TOOL" "$@" >"$work/out" 2>"$work/err" || code=$?
    local rss_kb
    rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
    local rss_mb=$((rss_kb / 1024))
    local verdict=PASS
    [ "$rss_mb" -le "$BOUND" ] || verdict=MISS
    local why
    why=$( (grep -E 'caused by' "$work/err" || true) | tail -1 | sed 's/^ *caused by: //' | cut -c1-100)
    printf '%-22s exit %-3s peak RSS %5s MiB (bound %s MiB) %s  %s\n' \
        "$name" "$code" "$rss_mb" "$BOUND" "$verdict" "$why"
}

for kind in bomb spread; do
    file="$work/$kind.tar.zst"
    size=$(stat -c %s "$file")
    expanded=$(zstd -dc "$file" | wc -c)
    echo "$kind: $(basename "$file") $((size / 1024)) KiB, $((expanded >> 20)) MiB of tar"
    measure "inspect $kind" inspect "$file"
    measure "verify $kind" verify "$file"
    measure "restore $kind" restore "$file" "$volume"
    docker volume rm -f "$volume" >/dev/null 2>&1 || true
done
cp "$work/bomb.tar.zst" "$work/vol_20260101_000000.tar.zst"
measure "backups (bomb in dir)" backups "$work"
measure "prune --dry-run" prune "$work" --keep-last 1 --dry-run

#!/usr/bin/env bash
# Import a tiny local image made of Debian's static busybox, without any registry.
#
#   scripts/busybox-image.sh [NAME]      (default NAME: dvb-test-busybox:latest)
#
# The image holds /bin/busybox (from the host's busybox-static package) plus a symlink for every
# applet (sh, tar, gzip, gunzip, cat, ls, mkdir, rm, sleep, find, md5sum, ...), a minimal
# /etc/passwd and /etc/group, /tmp and /root. It is built with `docker import`, so nothing is
# pulled. Idempotent: when NAME already exists and was made from the same busybox binary, nothing
# is imported again. The image is labelled `dvb.busybox.sha256=<sha256 of /bin/busybox>` and
# `dvb.test-image=busybox` so that it can be recognised (and pruned) later.
#
# Environment: BUSYBOX (path of a static busybox, default /bin/busybox), QUIET=1 (less output).
set -euo pipefail

NAME="${1:-dvb-test-busybox:latest}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"
QUIET="${QUIET:-0}"

say() { [ "$QUIET" = 1 ] || printf 'busybox-image: %s\n' "$*" >&2; }
die() { printf 'busybox-image: error: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker CLI not found"
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found: install Debian's busybox-static (scripts/test-deps.sh does)"
# A dynamically linked busybox (Debian's 'busybox' package) cannot run in an empty image.
if command -v file >/dev/null 2>&1 && ! file -L "$BUSYBOX" | grep -q 'statically linked'; then
    die "$BUSYBOX is not statically linked: install busybox-static instead of busybox"
fi

want_sha="$(sha256sum "$BUSYBOX" | cut -d' ' -f1)"

check_runs() {
    docker run --rm --pull never --network none --log-driver none "$NAME" tar --help >/dev/null 2>&1
}

have_sha="$(docker image inspect --format '{{ index .Config.Labels "dvb.busybox.sha256" }}' "$NAME" 2>/dev/null || true)"
if [ "$have_sha" = "$want_sha" ] && check_runs; then
    say "$NAME is up to date (busybox sha256 ${want_sha:0:12})"
    printf '%s\n' "$NAME"
    exit 0
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/dvb-busybox.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
root="$tmp/rootfs"
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc" "$root/root" "$root/tmp"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cp "$BUSYBOX" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"

# One symlink per applet, at the path busybox itself suggests (bin/sh, bin/tar, usr/bin/env, ...).
n=0
while IFS= read -r applet; do
    [ -n "$applet" ] || continue
    [ "$applet" = "bin/busybox" ] && continue
    dir="$(dirname "$applet")"
    mkdir -p "$root/$dir"
    ln -sf /bin/busybox "$root/$applet"
    n=$((n + 1))
done < <("$BUSYBOX" --list-full)
# Make sure the few the tests rely on exist whatever the busybox build lists.
for a in sh tar gzip gunzip zcat cat ls mkdir rm sleep cp mv ln chmod chown find md5sum sha256sum \
    stat du wc sort xargs head tail echo true false touch mknod mkfifo id env test; do
    if [ ! -e "$root/bin/$a" ] && [ ! -e "$root/usr/bin/$a" ] && [ ! -e "$root/sbin/$a" ]; then
        ln -s /bin/busybox "$root/bin/$a"
        n=$((n + 1))
    fi
done

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF

tar -C "$root" --owner=0 --group=0 --numeric-owner --sort=name -cf "$tmp/rootfs.tar" .

say "importing $NAME ($n applet links, busybox sha256 ${want_sha:0:12})"
docker import \
    --change "LABEL dvb.test-image=busybox" \
    --change "LABEL dvb.busybox.sha256=$want_sha" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/sh"]' \
    "$tmp/rootfs.tar" "$NAME" >/dev/null

check_runs || die "imported $NAME but 'docker run --rm --network none $NAME tar --help' failed"
say "$NAME ready"
printf '%s\n' "$NAME"

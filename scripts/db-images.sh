#!/usr/bin/env bash
# Import local PostgreSQL and MariaDB server images for the db-dump/db-restore tests, without any
# registry: the containers run the host's /usr read-only in a near-empty imported image.
#
#   scripts/db-images.sh postgres|mariadb     prints the image name
#
# The image is a near-empty root file system: passwd/group entries, /tmp, /run, a data directory
# and an entrypoint script. The servers and their tools come from the HOST's Debian packages
# (postgresql, mariadb-server; scripts/test-deps.sh installs them): containers run with the host's
# /usr bind-mounted read-only (`docker run -v /usr:/usr:ro ...`), and the root's bin, sbin, lib
# and lib64 are links into /usr as on a merged-/usr Debian. The entrypoint initialises a server
# from the same variables as the official images (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB;
# MARIADB_ROOT_PASSWORD, MARIADB_DATABASE), with password authentication for every connection
# (so a wrong password fails), then drops privileges with setpriv and runs the server without
# networking: the tests talk to it through `docker exec`.
#
# Idempotent: the image is labelled with a hash of what went into it (this script and the server
# version) and imported again only when that changes. Environment: QUIET=1 (less output).
set -euo pipefail

KIND="${1:?usage: db-images.sh postgres|mariadb}"
QUIET="${QUIET:-0}"
say() { [ "$QUIET" = 1 ] || printf 'db-images: %s\n' "$*" >&2; }
die() { printf 'db-images: error: %s\n' "$*" >&2; exit 1; }

case "$KIND" in
postgres)
    pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
    [ -x "$pg_bin/postgres" ] || die "no PostgreSQL server on the host: install Debian's postgresql (scripts/test-deps.sh)"
    major="$(basename "$(dirname "$pg_bin")")"
    version="$("$pg_bin/postgres" --version)"
    NAME="dvb-test-postgres:$major"
    ;;
mariadb)
    command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] ||
        die "no MariaDB server on the host: install Debian's mariadb-server (scripts/test-deps.sh)"
    version="$(/usr/sbin/mariadbd --version)"
    NAME="dvb-test-mariadb:latest"
    ;;
*) die "unknown image kind $KIND (postgres or mariadb)" ;;
esac

want="$( (cat "$0"; echo "$version") | sha256sum | cut -d' ' -f1)"
have="$(docker image inspect --format '{{ index .Config.Labels "dvb.db-image.sha256" }}' "$NAME" 2>/dev/null || true)"
if [ "$have" = "$want" ]; then
    say "$NAME is up to date"
    printf '%s\n' "$NAME"
    exit 0
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/dvb-db-image.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
root="$tmp/rootfs"
mkdir -p "$root"/{usr,etc,tmp,run,var,root,dev,proc,sys}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
ln -s ../run "$root/var/run"
ln -s ../tmp "$root/var/tmp"

# Official images run the server as uid/gid 999.
case "$KIND" in
postgres)
    cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
    cat >"$root/etc/group" <<'EOF'
root:x:0:
postgres:x:999:
nogroup:x:65534:
EOF
    mkdir -p "$root/var/lib/postgresql/data" "$root/run/postgresql"
    chown -R 999:999 "$root/var/lib/postgresql" "$root/run/postgresql"
    chmod 0700 "$root/var/lib/postgresql/data"
    chmod 2775 "$root/run/postgresql"
    cat >"$root/dvb-entrypoint.sh" <<'EOF'
#!/bin/sh
# Initialise a PostgreSQL cluster from the official image's variables, then run it.
set -eu
: "${POSTGRES_USER:=postgres}"
# Docker secrets, as the official entrypoint reads them.
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"; fi
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required}"
PGDATA=/var/lib/postgresql/data
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    chown postgres "$pwfile"
    # scram for local sockets too: a wrong password must fail, as it does over TCP.
    as_pg initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    rm -f "$pwfile"
    if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != postgres ]; then
        echo "CREATE DATABASE \"$POSTGRES_DB\";" |
            as_pg postgres --single -D "$PGDATA" -c fsync=off postgres >/dev/null
    fi
fi
# Durability is not what these tests are about: trade it for speed.
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" \
    -c listen_addresses= -c unix_socket_directories=/run/postgresql \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=2GB \
    -c wal_level=minimal -c max_wal_senders=0
EOF
    changes=(
        --change "ENV PATH=$pg_bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        --change "ENV PG_MAJOR=$major"
        --change "ENV PGDATA=/var/lib/postgresql/data"
        --change "LABEL dvb.test-image=postgres"
    )
    ;;
mariadb)
    cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
mysql:x:999:999:MySQL Server:/var/lib/mysql:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
    cat >"$root/etc/group" <<'EOF'
root:x:0:
mysql:x:999:
nogroup:x:65534:
EOF
    mkdir -p "$root/var/lib/mysql" "$root/run/mysqld" "$root/etc/mysql"
    chown -R 999:999 "$root/var/lib/mysql" "$root/run/mysqld"
    # Clients and server read this; the host's /etc/mysql is not part of the image.
    cat >"$root/etc/mysql/my.cnf" <<'EOF'
[client-server]
socket = /run/mysqld/mysqld.sock
EOF
    cat >"$root/dvb-entrypoint.sh" <<'EOF'
#!/bin/sh
# Initialise a MariaDB server from the official image's variables, then run it.
set -eu
if [ -n "${MARIADB_ROOT_PASSWORD_FILE:-}" ]; then MARIADB_ROOT_PASSWORD="$(cat "$MARIADB_ROOT_PASSWORD_FILE")"; fi
root_pw="${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}"
[ -n "$root_pw" ] || { echo "MARIADB_ROOT_PASSWORD is required" >&2; exit 1; }
db="${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}"
datadir=/var/lib/mysql
opts="--datadir=$datadir --socket=/run/mysqld/mysqld.sock --skip-networking --skip-name-resolve
      --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=256M --innodb-log-file-size=256M
      --skip-log-bin --max-allowed-packet=256M"
as_mysql() { setpriv --reuid=mysql --regid=mysql --init-groups "$@"; }
if [ ! -d "$datadir/mysql" ]; then
    # `normal` root authentication: a password, no unix_socket shortcut, so a wrong one fails.
    as_mysql mariadb-install-db --no-defaults $opts --auth-root-authentication-method=normal \
        --skip-test-db --cross-bootstrap >/dev/null
    pw="$(printf '%s' "$root_pw" | sed "s/'/''/g")"
    {
        echo "FLUSH PRIVILEGES;"
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$pw';"
        [ -z "$db" ] || echo "CREATE DATABASE IF NOT EXISTS \`$db\`;"
    } | as_mysql mariadbd --no-defaults $opts --bootstrap >/dev/null 2>&1
fi
exec setpriv --reuid=mysql --regid=mysql --init-groups mariadbd --no-defaults $opts
EOF
    changes=(
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        --change "ENV MARIADB_VERSION=$(echo "$version" | sed -n 's/.*Ver \([^ ]*\).*/\1/p')"
        --change "LABEL dvb.test-image=mariadb"
    )
    ;;
esac
chmod 0755 "$root/dvb-entrypoint.sh"

tar -C "$root" --numeric-owner --sort=name -cf "$tmp/rootfs.tar" .
say "importing $NAME ($version)"
docker import "${changes[@]}" \
    --change "LABEL dvb.db-image.sha256=$want" \
    --change 'CMD ["/dvb-entrypoint.sh"]' \
    "$tmp/rootfs.tar" "$NAME" >/dev/null
say "$NAME ready"
printf '%s\n' "$NAME"

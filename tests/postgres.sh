#!/usr/bin/env bash
# Run a command against a private, throw-away PostgreSQL server:
#   bash tests/postgres.sh run <command...>
# Starts a server from this machine's PostgreSQL binaries (Debian's postgresql package;
# .ci/run installs it) in a temporary folder on a free port, sets DATABASE_URL for the
# command, and removes the server afterwards. Without PostgreSQL installed it says so
# and exits 0: the SQLite run of the suite still ran.
set -euo pipefail

[[ "${1:-}" == "run" ]] || { echo "usage: $0 run <command...>" >&2; exit 2; }
shift

bindir=""
for candidate in /usr/lib/postgresql/*/bin; do
    [[ -x "$candidate/initdb" ]] && bindir="$candidate"
done
if [[ -z "$bindir" ]]; then
    echo "PostgreSQL is not installed (apt-get install postgresql): the PostgreSQL run of the tests is skipped."
    exit 0
fi

base=$(mktemp -d /tmp/portal-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_owner=()
if [[ $(id -u) -eq 0 ]]; then  # the server refuses to run as root
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$base" postgres
    chown postgres "$base"
    as_owner=(runuser -u postgres --)
fi
stop() {
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$base/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$base"
}
trap stop EXIT

"${as_owner[@]}" "$bindir/initdb" -D "$base/data" -U portal --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
# Tests open several processes with a few connections each; fsync off: nothing here must survive a crash.
"${as_owner[@]}" "$bindir/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 60 \
    -o "-p $port -k $base -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
"$bindir/createdb" -h 127.0.0.1 -p "$port" -U portal portal

echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on port $port for: $*"
DATABASE_URL="postgres://portal@127.0.0.1:$port/portal" "$@"

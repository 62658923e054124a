#!/usr/bin/env bash
# make test's pytest part: the whole suite on SQLite (the browser tests in tests/browser
# included: they need no database of their own) and the tests marked `postgres` on a
# private PostgreSQL server (tests/postgres.sh), side by side. The two runs share no
# database or port; the machine's two cores suit them: the SQLite run is mostly CPU (the
# property test), the PostgreSQL run mostly waits on worker processes and fault windows.
# The PostgreSQL run's output follows the SQLite run's; the exit code is the worse of both.
set -uo pipefail
python=$1
log=$(mktemp /tmp/portal-pg-tests.XXXXXX.log)
bash tests/postgres.sh run "$python" -m pytest -m postgres -p no:cacheprovider >"$log" 2>&1 &
postgres_run=$!
"$python" -m pytest
sqlite_status=$?
wait "$postgres_run"
postgres_status=$?
echo "== tests on PostgreSQL (tests marked postgres)"
cat "$log"
rm -f "$log"
echo "SQLite run: exit $sqlite_status; PostgreSQL run: exit $postgres_status"
exit $(( sqlite_status > postgres_status ? sqlite_status : postgres_status ))

#!/usr/bin/env bash
# Start what the whole suite needs on 127.0.0.1, on a machine where the packages are installed
# (Debian: postgresql redis-server openssh-server chromium): PostgreSQL with a relayhub role and
# database, Redis on 6379, and /run/sshd for the tests' own sshd. Used by .ci/run and `make test-all`.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -E "$@"; fi; }
missing() { echo "make test-all: $1 is not installed (Debian: apt-get install $2)" >&2; exit 1; }

command -v pg_ctlcluster >/dev/null || missing PostgreSQL postgresql
command -v redis-server >/dev/null || missing Redis redis-server
test -x /usr/sbin/sshd || missing OpenSSH openssh-server

echo "--- postgres"
PG_VERSION=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$PG_VERSION main"; then
    as_root pg_createcluster "$PG_VERSION" main
fi
as_root pg_ctlcluster "$PG_VERSION" main start || true
for _ in $(seq 30); do pg_isready -h 127.0.0.1 -q && break; sleep 1; done
pg_isready -h 127.0.0.1
as_root su postgres -c "psql -v ON_ERROR_STOP=1 -q" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'relayhub') THEN
    CREATE ROLE relayhub LOGIN PASSWORD 'relayhub' CREATEDB;
  END IF;
END $$;
SQL
as_root su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='relayhub'\"" | grep -q 1 \
    || as_root su postgres -c "createdb -O relayhub relayhub"

echo "--- redis"
redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --bind 127.0.0.1 --port 6379 --daemonize yes
for _ in $(seq 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done
redis-cli -h 127.0.0.1 ping

echo "--- sshd (tests start their own on loopback ports; this checks the binary)"
as_root mkdir -p /run/sshd

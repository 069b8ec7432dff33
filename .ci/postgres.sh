#!/usr/bin/env bash
# Install, start and prepare a local PostgreSQL server for the registry tests (Debian/Ubuntu).
#
#   eval "$(.ci/postgres.sh)"      # then: python -m pytest  (reads HEATMAPLOSS_TEST_POSTGRES_URL)
#   eval "$(.ci/postgres.sh --restartable)"   # a second cluster that tests may stop and start
#
# Installs the distribution's `postgresql` package with apt-get when no server is installed,
# creates (if missing) and starts a cluster listening on localhost, creates a login role and a
# database it owns, checks that a password login over TCP works, and prints one line on stdout:
#   export HEATMAPLOSS_TEST_POSTGRES_URL=postgresql+psycopg2://USER:PASSWORD@localhost:PORT/DB
# Everything else goes to stderr. Safe to re-run: it reuses the cluster, role and database.
# Runs as root (CI containers) or as a user with password-less sudo.
#
# With --restartable it prepares a cluster of its own (default heatmaploss_restart on port 5433)
# that the server-restart test stops and starts while a search writes (restarting the shared
# cluster would break other tests that use it at the same time), and prints two lines:
#   export HEATMAPLOSS_TEST_POSTGRES_RESTART_URL=postgresql+psycopg2://...
#   export HEATMAPLOSS_TEST_POSTGRES_CTL='pg_ctlcluster VERSION CLUSTER'   (+ stop|start)
#
# Settings (environment variables):
#   PG_CLUSTER (main; heatmaploss_restart with --restartable)
#   PG_PORT (5432; 5433 with --restartable; used when the cluster is created)
#   PG_USER (heatmaploss)  PG_PASSWORD (heatmaploss)  PG_DATABASE (heatmaploss_test)
set -euo pipefail

restartable=0
if [ "${1:-}" = --restartable ]; then restartable=1; fi
if [ "$restartable" = 1 ]; then
    cluster=${PG_CLUSTER:-heatmaploss_restart}
    port=${PG_PORT:-5433}
else
    cluster=${PG_CLUSTER:-main}
    port=${PG_PORT:-5432}
fi
user=${PG_USER:-heatmaploss}
password=${PG_PASSWORD:-heatmaploss}
database=${PG_DATABASE:-heatmaploss_test}

say() { echo "postgres.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else die "run as root or with password-less sudo (needed for: $*)"; fi
}
as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"
    else sudo -n -u postgres "$@"; fi
}

for name in "$cluster" "$user" "$database"; do
    [[ "$name" =~ ^[a-z_][a-z0-9_]*$ ]] || die "name '$name' must match [a-z_][a-z0-9_]*"
done
[[ "$port" =~ ^[0-9]+$ ]] || die "PG_PORT='$port' must be a port number"
[[ "$password" != *"'"* && "$password" != *"@"* && "$password" != *"/"* ]] \
    || die "PG_PASSWORD must not contain ', @ or /"

# 1. Install the server (the Debian package also creates and may start cluster "main").
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 \
        || die "apt-get not found: install PostgreSQL yourself and export HEATMAPLOSS_TEST_POSTGRES_URL"
    say "installing PostgreSQL with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)

# 2. Create the cluster if missing, then start it.
cluster_field() {  # $1: column of pg_lsclusters (3 port, 4 status)
    pg_lsclusters -h | awk -v v="$version" -v c="$cluster" -v f="$1" '$1 == v && $2 == c {print $f}'
}
if [ -z "$(cluster_field 3)" ]; then
    say "creating cluster $version/$cluster on port $port"
    as_root pg_createcluster "$version" "$cluster" --port "$port" >&2
fi
port=$(cluster_field 3)
if [ "$(cluster_field 4)" != online ]; then
    say "starting cluster $version/$cluster on port $port"
    as_root pg_ctlcluster "$version" "$cluster" start >&2 \
        || die "cluster did not start; see /var/log/postgresql/postgresql-$version-$cluster.log"
fi
for _ in $(seq 1 60); do
    pg_isready -q -h localhost -p "$port" && break
    sleep 0.5
done
pg_isready -q -h localhost -p "$port" \
    || die "no server answers on localhost:$port; see /var/log/postgresql/postgresql-$version-$cluster.log"

# 3. Login role and database (idempotent; the password is reset to PG_PASSWORD).
psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres "$@" >&2; }
psql_admin -c "DO \$\$ BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN
        ALTER ROLE $user LOGIN PASSWORD '$password';
    ELSE
        CREATE ROLE $user LOGIN PASSWORD '$password';
    END IF;
END \$\$;"
if [ "$(as_postgres psql -X -tA -p "$port" -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = '$database'")" != 1 ]; then
    say "creating database $database owned by $user"
    psql_admin -c "CREATE DATABASE $database OWNER $user"
fi

# 4. Check the URL the tests will use: password login over TCP.
PGPASSWORD=$password psql -X -q -h localhost -p "$port" -U "$user" -d "$database" \
    -c "SELECT 1" >/dev/null \
    || die "password login as $user on localhost:$port failed (check pg_hba.conf)"
say "PostgreSQL $version ready on localhost:$port (database $database, user $user)"
url="postgresql+psycopg2://$user:$password@localhost:$port/$database"
if [ "$restartable" = 1 ]; then
    ctl="pg_ctlcluster $version $cluster"
    [ "$(id -u)" = 0 ] || ctl="sudo -n $ctl"
    echo "export HEATMAPLOSS_TEST_POSTGRES_RESTART_URL=$url"
    echo "export HEATMAPLOSS_TEST_POSTGRES_CTL='$ctl'"
else
    echo "export HEATMAPLOSS_TEST_POSTGRES_URL=$url"
fi

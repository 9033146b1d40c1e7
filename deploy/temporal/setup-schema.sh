#!/bin/sh
# Creates or upgrades Temporal's two PostgreSQL databases with the schema
# tool shipped in the temporalio/admin-tools image. Safe to run on every
# start: "create" tolerates an existing database and update-schema only
# applies versions that are missing.
set -eu

: "${POSTGRES_SEEDS:=postgresql}"
: "${DB_PORT:=5432}"
: "${POSTGRES_USER:=temporal}"
SQL_PASSWORD="$(cat /run/secrets/temporal_db_password)"
export SQL_PASSWORD

schema=/etc/temporal/schema/postgresql/v12
tool() {
	temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

until nc -z "$POSTGRES_SEEDS" "$DB_PORT"; do
	echo "waiting for PostgreSQL at $POSTGRES_SEEDS:$DB_PORT"
	sleep 2
done

for db in temporal temporal_visibility; do
	dir=temporal
	[ "$db" = temporal_visibility ] && dir=visibility
	tool --db "$db" create || true
	tool --db "$db" setup-schema -v 0.0 || true
	tool --db "$db" update-schema -d "$schema/$dir/versioned"
done
echo "Temporal schema is up to date"

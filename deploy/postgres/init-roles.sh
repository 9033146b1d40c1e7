#!/bin/sh
# Runs once, when the PostgreSQL data volume is first initialised (the
# official image runs /docker-entrypoint-initdb.d/*.sh). It creates one
# role for Temporal (which creates its own two databases) and one role and
# database for webcaresync's store, with passwords from the secret files.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
	--set tp="$(cat /run/secrets/temporal_db_password)" \
	--set wp="$(cat /run/secrets/webcaresync_db_password)" <<'SQL'
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'tp';
CREATE ROLE webcaresync LOGIN PASSWORD :'wp';
CREATE DATABASE webcaresync OWNER webcaresync;
SQL

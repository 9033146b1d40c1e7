#!/bin/sh
# Writes random secrets for a local run of deploy/compose.yaml into this
# folder (git ignores everything here but this script and README.md).
# Existing files are kept, so running it twice changes nothing. For a real
# deployment, put your own values in these files or in your secret store.
set -eu
cd "$(dirname "$0")"
umask 077

rand() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
put() { [ -s "$1" ] || printf '%s\n' "$2" >"$1"; }

put postgres_password "$(rand 24)"
put temporal_db_password "$(rand 24)"
put webcaresync_db_password "$(rand 24)"
# PGPASSFILE for webcaresync (host:port:database:user:password); pgx reads
# it so that WEBCARESYNC_DATABASE_URL carries no password.
put webcaresync_pgpass "postgresql:5432:webcaresync:webcaresync:$(cat webcaresync_db_password)"
put meta_app_secret "$(rand 32)"
put meta_verify_token "$(rand 16)"
put x_consumer_secret "$(rand 32)"
put generic_secret "$(rand 32)"
# Master keys: one "<id> <32-byte hex key>" per line (internal/privacy).
put master_key "mk1 $(rand 32)"
put pepper "$(rand 32)"
# The Salesforce connected app's secret: replace with the real one.
put salesforce_client_secret "replace-me"
echo "secrets are in $(pwd)"

#!/usr/bin/env bash
# Validates deploy/ without a container engine and without network access
# beyond the Go module proxy:
#   - every Kubernetes manifest in k8s/ is decoded strictly into the typed
#     k8s.io/api objects (unknown or misspelt fields, wrong types, duplicate
#     keys and unknown kinds fail) and checked for probes, limits, non-root,
#     namespaces and consistent selectors, ports and references;
#   - compose.yaml is loaded and schema-validated by compose-go (the loader
#     Docker Compose uses) and checked for the production split;
#   - the Dockerfile is checked for a multi-stage build and a non-root user;
#   - the shell scripts are syntax-checked.
# The checker is the nested Go module deploy/validate (its own go.mod, so the
# product's `go test ./...` does not include it). A cold module cache is
# filled from the Go module proxy on first run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

for script in "$here"/temporal/*.sh "$here"/postgres/*.sh "$here"/secrets/generate.sh; do
	sh -n "$script"
done

cd "$here/validate"
GOWORK=off GOFLAGS=-mod=readonly go test -count=1 "$@" ./...

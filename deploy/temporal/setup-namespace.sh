#!/bin/sh
# Creates webcaresync's namespace and the custom search attributes its
# workflows set, on an external cluster (the embedded server does this by
# itself). Both commands are repeated harmlessly on every start.
set -eu

: "${TEMPORAL_ADDRESS:=temporal:7233}"
: "${NAMESPACE:=default}"

until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
	echo "waiting for Temporal at $TEMPORAL_ADDRESS"
	sleep 2
done

temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1 ||
	temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" --retention 30d

# Keep in step with internal/app (searchAttributes): the values are fixed
# words, never personal data.
temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" \
	--name WebcaresyncKind --type Keyword \
	--name WebcaresyncFlags --type KeywordList || true
echo "namespace $NAMESPACE is ready"

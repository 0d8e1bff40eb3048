#!/bin/sh
# Fails when the committed generated code differs from what scripts/protogen.sh
# produces now. Without protoc it says what to install; under CI=true that is
# a failure, not a skip.
set -eu
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null; then
  if [ "${CI:-}" = "true" ]; then
    echo "proto:check: protoc is missing in CI (.ci/run installs protobuf-compiler)" >&2
    exit 1
  fi
  echo "proto:check: SKIPPED: protoc not found; apt-get install protobuf-compiler" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
find messages -name '*.pb.go' | sort | while read -r f; do cp "$f" "$tmp/$(echo "$f" | tr / _)"; done
./scripts/protogen.sh
status=0
for f in $(find messages -name '*.pb.go' | sort); do
  if ! cmp -s "$f" "$tmp/$(echo "$f" | tr / _)"; then
    echo "proto:check: $f is stale: run 'task proto' and commit" >&2
    status=1
  fi
done
n_old=$(ls "$tmp" | wc -l); n_new=$(find messages -name '*.pb.go' | wc -l)
if [ "$n_old" != "$n_new" ]; then echo "proto:check: generated files added or removed: run 'task proto' and commit" >&2; status=1; fi
[ $status = 0 ] && echo "proto:check: generated code is fresh"
exit $status

#!/bin/sh
# Fail when a tracked Go file is not gofmt-formatted, listing the offenders.
set -eu
cd "$(dirname "$0")/.."
bad=$(git ls-files '*.go' | xargs gofmt -l)
if [ -n "$bad" ]; then
  echo "$bad"
  echo "gofmt: the files above need formatting (gofmt -w)" >&2
  exit 1
fi

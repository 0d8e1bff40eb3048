#!/bin/sh
# Regenerates the Go code of every .proto under messages/.
# protoc comes from Debian's protobuf-compiler; protoc-gen-go is pinned in
# tools/go.mod and built here, so the output depends on nothing else.
set -eu
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
bin="$PWD/.bin"
mkdir -p "$bin"
GOBIN="$bin" go install -modfile=tools/go.mod google.golang.org/protobuf/cmd/protoc-gen-go
# The virtual path "berth" keeps registered proto file names unique
# (berth/types/v1/types.proto), so they never clash in protoregistry.
files=$(cd messages && find . -name '*.proto' | sed 's|^\./|berth/|' | sort)
PATH="$bin:$PATH" protoc -Iberth=messages \
  --go_out=. --go_opt=module=github.com/berthrt/berth \
  $files

#!/usr/bin/env bash
# Builds k6 from source with the Go toolchain into .local/bin/k6 (gitignored), once.
# k6 is neither on npm (the `k6` package there is a typings dummy) nor in Debian, and no
# prebuilt binary can be downloaded here; the Go module proxy has its source. Needs Go 1.25+,
# no cgo; takes a few minutes on 2 cores the first time.
#
#   bash k6/build.sh          # or: npm run k6:build
set -euo pipefail

VERSION=v1.8.1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/.local/bin

if [[ -x $BIN/k6 ]] && "$BIN/k6" version 2>/dev/null | grep -q "^k6 $VERSION "; then
  echo "k6 $VERSION already built: $BIN/k6"
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "k6/build.sh: Go 1.25 or newer is needed (go.k6.io/k6 $VERSION requires it)" >&2
  exit 1
fi
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [[ ! $go_minor =~ ^[0-9]+$ ]] || ((go_minor < 25)); then
  echo "k6/build.sh: Go 1.25 or newer is needed, found $(go env GOVERSION)" >&2
  exit 1
fi

mkdir -p "$BIN"
echo "building k6 $VERSION into $BIN (a few minutes) ..."
t0=$(date +%s)
# The module proxy's go.mod for k6 asks for its own toolchain version; GOTOOLCHAIN=local
# keeps the installed one rather than trying to download another.
CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$BIN" go install -trimpath -ldflags='-s -w' "go.k6.io/k6@$VERSION"
echo "built in $(($(date +%s) - t0)) s: $("$BIN/k6" version)"

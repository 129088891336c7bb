#!/bin/sh
# Prefetches and builds what the Go and Rust conformance tests need (Go modules, crates, the
# generated clients and the runners), so that tests/conformance_go_rust_test.ts, codegen/go_test.ts
# and codegen/rust_test.ts only compile their own code. Idempotent: a second run takes seconds.
# Skips a language whose toolchain is missing. Cargo builds go to the shared target directory
# ${XDG_CACHE_HOME:-~/.cache}/cell/cargo-target (or $CARGO_TARGET_DIR); Go uses its own caches.
#
#   sh tests/conformance/setup_go_rust.sh        # DENO="npx -y deno@2.9.6" when deno is not on PATH
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cell/cargo-target}"
deno=${DENO:-deno}
command -v deno >/dev/null || deno=${DENO:-npx -y deno@2.9.6}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$root"
$deno run -A tests/conformance/_generate_go_rust.ts "$out"
if command -v go >/dev/null; then
  echo "setup_go_rust: go modules and build"
  (cd "$out/go" && go mod download && go build -o /dev/null . && go vet ./...)
else
  echo "setup_go_rust: no go on PATH, skipping Go"
fi
if command -v cargo >/dev/null; then
  echo "setup_go_rust: crates and build in $CARGO_TARGET_DIR"
  (cd "$out/rust" && cargo build --quiet && cd client && cargo clippy --quiet)
else
  echo "setup_go_rust: no cargo on PATH, skipping Rust"
fi

#!/usr/bin/env bash
# Build flowctl from this checkout and install the binary to $PREFIX/bin
# (default ~/.local/bin).
set -euo pipefail
cd "$(dirname "$0")"
PREFIX=${PREFIX:-$HOME/.local}
cargo build --release --locked
install -d "$PREFIX/bin"
install -m 0755 target/release/flowctl "$PREFIX/bin/flowctl"
echo "installed $PREFIX/bin/flowctl ($("$PREFIX/bin/flowctl" --version))" >&2
case ":$PATH:" in
  *":$PREFIX/bin:"*) ;;
  *) echo "note: $PREFIX/bin is not on your PATH; add it, or call $PREFIX/bin/flowctl" >&2 ;;
esac

#!/usr/bin/env bash
# Build flowctl (the static release binary) and install it as $PREFIX/bin/flowctl.
# PREFIX defaults to /usr/local when /usr/local/bin is writable (it is on every
# PATH), else to ~/.local. FLOWCTL_BIN=PATH installs an already built binary.
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${PREFIX:-}" ]; then
  if [ -w /usr/local/bin ]; then PREFIX=/usr/local; else PREFIX=$HOME/.local; fi
fi
if [ -n "${FLOWCTL_BIN:-}" ]; then
  bin=$FLOWCTL_BIN
else
  scripts/build-release.sh
  bin=target/release/flowctl
fi
install -d "$PREFIX/bin"
install -m 0755 "$bin" "$PREFIX/bin/flowctl"
echo "installed $PREFIX/bin/flowctl ($("$PREFIX/bin/flowctl" --version))" >&2
case ":$PATH:" in
  *":$PREFIX/bin:"*) ;;
  *)
    echo "$PREFIX/bin is not on your PATH yet. Run this line (it also adds it for new shells):" >&2
    echo "  export PATH=\"$PREFIX/bin:\$PATH\"; echo 'export PATH=\"$PREFIX/bin:\$PATH\"' >> ~/.profile" >&2
    ;;
esac

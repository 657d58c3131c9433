#!/usr/bin/env bash
# Install flowctl as $PREFIX/bin/flowctl. PREFIX defaults to /usr/local when
# /usr/local/bin is writable (it is on every PATH), else to ~/.local.
#   ./install.sh flowctl-VERSION-x86_64-linux.tar.gz
#       installs the release artifact, after checking it against the .sha256
#       file beside it (no Rust needed)
#   ./install.sh (inside an unpacked release artifact)
#       installs the flowctl binary beside this script
#   ./install.sh (in a source checkout)
#       builds the static release binary (scripts/build-release.sh) first
# FLOWCTL_BIN=PATH installs an already built binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${PREFIX:-}" ]; then
  if [ -w /usr/local/bin ]; then PREFIX=/usr/local; else PREFIX=$HOME/.local; fi
fi
die() { echo "error: $*" >&2; exit 2; }

tmp=
trap '[ -z "$tmp" ] || rm -rf "$tmp"' EXIT
if [ $# -gt 0 ]; then
  [ $# -eq 1 ] || die "usage: install.sh [flowctl-VERSION-x86_64-linux.tar.gz]"
  artifact=$1
  [ -f "$artifact" ] || die "no such file: $artifact"
  sums=$artifact.sha256
  [ -f "$sums" ] || die "no checksum file $sums beside the artifact; download it too (it is published with the artifact)"
  expected=$(cut -d' ' -f1 "$sums")
  actual=$(sha256sum "$artifact" | cut -d' ' -f1)
  if [ "$expected" != "$actual" ]; then
    die "checksum mismatch for $artifact: expected $expected (from $sums), got $actual; the download is incomplete or altered, nothing was installed"
  fi
  echo "checksum ok ($actual)" >&2
  tmp=$(mktemp -d)
  tar -xzf "$artifact" -C "$tmp"
  bin=$(find "$tmp" -mindepth 2 -maxdepth 2 -name flowctl -type f | head -n 1)
  [ -n "$bin" ] || die "$artifact holds no flowctl binary"
elif [ -n "${FLOWCTL_BIN:-}" ]; then
  bin=$FLOWCTL_BIN
elif [ -x "$here/flowctl" ] && [ ! -f "$here/Cargo.toml" ]; then
  bin=$here/flowctl
else
  "$here/scripts/build-release.sh"
  bin=$here/target/release/flowctl
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

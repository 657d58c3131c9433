#!/usr/bin/env bash
# Build the release artifacts in target/dist/ (OUT=DIR chooses another folder):
#   flowctl-VERSION-x86_64-linux.tar.gz  the static binary, README.md, LICENSE, docs/, install.sh
#   flowctl_VERSION_amd64.deb            /usr/bin/flowctl, a hardened systemd unit, /etc/flowctl/flowctl.env
#   each with a .sha256 beside it (`sha256sum -c` format).
# The binary is scripts/build-release.sh's target/release/flowctl (cargo rebuilds
# only what changed, so after build-release.sh this compiles nothing);
# FLOWCTL_BIN=PATH packages an already built binary instead.
# The .deb is staged and built with plain dpkg-deb (no cargo-deb to compile).
# Arguments: `tar` or `deb` builds only that one; `--fast` compresses lightly
# (the tests package a large debug binary).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${OUT:-target/dist}
want_tar=1 want_deb=1 gz=-9 debz=(-Zxz)
if [ "${1:-}" = --fast ]; then gz=-1 debz=(-Zgzip -z1); shift; fi
case "${1:-}" in
  tar) want_deb= ;;
  deb) want_tar= ;;
  "") ;;
  *) echo "usage: scripts/package.sh [--fast] [tar|deb]" >&2; exit 2 ;;
esac

if [ -n "${FLOWCTL_BIN:-}" ]; then
  bin=$FLOWCTL_BIN
else
  scripts/build-release.sh
  bin=target/release/flowctl
fi
version=$("$bin" --version | awk '{print $2}')
case "$version" in
  [0-9]*) ;;
  *) echo "error: cannot read the version from '$bin --version'" >&2; exit 1 ;;
esac

install -d "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# Files are owned by root and dated by the last commit, so two builds of one
# commit give the same archive.
epoch=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
checksum() { (cd "$out" && sha256sum "$1" >"$1.sha256"); }

name=flowctl-$version-x86_64-linux
built=()

# The tarball: what a user without Rust downloads (install.sh inside installs it).
build_tar() {
  tree=$stage/$name
  install -d "$tree/docs"
  install -m 0755 "$bin" "$tree/flowctl"
  install -m 0755 install.sh "$tree/install.sh"
  install -m 0644 README.md LICENSE "$tree/"
  install -m 0644 docs/*.md "$tree/docs/"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    -C "$stage" -cf - "$name" | gzip -n "$gz" >"$out/$name.tar.gz"
  checksum "$name.tar.gz"
  built+=("$name.tar.gz")
}

# The .deb: the binary, the unit, the default settings and the docs.
build_deb() {
  deb=$stage/deb
  install -d "$deb/DEBIAN" "$deb/usr/bin" "$deb/usr/lib/systemd/system" \
    "$deb/etc/flowctl" "$deb/usr/share/doc/flowctl/docs"
  install -m 0755 "$bin" "$deb/usr/bin/flowctl"
  install -m 0644 packaging/deb/flowctl.service "$deb/usr/lib/systemd/system/flowctl.service"
  install -m 0640 packaging/deb/flowctl.env "$deb/etc/flowctl/flowctl.env"
  install -m 0644 README.md "$deb/usr/share/doc/flowctl/"
  install -m 0644 LICENSE "$deb/usr/share/doc/flowctl/copyright"
  install -m 0644 docs/*.md "$deb/usr/share/doc/flowctl/docs/"
  install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$deb/DEBIAN/"
  echo /etc/flowctl/flowctl.env >"$deb/DEBIAN/conffiles"
  cat >"$deb/DEBIAN/control" <<EOF
Package: flowctl
Version: $version
Architecture: amd64
Maintainer: flowctl maintainers <maintainers@users.noreply.github.com>
Section: admin
Priority: optional
Depends: passwd
Installed-Size: $(du -sk --exclude=DEBIAN "$deb" | cut -f1)
Description: self-hosted workflow server and CLI in one static binary
 flowctl serve exposes a REST API and a dashboard over a local SQLite file (or
 PostgreSQL) and runs JSON-defined workflows durably in the background. This
 package runs it as the flowctl system user (systemd unit flowctl.service,
 state in /var/lib/flowctl, settings in /etc/flowctl/flowctl.env).
EOF
  find "$deb" -exec touch -h -d "@$epoch" {} +
  SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group "${debz[@]}" --build "$deb" \
    "$out/flowctl_${version}_amd64.deb" >/dev/null
  checksum "flowctl_${version}_amd64.deb"
  built+=("flowctl_${version}_amd64.deb")
}

if [ -n "$want_tar" ]; then build_tar; fi
if [ -n "$want_deb" ]; then build_deb; fi

for f in "${built[@]}"; do
  echo "$out/$f ($(du -h "$out/$f" | cut -f1)), sha256 $(cut -d' ' -f1 "$out/$f.sha256")" >&2
done

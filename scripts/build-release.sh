#!/usr/bin/env bash
# Build the release binary, statically linked (glibc with +crt-static): it runs
# on any x86_64 Linux, even in an empty root file system. The explicit --target
# keeps build scripts and proc-macros dynamic (they run on this machine only).
# The binary is copied to target/release/flowctl, where install.sh, the scripts
# and the tests look for it.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
# getrandom would look its libc function up with dlsym, which a static binary
# cannot, and fall back to /dev/urandom (absent in an empty root): call it directly.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"" \
    cargo build --release --locked --target "$host" "$@" >&2
install -d target/release
cp -f "target/$host/release/flowctl" target/release/flowctl.tmp
mv -f target/release/flowctl.tmp target/release/flowctl

#!/usr/bin/env bash
# Builds the release binary, its man page and completions, then the .deb (cargo-deb) and the
# .rpm (cargo-generate-rpm): target/debian/*.deb, target/generate-rpm/*.rpm.
# Installs cargo-deb and cargo-generate-rpm from crates.io when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log() { printf '[packaging %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
for tool in cargo-deb cargo-generate-rpm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "installing $tool"
    cargo install --locked --quiet "$tool"
  fi
done
target=${CARGO_TARGET_DIR:-target}
log "release build"
cargo build --release --locked -p slurm-exporter
log "man page and completions"
"$target/release/slurm-exporter" generate-assets --out "$target/assets"
log ".deb"
cargo deb --no-build --locked -p slurm-exporter
log ".rpm"
cargo generate-rpm -p gateway
ls -l "$target"/debian/*.deb "$target"/generate-rpm/*.rpm

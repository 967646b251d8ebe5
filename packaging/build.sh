#!/usr/bin/env bash
# Builds the release binary, its man page and completions, then the .deb (cargo-deb, from
# gateway/Cargo.toml's [package.metadata.deb]) and the .rpm (rpmbuild, from
# packaging/rpm/slurm-exporter.spec): target/debian/*.deb, target/rpm/*.rpm.
# Installs cargo-deb from crates.io when missing; rpmbuild comes with Debian's `rpm` package.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
log() { printf '[packaging %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
if ! command -v cargo-deb >/dev/null 2>&1; then
  log "installing cargo-deb"
  cargo install --locked --quiet cargo-deb
fi
command -v rpmbuild >/dev/null 2>&1 || { log "rpmbuild missing (apt-get install rpm)"; exit 1; }
target=${CARGO_TARGET_DIR:-$root/target}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
log "release build of slurm-exporter $version"
cargo build --release --locked -p slurm-exporter
log "man page and completions"
rm -rf "$target/release/assets"
"$target/release/slurm-exporter" generate-assets --out "$target/release/assets"
log ".deb"
rm -rf "$target/debian"
cargo deb --no-build --locked -p slurm-exporter
log ".rpm"
rm -rf "$target/rpm" "$target/rpmbuild"
cp "$target/release/slurm-exporter" "$target/release/assets/"
strip --strip-debug "$target/release/assets/slurm-exporter"
rpmbuild --quiet -bb packaging/rpm/slurm-exporter.spec \
  --define "_topdir $target/rpmbuild" --define "_version $version" \
  --define "_assets $target/release/assets" --define "_srcroot $root" \
  --define "_build_id_links none" --define "__os_install_post %{nil}" --nodeps
mkdir -p "$target/rpm"
cp "$target/rpmbuild"/RPMS/*/*.rpm "$target/rpm/"
ls -l "$target"/debian/*.deb "$target"/rpm/*.rpm

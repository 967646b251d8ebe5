#!/usr/bin/env bash
# Runs every test of SLURM Exporter on a fresh Debian machine, as root: installs what the
# tests need (Prometheus' promtool, the Slurm lab's packages), starts the real Slurm lab on
# 127.0.0.1 with its job mix, then lints and runs all tests, the lab end-to-end ones included.
# This is the README's test command, and .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
t0=$SECONDS
step() { printf '\n==> [%4ss] %s\n' $((SECONDS - t0)) "$*"; }

step "formatting"
cargo fmt --all --check

step "test dependencies (promtool, node_exporter, jq, ...)"
bash deploy/test-deps.sh

step "real Slurm lab: start"
bash deploy/slurm-lab/lab.sh start
# The mix takes a minute or two to settle; build meanwhile.
step "real Slurm lab: submit the job mix (in the background) and build"
bash deploy/slurm-lab/lab.sh submit-mix >/tmp/slurm-exporter-mix.log 2>&1 &
mix_pid=$!
trap 'kill "$mix_pid" 2>/dev/null || true' EXIT

cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --all-targets --locked

step "packages: .deb and .rpm (release build; tests/tests/install.rs installs them)"
bash packaging/build.sh

if ! wait "$mix_pid"; then
  cat /tmp/slurm-exporter-mix.log
  echo "the lab's job mix failed" >&2
  exit 1
fi
bash deploy/slurm-lab/lab.sh status >/dev/null

step "all tests, the lab end-to-end ones included"
cargo nextest run --workspace --locked --run-ignored all --no-fail-fast

step "fuzz smoke: every parser of untrusted bytes"
bash tests/fuzz-smoke.sh

step "done in $((SECONDS - t0)) s"

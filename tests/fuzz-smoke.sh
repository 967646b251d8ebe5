#!/usr/bin/env bash
# Short coverage-guided fuzz run of every parser of untrusted bytes (cargo fuzz, libFuzzer),
# seeded from the real captures. Part of the test command: a crash fails the run and leaves
# the input in fuzz/artifacts/<target>/. Longer runs: FUZZ_SECONDS=600 bash tests/fuzz-smoke.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
secs=${FUZZ_SECONDS:-15}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# cargo fuzz needs nightly-only flags (sanitizers); the stable toolchain accepts them here.
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O --debug-assertions
for target in $(cargo fuzz list); do
  corpus=$(mktemp -d)
  seeds=seeds/$target
  [[ -d $seeds ]] || seeds=
  echo "fuzz $target for ${secs}s"
  cargo fuzz run -O --debug-assertions "$target" "$corpus" $seeds -- \
    -max_total_time="$secs" -max_len=262144 -rss_limit_mb=1024 -print_final_stats=0 2>&1 |
    grep -E "^Done|ERROR|panicked|SUMMARY" || true
  rm -rf "$corpus"
  if compgen -G "artifacts/$target/crash-*" >/dev/null; then
    echo "fuzz target $target crashed: see fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
echo "fuzz smoke: $(cargo fuzz list | wc -l) targets, ${secs}s each, no crash"

#!/usr/bin/env bash
# test-deps.sh - install what the project's tests need besides the Slurm lab
# (the lab installs itself: deploy/slurm-lab/lab.sh start).
#
#   Debian bookworm, run as root. Idempotent: a re-run with everything present
#   takes well under a second and touches nothing.
#
#   prometheus (prometheus + promtool), prometheus-node-exporter,
#   prometheus-alertmanager, jq, curl, wrk, nginx-light, rpm (to inspect the .rpm);
#   kubernetes-validate (PyPI: the Kubernetes schemas, offline); checks cargo-nextest.
#
# No daemon is started: a temporary /usr/sbin/policy-rc.d (exit 101) stops the
# package scripts from starting services (there is no systemd on these machines).
# apt output goes to $TEST_DEPS_LOG (default /tmp/test-deps-apt.log).
set -euo pipefail

PKGS=(prometheus prometheus-node-exporter prometheus-alertmanager jq curl wrk nginx-light rpm)
APT_LOG="${TEST_DEPS_LOG:-/tmp/test-deps-apt.log}"

log() { printf '[test-deps %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root"

missing_pkgs() { # prints the packages of "$@" that are not installed
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

POLICY_MADE=0
cleanup() { if ((POLICY_MADE)); then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

apt_install() { # apt_install pkg... : install with a single `apt-get update` when needed
  export DEBIAN_FRONTEND=noninteractive
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# temporary, written by deploy/test-deps.sh: no daemon starts from package scripts\nexit 101\n' \
      >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    POLICY_MADE=1
  fi
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -q -y)
  local updated=0
  # no package lists at all -> update first
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    log "apt-get update (no package lists)"
    "${apt[@]}" update >>"$APT_LOG" 2>&1 || die "apt-get update failed (see $APT_LOG)"
    updated=1
  fi
  log "installing: $* (log: $APT_LOG)"
  if ! "${apt[@]}" install --no-install-recommends "$@" >>"$APT_LOG" 2>&1; then
    ((updated)) && { tail -20 "$APT_LOG" >&2; die "apt-get install failed (see $APT_LOG)"; }
    log "install failed with the current package lists; apt-get update and retry"
    "${apt[@]}" update >>"$APT_LOG" 2>&1 || die "apt-get update failed (see $APT_LOG)"
    "${apt[@]}" install --no-install-recommends "$@" >>"$APT_LOG" 2>&1 \
      || { tail -20 "$APT_LOG" >&2; die "apt-get install failed (see $APT_LOG)"; }
  fi
}

t0=$SECONDS
mapfile -t missing < <(missing_pkgs "${PKGS[@]}")
if ((${#missing[@]})); then
  apt_install "${missing[@]}"
  mapfile -t still < <(missing_pkgs "${PKGS[@]}")
  ((${#still[@]} == 0)) || die "still missing after install: ${still[*]}"
else
  log "packages already installed: ${PKGS[*]}"
fi

# checks
promtool --version >/dev/null 2>&1 || die "promtool --version failed"
for b in prometheus prometheus-node-exporter prometheus-alertmanager jq curl wrk nginx; do
  command -v "$b" >/dev/null 2>&1 || [[ -x /usr/sbin/$b ]] || [[ -x /usr/bin/$b ]] || die "binary $b not found"
done

# cargo-nextest is preinstalled on these machines; install from crates.io only if it is missing
if cargo nextest --version >/dev/null 2>&1 || command -v cargo-nextest >/dev/null 2>&1; then
  :
else
  command -v cargo >/dev/null 2>&1 || die "cargo not found (needed for cargo-nextest)"
  log "cargo-nextest missing: cargo install cargo-nextest --locked"
  cargo install cargo-nextest --locked >>"$APT_LOG" 2>&1 || die "cargo install cargo-nextest failed (see $APT_LOG)"
fi

# The Kubernetes manifests' validator bundles the schemas, so it validates offline.
if ! python3 -m kubernetes_validate --version >/dev/null 2>&1; then
  log "pip install kubernetes-validate"
  python3 -m pip install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0' >>"$APT_LOG" 2>&1 \
    || die "pip install kubernetes-validate failed (see $APT_LOG)"
fi
python3 -m kubernetes_validate --version >/dev/null 2>&1 || die "kubernetes-validate missing after pip install"

log "ok in $((SECONDS - t0))s: $(promtool --version 2>&1 | head -1); $(cargo nextest --version 2>/dev/null | head -1 || cargo-nextest --version | head -1)"

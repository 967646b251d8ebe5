#!/usr/bin/env bash
# HTTP load benchmark of the gateway's /metrics next to nginx serving the same bytes.
#
# Starts the release gateway on 127.0.0.1 over TLS 1.3 with a simulated 1,000-node,
# 10,000-job cluster and three tenant views (operator: full view; viewer: one tenant,
# pseudonymized; admin: one tenant, names in clear), fetches each view's body once with
# curl (identity and gzip), then serves those exact bytes as static files from nginx with
# the same certificate, and runs the same wrk command against both, row by row.
# Prints (and with --out writes) a Markdown table: req/s and p99 latency per view.
#
#   bash gateway/benches/http-load.sh [--out FILE] [--extra-config FILE] [options]
#
# Needs: cargo, wrk, nginx, curl, openssl, python3 (to pick free ports). Everything
# listens on 127.0.0.1; every process started here is stopped on exit. See README.md here.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: gateway/benches/http-load.sh [options]
  --out FILE            also write the result (Markdown) to FILE
  --extra-config FILE   append this TOML to the gateway's config (e.g. an [audit] section);
                        it must not repeat a table the script writes ([server], [source],
                        [rate_limit], [pii], [policies], [auth], [[tenants]] are taken)
  --duration D          wrk -d for each measured run (default 10s)
  --warmup D            unmeasured wrk run before each measured one (default 2s; 0 = none)
  --threads N           wrk -t (default 2)
  --connections N       wrk -c (default 16)
  --nodes N             simulated nodes (default 1000)
  --jobs N              simulated jobs (default 10000)
  --sim-interval S      the sim source's poll interval, seconds (default 3600: one store
                        generation for the whole run; lower it to include re-encoding)
  --quiet-wait S        before each measured run, wait up to S seconds (default 0) for the
                        machine to be idle (under 10% CPU busy over 1 s): other work on
                        the shared CPUs disturbs the numbers (the "others" column says how much)
  --retries N           measure a run again when other processes took 10% or more of the
                        CPUs during it, up to N times (default 1), keeping the least
                        disturbed run; no retry starts after --budget seconds (default 240)
                        of measuring
  --no-build            use the existing target/release/slurm-exporter
  --keep                keep the temporary directory (configs, bodies, logs, wrk output)
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=""
EXTRA=""
DURATION=10s
WARMUP=2s
THREADS=2
CONNS=16
NODES=1000
JOBS=10000
SIM_INTERVAL=3600
QUIET_WAIT=0
RETRIES=1
BUDGET=240
BUILD=1
KEEP=0

while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=${2:?--out needs a file}; shift 2 ;;
        --extra-config) EXTRA=${2:?--extra-config needs a file}; shift 2 ;;
        --duration) DURATION=${2:?}; shift 2 ;;
        --warmup) WARMUP=${2:?}; shift 2 ;;
        --threads) THREADS=${2:?}; shift 2 ;;
        --connections) CONNS=${2:?}; shift 2 ;;
        --nodes) NODES=${2:?}; shift 2 ;;
        --jobs) JOBS=${2:?}; shift 2 ;;
        --sim-interval) SIM_INTERVAL=${2:?}; shift 2 ;;
        --quiet-wait) QUIET_WAIT=${2:?}; shift 2 ;;
        --retries) RETRIES=${2:?}; shift 2 ;;
        --budget) BUDGET=${2:?}; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "http-load.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done

die() { echo "http-load.sh: $*" >&2; exit 1; }
log() { echo "[http-load] $*" >&2; }

for tool in cargo wrk nginx curl openssl python3 gzip cmp; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
if [ -n "$EXTRA" ]; then
    [ -r "$EXTRA" ] || die "--extra-config $EXTRA: not readable"
    EXTRA=$(cd "$(dirname "$EXTRA")" && pwd)/$(basename "$EXTRA")
fi
if [ -n "$OUT" ]; then
    OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
fi

# ---------------------------------------------------------------------------------------
# Cleanup: every process started here, by pid; the temporary directory unless --keep.

TMP=$(mktemp -d "${TMPDIR:-/tmp}/http-load.XXXXXX")
GW_PID=""
NGINX_PID=""
WRK_PID=""

stop() { # pid: TERM, wait up to 5 s, then KILL
    local pid=$1 _
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop "$WRK_PID"
    if [ -n "$NGINX_PID" ]; then
        local workers w
        workers=$(ps -o pid= --ppid "$NGINX_PID" 2>/dev/null || true)
        stop "$NGINX_PID" # the master stops its workers on TERM
        for w in $workers; do stop "$w"; done # in case it had to be killed
    fi
    stop "$GW_PID"
    if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------------------------
# Build, certificates, tokens, config

if [ "$BUILD" = 1 ]; then
    log "cargo build --release -p slurm-exporter"
    (cd "$ROOT" && cargo build --release -p slurm-exporter >&2)
fi
# The tree the binary was built from (with --no-build: the tree now, maybe not the binary's).
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT (with uncommitted changes)"
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/slurm-exporter
[ -x "$BIN" ] || die "$BIN: not built"

"$BIN" dev-certs --out "$TMP/certs" >/dev/null
CA=$TMP/certs/ca.pem
CERT=$TMP/certs/server.pem
KEY=$TMP/certs/server-key.pem
head -c 32 /dev/urandom >"$TMP/pii.key"
chmod 600 "$TMP/pii.key"

# token TENANT ROLE VAR: sets VAR to the token; appends the config entry (hash only).
: >"$TMP/tokens.toml"
token() {
    local t
    t=$("$BIN" token new --tenant "$1" --role "$2" 2>"$TMP/token.err")
    sed -n '/^\[\[auth\.api_tokens\]\]/,$p' "$TMP/token.err" >>"$TMP/tokens.toml"
    echo >>"$TMP/tokens.toml"
    printf -v "$3" '%s' "$t"
}
token ops operator TOKEN_full
token alpha viewer TOKEN_viewer
token beta admin TOKEN_admin

GW_PORT=$(free_port)
CFG=$TMP/gateway.toml
cat >"$CFG" <<EOF
# Written by gateway/benches/http-load.sh.
[server]
listen = "127.0.0.1:$GW_PORT"

[server.tls]
cert_file = "$CERT"
key_file = "$KEY"

[source]
kind = "sim"
cluster = "sim"
interval_seconds = $SIM_INTERVAL
max_staleness_seconds = $((SIM_INTERVAL * 2))

[source.sim]
nodes = $NODES
jobs = $JOBS
seed = 1

# High enough never to answer 429 during the benchmark: the limiter still runs on every
# request (its cost is measured), it just never refuses.
[rate_limit]
per_ip_per_minute = 1000000000
per_tenant_per_minute = 1000000000
per_principal_per_minute = 1000000000
burst = 1000000

[pii]
key_file = "$TMP/pii.key"

[policies]
model = "$ROOT/policies/model.conf"
policy = "$ROOT/policies/policy.csv"

[[tenants]]
name = "ops"
cluster = true

# The sim's accounts (gateway/src/app.rs DEMO_TENANTS).
[[tenants]]
name = "alpha"
accounts = ["physics", "astro", "hep", "condensed", "plasma"]

[[tenants]]
name = "beta"
accounts = ["chemistry", "organic", "quantum", "materials", "catalysis"]

$(cat "$TMP/tokens.toml")
EOF
if [ -n "$EXTRA" ]; then
    { echo; echo "# --extra-config $EXTRA"; cat "$EXTRA"; } >>"$CFG"
fi
"$BIN" check-config --config "$CFG" >&2 || die "the gateway config was refused ($CFG)"

# ---------------------------------------------------------------------------------------
# The gateway

GW=https://127.0.0.1:$GW_PORT
log "starting the gateway on $GW ($NODES nodes, $JOBS jobs)"
"$BIN" serve --config "$CFG" >"$TMP/gateway.log" 2>&1 &
GW_PID=$!
t0=$SECONDS
until curl -sf --max-time 2 --cacert "$CA" "$GW/readyz" >/dev/null 2>&1; do
    kill -0 "$GW_PID" 2>/dev/null || { tail -20 "$TMP/gateway.log" >&2; die "the gateway exited"; }
    [ $((SECONDS - t0)) -lt 120 ] || { tail -20 "$TMP/gateway.log" >&2; die "the gateway is not ready after 120 s"; }
    sleep 0.2
done
log "ready after $((SECONDS - t0)) s"

# Fetch every body once: identity and gzip, saved byte for byte as nginx will serve them.
VIEWS=(full viewer admin)
declare -A LABEL=(
    [full]="operator (full view)"
    [viewer]="viewer (tenant alpha, pseudonyms)"
    [admin]="admin (tenant beta, clear names)"
)
mkdir -p "$TMP/www"
fetch() { # view file [curl args...]
    local v=$1 f=$2 tok_var="TOKEN_$1" code
    shift 2
    code=$(curl -sS --max-time 30 --cacert "$CA" -H "Authorization: Bearer ${!tok_var}" "$@" \
        -D "$TMP/www/$f.headers" -o "$TMP/www/$f" -w '%{http_code}' "$GW/metrics")
    [ "$code" = 200 ] || die "$v: /metrics answered $code: $(head -c 200 "$TMP/www/$f")"
    if grep -qi '^x-slurm-exporter-truncated:' "$TMP/www/$f.headers"; then
        log "warning: $v was truncated by the series quota"
    fi
}
declare -A SERIES
for v in "${VIEWS[@]}"; do
    fetch "$v" "$v.prom"
    fetch "$v" "$v.prom.gz" -H 'Accept-Encoding: gzip'
    grep -qi '^content-encoding: gzip' "$TMP/www/$v.prom.gz.headers" || die "$v: no gzip body"
    gzip -dc "$TMP/www/$v.prom.gz" | cmp -s - "$TMP/www/$v.prom" ||
        die "$v: the gzip body is not the identity body compressed (a new generation mid-fetch?)"
    SERIES[$v]=$(grep -vc '^#' "$TMP/www/$v.prom" || true)
done
CONTENT_TYPE=$(sed -n 's/^[Cc]ontent-[Tt]ype: *//p' "$TMP/www/full.prom.headers" | tr -d '\r')
grep -q 'u1_' "$TMP/www/viewer.prom" || die "the viewer body has no pseudonyms"

# ---------------------------------------------------------------------------------------
# nginx: the same bytes as static files, the same certificate, TLS 1.3 only

NG_PORT=$(free_port)
NG=https://127.0.0.1:$NG_PORT
mkdir -p "$TMP/nginx/logs"
NGINX_USER=""
[ "$(id -u)" = 0 ] && NGINX_USER="user root;" # the files are in a 0700 temp dir
cat >"$TMP/nginx/nginx.conf" <<EOF
$NGINX_USER
daemon off;
master_process on;
worker_processes 2;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000; # the gateway (hyper) keeps a connection for any number
    keepalive_timeout 75s;
    types { }
    default_type "$CONTENT_TYPE";
    server {
        listen 127.0.0.1:$NG_PORT ssl;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.3;
        root $TMP/www;
        location ~ \.gz\$ {
            add_header Content-Encoding gzip;
            add_header Vary "Accept, Accept-Encoding";
        }
        location / {
            add_header Vary "Accept, Accept-Encoding";
        }
    }
}
EOF
log "starting nginx on $NG"
nginx -p "$TMP/nginx" -e "$TMP/nginx/logs/error.log" -c "$TMP/nginx/nginx.conf" &
NGINX_PID=$!
t0=$SECONDS
until curl -sf --max-time 2 --cacert "$CA" -o /dev/null "$NG/full.prom" 2>/dev/null; do
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$TMP/nginx/logs/error.log" >&2; die "nginx exited"; }
    [ $((SECONDS - t0)) -lt 20 ] || die "nginx does not answer after 20 s"
    sleep 0.2
done
for v in "${VIEWS[@]}"; do
    for f in "$v.prom" "$v.prom.gz"; do
        curl -sS --cacert "$CA" "$NG/$f" | cmp -s - "$TMP/www/$f" || die "nginx does not serve $f byte for byte"
    done
done

cipher() { # url: the negotiated TLS version and cipher
    openssl s_client -connect "${1#https://}" -CAfile "$CA" </dev/null 2>/dev/null |
        sed -n 's/^New, \(.*\)$/\1/p' | head -1
}
GW_CIPHER=$(cipher "$GW")
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
NG_CIPHER=$(cipher "$NG")

# ---------------------------------------------------------------------------------------
# wrk

# to_ms 850.12us | 12.34ms | 1.02s | 2.00m -> milliseconds
to_ms() {
    awk -v x="$1" 'BEGIN {
        n = x + 0; u = x; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}

# CPU accounting around each measured run, to show what the server spent per request and
# how much of the machine other processes took (the 2 CPUs are shared).
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
machine_busy() { # seconds of CPU busy on the whole machine (steal counts: lost to us)
    awk -v hz="$CLK_TCK" '/^cpu / { print ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}
pids_cpu() { # pid...: seconds of CPU used so far (user + system, all threads)
    local p sum=0 t
    for p in "$@"; do
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk -v hz="$CLK_TCK" '{ print ($12 + $13) / hz }') || t=0
        sum=$(awk -v a="$sum" -v b="${t:-0}" 'BEGIN { print a + b }')
    done
    echo "$sum"
}
children_cpu() { # VAR: seconds of CPU used by this shell's reaped children (wrk, curl)
    # `times` must run in this shell, not in a $(...) subshell (which has no children yet).
    times >"$TMP/times"
    printf -v "$1" '%s' "$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } print s }' "$TMP/times")"
}
now() { date +%s.%N; }
wait_quiet() { # up to QUIET_WAIT seconds until the machine is under 10% busy for 1 s
    local deadline=$((SECONDS + QUIET_WAIT)) a b
    while [ "$SECONDS" -lt "$deadline" ]; do
        a=$(machine_busy)
        sleep 1
        b=$(machine_busy)
        awk -v a="$a" -v b="$b" -v c="$NCPU" 'BEGIN { exit !((b - a) / c < 0.10) }' && return 0
    done
    [ "$QUIET_WAIT" = 0 ] || log "the machine is still busy after ${QUIET_WAIT} s; measuring anyway"
}

# measure NAME URL SERVER_PIDS [wrk -H args...]: one warm-up and one measured wrk run; sets
# RPS, P99 (ms), ERRS, CPU_US (server CPU per request, microseconds), SRV_PCT (server share of
# all CPUs) and OTHERS (% of all CPUs used by neither the server nor wrk: noise).
mkdir -p "$TMP/wrk"
WRK_ARGS=(-t"$THREADS" -c"$CONNS" -d"$DURATION" --latency)
run_wrk() { # out-file wrk-args...
    local out=$1
    shift
    wrk "$@" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || { WRK_PID=""; cat "$out" >&2; die "wrk failed"; }
    WRK_PID=""
}
measure() {
    local name=$1 url=$2 pids=$3 out m0 m1 s0 s1 w0 w1 t0 t1 reqs non2xx sock
    shift 3
    out=$TMP/wrk/$name.txt
    wait_quiet
    if [ "$WARMUP" != 0 ] && [ "$WARMUP" != 0s ]; then
        run_wrk "$TMP/wrk/$name.warmup.txt" -t"$THREADS" -c"$CONNS" -d"$WARMUP" "$@" "$url"
    fi
    # shellcheck disable=SC2086 # pids is a list
    { m0=$(machine_busy); s0=$(pids_cpu $pids); children_cpu w0; t0=$(now); }
    run_wrk "$out" "${WRK_ARGS[@]}" "$@" "$url"
    # shellcheck disable=SC2086
    { t1=$(now); children_cpu w1; s1=$(pids_cpu $pids); m1=$(machine_busy); }
    RPS=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    reqs=$(awk '/ requests in / { print $1 }' "$out")
    CPU_US=$(awk -v s="$s1" -v s0="$s0" -v n="$reqs" 'BEGIN { printf "%.0f", (n > 0 ? (s - s0) * 1e6 / n : 0) }')
    SRV_PCT=$(awk -v s="$s1" -v s0="$s0" -v t="$t1" -v t0="$t0" -v c="$NCPU" 'BEGIN { printf "%.0f", (s - s0) * 100 / ((t - t0) * c) }')
    OTHERS=$(awk -v m="$m1" -v m0="$m0" -v s="$s1" -v s0="$s0" -v w="$w1" -v w0="$w0" -v t="$t1" -v t0="$t0" -v c="$NCPU" \
        'BEGIN { o = ((m - m0) - (s - s0) - (w - w0)) * 100 / ((t - t0) * c); printf "%.0f", (o < 0 ? 0 : o) }')
    ERRS=""
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    sock=$(sed -n 's/^ *Socket errors: *//p' "$out")
    [ -z "$non2xx" ] || ERRS="$non2xx non-2xx"
    [ -z "$sock" ] || ERRS="${ERRS:+$ERRS, }socket errors: $sock"
    [ -z "$ERRS" ] || log "warning: $name: $ERRS"
    log "$name: $RPS req/s, p99 $P99 ms, server $CPU_US us CPU/req ($SRV_PCT% of the CPUs), others $OTHERS%"
}

# bench NAME URL SERVER_PIDS [wrk -H args...]: measure, and while other processes took 10% or
# more of the CPUs, measure again (up to --retries times, and only within --budget seconds
# of the first measurement); keeps the least disturbed run.
BENCH_T0=""
bench() {
    local try best=() v
    local -a keep=(RPS P99 ERRS CPU_US SRV_PCT OTHERS)
    [ -n "$BENCH_T0" ] || BENCH_T0=$SECONDS
    for ((try = 0; try <= RETRIES; try++)); do
        measure "$1-try$try" "${@:2}"
        if [ ${#best[@]} -eq 0 ] || [ "$OTHERS" -lt "${best[5]}" ]; then
            best=()
            for v in "${keep[@]}"; do best+=("${!v}"); done
        fi
        [ "${best[5]}" -ge 10 ] && [ $((SECONDS - BENCH_T0)) -lt "$BUDGET" ] || break
        [ "$try" -ge "$RETRIES" ] || log "$1: disturbed (others ${best[5]}%), measuring again"
    done
    for v in 0 1 2 3 4 5; do printf -v "${keep[$v]}" '%s' "${best[$v]}"; done
}

NGINX_PIDS="$NGINX_PID $(ps -o pid= --ppid "$NGINX_PID" | tr '\n' ' ')"
ROWS=()
CPU_ROWS=()
WARNINGS=()
DISTURBED=()
for v in "${VIEWS[@]}"; do
    tok_var="TOKEN_$v"
    for enc in identity gzip; do
        hdrs=(-H "Authorization: Bearer ${!tok_var}")
        file=$v.prom
        if [ "$enc" = gzip ]; then
            hdrs+=(-H 'Accept-Encoding: gzip')
            file=$v.prom.gz
        fi
        bytes=$(stat -c %s "$TMP/www/$file")
        bench "gateway-$v-$enc" "$GW/metrics" "$GW_PID" "${hdrs[@]}"
        g_rps=$RPS g_p99=$P99 g_cpu=$CPU_US g_pct=$SRV_PCT g_others=$OTHERS
        [ -z "$ERRS" ] || WARNINGS+=("**errors**: gateway $v $enc: $ERRS")
        bench "nginx-$v-$enc" "$NG/$file" "$NGINX_PIDS" "${hdrs[@]}"
        [ -z "$ERRS" ] || WARNINGS+=("**errors**: nginx $v $enc: $ERRS")
        ROWS+=("| ${LABEL[$v]} | $enc | $bytes | ${SERIES[$v]} | $g_rps | $g_p99 ms | $RPS | $P99 ms |")
        CPU_ROWS+=("| ${LABEL[$v]} | $enc | $g_cpu µs ($g_pct%) | $CPU_US µs ($SRV_PCT%) | $g_others% / $OTHERS% |")
        [ "$g_others" -lt 10 ] || DISTURBED+=("gateway $v $enc ($g_others%)")
        [ "$OTHERS" -lt 10 ] || DISTURBED+=("nginx $v $enc ($OTHERS%)")
    done
done
if [ ${#DISTURBED[@]} -gt 0 ]; then
    list=$(printf '%s, ' "${DISTURBED[@]}")
    WARNINGS+=("**disturbed**: other processes took 10% or more of the CPUs during ${list%, }: rerun those on a quiet machine")
fi

# ---------------------------------------------------------------------------------------
# Report

WARMUP_TEXT="$WARMUP warm-up (wrk, unmeasured) before each run"
if [ "$WARMUP" = 0 ] || [ "$WARMUP" = 0s ]; then WARMUP_TEXT="no warm-up"; fi
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -1)
{
    echo "## /metrics under load: gateway vs nginx (same bytes, same machine, same run)"
    echo
    echo "- $(date -u +%Y-%m-%dT%H:%MZ), commit $COMMIT; $(nproc) CPUs ($CPU_MODEL), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
    echo "- wrk and both servers share these CPUs: wrk's $THREADS threads compete with the server under test; load average before the runs: $LOAD0"
    echo "- load: \`wrk ${WRK_ARGS[*]} -H 'Authorization: Bearer …' [-H 'Accept-Encoding: gzip'] URL\`, $WARMUP_TEXT, rows run gateway then nginx, one at a time; a run during which other processes took 10% or more of the CPUs is measured again (up to $RETRIES times), the least disturbed kept"
    echo "- gateway: \`slurm-exporter serve\`, sim source $NODES nodes / $JOBS jobs (one store generation for the run: interval ${SIM_INTERVAL} s), TLS: $GW_CIPHER; auth by API token, casbin policy, per-tenant filtering; rate limits raised out of the way (they still run)${EXTRA:+; extra config: $(basename "$EXTRA")}"
    echo "- nginx $(nginx -v 2>&1 | sed 's|.*/||'): each body as a static file (gzip ones with \`Content-Encoding: gzip\`), 2 workers, access log off, TLS: $NG_CIPHER"
    echo "- wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), $(openssl version | awk '{print $1, $2}')"
    echo
    echo "| view | encoding | body bytes | series | gateway req/s | gateway p99 | nginx req/s | nginx p99 |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Server CPU per request (and share of all $NCPU CPUs during the run); others: CPU used by"
    echo "processes other than the server and wrk (noise), gateway run / nginx run."
    echo
    echo "| view | encoding | gateway CPU/req | nginx CPU/req | others |"
    echo "|---|---|---:|---:|---:|"
    printf '%s\n' "${CPU_ROWS[@]}"
    if [ ${#WARNINGS[@]} -gt 0 ]; then
        echo
        for w in "${WARNINGS[@]}"; do echo "- $w"; done
    fi
} >"$TMP/result.md"
cat "$TMP/result.md"
[ -z "$OUT" ] || cp "$TMP/result.md" "$OUT"

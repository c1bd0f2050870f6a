#!/usr/bin/env bash
# profile.sh - CPU profile of zoku under keep-alive load, on loopback.
#
# Starts a backend answering "hello", zoku with bench/zoku-bench.yaml, and
# wrk (-t2 -c64) against zoku's TLS (default) or plain entry point, or with
# a new connection and a full TLS handshake for every request (fullhs: the
# harness's wrk-fullhs.so preload and "Connection: close"), and
# records zoku's CPU with perf for the length of the wrk run. Prints wrk's
# summary, zoku's CPU seconds, and the top entries of the profile (self
# time, and time including callees).
#
# Usage: bench/profile.sh ZOKU_BINARY [tls|plain|fullhs] [SECONDS]
# PERF_KEEP=FILE keeps the perf data for perf report -i FILE.
# Needs: wrk, perf (Debian: linux-perf), openssl, curl, Go; the backend is
# the shared proxy harness's (ZOKU_BENCH_WORK/bin/backend and, for fullhs,
# bin/wrk-fullhs.so, built by its -s).
# Ports: 127.0.0.1:18443 (TLS), :18080 (plain), :19000 (backend), so it
# can run beside the harness. Only processes it started are signalled.
set -euo pipefail

ZOKU=${1:?usage: bench/profile.sh ZOKU_BINARY [tls|plain|fullhs] [SECONDS]}
MODE=${2:-tls}
SECS=${3:-8}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${ZOKU_BENCH_WORK:-${TMPDIR:-/tmp}/zoku-bench}
OUT=$(mktemp -d)
BACKEND=$WORK/bin/backend
[ -x "$BACKEND" ] || { echo "profile: no backend at $BACKEND; run the proxy harness with -s first" >&2; exit 1; }
command -v perf >/dev/null || { echo "profile: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
URL=https://127.0.0.1:18443/
hdr=(-H 'Host: bench.test')
preload=
case $MODE in
plain) URL=http://127.0.0.1:18080/ ;;
fullhs)
	preload=$WORK/bin/wrk-fullhs.so
	[ -f "$preload" ] || { echo "profile: no $preload; run the proxy harness with -s first" >&2; exit 1; }
	hdr+=(-H 'Connection: close')
	;;
tls) ;;
*) echo "profile: mode $MODE is not one of tls, plain, fullhs" >&2; exit 1 ;;
esac

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$OUT/key.pem" \
	-out "$OUT/cert.pem" -days 2 -subj /CN=bench.test -addext subjectAltName=DNS:bench.test 2>/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$BACKEND" -listen 127.0.0.1:19000 >"$OUT/backend.log" 2>&1 &
pids+=($!)
BENCH_PLAIN_LISTEN=127.0.0.1:18080 BENCH_TLS_LISTEN=127.0.0.1:18443 BENCH_UPSTREAM=127.0.0.1:19000 \
	BENCH_CERT=$OUT/cert.pem BENCH_KEY=$OUT/key.pem BENCH_SNI=bench.test \
	BENCH_ADMIN_LISTEN=127.0.0.1:19180 \
	"$ZOKU" run --config "$HERE/zoku-bench.yaml" >"$OUT/zoku.log" 2>&1 &
ZPID=$!
pids+=($ZPID)
for _ in $(seq 100); do
	curl -sk --max-time 1 --resolve bench.test:18443:127.0.0.1 https://bench.test:18443/ | grep -q hello && break
	sleep 0.1
done

LD_PRELOAD=$preload wrk -t2 -c64 -d2s "${hdr[@]}" "$URL" >/dev/null # warm-up
t0=$(awk '{print $14+$15}' /proc/$ZPID/stat)
perf record -F 999 -g -o "$OUT/perf.data" -p "$ZPID" -- sleep "$SECS" >/dev/null 2>&1 &
PERF=$!
LD_PRELOAD=$preload timeout $((SECS + 30)) wrk -t2 -c64 -d${SECS}s --latency "${hdr[@]}" "$URL" | grep -E 'Requests/sec|99%|Latency '
wait $PERF || true
t1=$(awk '{print $14+$15}' /proc/$ZPID/stat)
echo "zoku CPU seconds: $(awk -v t=$((t1 - t0)) -v k="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / k }')"
echo "--- self"
perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -25 || true
echo "--- with callees"
perf report -i "$OUT/perf.data" --children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -60 || true
if [ -n "${PERF_KEEP:-}" ]; then cp "$OUT/perf.data" "$PERF_KEEP"; fi
rm -rf "$OUT"

#!/usr/bin/env bash
# ab.sh - two or more zoku variants, alternated round by round under the
# same keep-alive load, so that drift of the machine hits them alike.
#
# Each variant is NAME=ENV (one environment assignment, "-" for none, or
# "@PATH" for another zoku binary, to compare two builds) and runs
# ZOKU_BINARY with bench/zoku-bench.yaml, a backend answering
# "hello", and wrk -t2 -c64 for SECS against the TLS entry point (and the
# plain one with MODE=plain). With HEADERS=browser each request also
# carries the nine headers a browser sends for a script (wrk's own carry
# only Host). Prints per round and the medians: req/s, p99, zoku's CPU
# seconds and requests per zoku CPU-second.
#
# Usage: bench/ab.sh ZOKU_BINARY ROUNDS SECS NAME=ENV NAME=ENV...
# e.g.:  bench/ab.sh ./zoku 5 10 net/http=ZOKU_HTTP1_SERVER=net/http loop=-
#        bench/ab.sh ./zoku 6 8 before=@/tmp/zoku-before after=-
# Needs: wrk, openssl, curl; the backend is the shared proxy harness's
# (ZOKU_BENCH_WORK/bin/backend, built by its -s). Ports as profile.sh's.
# Only processes it started are signalled.
set -euo pipefail

ZOKU=${1:?usage: bench/ab.sh ZOKU_BINARY ROUNDS SECS NAME=ENV...}
ROUNDS=${2:?rounds}
SECS=${3:?seconds}
shift 3
[ $# -ge 2 ] || { echo "ab: name at least two variants" >&2; exit 1; }
MODE=${MODE:-tls}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${ZOKU_BENCH_WORK:-${TMPDIR:-/tmp}/zoku-bench}
BACKEND=$WORK/bin/backend
[ -x "$BACKEND" ] || { echo "ab: no backend at $BACKEND; run the proxy harness with -s first" >&2; exit 1; }
OUT=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$OUT/key.pem" \
	-out "$OUT/cert.pem" -days 2 -subj /CN=bench.test -addext subjectAltName=DNS:bench.test 2>/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$OUT"; }
trap cleanup EXIT
"$BACKEND" -listen 127.0.0.1:19000 >"$OUT/backend.log" 2>&1 &
pids+=($!)
if [ "$MODE" = plain ]; then URL=http://127.0.0.1:18080/; else URL=https://127.0.0.1:18443/; fi
tck=$(getconf CLK_TCK)
hdrs=(-H 'Host: bench.test')
case ${HEADERS:-} in
browser)
	hdrs+=(-H 'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'
		-H 'Accept: */*' -H 'Accept-Language: en-US,en;q=0.9' -H 'Accept-Encoding: gzip, deflate, br'
		-H 'Referer: https://bench.test/' -H 'Cookie: session=0123456789abcdef; theme=dark'
		-H 'Sec-Fetch-Dest: script' -H 'Sec-Fetch-Mode: no-cors' -H 'Sec-Fetch-Site: same-origin')
	;;
"") ;;
*) echo "ab: HEADERS is browser or unset" >&2; exit 1 ;;
esac

run_one() { # NAME ENV -> appends "name req/s p99ms cpu-s" to $OUT/results
	local name=$1 envs=() bin=$ZOKU zpid t0 t1 out
	case $2 in
	-) ;;
	@*) bin=${2#@} ;;
	*) envs=("$2") ;;
	esac
	env "${envs[@]}" BENCH_PLAIN_LISTEN=127.0.0.1:18080 BENCH_TLS_LISTEN=127.0.0.1:18443 \
		BENCH_UPSTREAM=127.0.0.1:19000 BENCH_CERT="$OUT/cert.pem" BENCH_KEY="$OUT/key.pem" \
		BENCH_SNI=bench.test BENCH_ADMIN_LISTEN=127.0.0.1:19180 \
		"$bin" run --config "$HERE/zoku-bench.yaml" >"$OUT/zoku.log" 2>&1 &
	zpid=$!
	for _ in $(seq 100); do
		curl -sk --max-time 1 --resolve bench.test:18443:127.0.0.1 https://bench.test:18443/ | grep -q hello && break
		sleep 0.1
	done
	wrk -t2 -c64 -d2s "${hdrs[@]}" "$URL" >/dev/null # warm-up
	t0=$(awk '{print $14+$15}' /proc/$zpid/stat)
	out=$(timeout $((SECS + 30)) wrk -t2 -c64 -d"${SECS}s" --latency "${hdrs[@]}" "$URL")
	t1=$(awk '{print $14+$15}' /proc/$zpid/stat)
	kill "$zpid"
	wait "$zpid" 2>/dev/null || true
	awk -v n="$name" -v c="$(awk -v t=$((t1 - t0)) -v k="$tck" 'BEGIN { printf "%.2f", t / k }')" '
		/Requests\/sec/ { r = $2 }
		$1 == "99%" { p = $2; if (p ~ /us$/) { sub(/us$/, "", p); p /= 1000 } else if (p ~ /ms$/) { sub(/ms$/, "", p) } else if (p ~ /s$/) { sub(/s$/, "", p); p *= 1000 } }
		END { printf "%s %s %s %s\n", n, r, p, c }' <<<"$out" | tee -a "$OUT/results"
}

for round in $(seq "$ROUNDS"); do
	echo "# round $round/$ROUNDS"
	for v in "$@"; do
		run_one "${v%%=*}" "${v#*=}"
	done
done
echo "# medians over $ROUNDS rounds of ${SECS}s ($MODE${HEADERS:+, $HEADERS headers}): variant, req/s, p99 ms, zoku CPU-s, req per zoku CPU-s"
for v in "$@"; do
	name=${v%%=*}
	awk -v n="$name" -v s="$SECS" '$1 == n { r[++k] = $2; p[k] = $3; c[k] = $4; e[k] = $2 * s / $4 }
		function med(a, k,   i, j, t) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
		END { printf "%-12s %9.0f %7.2f %6.2f %9.0f\n", n, med(r, k), med(p, k), med(c, k), med(e, k) }' "$OUT/results"
done

#!/usr/bin/env bash
# One process per certificate: the way a cron loop around a CLI client issues
# certificates. Each run of `zoku obtain --server embedded` starts the embedded
# CA, registers, validates over HTTP-01 and saves. Usage:
#   bash bench/obtain-per-process.sh [N]     (default 20)
# Prints the total wall time and certificates per second.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
bin=$(mktemp -d)/zoku
go build -o "$bin" ./cmd/zoku
store=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
start=$(date +%s.%N)
for i in $(seq 1 "$n"); do
  "$bin" obtain --server embedded --accept-tos --email bench@example.test \
    --http --http.port "127.0.0.1:$port" -d "host$i.bench.example.test" --path "$store" >/dev/null 2>&1
done
end=$(date +%s.%N)
awk -v n="$n" -v s="$start" -v e="$end" 'BEGIN { t = e - s; printf "%d certificates, one process each: %.2f s, %.2f certs/s\n", n, t, n / t }'
rm -rf "$store" "$(dirname "$bin")"

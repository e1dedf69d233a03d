#!/usr/bin/env bash
# Throughput of 1, 2 and 3 collectors behind HAProxy (docs/BENCHMARKS.md,
# "Scale-out"): for each N, N collectors on config/loadtest.yaml with their
# own storage and ports, HAProxy on config/haproxy/haproxy.cfg with N server
# lines, and fdload sending through HAProxy for DURATION with SENDERS
# senders; and, for comparison, fdload straight at one collector.
#   scripts/bench-scaleout.sh [DURATION=20s] [SENDERS=8]
# Needs bin/otelcol-fastdeploy (make collector) and haproxy (make tools).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-20s}
senders=${2:-8}
haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/fdload" ./cmd/fdload

# waits up to 30 s for a command to succeed
wait_for() { for _ in $(seq 150); do if "$@"; then return 0; fi; sleep 0.2; done; echo "timed out: $*" >&2; exit 1; }
up_servers() { [ "$(curl -sf "127.0.0.1:$1/stats;csv" | awk -F, '$1 == "collectors" && $2 ~ /^collector/ && $18 ~ /^UP/' | wc -l)" -eq "$2" ]; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_collector() { # index, sink; appends the receiver address to addrs
	local i=$1 sink=$2 port health tel
	port=$(free_port); health=$(free_port); tel=$(free_port)
	FDLOAD_STORAGE_DIR="$work/storage$i" FDLOAD_RECEIVER_PORT=$port FDLOAD_HEALTH_PORT=$health \
		FDLOAD_TELEMETRY_PORT=$tel FDLOAD_SINK=$sink \
		bin/otelcol-fastdeploy --config config/loadtest.yaml >"$work/collector$i.log" 2>&1 &
	pids+=($!)
	wait_for curl -sf -o /dev/null "127.0.0.1:$health/"
	addrs+=("127.0.0.1:$port")
}

run() { # instances (0: one collector without HAProxy)
	local n=$1 sink target lb stats
	sink="127.0.0.1:$(free_port)"
	pids=() addrs=()
	for i in $(seq 1 "$(( n > 0 ? n : 1 ))"); do start_collector "$i" "$sink"; done
	target="http://${addrs[0]}"
	if [ "$n" -gt 0 ]; then
		lb=$(free_port); stats=$(free_port)
		awk -v n="$n" '$1 == "server" { k = substr($2, 10) + 0; if (k < 1 || k > n) next } { print }' \
			config/haproxy/haproxy.cfg >"$work/haproxy.cfg"
		env FASTDEPLOY_LB_BIND="127.0.0.1:$lb" FASTDEPLOY_LB_STATS_BIND="127.0.0.1:$stats" \
			FASTDEPLOY_COLLECTOR_1="${addrs[0]}" FASTDEPLOY_COLLECTOR_2="${addrs[1]:-}" FASTDEPLOY_COLLECTOR_3="${addrs[2]:-}" \
			"$haproxy" -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
		pids+=($!)
		wait_for up_servers "$stats" "$n"
		target="http://127.0.0.1:$lb"
	fi
	echo "== $([ "$n" -eq 0 ] && echo "1 collector, no HAProxy" || echo "$n collector(s) behind HAProxy"), $senders senders, $duration"
	"$work/fdload" -target "$target" -sink "$sink" -senders "$senders" -duration "$duration" -run "n$n"
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"/storage*
}

for n in 0 1 2 3; do run "$n"; done

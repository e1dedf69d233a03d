#!/usr/bin/env bash
# Builds Jaeger v2 (pinned in internal/tools/jaeger/go.mod) once and prints
# the path of the binary. Later runs reuse the cached binary as long as the
# tools module's go.mod and go.sum are unchanged, so only the first build
# pays the ~4 minutes.
#
#   scripts/jaeger.sh            build if needed, print the binary's path
#   JAEGER_CACHE_DIR=dir ...     cache somewhere else (default ~/.cache/otelcol-fastdeploy)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
module="$root/internal/tools/jaeger"
# Outside the checkout by default, so fresh clones on one machine (CI's)
# share one build.
cache="${JAEGER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/otelcol-fastdeploy}"
bin="$cache/jaeger"
stamp="$cache/jaeger.stamp"

want=$(cat "$module/go.mod" "$module/go.sum" | sha256sum | cut -d' ' -f1)
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$cache"
echo "building jaeger into $bin (first time takes minutes)" >&2
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$module" && go build -trimpath -o "$tmp" github.com/jaegertracing/jaeger/cmd/jaeger)
mv "$tmp" "$bin"
echo "$want" >"$stamp"
echo "$bin"

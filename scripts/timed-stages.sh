#!/usr/bin/env bash
# Runs make targets one after another, stopping at the first failure, and
# prints how long each took: make test's closing table says where its time
# goes.
set -uo pipefail
declare -a rows
total_start=$(date +%s)
status=0
for stage in "$@"; do
	start=$(date +%s)
	echo "=== make $stage"
	if ! make --no-print-directory "$stage"; then
		status=1
	fi
	rows+=("$(printf '%-20s %5d s' "$stage" $(( $(date +%s) - start )))")
	[ "$status" -eq 0 ] || { rows[-1]+="  FAILED"; break; }
done
echo "--- make test: seconds per stage"
printf '%s\n' "${rows[@]}"
printf '%-20s %5d s\n' "total" $(( $(date +%s) - total_start ))
exit "$status"

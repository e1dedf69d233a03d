#!/usr/bin/env bash
# install-secret.sh [ENV_FILE]: writes a newly generated request-signing
# secret (32 random bytes, hex) into the environment file as
# FASTDEPLOY_SECRET=<value>, in place of the empty or placeholder line.
# systemd's EnvironmentFile= takes values literally, so the value itself
# must be in the file, not a $(...) that would generate it.
#
# The value never appears on a command line (ps) or in this script's
# output; the file keeps its mode and owner. A secret already set is kept
# unless --force is given (deployers sign with it: replacing it means
# handing them the new one).
#
#   sudo scripts/install-secret.sh                      # /etc/otelcol-fastdeploy/otelcol-fastdeploy.env
#   sudo scripts/install-secret.sh --force FILE         # replace a set secret
set -euo pipefail
force=false
if [[ "${1:-}" == "--force" ]]; then force=true; shift; fi
file=${1:-/etc/otelcol-fastdeploy/otelcol-fastdeploy.env}
[[ -f "$file" ]] || { echo "install-secret: $file does not exist (run make install first)" >&2; exit 1; }

current=$(sed -n 's/^FASTDEPLOY_SECRET=//p' "$file" | tail -1)
if [[ -n "$current" ]] && ! $force; then
	echo "install-secret: FASTDEPLOY_SECRET is already set in $file; kept (--force replaces it)"
	exit 0
fi

secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
[[ ${#secret} -eq 64 ]] || { echo "install-secret: could not read 32 random bytes" >&2; exit 1; }

# A temporary file beside the original, same mode and owner, then an
# atomic rename: a crash leaves the old file or the new one, never half.
tmp=$(mktemp "$file.XXXXXX")
trap 'rm -f "$tmp"' EXIT
chmod --reference="$file" "$tmp"
chown --reference="$file" "$tmp" 2>/dev/null || true
# awk reads the value from its environment, not from its arguments.
if grep -q '^FASTDEPLOY_SECRET=' "$file"; then
	SECRET="$secret" awk '/^FASTDEPLOY_SECRET=/ { print "FASTDEPLOY_SECRET=" ENVIRON["SECRET"]; next } { print }' "$file" >"$tmp"
else
	{ cat "$file"; printf 'FASTDEPLOY_SECRET=%s\n' "$secret"; } >"$tmp"
fi
mv "$tmp" "$file"
trap - EXIT
echo "install-secret: wrote a new FASTDEPLOY_SECRET into $file (give deployers the same value, e.g. fastdeploy --secret-file)"

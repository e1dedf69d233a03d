#!/usr/bin/env bash
# Installs, from Debian packages, the real tools the tests run against when
# they are missing: ansible-playbook (with the ansible.posix collection),
# Prometheus (with promtool), HAProxy, tmux (the deployer's terminal test)
# and git (its lead-time test). Idempotent; needs root or sudo to install.
set -euo pipefail

need=()
command -v ansible-playbook >/dev/null 2>&1 || need+=(ansible)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v git >/dev/null 2>&1 || need+=(git)
# Debian installs haproxy in /usr/sbin, which is not on every PATH.
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${need[*]} from Debian packages"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The Debian packages start a system Prometheus and HAProxy; tests run their own.
if command -v systemctl >/dev/null 2>&1; then
	$sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
	$sudo systemctl disable --now haproxy >/dev/null 2>&1 || true
fi

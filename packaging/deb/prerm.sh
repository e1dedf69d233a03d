#!/bin/sh
# Stops the service before its files go away (not on upgrade).
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl disable --now otelcol-fastdeploy >/dev/null 2>&1 || true
fi

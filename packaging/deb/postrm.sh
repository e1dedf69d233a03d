#!/bin/sh
# On purge, also drop the sending queue kept in the state directory.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ]; then
	rm -rf /var/lib/otelcol-fastdeploy /var/lib/private/otelcol-fastdeploy
fi

#!/bin/sh
# Registers the unit. The service is not started: it needs
# FASTDEPLOY_SECRET in /etc/otelcol-fastdeploy/otelcol-fastdeploy.env and
# a TLS certificate in /etc/otelcol-fastdeploy/tls/ first.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
	if systemctl is-active --quiet otelcol-fastdeploy; then
		systemctl try-restart otelcol-fastdeploy >/dev/null || true
	else
		echo "otelcol-fastdeploy: set FASTDEPLOY_SECRET in /etc/otelcol-fastdeploy/otelcol-fastdeploy.env," \
			"add tls.crt and tls.key to /etc/otelcol-fastdeploy/tls/, then: systemctl enable --now otelcol-fastdeploy"
	fi
fi

#!/usr/bin/env bash
# install-config.sh SRC DEST MODE: installs SRC as DEST with MODE unless
# DEST exists, so `make install` never overwrites a configuration or
# secrets an operator has edited.
set -euo pipefail
src=$1 dest=$2 mode=$3
if [[ -e "$dest" ]]; then
	echo "kept existing $dest (new version: $src)"
	exit 0
fi
install -m "$mode" "$src" "$dest"
echo "installed $dest"

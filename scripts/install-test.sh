#!/usr/bin/env bash
# Checks `make install`: into a scratch DESTDIR with PREFIX=/usr, the files
# land with their modes, a second install keeps edited configuration, the
# installed binary validates the installed configuration, and
# systemd-analyze verify accepts the unit (where systemd-analyze exists).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(mktemp -d)
trap 'rm -rf "$root" "$root.log"' EXIT

fail() { echo "install-test: $*" >&2; exit 1; }
install_into() {
	make --no-print-directory install DESTDIR="$root" PREFIX=/usr >"$root.log" 2>&1 || { cat "$root.log" >&2; fail "make install failed"; }
}
install_into
want() { # path mode
	[[ -e "$root$1" ]] || fail "$1 not installed"
	local got
	got=$(stat -c '%a' "$root$1")
	[[ "$got" == "$2" ]] || fail "$1 has mode $got, want $2"
}
want /usr/bin/otelcol-fastdeploy 755
want /etc/otelcol-fastdeploy/config.yaml 644
want /etc/otelcol-fastdeploy/otelcol-fastdeploy.env 600
want /etc/otelcol-fastdeploy/tls 700
want /usr/lib/systemd/system/otelcol-fastdeploy.service 644
cmp -s config/production.yaml "$root/etc/otelcol-fastdeploy/config.yaml" || fail "config.yaml is not config/production.yaml"
unit="$root/usr/lib/systemd/system/otelcol-fastdeploy.service"
grep -q '^ExecStart=/usr/bin/otelcol-fastdeploy --config /etc/otelcol-fastdeploy/config.yaml$' "$unit" || fail "ExecStart does not point at the installed files"
! grep -q '@[A-Z]*@' "$unit" || fail "unit has unreplaced placeholders"
for directive in DynamicUser=yes ProtectSystem=strict StateDirectory=otelcol-fastdeploy 'EnvironmentFile=-/etc/otelcol-fastdeploy/otelcol-fastdeploy.env' NoNewPrivileges=yes; do
	grep -qx "$directive" "$unit" || fail "unit lacks $directive"
done

# An edited configuration survives a second install.
echo "# edited" >>"$root/etc/otelcol-fastdeploy/config.yaml"
install_into
tail -1 "$root/etc/otelcol-fastdeploy/config.yaml" | grep -qx '# edited' || fail "a second install overwrote the edited config.yaml"

# make install-secret writes a generated value (not a command) into the
# environment file, keeps its mode, and keeps a set secret.
env="$root/etc/otelcol-fastdeploy/otelcol-fastdeploy.env"
make --no-print-directory install-secret DESTDIR="$root" >/dev/null || fail "make install-secret failed"
grep -Eq '^FASTDEPLOY_SECRET=[0-9a-f]{64}$' "$env" || fail "install-secret did not write a 64-hex-digit FASTDEPLOY_SECRET"
[[ $(stat -c '%a' "$env") == 600 ]] || fail "install-secret changed the environment file's mode"
first=$(grep '^FASTDEPLOY_SECRET=' "$env")
make --no-print-directory install-secret DESTDIR="$root" >/dev/null
[[ $(grep '^FASTDEPLOY_SECRET=' "$env") == "$first" ]] || fail "a second install-secret replaced a set secret"

# make install never builds: with the binary's sources newer than the
# binary and no Go on PATH (as under sudo), it still installs what is there.
make --no-print-directory -n install DESTDIR="$root" PREFIX=/usr | grep -Eq '(^| )go (build|tool)|builder' \
	&& fail "make install would build the collector"
PATH=/usr/bin:/bin make --no-print-directory install DESTDIR="$root/nogo" PREFIX=/usr >"$root.log" 2>&1 \
	|| { cat "$root.log" >&2; fail "make install without Go on PATH failed"; }
cmp -s bin/otelcol-fastdeploy "$root/nogo/usr/bin/otelcol-fastdeploy" || fail "make install did not install bin/otelcol-fastdeploy as built"

FASTDEPLOY_SECRET=validate-only-not-a-real-secret-0123 "$root/usr/bin/otelcol-fastdeploy" validate \
	--config "$root/etc/otelcol-fastdeploy/config.yaml" || fail "the installed config does not validate"

if command -v systemd-analyze >/dev/null 2>&1; then
	# verify checks that ExecStart and the credential files exist: point a
	# copy of the unit at the files inside DESTDIR.
	touch "$root/etc/otelcol-fastdeploy/tls/tls.crt" "$root/etc/otelcol-fastdeploy/tls/tls.key"
	mkdir -p "$root/verify"
	sed -e "s|/usr/bin/otelcol-fastdeploy|$root/usr/bin/otelcol-fastdeploy|" \
		-e "s|/etc/otelcol-fastdeploy/|$root/etc/otelcol-fastdeploy/|g" "$unit" >"$root/verify/otelcol-fastdeploy.service"
	out=$(systemd-analyze verify "$root/verify/otelcol-fastdeploy.service" 2>&1) || fail "systemd-analyze verify: $out"
	# verify also reports problems without failing: any line about our unit is one.
	if grep 'otelcol-fastdeploy' <<<"$out"; then fail "systemd-analyze verify found problems in the unit"; fi
	echo "systemd-analyze verify: ok"
	exposure=$(systemd-analyze security --offline=true "$root/verify/otelcol-fastdeploy.service" 2>/dev/null | tail -1 || true)
	if [[ -n "$exposure" ]]; then echo "systemd-analyze security: $exposure"; fi
else
	echo "systemd-analyze not available: unit not verified"
fi
echo "install-test: ok"

#!/usr/bin/env bash
# mmdebstrap customize hook: installs the project's binaries, units and
# board files into the root ($1) and prepares it to run read-only.
# Usage: customize.sh ROOT WORK UNIT_FILE VERSION
set -euo pipefail
ROOT=$1 WORK=$2 UNIT=$3 VERSION=$4
TOP=$(cd "$(dirname "$0")/.." && pwd)

# The daemon in /usr/sbin (deploy/systemd/ftbridged.service runs it from
# there), the tools in /usr/bin.
install -m 0755 "$WORK/bin/ftbridged" "$ROOT/usr/sbin/ftbridged"
for b in "$WORK"/bin/*; do
	[ "$(basename "$b")" = ftbridged ] || install -m 0755 "$b" "$ROOT/usr/bin/"
done
cp -a "$TOP/images/rootfs/." "$ROOT/"
cp -a "$WORK/gen/overlay/." "$ROOT/"
install -m 0644 "$UNIT" "$ROOT/etc/systemd/system/ftbridged.service"
install -m 0644 "$WORK/keyring.pem" "$ROOT/etc/rauc/keyring.pem"
echo "$VERSION" >"$ROOT/etc/ftbridge-release"
mkdir -p "$ROOT/usr/share/doc/ftbridge"
cp "$TOP"/docs/console.md "$TOP"/docs/updates.md "$ROOT/usr/share/doc/ftbridge/" 2>/dev/null || true

# Mount points and the links that put state on /data.
mkdir -p "$ROOT/data" "$ROOT/efi" "$ROOT/var/lib/private"
rm -rf "$ROOT/etc/ftbridge" "$ROOT/var/lib/ftbridge"
ln -s /data/ftbridge "$ROOT/etc/ftbridge"
ln -s /data/ftbridge "$ROOT/var/lib/ftbridge"
# Volatile journal (/var/log is RAM); persistent logs would wear the flash.
rm -rf "$ROOT/var/log/journal"
echo ftbridge >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tftbridge\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
# An empty machine-id: systemd makes a transient one per boot on a read-only root.
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"

systemctl --root="$ROOT" enable systemd-networkd.service ftbridged.service \
	ftbridge-firstboot.service ftbridge-healthy.service ftbridge-bootcheck.service >/dev/null 2>&1
systemctl --root="$ROOT" mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
	e2scrub_reap.service fstrim.timer systemd-timesyncd.service >/dev/null 2>&1 || true

if [ -n "${ROOT_PASSWORD:-}" ]; then
	echo "root:$ROOT_PASSWORD" | chroot "$ROOT" chpasswd
else
	chroot "$ROOT" usermod -p '*' root
fi

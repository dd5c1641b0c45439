#!/usr/bin/env bash
# Buildroot post-build script: board files from board/BOARD.json (the same
# generator as the Debian image recipe), /data links, units enabled, update
# keyring. Arguments: TARGET_DIR BOARD (BR2_ROOTFS_POST_SCRIPT_ARGS).
set -euo pipefail
TARGET=$1
BOARD=$2
SRC=$BR2_EXTERNAL_FTBRIDGE_PATH/..
GEN=$BUILD_DIR/ftbridge-gen-$BOARD

(cd "$SRC" && "$HOST_DIR/bin/go" run ./images/mkimage gen --board "$BOARD" --out "$GEN")
cp -a "$GEN/overlay/." "$TARGET/"

rm -rf "$TARGET/etc/ftbridge" "$TARGET/var/lib/ftbridge"
ln -s /data/ftbridge "$TARGET/etc/ftbridge"
ln -s /data/ftbridge "$TARGET/var/lib/ftbridge"
: >"$TARGET/etc/machine-id"
(cd "$SRC" && git describe --always --dirty 2>/dev/null || echo buildroot) >"$TARGET/etc/ftbridge-release"

# Kernel for the update glue: it copies /boot/vmlinuz-* of a slot to the ESP.
mkdir -p "$TARGET/boot"
for k in bzImage Image; do
	[ -f "$BINARIES_DIR/$k" ] && cp "$BINARIES_DIR/$k" "$TARGET/boot/vmlinuz-buildroot"
done

wants=$TARGET/etc/systemd/system/multi-user.target.wants
mkdir -p "$wants" "$TARGET/etc/systemd/system/sysinit.target.wants"
for u in ftbridged ftbridge-healthy ftbridge-bootcheck systemd-networkd; do
	ln -sf "/usr/lib/systemd/system/$u.service" "$wants/$u.service"
done
ln -sf /usr/lib/systemd/system/ftbridge-firstboot.service "$TARGET/etc/systemd/system/sysinit.target.wants/ftbridge-firstboot.service"

if [ -n "${FTB_SIGNING_CERT:-}" ]; then
	install -D -m 0644 "$FTB_SIGNING_CERT" "$TARGET/etc/rauc/keyring.pem"
else
	echo "post-build.sh: FTB_SIGNING_CERT not set: this image accepts no update bundles" >&2
fi

#!/usr/bin/env bash
# Buildroot post-image script: the ESP (systemd-boot, slot A's committed
# entry), an empty data partition, and the GPT disk from
# board/ftbridge/BOARD/genimage.cfg (generated from board/BOARD.json; a
# test keeps them equal). Arguments: BINARIES_DIR BOARD.
set -euo pipefail
BIN=$1
BOARD=$2
HERE=$BR2_EXTERNAL_FTBRIDGE_PATH/board/ftbridge
GEN=$BUILD_DIR/ftbridge-gen-$BOARD
# shellcheck disable=SC1091
. "$GEN/board.env"
CMDLINE=$(cat "$GEN/overlay/etc/ftbridge-cmdline")

ESP=$BIN/esp
rm -rf "$ESP"
mkdir -p "$ESP/EFI/BOOT" "$ESP/loader/entries" "$ESP/ftbridge/A"
# systemd-boot as Buildroot installs it (the name's case varies; FAT does not care).
loader=$(find "$BIN/efi-part/EFI/BOOT" -iname "$EFI_LOADER" | head -n 1)
cp "$loader" "$ESP/EFI/BOOT/$EFI_LOADER"
cp "$TARGET_DIR/boot/vmlinuz-buildroot" "$ESP/ftbridge/A/vmlinuz"
printf 'default ftbridge-*\ntimeout 0\neditor no\nauto-entries no\nauto-firmware no\n' >"$ESP/loader/loader.conf"
# Same entry format as firmware/update (ESP.InstallSlot); no initramfs:
# the buildroot kernel has the root's drivers built in.
printf 'title ftbridge (slot A)\nversion 0001\nlinux /ftbridge/A/vmlinuz\noptions root=PARTLABEL=root-a rootfstype=squashfs ro rauc.slot=A %s\n' \
	"$CMDLINE" >"$ESP/loader/entries/ftbridge-0001-A.conf"

rm -f "$BIN/esp.vfat" "$BIN/data.ext4"
"$HOST_DIR/sbin/mkfs.vfat" -C -F 32 -n ESP "$BIN/esp.vfat" $((ESP_MIB * 1024)) >/dev/null
MTOOLS_SKIP_CHECK=1 "$HOST_DIR/bin/mcopy" -s -m -i "$BIN/esp.vfat" "$ESP/"* ::
mkdir -p "$BUILD_DIR/ftbridge-data/ftbridge" "$BUILD_DIR/ftbridge-data/rauc"
"$HOST_DIR/sbin/mke2fs" -q -t ext4 -L data -d "$BUILD_DIR/ftbridge-data" "$BIN/data.ext4" "${DATA_MIB}M"

support/scripts/genimage.sh -c "$HERE/$BOARD/genimage.cfg"

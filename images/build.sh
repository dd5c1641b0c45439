#!/usr/bin/env bash
# Builds images/out/$BOARD/disk.img: a GPT disk with an ESP (systemd-boot),
# two read-only squashfs root slots (A filled, B empty) and an ext4 data
# partition, from Debian bookworm packages and this tree's Go binaries.
# Usage: images/build.sh BOARD   (run as root from anywhere; see docs/images.md)
# Environment:
#   ROOT_PASSWORD   root password for the console's root shell (default:
#                   root locked, the shell entry refuses)
#   FTB_SIGNING_CERT, FTB_SIGNING_KEY  update signing pair whose cert goes
#                   into the image keyring (default: a development CA made
#                   once under images/out/keys)
#   MIRROR          Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail

BOARD=${1:-${BOARD:-x86_64}}
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
export PATH="/usr/local/go/bin:$PATH"
OUT=$TOP/images/out/$BOARD
# Scratch space and the package cache live in dot directories, which go
# ./... and the repository's file walks skip (a root being built has /proc
# mounted in it).
WORK=$TOP/images/.work/$BOARD
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
START=$(date +%s)

step() { printf '==> [%4ds] %s\n' "$(($(date +%s) - START))" "$*"; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap, chroot, device nodes)"
for t in mmdebstrap genimage mksquashfs mkfs.vfat mcopy mke2fs openssl go; do
	command -v "$t" >/dev/null || die "missing $t: see docs/images.md for the packages"
done

# Reproducibility: every time stamp we control comes from the commit.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}

rm -rf "$WORK"
mkdir -p "$WORK" "$OUT"

step "board files for $BOARD"
go run ./images/mkimage gen --board "$BOARD" --out "$WORK/gen"
# shellcheck disable=SC1091
. "$WORK/gen/board.env"

if [ "$ARCH" != "$(dpkg --print-architecture)" ]; then
	# Foreign root: maintainer scripts run through qemu-user.
	[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	update-binfmts --enable "qemu-$QEMU_ARCH" >/dev/null 2>&1 || true
	[ -e "/proc/sys/fs/binfmt_misc/qemu-$QEMU_ARCH" ] || die "binfmt for qemu-$QEMU_ARCH not available (install qemu-user-static binfmt-support)"
fi

step "Go binaries ($ARCH)"
mkdir -p "$WORK/bin"
CMDS="./cmd/ftbridged ./cmd/ftconsole"
[ -d cmd/ftbridge ] && CMDS="$CMDS ./cmd/ftbridge"
# shellcheck disable=SC2086
CGO_ENABLED=0 GOOS=linux GOARCH=$ARCH go build -trimpath -buildvcs=false -ldflags="-s -w -buildid=" -o "$WORK/bin/" $CMDS

step "update signing keyring"
if [ -n "${FTB_SIGNING_CERT:-}" ]; then
	cp "$FTB_SIGNING_CERT" "$WORK/keyring.pem"
else
	"$TOP/images/devkeys.sh" "$TOP/images/out/keys"
	cp "$TOP/images/out/keys/dev.cert.pem" "$WORK/keyring.pem"
fi

UNIT_SRC=$TOP/deploy/systemd/ftbridged.service
[ -f "$UNIT_SRC" ] || UNIT_SRC=$TOP/images/rootfs/etc/systemd/system/ftbridged.service

step "root file system (mmdebstrap $SUITE $ARCH)"
# The initramfs is made once, after every package is in: left to dpkg it
# is made twice (the kernel's postinst, then initramfs-tools' trigger),
# which costs 70 s per run on arm64, where mkinitramfs runs under
# qemu-user. update-initramfs is diverted to a no-op for the install.
CACHE=$TOP/images/.cache/$ARCH
mkdir -p "$CACHE"
PKGS=systemd-sysv,udev,$KERNEL_PKG,initramfs-tools,zstd,dbus,rauc,rauc-service,systemd-boot,iproute2,kmod,e2fsprogs,procps
ROOT=$WORK/rootfs
mmdebstrap --variant=minbase --arch="$ARCH" --include="$PKGS" \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
	--setup-hook="sync-in '$CACHE' /var/cache/apt/archives" \
	--essential-hook="cp -a '$WORK/gen/initramfs/.' \"\$1/\"" \
	--essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs' \
	--essential-hook='printf "#!/bin/sh\n# build.sh: the initramfs is made once, at the end\nexit 0\n" >"$1/usr/sbin/update-initramfs"; chmod 755 "$1/usr/sbin/update-initramfs"' \
	--customize-hook='rm "$1/usr/sbin/update-initramfs"; chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs' \
	--customize-hook='for k in "$1"/boot/vmlinuz-*; do chroot "$1" update-initramfs -c -k "${k##*/vmlinuz-}"; done' \
	--customize-hook="sync-out /var/cache/apt/archives '$CACHE'" \
	--customize-hook="'$TOP/images/customize.sh' \"\$1\" '$WORK' '$UNIT_SRC' '$VERSION'" \
	"$SUITE" "$ROOT" \
	"deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
	"deb ${MIRROR%/debian}/debian-security $SUITE-security main"

step "prune the root"
"$TOP/images/prune.sh" "$ROOT" "$WORK/gen/modules.keep"

step "ESP"
go run ./images/mkimage esp --board "$BOARD" --root "$ROOT" --out "$WORK/esp" --version "$VERSION"
rm -f "$WORK/esp.vfat"
mkfs.vfat -C -F 32 -S 512 -n ESP -i 46544231 "$WORK/esp.vfat" $((ESP_MIB * 1024)) >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -s -m -i "$WORK/esp.vfat" "$WORK/esp/"* ::

step "root slot squashfs"
mksquashfs "$ROOT" "$WORK/root.squashfs" -comp zstd -Xcompression-level 15 -b 1M -noappend -no-progress -quiet >/dev/null
ROOT_BYTES=$(stat -c %s "$WORK/root.squashfs")
[ "$ROOT_BYTES" -lt $((SLOT_MIB * 1024 * 1024)) ] || die "root.squashfs ($ROOT_BYTES bytes) does not fit a ${SLOT_MIB} MiB slot"

step "data partition"
mkdir -p "$WORK/data/ftbridge" "$WORK/data/rauc"
chmod 700 "$WORK/data/ftbridge"
rm -f "$WORK/data.ext4"
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mke2fs -q -t ext4 -L data -U 6b8b4567-3c49-4e0d-8a73-64d6a2b0f1a5 \
	-E root_owner=0:0,hash_seed=6b8b4567-3c49-4e0d-8a73-64d6a2b0f1a5 -d "$WORK/data" "$WORK/data.ext4" "${DATA_MIB}M"

step "disk image"
mkdir -p "$WORK/empty" "$WORK/genimage-tmp"
rm -f "$OUT/disk.img"
genimage --config "$WORK/gen/genimage.cfg" --inputpath "$WORK" --outputpath "$OUT" \
	--rootpath "$WORK/empty" --tmppath "$WORK/genimage-tmp" >"$WORK/genimage.log" 2>&1 || { cat "$WORK/genimage.log"; die genimage; }
cp "$WORK/root.squashfs" "$OUT/root.squashfs"
cp "$WORK/keyring.pem" "$OUT/keyring.pem"
echo "$VERSION" >"$OUT/version"
cp "$WORK/gen/board.env" "$OUT/board.env"

END=$(date +%s)
DISK_ALLOC=$(du -k "$OUT/disk.img" | cut -f1)
printf '\nimage    %s\nboard    %s (%s)\nversion  %s\nroot     %d KiB squashfs (slot %d MiB)\ndisk     %d MiB (%d MiB allocated)\ntime     %d s\n' \
	"$OUT/disk.img" "$BOARD" "$ARCH" "$VERSION" $((ROOT_BYTES / 1024)) "$SLOT_MIB" \
	$(($(stat -c %s "$OUT/disk.img") / 1048576)) $((DISK_ALLOC / 1024)) $((END - START)) | tee "$OUT/build-report.txt"
rm -rf "$WORK/rootfs" "$WORK/genimage-tmp"

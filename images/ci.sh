#!/usr/bin/env bash
# CI for the firmware images: installs the image tool packages (as root),
# builds the boards' images and runs the qemu image tests. .ci/run runs it
# after make test:
#
#   bash images/ci.sh            x86_64 and arm64 images, every image test
#   FTB_IMAGE_QUICK=1 bash images/ci.sh
#                                x86_64 only: layout, boot, in-line failover
#                                (no arm64 build, no update/rollback test)
#
# Prints MEASURE lines (build and boot times) and the test summary.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive
PKGS=(qemu-system-x86 qemu-system-arm qemu-utils ovmf qemu-efi-aarch64 mmdebstrap genimage
	mtools dosfstools squashfs-tools systemd-boot-efi e2fsprogs fdisk kmod cpio
	qemu-user-static binfmt-support arch-test rauc openssl iproute2)
START=$(date +%s)
t() { echo "MEASURE $1: $(($(date +%s) - $2)) s"; }

if [ "$(id -u)" -ne 0 ]; then
	echo "images/ci.sh: needs root (mmdebstrap, namespaces); skipping the image tests" >&2
	exit 0
fi
missing=()
for p in "${PKGS[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

# A root password for the console's root shell, made per run: the boot
# test checks the shell, and a failed in-line run dumps the daemon's
# journal from it. (Updates go through the API.)
ROOT_PASSWORD=ci-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
export ROOT_PASSWORD

boards=(x86_64 arm64)
run='TestImageLayout|TestBootX86|TestBootArm64|TestUpdateRollback|TestInlineFailover'
if [ "${FTB_IMAGE_QUICK:-}" = 1 ]; then
	boards=(x86_64)
	run='TestImageLayout|TestBootX86|TestInlineFailover'
fi
for b in "${boards[@]}"; do
	s=$(date +%s)
	bash images/build.sh "$b"
	t "image build $b" "$s"
done
s=$(date +%s)
log=$(mktemp)
rc=0
FTB_IMAGE_TESTS=1 FTB_IMAGE_ROOT_PASSWORD=$ROOT_PASSWORD \
	go test -count=1 -timeout 45m -v -run "$run" ./images/imagetest/ >"$log" 2>&1 || rc=$?
if [ "$rc" -eq 0 ]; then
	# The summary: which tests ran and what they measured.
	grep -E '^(=== RUN|--- |ok |PASS)|MEASURE' "$log" || true
else
	cat "$log"
fi
rm -f "$log"
t "image tests" "$s"
t "images total" "$START"
exit "$rc"

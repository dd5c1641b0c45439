#!/usr/bin/env bash
# Builds a signed RAUC update bundle from the root slot image of the last
# `make image`: images/out/$BOARD/update.raucb.
# Usage: images/bundle.sh BOARD [--broken OUT]
#   --broken OUT  write instead a bundle whose ftbridged exits at once, for
#                 the rollback test (never ship one).
# Environment: FTB_SIGNING_CERT, FTB_SIGNING_KEY (default: the development
# pair in images/out/keys, the one the image trusts).
set -euo pipefail
BOARD=${1:?usage: bundle.sh BOARD [--broken OUT]}
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUTDIR=$TOP/images/out/$BOARD
START=$(date +%s)
[ -f "$OUTDIR/root.squashfs" ] || { echo "bundle.sh: no $OUTDIR/root.squashfs: run make image BOARD=$BOARD first" >&2; exit 1; }
command -v rauc >/dev/null || { echo "bundle.sh: rauc not installed (apt-get install rauc)" >&2; exit 1; }
# shellcheck disable=SC1091
. "$OUTDIR/board.env"
CERT=${FTB_SIGNING_CERT:-$TOP/images/out/keys/dev.cert.pem}
KEY=${FTB_SIGNING_KEY:-$TOP/images/out/keys/dev.key.pem}
VERSION=$(cat "$OUTDIR/version")
OUT=$OUTDIR/update.raucb
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

if [ "${2:-}" = "--broken" ]; then
	OUT=${3:?--broken needs an output file}
	VERSION=$VERSION-broken
	unsquashfs -q -n -d "$STAGE/root" "$OUTDIR/root.squashfs" >/dev/null
	printf '#!/bin/sh\necho "ftbridged: deliberately broken build (rollback test)" >&2\nexit 1\n' >"$STAGE/root/usr/sbin/ftbridged"
	chmod 755 "$STAGE/root/usr/sbin/ftbridged"
	echo "$VERSION" >"$STAGE/root/etc/ftbridge-release"
	mkdir -p "$STAGE/bundle"
	mksquashfs "$STAGE/root" "$STAGE/bundle/root.squashfs" -comp zstd -b 1M -noappend -no-progress -quiet >/dev/null
	rm -rf "$STAGE/root"
else
	mkdir -p "$STAGE/bundle"
	cp "$OUTDIR/root.squashfs" "$STAGE/bundle/root.squashfs"
fi
cat >"$STAGE/bundle/manifest.raucm" <<EOM
[update]
compatible=$COMPATIBLE
version=$VERSION

[bundle]
format=verity

[image.rootfs]
filename=root.squashfs
EOM
rm -f "$OUT"
# --keyring: check the fresh signature the way the box will.
rauc bundle --cert="$CERT" --key="$KEY" --keyring="$CERT" "$STAGE/bundle" "$OUT" >/dev/null
echo "bundle   $OUT ($VERSION, $(($(stat -c %s "$OUT") / 1024)) KiB, $(($(date +%s) - START)) s)"

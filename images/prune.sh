#!/usr/bin/env bash
# Shrinks a root for a squashfs slot: keeps only the kernel modules named in
# KEEP (and what they depend on), drops package caches, docs and the
# kernel's build leftovers. Usage: prune.sh ROOT KEEP_FILE
set -euo pipefail
ROOT=$1 KEEP=$2
kvers=$(ls "$ROOT/lib/modules")
[ "$(echo "$kvers" | wc -w)" -eq 1 ] || { echo "prune.sh: want one kernel, have: $kvers" >&2; exit 1; }
KV=$kvers
MODDIR=$ROOT/lib/modules/$KV
keep=$(mktemp)
missing=""
while read -r m; do
	[ -z "$m" ] && continue
	if deps=$(modprobe -d "$ROOT" -S "$KV" --show-depends "$m" 2>/dev/null); then
		echo "$deps" | awk '$1 == "insmod" { print $2 }' >>"$keep"
	else
		missing="$missing $m"
	fi
done <"$KEEP"
[ -z "$missing" ] || echo "prune.sh: not in kernel $KV (skipped):$missing" >&2
before=$(du -sk "$MODDIR" | cut -f1)
find "$MODDIR/kernel" -type f -name '*.ko*' | sort >"$keep.all"
sed "s|^$ROOT||" "$keep" | sort -u >"$keep.want"
sed "s|^$ROOT||" "$keep.all" | comm -23 - "$keep.want" | sed "s|^|$ROOT|" | xargs -r rm -f
find "$MODDIR/kernel" -type d -empty -delete
depmod -b "$ROOT" "$KV"
after=$(du -sk "$MODDIR" | cut -f1)
echo "modules: $((before / 1024)) MiB -> $((after / 1024)) MiB ($(wc -l <"$keep.want") kept)"
rm -f "$keep" "$keep.all" "$keep.want"

rm -rf "$ROOT/var/cache/apt/"* "$ROOT/var/lib/apt/lists/"* "$ROOT/var/log/"* \
	"$ROOT/usr/share/doc/"[!f]* "$ROOT/usr/share/man" "$ROOT/usr/share/info" \
	"$ROOT/usr/share/lintian" "$ROOT/usr/share/bash-completion" \
	"$ROOT/boot/System.map-"* "$ROOT/boot/config-"* "$ROOT/var/lib/dpkg/"*-old \
	"$ROOT/etc/"*- "$ROOT/var/cache/debconf/"*-old
# Byte-compiled caches and ldconfig's auxiliary cache change every build.
rm -f "$ROOT/var/cache/ldconfig/aux-cache"

// Package update manages the appliance's two root slots (A and B) through
// systemd-boot's boot loader entries on the EFI system partition, and is the
// glue between RAUC and systemd-boot's boot counting.
//
// Each slot boots from one loader entry, "ftbridge-GGGG-S.conf", where GGGG
// is a generation number and S the slot. systemd-boot sorts entries by id in
// descending version order and boots the first one that has tries left, so
// the newest generation wins. An update writes the inactive slot (RAUC),
// then InstallSlot copies that slot's kernel and initramfs to the ESP and
// writes a new, higher generation entry with a boot counter
// ("ftbridge-0002-B+1.conf"). systemd-boot decrements the counter on every
// boot of the entry; systemd-bless-boot removes it once boot-complete.target
// is reached, which the image only lets happen when ftbridged is healthy. An
// entry whose counter reaches zero ("+0-1") sorts last, so the previous slot
// boots again by itself: that is the rollback, done by the boot loader and
// needing no code of ours at the moment things go wrong.
//
// The RAUC custom boot loader backend (BackendMain) maps RAUC's
// get-primary/set-primary/get-state/set-state calls onto these entries.
package update

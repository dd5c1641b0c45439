// Package board loads the per-board hardware descriptions that the image
// build, the console tool and the update glue share: which NIC is the uplink,
// which are replica ports and which is management (matched by PCI path or
// MAC, never by ethN order, because kernel names follow driver load order),
// the serial console, the hardware watchdog, the kernel modules the board
// needs and the disk layout.
//
// The descriptions are JSON files beside this package (x86_64.json,
// arm64.json), embedded at build time so the image build and the running
// appliance read the same data. Load returns one by name; Parse reads any
// document in the same format, strictly (unknown keys are errors), so a typo
// in a board file fails the build instead of silently dropping a port.
//
// Generators turn a board into the files the image needs: systemd .link files
// that name the ports (LinkFiles) and a genimage configuration for the GPT
// disk (Genimage).
package board

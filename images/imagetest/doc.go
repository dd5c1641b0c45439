// Package imagetest boots the appliance images built by `make image` in
// qemu (TCG: KVM is not usable on the build machines) and drives their
// serial console, as a person at the box would. Its tests are the image
// tests of CI:
//
//   - TestImageLayout: the disk has the partitions, slots and files it
//     should (no qemu needed).
//   - TestBootX86: boot to ftconsole on ttyS0, status, ports named by PCI
//     path, the daemon running, the API over a forwarded port when the
//     daemon has a management plane, admin password reset and factory
//     reset through the menu.
//   - TestBootArm64: the same boot on ttyAMA0, to a running daemon.
//   - TestUpdateRollback: a signed RAUC bundle installed into slot B boots
//     and is committed; a bundle whose daemon cannot start rolls back by
//     itself, with an event saying so.
//
// They run only when FTB_IMAGE_TESTS=1 and the image exists
// (images/out/BOARD/disk.img), since an image build takes minutes; see
// docs/images.md. The VM type is the reusable harness: a qemu process
// with its serial console on pipes and an expect-style reader.
package imagetest

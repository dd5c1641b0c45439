// Command mkimage generates the board-specific files of an appliance image
// from a board definition (board/*.json), so the shell recipe in
// images/build.sh holds no per-board knowledge:
//
//	mkimage gen --board x86_64 --out DIR
//	    DIR/initramfs/   files copied into the root before the kernel is
//	                     installed (initramfs modules and settings)
//	    DIR/overlay/     files copied over the finished root (port .link
//	                     files, board.json, watchdog, console, RAUC config)
//	    DIR/genimage.cfg the GPT layout for genimage
//	    DIR/modules.keep kernel modules to keep when pruning
//	    DIR/board.env    shell variables for build.sh
//	mkimage esp --board x86_64 --root ROOTFS --out DIR --version V
//	    fills DIR with the ESP: systemd-boot, loader.conf, and slot A's
//	    kernel, initramfs and committed loader entry.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ftbridge/ftbridge/board"
	"github.com/ftbridge/ftbridge/firmware/update"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: mkimage gen|esp [flags]")
	}
	fs := flag.NewFlagSet("mkimage "+args[0], flag.ContinueOnError)
	name := fs.String("board", "", "board `name` (board/NAME.json)")
	out := fs.String("out", "", "output `directory`")
	root := fs.String("root", "", "root file system `directory` (esp)")
	version := fs.String("version", "dev", "firmware `version` shown in the boot entry (esp)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *name == "" || *out == "" {
		return errors.New("--board and --out are required")
	}
	b, err := board.Load(*name)
	if err != nil {
		return err
	}
	switch args[0] {
	case "gen":
		return gen(b, *out)
	case "esp":
		if *root == "" {
			return errors.New("esp: --root is required")
		}
		return esp(b, *root, *out, *version)
	}
	return fmt.Errorf("unknown subcommand %q", args[0])
}

// writeFiles writes name -> content under dir, creating directories.
func writeFiles(dir string, files map[string]string) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(files[n]), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func gen(b *board.Board, out string) error {
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	raw, err := boardJSON(b)
	if err != nil {
		return err
	}
	initramfs := map[string]string{
		// Read by initramfs-tools next to /etc/initramfs-tools/modules,
		// so the package's own conffile stays untouched.
		"usr/share/initramfs-tools/modules.d/ftbridge": "# Generated from board/" + b.Name + ".json\n" + strings.Join(b.Modules.Initrd, "\n") + "\n",
		// MODULES=dep cannot see the target hardware from a chroot; the
		// board's list is exact. No swap, so no resume device to wait for.
		"etc/initramfs-tools/conf.d/ftbridge.conf": "MODULES=list\nRESUME=none\nCOMPRESS=zstd\n",
	}
	overlay := map[string]string{
		"usr/share/ftbridge/board.json": raw,
		"etc/systemd/system.conf.d/10-ftbridge-watchdog.conf": fmt.Sprintf(
			"# Generated from board/%s.json: the hardware watchdog resets a hung box.\n[Manager]\nRuntimeWatchdogSec=%d\nRebootWatchdogSec=%d\nWatchdogDevice=%s\n",
			b.Name, b.Watchdog.TimeoutSec, 2*b.Watchdog.TimeoutSec, b.Watchdog.Device),
		"etc/rauc/system.conf":             raucConf(b),
		"etc/ftbridge-cmdline":             b.Kernel.Cmdline + "\n",
		"etc/ftbridge-console":             b.Console.Device + "\n",
		"etc/modules-load.d/ftbridge.conf": "# Generated from board/" + b.Name + ".json: the dataplane's packet sockets.\naf_packet\n",
	}
	var dp []string
	for _, p := range b.Ports {
		if p.Role != board.RoleManagement {
			dp = append(dp, p.Name)
		}
	}
	// Dataplane ports are up but carry no address of the box: the
	// dataplane owns them through packet sockets.
	overlay["etc/systemd/network/20-ftbridge-dataplane.network"] = fmt.Sprintf(
		"# Generated from board/%s.json.\n[Match]\nName=%s\n\n[Link]\nRequiredForOnline=no\nActivationPolicy=always-up\n\n[Network]\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nLLDP=no\nEmitLLDP=no\n",
		b.Name, strings.Join(dp, " "))
	for _, lf := range b.LinkFiles() {
		overlay["etc/systemd/network/"+lf.Name] = lf.Content
	}
	if err := writeFiles(filepath.Join(out, "initramfs"), initramfs); err != nil {
		return err
	}
	if err := writeFiles(filepath.Join(out, "overlay"), overlay); err != nil {
		return err
	}
	// ftconsole replaces the login prompt on the board's console; the
	// getty generator would otherwise start serial-getty there too.
	wants := filepath.Join(out, "overlay", "etc/systemd/system/getty.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return err
	}
	if err := os.Symlink("/etc/systemd/system/ftconsole@.service", filepath.Join(wants, "ftconsole@"+b.Console.Device+".service")); err != nil {
		return err
	}
	if err := os.Symlink("/dev/null", filepath.Join(out, "overlay", "etc/systemd/system", "serial-getty@"+b.Console.Device+".service")); err != nil {
		return err
	}
	keep := append(append(append([]string{}, b.Modules.Initrd...), b.Modules.Root...), b.Watchdog.Modules...)
	slot, _ := b.Slot("A")
	var espMiB, dataMiB int
	for _, p := range b.Layout.Partitions {
		switch p.Role {
		case board.PartESP:
			espMiB = p.SizeMiB
		case board.PartData:
			dataMiB = p.SizeMiB
		}
	}
	env := fmt.Sprintf("ARCH=%s\nQEMU_ARCH=%s\nKERNEL_PKG=%s\nEFI_LOADER=%s\nSYSTEMD_BOOT=%s\nCONSOLE=%s\nESP_MIB=%d\nSLOT_MIB=%d\nDATA_MIB=%d\nCOMPATIBLE=%s\n",
		b.Arch, b.QemuArch, b.Kernel.Package, b.EFILoader, b.SystemdBoot, b.Console.Device, espMiB, slot.SizeMiB, dataMiB, b.Compatible())
	return writeFiles(out, map[string]string{
		"genimage.cfg": b.Genimage("disk.img", map[string]string{"esp": "esp.vfat", "root-a": "root.squashfs", "data": "data.ext4"}),
		"modules.keep": strings.Join(keep, "\n") + "\n",
		"board.env":    env,
	})
}

func boardJSON(b *board.Board) (string, error) {
	raw, err := board.Raw(b.Name)
	return string(raw), err
}

// raucConf is RAUC's system configuration: two raw slots switched through
// the ftbridge custom backend (systemd-boot entries with boot counting),
// bundles verified against the keyring baked into the image.
func raucConf(b *board.Board) string {
	var s strings.Builder
	fmt.Fprintf(&s, "# Generated from board/%s.json.\n", b.Name)
	fmt.Fprintf(&s, "[system]\ncompatible=%s\nbootloader=custom\nbundle-formats=-plain\nstatusfile=/data/rauc/status.raucs\n\n", b.Compatible())
	s.WriteString("[handlers]\nbootloader-custom-backend=/usr/lib/ftbridge/rauc-backend\n\n")
	s.WriteString("[keyring]\npath=/etc/rauc/keyring.pem\n\n")
	for i, sl := range []string{"A", "B"} {
		p, _ := b.Slot(sl)
		fmt.Fprintf(&s, "[slot.rootfs.%d]\ndevice=/dev/disk/by-partlabel/%s\ntype=raw\nbootname=%s\n\n", i, p.Label, sl)
	}
	return s.String()
}

func esp(b *board.Board, root, out, version string) error {
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	sb := filepath.Join(root, "usr/lib/systemd/boot/efi", b.SystemdBoot)
	for _, dst := range []string{filepath.Join("EFI/BOOT", b.EFILoader), filepath.Join("EFI/systemd", b.SystemdBoot)} {
		if err := copyFile(sb, filepath.Join(out, dst)); err != nil {
			return err
		}
	}
	// The newest ftbridge entry with tries left boots; no menu, so a
	// headless box never waits for a key press.
	if err := writeFiles(out, map[string]string{
		"loader/loader.conf": "default ftbridge-*\ntimeout 0\neditor no\nauto-entries no\nauto-firmware no\n",
	}); err != nil {
		return err
	}
	ks, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(ks) != 1 {
		return fmt.Errorf("want exactly one kernel in %s/boot, have %v", root, ks)
	}
	ver := strings.TrimPrefix(filepath.Base(ks[0]), "vmlinuz-")
	e := &update.ESP{Dir: out, Cmdline: b.Kernel.Cmdline}
	_, err := e.InstallSlot(update.SlotA, ks[0], filepath.Join(root, "boot", "initrd.img-"+ver), version, false)
	return err
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

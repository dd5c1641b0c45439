package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftbridge/ftbridge/board"
)

func TestGen(t *testing.T) {
	for _, name := range board.Names() {
		t.Run(name, func(t *testing.T) {
			b, _ := board.Load(name)
			out := filepath.Join(t.TempDir(), "gen")
			if err := run([]string{"gen", "--board", name, "--out", out}, io.Discard); err != nil {
				t.Fatal(err)
			}
			read := func(p string) string {
				t.Helper()
				s, err := os.ReadFile(filepath.Join(out, p))
				if err != nil {
					t.Fatal(err)
				}
				return string(s)
			}
			env := read("board.env")
			for _, want := range []string{"ARCH=" + b.Arch + "\n", "CONSOLE=" + b.Console.Device + "\n", "SLOT_MIB=320\n", "COMPATIBLE=ftbridge-" + name + "\n", "KERNEL_PKG=" + b.Kernel.Package + "\n"} {
				if !strings.Contains(env, want) {
					t.Errorf("board.env lacks %q:\n%s", want, env)
				}
			}
			if read("genimage.cfg") != b.Genimage("disk.img", map[string]string{"esp": "esp.vfat", "root-a": "root.squashfs", "data": "data.ext4"}) {
				t.Error("genimage.cfg is not the board's layout")
			}
			rauc := read("overlay/etc/rauc/system.conf")
			for _, want := range []string{"compatible=ftbridge-" + name, "bootloader=custom", "device=/dev/disk/by-partlabel/root-b\ntype=raw\nbootname=B", "path=/etc/rauc/keyring.pem"} {
				if !strings.Contains(rauc, want) {
					t.Errorf("rauc system.conf lacks %q", want)
				}
			}
			links, _ := filepath.Glob(filepath.Join(out, "overlay/etc/systemd/network/*.link"))
			if len(links) != len(b.Ports) {
				t.Errorf("%d link files for %d ports", len(links), len(b.Ports))
			}
			dp := read("overlay/etc/systemd/network/20-ftbridge-dataplane.network")
			if !strings.Contains(dp, "uplink0") || strings.Contains(dp, "mgmt0") {
				t.Errorf("dataplane .network must name the dataplane ports only:\n%s", dp)
			}
			if tgt, err := os.Readlink(filepath.Join(out, "overlay/etc/systemd/system/serial-getty@"+b.Console.Device+".service")); err != nil || tgt != "/dev/null" {
				t.Errorf("serial getty on the console not masked: %q %v", tgt, err)
			}
			if _, err := os.Lstat(filepath.Join(out, "overlay/etc/systemd/system/getty.target.wants/ftconsole@"+b.Console.Device+".service")); err != nil {
				t.Errorf("ftconsole not enabled on the console: %v", err)
			}
			mods := read("initramfs/usr/share/initramfs-tools/modules.d/ftbridge")
			for _, m := range b.Modules.Initrd {
				if !strings.Contains(mods, "\n"+m+"\n") {
					t.Errorf("initramfs module list lacks %s", m)
				}
			}
			keep := read("modules.keep")
			for _, m := range append(b.Modules.Root, b.Watchdog.Modules...) {
				if !strings.Contains("\n"+keep, "\n"+m+"\n") {
					t.Errorf("modules.keep lacks %s", m)
				}
			}
			if !strings.Contains(read("overlay/etc/systemd/system.conf.d/10-ftbridge-watchdog.conf"), "RuntimeWatchdogSec=30\n") {
				t.Error("watchdog not configured")
			}
		})
	}
}

func TestESP(t *testing.T) {
	b, _ := board.Load("x86_64")
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/lib/systemd/boot/efi"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/lib/systemd/boot/efi", b.SystemdBoot), []byte("sd-boot"), 0o644)
	os.WriteFile(filepath.Join(root, "boot/vmlinuz-6.1.0-28-amd64"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(root, "boot/initrd.img-6.1.0-28-amd64"), []byte("initrd"), 0o644)
	out := filepath.Join(t.TempDir(), "esp")
	if err := run([]string{"esp", "--board", "x86_64", "--root", root, "--out", out, "--version", "v9"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"EFI/BOOT/BOOTX64.EFI":                "sd-boot",
		"EFI/systemd/systemd-bootx64.efi":     "sd-boot",
		"ftbridge/A/vmlinuz":                  "kernel",
		"ftbridge/A/initrd.img":               "initrd",
		"loader/loader.conf":                  "default ftbridge-*\n",
		"loader/entries/ftbridge-0001-A.conf": "title ftbridge v9 (slot A)\n",
	} {
		got, err := os.ReadFile(filepath.Join(out, p))
		if err != nil || !strings.HasPrefix(string(got), want) {
			t.Errorf("%s = %q, %v; want prefix %q", p, got, err, want)
		}
	}
	// Two kernels in the root: refused rather than guessing.
	os.WriteFile(filepath.Join(root, "boot/vmlinuz-6.1.0-29-amd64"), []byte("kernel2"), 0o644)
	if err := run([]string{"esp", "--board", "x86_64", "--root", root, "--out", out}, io.Discard); err == nil {
		t.Error("two kernels accepted")
	}
	if err := run([]string{"frob", "--board", "x86_64", "--out", out}, io.Discard); err == nil {
		t.Error("unknown subcommand accepted")
	}
}

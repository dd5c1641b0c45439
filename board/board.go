package board

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"
)

//go:embed *.json
var files embed.FS

// Board describes one hardware target.
type Board struct {
	// Name is the board's identifier, used as BOARD= in `make image` and as
	// the RAUC compatible string suffix.
	Name string `json:"name"`
	// Description is a human-readable summary.
	Description string `json:"description"`
	// Arch is the Debian (and Go) architecture name: amd64 or arm64.
	Arch string `json:"arch"`
	// QemuArch is the qemu system/user suffix: x86_64 or aarch64.
	QemuArch string `json:"qemu_arch"`
	// EFILoader is the removable-media loader file name under
	// EFI/BOOT/ on the ESP.
	EFILoader string `json:"efi_loader"`
	// SystemdBoot is the systemd-boot binary's file name in
	// /usr/lib/systemd/boot/efi.
	SystemdBoot string `json:"systemd_boot"`
	// Kernel names the Debian kernel package and its command line.
	Kernel Kernel `json:"kernel"`
	// Console is the serial console ftconsole runs on.
	Console Console `json:"console"`
	// Watchdog is the hardware watchdog systemd feeds.
	Watchdog Watchdog `json:"watchdog"`
	// Modules lists the kernel modules the board needs; everything else is
	// pruned from the image.
	Modules Modules `json:"modules"`
	// Ports is the port map: every NIC the appliance uses, by role.
	Ports []Port `json:"ports"`
	// Layout is the GPT disk layout.
	Layout Layout `json:"layout"`
	// Qemu describes how the boot tests emulate the board.
	Qemu Qemu `json:"qemu"`
}

// Kernel selects the kernel the image boots.
type Kernel struct {
	// Package is the Debian kernel meta-package installed into the root.
	Package string `json:"package"`
	// Image is the kernel's file name prefix in /boot (vmlinuz).
	Image string `json:"image"`
	// Cmdline is the board's kernel command line; the build appends root=
	// and the slot name.
	Cmdline string `json:"cmdline"`
}

// Console is the board's serial console.
type Console struct {
	// Device is the tty name without /dev/ (ttyS0, ttyAMA0).
	Device string `json:"device"`
	// Baud is the line speed.
	Baud int `json:"baud"`
}

// Watchdog is the board's hardware watchdog.
type Watchdog struct {
	// Device is the watchdog device node systemd opens.
	Device string `json:"device"`
	// Modules are the drivers that may provide it; the first that binds
	// wins.
	Modules []string `json:"modules"`
	// TimeoutSec is systemd's RuntimeWatchdogSec.
	TimeoutSec int `json:"timeout_sec"`
}

// Modules lists kernel modules kept in the image (with their dependencies).
type Modules struct {
	// Initrd are the modules the initramfs needs to find and mount the root
	// slot.
	Initrd []string `json:"initrd"`
	// Root are the modules the running system loads (NICs, watchdog, ...).
	Root []string `json:"root"`
}

// Role is what a port is for.
type Role string

// Port roles.
const (
	RoleManagement Role = "management"
	RoleUplink     Role = "uplink"
	RoleReplica    Role = "replica"
)

// Port is one NIC of the port map.
type Port struct {
	// Name is the interface name the port gets (at most 15 characters).
	Name string `json:"name"`
	// Role is management, uplink or replica.
	Role Role `json:"role"`
	// Match says how the NIC is recognised.
	Match Match `json:"match"`
}

// Match identifies a NIC by udev's ID_PATH (as systemd.link's Path=, globs
// allowed) or by MAC address. Either list may be empty but not both.
type Match struct {
	// Path are ID_PATH patterns such as "pci-0000:01:00.0".
	Path []string `json:"path,omitempty"`
	// MAC are MAC addresses, lower case, colon separated.
	MAC []string `json:"mac,omitempty"`
}

// Partition roles.
const (
	PartESP  = "esp"
	PartRoot = "root"
	PartData = "data"
)

// Layout is the disk layout.
type Layout struct {
	// SectorSize is the logical sector size the image is built for.
	SectorSize int `json:"sector_size"`
	// Partitions in disk order.
	Partitions []Partition `json:"partitions"`
}

// Partition is one GPT partition.
type Partition struct {
	// Label is the GPT partition name, used as PARTLABEL= everywhere.
	Label string `json:"label"`
	// Role is esp, root or data.
	Role string `json:"role"`
	// Slot is A or B for root partitions.
	Slot string `json:"slot,omitempty"`
	// SizeMiB is the partition size.
	SizeMiB int `json:"size_mib"`
}

// Qemu describes how tests emulate the board.
type Qemu struct {
	// Machine is the -machine type.
	Machine string `json:"machine"`
	// CPU is the -cpu model.
	CPU string `json:"cpu"`
	// FirmwareCode is the read-only UEFI code image.
	FirmwareCode string `json:"firmware_code"`
	// FirmwareVars is the UEFI variable store template (copied per run).
	FirmwareVars string `json:"firmware_vars"`
	// NICModel is the -device model of each port.
	NICModel string `json:"nic_model"`
	// Disk is the -device model of the disk.
	Disk string `json:"disk"`
	// Watchdog is the -device model of the watchdog, if any.
	Watchdog string `json:"watchdog,omitempty"`
}

// Names returns the names of the built-in boards, sorted.
func Names() []string {
	ents, _ := files.ReadDir(".")
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Load returns the built-in board called name.
func Load(name string) (*Board, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("board %q: invalid name", name)
	}
	b, err := files.ReadFile(name + ".json")
	if err != nil {
		return nil, fmt.Errorf("board %q: unknown (have %s)", name, strings.Join(Names(), ", "))
	}
	bd, err := Parse(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("board %q: %w", name, err)
	}
	if bd.Name != name {
		return nil, fmt.Errorf("board %q: file names board %q", name, bd.Name)
	}
	return bd, nil
}

// Parse reads a board document strictly and validates it.
func Parse(r io.Reader) (*Board, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var b Board
	if err := dec.Decode(&b); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the board document")
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	ifnameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,14}$`)
	modRE    = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	macRE    = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)
	labelRE  = regexp.MustCompile(`^[a-z0-9-]{1,36}$`)
	ttyRE    = regexp.MustCompile(`^tty[A-Za-z0-9]+$`)
)

// Validate checks the board's internal consistency: names well formed, one
// uplink, one management port, at least two replica ports, no NIC matched
// twice, an ESP, exactly the root slots A and B of equal size, and a data
// partition.
func (b *Board) Validate() error {
	if !nameRE.MatchString(b.Name) {
		return fmt.Errorf("name: %q is not a valid board name", b.Name)
	}
	switch b.Arch {
	case "amd64", "arm64":
	default:
		return fmt.Errorf("arch: %q is not amd64 or arm64", b.Arch)
	}
	if b.QemuArch == "" || b.EFILoader == "" || b.SystemdBoot == "" {
		return errors.New("qemu_arch, efi_loader and systemd_boot are required")
	}
	if !strings.HasPrefix(b.Kernel.Package, "linux-image-") {
		return fmt.Errorf("kernel.package: %q is not a Debian kernel package", b.Kernel.Package)
	}
	if b.Kernel.Image == "" {
		return errors.New("kernel.image: missing")
	}
	if strings.Contains(b.Kernel.Cmdline, "root=") {
		return errors.New("kernel.cmdline: must not set root= (the build adds it per slot)")
	}
	if !ttyRE.MatchString(b.Console.Device) {
		return fmt.Errorf("console.device: %q is not a tty name", b.Console.Device)
	}
	if !strings.Contains(b.Kernel.Cmdline, "console="+b.Console.Device) {
		return fmt.Errorf("kernel.cmdline: has no console=%s", b.Console.Device)
	}
	if b.Console.Baud <= 0 {
		return errors.New("console.baud: must be positive")
	}
	if !strings.HasPrefix(b.Watchdog.Device, "/dev/watchdog") {
		return fmt.Errorf("watchdog.device: %q is not a watchdog device", b.Watchdog.Device)
	}
	if b.Watchdog.TimeoutSec <= 0 || b.Watchdog.TimeoutSec > 600 {
		return fmt.Errorf("watchdog.timeout_sec: %d outside 1..600", b.Watchdog.TimeoutSec)
	}
	for _, list := range [][]string{b.Watchdog.Modules, b.Modules.Initrd, b.Modules.Root} {
		for _, m := range list {
			if !modRE.MatchString(m) {
				return fmt.Errorf("module %q: invalid name", m)
			}
		}
	}
	for _, m := range b.Watchdog.Modules {
		if !contains(b.Modules.Root, m) {
			return fmt.Errorf("watchdog.modules: %q is not in modules.root", m)
		}
	}
	if err := b.validatePorts(); err != nil {
		return err
	}
	return b.validateLayout()
}

func (b *Board) validatePorts() error {
	names := map[string]bool{}
	matches := map[string]string{}
	count := map[Role]int{}
	for i, p := range b.Ports {
		where := fmt.Sprintf("ports[%d]", i)
		if !ifnameRE.MatchString(p.Name) {
			return fmt.Errorf("%s.name: %q is not a valid interface name", where, p.Name)
		}
		// eth*, en*, wl* are the kernel's and udev's own namespaces: a
		// port named like them could clash with an unmatched NIC.
		for _, pre := range []string{"eth", "en", "wl", "ww"} {
			if strings.HasPrefix(p.Name, pre) {
				return fmt.Errorf("%s.name: %q collides with kernel/udev names (%s*)", where, p.Name, pre)
			}
		}
		if names[p.Name] {
			return fmt.Errorf("%s.name: duplicate %q", where, p.Name)
		}
		names[p.Name] = true
		switch p.Role {
		case RoleManagement, RoleUplink, RoleReplica:
		default:
			return fmt.Errorf("%s.role: %q is not management, uplink or replica", where, p.Role)
		}
		count[p.Role]++
		if len(p.Match.Path) == 0 && len(p.Match.MAC) == 0 {
			return fmt.Errorf("%s.match: needs a path or a mac", where)
		}
		for _, pat := range p.Match.Path {
			if _, err := path.Match(pat, ""); err != nil || pat == "" || strings.ContainsAny(pat, " \t\n") {
				return fmt.Errorf("%s.match.path: %q is not a valid pattern", where, pat)
			}
			if other, ok := matches["path "+pat]; ok {
				return fmt.Errorf("%s.match.path: %q also matches port %s", where, pat, other)
			}
			matches["path "+pat] = p.Name
		}
		for _, mac := range p.Match.MAC {
			if !macRE.MatchString(mac) {
				return fmt.Errorf("%s.match.mac: %q is not a lower-case colon-separated MAC", where, mac)
			}
			if other, ok := matches["mac "+mac]; ok {
				return fmt.Errorf("%s.match.mac: %q also matches port %s", where, mac, other)
			}
			matches["mac "+mac] = p.Name
		}
	}
	if count[RoleUplink] != 1 {
		return fmt.Errorf("ports: need exactly one uplink, have %d", count[RoleUplink])
	}
	if count[RoleManagement] != 1 {
		return fmt.Errorf("ports: need exactly one management port, have %d", count[RoleManagement])
	}
	if count[RoleReplica] < 2 {
		return fmt.Errorf("ports: need at least two replica ports, have %d", count[RoleReplica])
	}
	return nil
}

func (b *Board) validateLayout() error {
	if b.Layout.SectorSize != 512 && b.Layout.SectorSize != 4096 {
		return fmt.Errorf("layout.sector_size: %d is not 512 or 4096", b.Layout.SectorSize)
	}
	labels := map[string]bool{}
	roles := map[string]int{}
	slots := map[string]int{}
	for i, p := range b.Layout.Partitions {
		where := fmt.Sprintf("layout.partitions[%d]", i)
		if !labelRE.MatchString(p.Label) {
			return fmt.Errorf("%s.label: %q is not a valid partition label", where, p.Label)
		}
		if labels[p.Label] {
			return fmt.Errorf("%s.label: duplicate %q", where, p.Label)
		}
		labels[p.Label] = true
		if p.SizeMiB < 8 {
			return fmt.Errorf("%s.size_mib: %d is below 8", where, p.SizeMiB)
		}
		roles[p.Role]++
		switch p.Role {
		case PartESP, PartData:
			if p.Slot != "" {
				return fmt.Errorf("%s.slot: only root partitions have a slot", where)
			}
		case PartRoot:
			if p.Slot != "A" && p.Slot != "B" {
				return fmt.Errorf("%s.slot: %q is not A or B", where, p.Slot)
			}
			if _, dup := slots[p.Slot]; dup {
				return fmt.Errorf("%s.slot: duplicate slot %s", where, p.Slot)
			}
			slots[p.Slot] = p.SizeMiB
		default:
			return fmt.Errorf("%s.role: %q is not esp, root or data", where, p.Role)
		}
	}
	if roles[PartESP] != 1 || roles[PartData] != 1 {
		return errors.New("layout: needs exactly one esp and one data partition")
	}
	if len(slots) != 2 {
		return errors.New("layout: needs root slots A and B")
	}
	if slots["A"] != slots["B"] {
		return fmt.Errorf("layout: slot A is %d MiB but slot B is %d MiB (an update must fit either)", slots["A"], slots["B"])
	}
	return nil
}

// PortsByRole returns the ports with role r in board order.
func (b *Board) PortsByRole(r Role) []Port {
	var out []Port
	for _, p := range b.Ports {
		if p.Role == r {
			out = append(out, p)
		}
	}
	return out
}

// Partition returns the partition with the given label.
func (b *Board) Partition(label string) (Partition, bool) {
	for _, p := range b.Layout.Partitions {
		if p.Label == label {
			return p, true
		}
	}
	return Partition{}, false
}

// Slot returns the root partition of slot s (A or B).
func (b *Board) Slot(s string) (Partition, bool) {
	for _, p := range b.Layout.Partitions {
		if p.Role == PartRoot && p.Slot == s {
			return p, true
		}
	}
	return Partition{}, false
}

// Compatible is the RAUC compatible string: bundles for one board are
// refused by another.
func (b *Board) Compatible() string { return "ftbridge-" + b.Name }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Raw returns the built-in board file called name as stored, for copying
// into an image.
func Raw(name string) ([]byte, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("board %q: invalid name", name)
	}
	return files.ReadFile(name + ".json")
}

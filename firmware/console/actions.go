package console

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Actions is everything the menu can do to the box.
type Actions interface {
	// Status reports the box's state for the status screen and header.
	Status(ctx context.Context) Status
	// Management returns the current management network settings.
	Management() (Management, error)
	// SetManagement stores and applies management network settings.
	SetManagement(ctx context.Context, m Management) error
	// ResetAdminPassword discards the admin password and returns the newly
	// generated one.
	ResetAdminPassword(ctx context.Context) (string, error)
	// FactoryReset wipes configuration, keys, certificates and passwords
	// from the data partition (the firmware stays) and restarts the
	// services with defaults.
	FactoryReset(ctx context.Context) error
	// OtherSlot describes the slot a one-time boot would start, or an
	// error saying why there is none.
	OtherSlot() (string, error)
	// BootOtherSlot arranges a one-time boot of the other slot and
	// reboots.
	BootOtherSlot(ctx context.Context) error
	// Reboot restarts the box.
	Reboot(ctx context.Context) error
	// RootShell runs a root shell on the console after checking the root
	// password; it returns when the shell exits.
	RootShell(ctx context.Context) error
}

// Status is what the status screen shows.
type Status struct {
	// Version is the running firmware version.
	Version string
	// Slot is the running root slot (A or B), or "?".
	Slot string
	// Daemon is ftbridged's service state (active, failed, ...).
	Daemon string
	// Management summarises the management address ("mgmt0 dhcp
	// 192.0.2.7/24").
	Management string
	// AdminPassword is the generated admin password while it has not been
	// changed (first boot, after a reset), else empty.
	AdminPassword string
	// Ports lists the board's ports.
	Ports []PortStatus
	// Replicas lists replica health as the daemon reports it.
	Replicas []ReplicaStatus
	// ReplicasNote explains an empty Replicas (daemon or API not up).
	ReplicasNote string
}

// PortStatus is one port's line on the status screen.
type PortStatus struct {
	// Name is the interface name.
	Name string
	// Role is uplink, replica or management.
	Role string
	// State is the link state (up, down, missing).
	State string
	// MAC is the port's hardware address.
	MAC string
}

// ReplicaStatus is one replica's health.
type ReplicaStatus struct {
	// Name is the replica's configured name.
	Name string
	// Interface is the port it is on.
	Interface string
	// Health is the daemon's word for it (up, down, ...).
	Health string
}

// Management is the management port's network settings.
type Management struct {
	// DHCP selects DHCP; the other fields are then ignored.
	DHCP bool
	// Address is the static address with prefix length.
	Address netip.Prefix
	// Gateway is the default gateway, if any.
	Gateway netip.Addr
	// DNS are name servers, if any.
	DNS []netip.Addr
}

// String is the one-line summary shown in the menu.
func (m Management) String() string {
	if m.DHCP {
		return "DHCP"
	}
	s := "static " + m.Address.String()
	if m.Gateway.IsValid() {
		s += " via " + m.Gateway.String()
	}
	return s
}

// Validate checks a static configuration.
func (m Management) Validate() error {
	if m.DHCP {
		return nil
	}
	if !m.Address.IsValid() {
		return errors.New("no address")
	}
	a := m.Address.Addr()
	if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
		return fmt.Errorf("%s cannot be a host address", a)
	}
	if a.Is4() && m.Address.Bits() < 32 {
		if a == m.Address.Masked().Addr() {
			return fmt.Errorf("%s is the network address of %s", a, m.Address.Masked())
		}
	}
	if m.Gateway.IsValid() {
		if m.Gateway.Is4() != a.Is4() {
			return errors.New("gateway and address are of different IP versions")
		}
		if !m.Address.Masked().Contains(m.Gateway) {
			return fmt.Errorf("gateway %s is not in %s", m.Gateway, m.Address.Masked())
		}
		if m.Gateway == a {
			return errors.New("gateway is the box's own address")
		}
	}
	return nil
}

// NetworkFile renders m as a systemd.network file for interface ifname.
func (m Management) NetworkFile(ifname string) string {
	var s strings.Builder
	s.WriteString("# Written by ftconsole: the management port.\n")
	fmt.Fprintf(&s, "[Match]\nName=%s\n\n[Network]\n", ifname)
	if m.DHCP {
		s.WriteString("DHCP=yes\n")
	} else {
		fmt.Fprintf(&s, "Address=%s\n", m.Address)
		if m.Gateway.IsValid() {
			fmt.Fprintf(&s, "Gateway=%s\n", m.Gateway)
		}
		for _, d := range m.DNS {
			fmt.Fprintf(&s, "DNS=%s\n", d)
		}
	}
	s.WriteString("LinkLocalAddressing=no\nIPv6AcceptRA=no\n")
	return s.String()
}

// ParseNetworkFile reads back a file written by NetworkFile. Keys it does
// not know are ignored, since an operator may have added some by hand.
func ParseNetworkFile(text string) (Management, error) {
	var m Management
	found := false
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "DHCP":
			m.DHCP = v == "yes" || v == "ipv4" || v == "true"
			found = true
		case "Address":
			m.Address, err = netip.ParsePrefix(v)
			found = true
		case "Gateway":
			m.Gateway, err = netip.ParseAddr(v)
		case "DNS":
			var a netip.Addr
			a, err = netip.ParseAddr(v)
			m.DNS = append(m.DNS, a)
		}
		if err != nil {
			return Management{}, fmt.Errorf("%s: %w", k, err)
		}
	}
	if !found {
		return Management{}, errors.New("neither DHCP nor Address set")
	}
	return m, nil
}

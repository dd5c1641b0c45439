package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"unicode"
)

// Screen size the menu is laid out for: the serial terminal nobody can
// resize.
const (
	Width  = 80
	Height = 24
)

// ConfirmFactoryReset is the text that must be typed to confirm a factory
// reset: a typed phrase rather than y/n, since line noise or a stray key
// on a serial line must never wipe a box.
const ConfirmFactoryReset = "FACTORY RESET"

// Menu is the interactive recovery menu.
type Menu struct {
	// In and Out are the terminal.
	In  io.Reader
	Out io.Writer
	// Actions does the work.
	Actions Actions

	r   *bufio.Reader
	err error // first write error
	col int   // column of the cursor, for wrapping
}

// errEOF ends the menu when the terminal closes (hang-up, Ctrl-D).
var errEOF = errors.New("end of input")

// errRebooting ends the menu once a reboot is under way: a menu shown
// again now would describe a box that is going away (and be killed
// mid-screen). If the reboot does not happen, the service manager starts a
// fresh menu.
var errRebooting = errors.New("rebooting")

type item struct {
	key   string
	label func(st Status) string
	run   func(ctx context.Context) error
}

func (m *Menu) items() []item {
	return []item{
		{"1", func(Status) string { return "Status" }, m.status},
		{"2", func(Status) string {
			if mg, err := m.Actions.Management(); err == nil {
				return "Management address (now " + mg.String() + ")"
			}
			return "Management address"
		}, m.management},
		{"3", func(Status) string { return "Reset admin password" }, m.resetPassword},
		{"4", func(Status) string { return "Factory reset (erase configuration and keys)" }, m.factoryReset},
		{"5", func(Status) string {
			if d, err := m.Actions.OtherSlot(); err == nil {
				return "Boot the other firmware once (" + d + ")"
			}
			return "Boot the other firmware once"
		}, m.bootOther},
		{"6", func(Status) string { return "Reboot" }, m.reboot},
		{"7", func(Status) string { return "Root shell" }, m.Actions.RootShell},
	}
}

// Run shows the menu until the input ends. It returns nil at end of input
// (the service manager starts a fresh menu on the next open of the tty).
func (m *Menu) Run(ctx context.Context) error {
	m.r = bufio.NewReader(m.In)
	items := m.items()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		st := m.Actions.Status(ctx)
		m.header(st)
		for _, it := range items {
			m.printf(" %s) %s\n", it.key, it.label(st))
		}
		m.printf("\n")
		choice, err := m.prompt(fmt.Sprintf("Choice [1-%d]: ", len(items)))
		if err != nil {
			return m.end(err)
		}
		var picked *item
		for i := range items {
			if items[i].key == choice {
				picked = &items[i]
			}
		}
		if picked == nil {
			if choice != "" {
				m.printf("No such choice: %q\n", clip(choice, 40))
			}
			continue
		}
		if err := picked.run(ctx); err != nil {
			if errors.Is(err, errEOF) {
				return m.end(err)
			}
			if errors.Is(err, errRebooting) {
				return m.err
			}
			m.printf("Error: %s\n", clip(err.Error(), Width-8))
			if _, err := m.prompt("Press Enter to continue."); err != nil {
				return m.end(err)
			}
		}
		if m.err != nil {
			return m.err
		}
	}
}

func (m *Menu) end(err error) error {
	if m.err != nil {
		// The terminal is gone or broken: that is the cause.
		return m.err
	}
	if errors.Is(err, errEOF) {
		return nil
	}
	return err
}

// header is the first lines of every screen: what box this is and the
// generated password if it is still the one in force.
func (m *Menu) header(st Status) {
	m.printf("\n")
	m.printf("%s\n", fit("ftbridge recovery console", fmt.Sprintf("version %s  slot %s", st.Version, st.Slot)))
	m.printf("%s\n", strings.Repeat("-", Width-1))
	m.printf("%s\n", clip("Daemon: "+st.Daemon+"   Management: "+st.Management, Width-1))
	if st.AdminPassword != "" {
		m.printf("%s\n", clip("Admin password (generated): "+st.AdminPassword, Width-1))
	}
	m.printf("\n")
}

func (m *Menu) status(ctx context.Context) error {
	st := m.Actions.Status(ctx)
	lines := []string{
		"Version:    " + st.Version,
		"Slot:       " + st.Slot,
		"Daemon:     " + st.Daemon,
		"Management: " + st.Management,
	}
	if st.AdminPassword != "" {
		lines = append(lines, "Admin password (generated, shown until changed): "+st.AdminPassword)
	}
	lines = append(lines, "", "Ports:")
	for _, p := range st.Ports {
		lines = append(lines, fmt.Sprintf("  %-10s %-11s %-8s %s", p.Name, p.Role, p.State, p.MAC))
	}
	lines = append(lines, "", "Replicas:")
	if len(st.Replicas) == 0 {
		note := st.ReplicasNote
		if note == "" {
			note = "none reported"
		}
		lines = append(lines, "  "+note)
	}
	for _, r := range st.Replicas {
		lines = append(lines, fmt.Sprintf("  %-16s %-10s %s", r.Name, r.Interface, r.Health))
	}
	return m.page(lines)
}

// page prints lines a screenful at a time.
func (m *Menu) page(lines []string) error {
	m.printf("\n")
	n := 1
	for _, l := range lines {
		if n == Height-2 {
			if _, err := m.prompt("-- more: press Enter --"); err != nil {
				return err
			}
			n = 0
		}
		m.printf("%s\n", clip(l, Width-1))
		n++
	}
	_, err := m.prompt("Press Enter to return to the menu.")
	return err
}

func (m *Menu) management(ctx context.Context) error {
	cur, err := m.Actions.Management()
	if err == nil {
		m.printf("\nThe management port now uses %s.\n", cur)
	}
	mode, err := m.prompt("Use DHCP or a static address? [dhcp/static, Enter cancels]: ")
	if err != nil {
		return err
	}
	var mg Management
	switch strings.ToLower(mode) {
	case "":
		m.printf("Cancelled.\n")
		return nil
	case "dhcp", "d":
		mg.DHCP = true
	case "static", "s":
		for {
			a, err := m.prompt("Address with prefix length (e.g. 192.0.2.10/24): ")
			if err != nil {
				return err
			}
			if a == "" {
				m.printf("Cancelled.\n")
				return nil
			}
			if mg.Address, err = netip.ParsePrefix(a); err != nil {
				m.printf("Not an address/prefix: %s\n", clip(a, 40))
				continue
			}
			break
		}
		for {
			g, err := m.prompt("Gateway (Enter for none): ")
			if err != nil {
				return err
			}
			if g == "" {
				break
			}
			if mg.Gateway, err = netip.ParseAddr(g); err != nil {
				m.printf("Not an address: %s\n", clip(g, 40))
				continue
			}
			break
		}
		d, err := m.prompt("DNS servers, separated by spaces (Enter for none): ")
		if err != nil {
			return err
		}
		for _, f := range strings.Fields(d) {
			a, err := netip.ParseAddr(f)
			if err != nil {
				m.printf("Not an address: %s; DNS servers left out.\n", clip(f, 40))
				mg.DNS = nil
				break
			}
			mg.DNS = append(mg.DNS, a)
		}
		if err := mg.Validate(); err != nil {
			m.printf("Not applied: %s\n", err)
			_, err := m.prompt("Press Enter to continue.")
			return err
		}
	default:
		m.printf("Cancelled: answer dhcp or static.\n")
		return nil
	}
	ok, err := m.yes(fmt.Sprintf("Apply %s to the management port?", mg))
	if err != nil || !ok {
		return err
	}
	if err := m.Actions.SetManagement(ctx, mg); err != nil {
		return err
	}
	m.printf("Applied: management port uses %s.\n", mg)
	_, err = m.prompt("Press Enter to continue.")
	return err
}

func (m *Menu) resetPassword(ctx context.Context) error {
	m.printf("\nA new admin password is generated; the old one and every session\nlogged in with it stop working.\n")
	ok, err := m.yes("Reset the admin password?")
	if err != nil || !ok {
		return err
	}
	pw, err := m.Actions.ResetAdminPassword(ctx)
	if err != nil {
		return err
	}
	m.printf("\nNew admin password: %s\n\nLog in to the web interface as admin with it and change it.\n", pw)
	_, err = m.prompt("Press Enter to continue.")
	return err
}

func (m *Menu) factoryReset(ctx context.Context) error {
	m.printf("\nFACTORY RESET erases the configuration, the admin password, API tokens,\n" +
		"TLS certificate and keys, network settings and the event log from the\n" +
		"data partition. The installed firmware stays. Traffic through the box\n" +
		"stops until it is configured again.\n\n")
	got, err := m.prompt(fmt.Sprintf("Type %s to erase, anything else cancels: ", ConfirmFactoryReset))
	if err != nil {
		return err
	}
	if got != ConfirmFactoryReset {
		m.printf("Cancelled: nothing was erased.\n")
		return nil
	}
	m.printf("Erasing...\n")
	if err := m.Actions.FactoryReset(ctx); err != nil {
		return err
	}
	st := m.Actions.Status(ctx)
	m.printf("Factory reset done.\n")
	if st.AdminPassword != "" {
		m.printf("New admin password: %s\n", st.AdminPassword)
	}
	_, err = m.prompt("Press Enter to continue.")
	return err
}

func (m *Menu) bootOther(ctx context.Context) error {
	d, err := m.Actions.OtherSlot()
	if err != nil {
		return err
	}
	m.printf("\nThe box reboots into %s once;\nthe next reboot returns to the current firmware unless that one is committed.\n", clip(d, Width-28))
	ok, err := m.yes("Reboot into the other firmware now?")
	if err != nil || !ok {
		return err
	}
	m.printf("Rebooting...\n")
	if err := m.Actions.BootOtherSlot(ctx); err != nil {
		return err
	}
	return errRebooting
}

func (m *Menu) reboot(ctx context.Context) error {
	ok, err := m.yes("Reboot the box now?")
	if err != nil || !ok {
		return err
	}
	m.printf("Rebooting...\n")
	if err := m.Actions.Reboot(ctx); err != nil {
		return err
	}
	return errRebooting
}

// yes asks a y/N question; anything but y or yes is no.
func (m *Menu) yes(q string) (bool, error) {
	a, err := m.prompt(q + " [y/N]: ")
	if err != nil {
		return false, err
	}
	switch strings.ToLower(a) {
	case "y", "yes":
		return true, nil
	}
	m.printf("Cancelled.\n")
	return false, nil
}

// prompt prints p and reads one line, without its line ending and
// surrounding blanks. Serial terminals send CR; the tty turns it into NL
// in canonical mode, and a raw pipe may send either.
func (m *Menu) prompt(p string) (string, error) {
	m.printf("%s", p)
	if m.err != nil {
		return "", m.err
	}
	line, err := m.r.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		if errors.Is(err, io.EOF) {
			return "", errEOF
		}
		return "", err
	}
	if strings.HasSuffix(line, "\n") {
		m.col = 0 // the terminal echoed the line and its end
	} else {
		m.printf("\n") // input ended mid-line: answer on a line of its own
	}
	return strings.TrimSpace(strings.TrimRight(line, "\r\n")), nil
}

func (m *Menu) printf(format string, args ...any) {
	if m.err != nil {
		return
	}
	_, m.err = io.WriteString(m.Out, m.screen(fmt.Sprintf(format, args...)))
}

// screen makes text safe for a dumb terminal whatever it quotes (typed
// input, an entry title from the ESP, an address): control characters
// other than the line end are shown as '?', so that no escape sequence or
// backspace reaches the terminal, and a line that would reach the last
// column is broken before it, since a dumb terminal's own wrapping would
// scroll the screen apart.
func (m *Menu) screen(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\n' {
			b.WriteByte('\n')
			m.col = 0
			continue
		}
		if unicode.IsControl(r) {
			r = '?'
		}
		if m.col >= Width-1 {
			b.WriteByte('\n')
			m.col = 0
		}
		b.WriteRune(r)
		m.col++
	}
	return b.String()
}

// clip shortens s to at most n runes.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}

// fit puts left and right on one line of the screen width, clipping the
// left part first.
func fit(left, right string) string {
	w := Width - 1
	right = clip(right, w)
	room := w - len([]rune(right)) - 1
	if room < 1 {
		return right
	}
	left = clip(left, room)
	return left + strings.Repeat(" ", w-len([]rune(left))-len([]rune(right))) + right
}

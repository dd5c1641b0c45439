package console

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ftbridge/ftbridge/board"
	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/firmware/update"
)

// System is Actions on the real appliance.
type System struct {
	// Board is the board the image was built for.
	Board *board.Board
	// DataDir is the daemon's data directory (/data/ftbridge).
	DataDir string
	// RunNetworkDir is networkd's runtime configuration directory.
	RunNetworkDir string
	// SysClassNet is /sys/class/net.
	SysClassNet string
	// ReleaseFile holds the firmware version.
	ReleaseFile string
	// ShadowFile is /etc/shadow, read to see whether root has a password.
	ShadowFile string
	// TTY is the console device the root shell runs on.
	TTY string
	// Update manages the slots.
	Update *update.System
	// Command runs a program and returns its combined output; tests
	// replace it.
	Command func(ctx context.Context, name string, args ...string) (string, error)
	// Wait bounds how long a reset waits for the daemon to write a new
	// password.
	Wait time.Duration
}

// NewSystem returns the System of the running appliance.
func NewSystem(b *board.Board, tty string) *System {
	return &System{
		Board:         b,
		DataDir:       "/data/ftbridge",
		RunNetworkDir: "/run/systemd/network",
		SysClassNet:   "/sys/class/net",
		ReleaseFile:   "/etc/ftbridge-release",
		ShadowFile:    "/etc/shadow",
		TTY:           tty,
		Update:        update.NewSystem(update.ESPDir, b.Kernel.Cmdline),
		Command:       runCommand,
		Wait:          60 * time.Second,
	}
}

func runCommand(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

var _ Actions = (*System)(nil)

// Status implements Actions.
func (s *System) Status(ctx context.Context) Status {
	st := Status{Version: "unknown", Slot: "?"}
	if b, err := os.ReadFile(s.ReleaseFile); err == nil {
		st.Version = strings.TrimSpace(string(b))
	}
	if cur, err := s.Update.Current(); err == nil {
		st.Slot = string(cur)
	}
	st.Daemon = "unknown"
	if out, err := s.Command(ctx, "systemctl", "is-active", "ftbridged.service"); out != "" || err == nil {
		st.Daemon = strings.TrimSpace(out)
	}
	if b, err := os.ReadFile(filepath.Join(s.DataDir, AdminPasswordFile)); err == nil {
		st.AdminPassword = strings.TrimSpace(string(b))
	}
	for _, p := range s.Board.Ports {
		ps := PortStatus{Name: p.Name, Role: string(p.Role), State: "missing"}
		dir := filepath.Join(s.SysClassNet, p.Name)
		if b, err := os.ReadFile(filepath.Join(dir, "operstate")); err == nil {
			ps.State = strings.TrimSpace(string(b))
			if mac, err := os.ReadFile(filepath.Join(dir, "address")); err == nil {
				ps.MAC = strings.TrimSpace(string(mac))
			}
		}
		st.Ports = append(st.Ports, ps)
	}
	st.Management = s.managementSummary()
	st.Replicas, st.ReplicasNote = s.replicas(ctx, st.AdminPassword)
	return st
}

func (s *System) mgmtPort() string {
	if m := s.Board.PortsByRole(board.RoleManagement); len(m) == 1 {
		return m[0].Name
	}
	return ""
}

func (s *System) managementSummary() string {
	port := s.mgmtPort()
	mode := "not configured"
	if m, err := s.Management(); err == nil {
		mode = m.String()
	}
	var addrs []string
	if ifc, err := net.InterfaceByName(port); err == nil {
		as, _ := ifc.Addrs()
		for _, a := range as {
			if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLinkLocalUnicast() {
				addrs = append(addrs, a.String())
			}
		}
	}
	if len(addrs) == 0 {
		addrs = []string{"no address"}
	}
	return fmt.Sprintf("%s %s, %s", port, mode, strings.Join(addrs, " "))
}

// replicas asks the daemon's API on loopback for replica health. Without
// the management plane (or before the daemon is up) it says why instead.
func (s *System) replicas(ctx context.Context, password string) ([]ReplicaStatus, string) {
	listen := ":8443"
	if raw, err := os.ReadFile(filepath.Join(s.DataDir, ConfigFile)); err == nil {
		var doc struct {
			Management struct {
				Listen string `json:"listen"`
			} `json:"management"`
		}
		if json.Unmarshal(raw, &doc) == nil && doc.Management.Listen != "" {
			listen = doc.Management.Listen
		}
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, "API address " + listen + " not understood"
	}
	if password == "" {
		if _, err := os.Stat(filepath.Join(s.DataDir, AuthFile)); err == nil {
			return nil, "see the web UI (the console reads the API with the generated password only)"
		}
		return nil, "the management API is not running"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://127.0.0.1:"+port+"/api/v1/replicas", nil)
	req.SetBasicAuth("admin", password)
	// Loopback to our own daemon, whose certificate is self-signed.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "API not reachable on port " + port
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "API answered " + resp.Status
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(io.LimitReader(resp.Body, 1<<20)); err != nil {
		return nil, "API reply unreadable"
	}
	return ParseReplicas(body.Bytes())
}

// ParseReplicas reads GET /api/v1/replicas: a list of objects with name,
// interface and health (or state), bare or under "replicas".
func ParseReplicas(b []byte) ([]ReplicaStatus, string) {
	type rep struct {
		Name      string `json:"name"`
		Interface string `json:"interface"`
		Health    any    `json:"health"`
		State     string `json:"state"`
		Role      string `json:"role"`
	}
	var list []rep
	if err := json.Unmarshal(b, &list); err != nil {
		var wrapped struct {
			Replicas []rep `json:"replicas"`
		}
		if err := json.Unmarshal(b, &wrapped); err != nil {
			return nil, "API reply not understood"
		}
		list = wrapped.Replicas
	}
	var out []ReplicaStatus
	for _, r := range list {
		h := r.State
		switch v := r.Health.(type) {
		case string:
			h = v
		case map[string]any:
			if s, ok := v["state"].(string); ok {
				h = s
			}
		}
		if r.Role != "" {
			h += " (" + r.Role + ")"
		}
		out = append(out, ReplicaStatus{Name: r.Name, Interface: r.Interface, Health: strings.TrimSpace(h)})
	}
	if len(out) == 0 {
		return nil, "no replicas configured"
	}
	return out, ""
}

// Management implements Actions.
func (s *System) Management() (Management, error) {
	b, err := os.ReadFile(filepath.Join(s.DataDir, NetworkDir, MgmtNetworkFile))
	if err != nil {
		return Management{}, err
	}
	return ParseNetworkFile(string(b))
}

// SetManagement implements Actions: the file on /data, a copy for networkd,
// then networkd reloads and reconfigures the port.
func (s *System) SetManagement(ctx context.Context, m Management) error {
	if err := m.Validate(); err != nil {
		return err
	}
	path := filepath.Join(s.DataDir, NetworkDir, MgmtNetworkFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := config.WriteFileAtomic(path, []byte(m.NetworkFile(s.mgmtPort())), 0o644); err != nil {
		return err
	}
	if err := InstallNetwork(s.DataDir, s.RunNetworkDir); err != nil {
		return err
	}
	if _, err := s.Command(ctx, "networkctl", "reload"); err != nil {
		return err
	}
	_, err := s.Command(ctx, "networkctl", "reconfigure", s.mgmtPort())
	return err
}

// ResetAdminPassword implements Actions. The daemon keeps the admin
// password's hash in auth.json and generates a new password, written to
// admin-password, when it starts without one; so the reset clears the hash
// (API tokens stay) with the daemon stopped and starts it again.
func (s *System) ResetAdminPassword(ctx context.Context) (string, error) {
	if _, err := s.Command(ctx, "systemctl", "stop", "ftbridged.service"); err != nil {
		return "", err
	}
	clearErr := s.clearAdmin()
	if _, err := s.Command(ctx, "systemctl", "start", "--no-block", "ftbridged.service"); err != nil {
		return "", err
	}
	if clearErr != nil {
		return "", clearErr
	}
	return s.waitPassword(ctx)
}

func (s *System) clearAdmin() error {
	os.Remove(filepath.Join(s.DataDir, AdminPasswordFile))
	path := filepath.Join(s.DataDir, AuthFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		// A store we cannot read would lock the admin out for good:
		// move it aside so the daemon starts fresh.
		return os.Rename(path, path+".corrupt")
	}
	delete(doc, "admin_hash")
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return config.WriteFileAtomic(path, out, 0o600)
}

func (s *System) waitPassword(ctx context.Context) (string, error) {
	deadline := time.Now().Add(s.Wait)
	path := filepath.Join(s.DataDir, AdminPasswordFile)
	for {
		if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return strings.TrimSpace(string(b)), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("ftbridged wrote no new password to %s within %s (see journalctl -u ftbridged)", path, s.Wait)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// FactoryReset implements Actions: stop the daemon, erase the data
// directory, lay out the defaults again, apply them and start the daemon,
// which generates a new admin password and certificate.
func (s *System) FactoryReset(ctx context.Context) error {
	if _, err := s.Command(ctx, "systemctl", "stop", "ftbridged.service"); err != nil {
		return err
	}
	ents, err := os.ReadDir(s.DataDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(s.DataDir, e.Name())); err != nil {
			return err
		}
	}
	if _, err := Firstboot(s.DataDir, s.Board); err != nil {
		return err
	}
	if err := InstallNetwork(s.DataDir, s.RunNetworkDir); err != nil {
		return err
	}
	if _, err := s.Command(ctx, "networkctl", "reload"); err != nil {
		return err
	}
	if _, err := s.Command(ctx, "systemctl", "start", "--no-block", "ftbridged.service"); err != nil {
		return err
	}
	// A daemon without the management plane writes no password; the reset
	// is still done.
	_, _ = s.waitPassword(ctx)
	return nil
}

// OtherSlot implements Actions.
func (s *System) OtherSlot() (string, error) {
	cur, err := s.Update.Current()
	if err != nil {
		return "", err
	}
	other := cur.Other()
	e, ok, err := s.Update.ESP.Newest(other)
	switch {
	case err != nil:
		return "", err
	case !ok:
		return "", fmt.Errorf("slot %s holds no firmware", other)
	case e.Bad():
		return "", fmt.Errorf("slot %s failed to come up healthy and is not bootable", other)
	}
	return fmt.Sprintf("slot %s, %s", other, entryTitle(filepath.Join(s.Update.ESP.Dir, "loader", "entries", e.File))), nil
}

func entryTitle(path string) string {
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		if t, ok := strings.CutPrefix(l, "title "); ok {
			return strings.TrimSpace(t)
		}
	}
	return "untitled"
}

// BootOtherSlot implements Actions with systemd-boot's one-shot entry.
func (s *System) BootOtherSlot(ctx context.Context) error {
	cur, err := s.Update.Current()
	if err != nil {
		return err
	}
	e, ok, err := s.Update.ESP.Newest(cur.Other())
	if err != nil || !ok || e.Bad() {
		return fmt.Errorf("slot %s is not bootable", cur.Other())
	}
	if _, err := s.Command(ctx, "bootctl", "set-oneshot", e.ID+".conf"); err != nil {
		return err
	}
	return s.Reboot(ctx)
}

// Reboot implements Actions.
func (s *System) Reboot(ctx context.Context) error {
	_, err := s.Command(ctx, "systemctl", "reboot")
	return err
}

// RootShell implements Actions with sulogin, which checks the root password
// itself. A locked root (the default image) is refused here, since sulogin
// would otherwise offer a password-less shell on some configurations.
func (s *System) RootShell(ctx context.Context) error {
	locked, err := RootLocked(s.ShadowFile)
	if err != nil {
		return err
	}
	if locked {
		return errors.New("root has no password in this image (build it with ROOT_PASSWORD)")
	}
	cmd := exec.CommandContext(ctx, "/sbin/sulogin", s.TTY)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "SUSHELL=/bin/bash")
	return cmd.Run()
}

// RootLocked reports whether root's shadow entry has no usable password
// (empty, "*" or "!...").
func RootLocked(shadow string) (bool, error) {
	b, err := os.ReadFile(shadow)
	if err != nil {
		return false, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) > 1 && f[0] == "root" {
			h := f[1]
			return h == "" || strings.HasPrefix(h, "*") || strings.HasPrefix(h, "!"), nil
		}
	}
	return true, nil
}

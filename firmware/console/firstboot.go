package console

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ftbridge/ftbridge/board"
	"github.com/ftbridge/ftbridge/firmware/config"
)

// Files on the data directory (/data/ftbridge on the appliance, also seen
// as /etc/ftbridge and /var/lib/ftbridge).
const (
	// ConfigFile is the daemon's configuration document.
	ConfigFile = "config.json"
	// NetworkDir holds systemd.network files for the management port.
	NetworkDir = "network"
	// MgmtNetworkFile is the management port's settings in NetworkDir.
	MgmtNetworkFile = "10-mgmt.network"
	// IdentityFile holds the box's identity, made once.
	IdentityFile = "identity"
	// AdminPasswordFile is where the daemon writes the generated admin
	// password (mode 0600) until it is changed.
	AdminPasswordFile = "admin-password"
	// AuthFile is the daemon's credential store (admin password hash and
	// API token hashes).
	AuthFile = "auth.json"
)

// Firstboot lays out the data directory and writes what a fresh box needs
// and does not yet have: a default configuration for the board's ports, DHCP
// on the management port, and a random identity. It never overwrites, so it
// runs on every boot; after a factory reset it rebuilds the defaults. It
// returns the identity (hostname).
func Firstboot(dataDir string, b *board.Board) (string, error) {
	if err := os.MkdirAll(filepath.Join(dataDir, NetworkDir), 0o700); err != nil {
		return "", err
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return "", err
	}
	cfgPath := filepath.Join(dataDir, ConfigFile)
	if _, err := os.Stat(cfgPath); errors.Is(err, os.ErrNotExist) {
		if err := DefaultConfig(b).Save(cfgPath); err != nil {
			return "", fmt.Errorf("default configuration: %w", err)
		}
	}
	mgmt := b.PortsByRole(board.RoleManagement)
	netPath := filepath.Join(dataDir, NetworkDir, MgmtNetworkFile)
	if _, err := os.Stat(netPath); errors.Is(err, os.ErrNotExist) && len(mgmt) == 1 {
		if err := config.WriteFileAtomic(netPath, []byte(Management{DHCP: true}.NetworkFile(mgmt[0].Name)), 0o644); err != nil {
			return "", err
		}
	}
	idPath := filepath.Join(dataDir, IdentityFile)
	id, err := os.ReadFile(idPath)
	if errors.Is(err, os.ErrNotExist) {
		var r [3]byte
		if _, err := rand.Read(r[:]); err != nil {
			return "", err
		}
		id = []byte("ftbridge-" + hex.EncodeToString(r[:]) + "\n")
		if err := config.WriteFileAtomic(idPath, id, 0o644); err != nil {
			return "", err
		}
	} else if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(id)), nil
}

// DefaultConfig is the configuration of a fresh box: the board's uplink,
// its first two replica ports (every board has at least two; a 4-port box
// has only two), and the documentation service address until someone sets
// the real one from the web interface.
func DefaultConfig(b *board.Board) *config.Config {
	c := config.Default()
	if up := b.PortsByRole(board.RoleUplink); len(up) == 1 {
		c.Uplink = up[0].Name
	}
	c.Replicas = nil
	for i, p := range b.PortsByRole(board.RoleReplica) {
		if i == 2 {
			break
		}
		c.Replicas = append(c.Replicas, config.Replica{Name: p.Name, Interface: p.Name})
	}
	return c
}

// InstallNetwork copies the management network files from the data
// directory to networkd's runtime directory (/run/systemd/network), since
// /etc is read-only on the appliance. Files there that came from us but no
// longer exist on /data are removed.
func InstallNetwork(dataDir, runDir string) error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(runDir, "ftbridge-*.network"))
	for _, o := range old {
		if err := os.Remove(o); err != nil {
			return err
		}
	}
	src, err := filepath.Glob(filepath.Join(dataDir, NetworkDir, "*.network"))
	if err != nil {
		return err
	}
	for _, s := range src {
		b, err := os.ReadFile(s)
		if err != nil {
			return err
		}
		if err := config.WriteFileAtomic(filepath.Join(runDir, "ftbridge-"+filepath.Base(s)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

package board

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

func TestBuiltinBoardsLoad(t *testing.T) {
	names := Names()
	if len(names) != 2 || names[0] != "arm64" || names[1] != "x86_64" {
		t.Fatalf("Names() = %v, want [arm64 x86_64]", names)
	}
	consoles := map[string]string{"x86_64": "ttyS0", "arm64": "ttyAMA0"}
	for _, n := range names {
		b, err := Load(n)
		if err != nil {
			t.Fatalf("Load(%q): %v", n, err)
		}
		if b.Console.Device != consoles[n] {
			t.Errorf("%s: console %s, want %s", n, b.Console.Device, consoles[n])
		}
		if len(b.PortsByRole(RoleUplink)) != 1 || len(b.PortsByRole(RoleReplica)) < 2 {
			t.Errorf("%s: port map %+v", n, b.Ports)
		}
		a, okA := b.Slot("A")
		bb, okB := b.Slot("B")
		if !okA || !okB || a.Label != "root-a" || bb.Label != "root-b" {
			t.Errorf("%s: slots %+v %+v", n, a, bb)
		}
		if _, ok := b.Partition("data"); !ok {
			t.Errorf("%s: no data partition", n)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	for _, n := range []string{"", "../board", "X86", "nosuch"} {
		if _, err := Load(n); err == nil {
			t.Errorf("Load(%q) succeeded", n)
		}
	}
}

// base returns a valid board document as a generic map, for mutation.
func base(t *testing.T) map[string]any {
	t.Helper()
	raw, err := files.ReadFile("x86_64.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func parseMap(t *testing.T, m map[string]any) error {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(bytes.NewReader(raw))
	return err
}

func ports(m map[string]any) []any { return m["ports"].([]any) }
func port(m map[string]any, i int) map[string]any {
	return ports(m)[i].(map[string]any)
}
func parts(m map[string]any) []any { return m["layout"].(map[string]any)["partitions"].([]any) }
func part(m map[string]any, i int) map[string]any {
	return parts(m)[i].(map[string]any)
}

func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(m map[string]any)
		want   string
	}{
		{"unknown key", func(m map[string]any) { m["consol"] = 1 }, "unknown field"},
		{"bad arch", func(m map[string]any) { m["arch"] = "riscv64" }, "arch"},
		{"root in cmdline", func(m map[string]any) {
			m["kernel"].(map[string]any)["cmdline"] = "console=ttyS0 root=/dev/sda2"
		}, "root="},
		{"console not on cmdline", func(m map[string]any) {
			m["console"].(map[string]any)["device"] = "ttyS1"
		}, "console=ttyS1"},
		{"watchdog module not kept", func(m map[string]any) {
			m["watchdog"].(map[string]any)["modules"] = []any{"softdog"}
		}, "softdog"},
		{"two uplinks", func(m map[string]any) { port(m, 2)["role"] = "uplink" }, "exactly one uplink"},
		{"no management", func(m map[string]any) { port(m, 0)["role"] = "replica" }, "management"},
		{"one replica", func(m map[string]any) {
			m["ports"] = ports(m)[:3]
		}, "two replica"},
		{"eth name", func(m map[string]any) { port(m, 1)["name"] = "eth0" }, "collides"},
		{"long name", func(m map[string]any) { port(m, 1)["name"] = "uplink0123456789" }, "interface name"},
		{"dup name", func(m map[string]any) { port(m, 3)["name"] = "rep0" }, "duplicate"},
		{"no match", func(m map[string]any) { port(m, 1)["match"] = map[string]any{} }, "path or a mac"},
		{"same path twice", func(m map[string]any) {
			port(m, 3)["match"] = map[string]any{"path": []any{"pci-0000:03:00.0"}}
		}, "also matches"},
		{"bad mac", func(m map[string]any) {
			port(m, 3)["match"] = map[string]any{"mac": []any{"52:54:00:AB:CD:EF"}}
		}, "MAC"},
		{"bad glob", func(m map[string]any) {
			port(m, 3)["match"] = map[string]any{"path": []any{"pci-[0000"}}
		}, "pattern"},
		{"slot sizes differ", func(m map[string]any) { part(m, 2)["size_mib"] = 100 }, "slot B"},
		{"no slot B", func(m map[string]any) { part(m, 2)["slot"] = "A" }, "duplicate slot"},
		{"slot C", func(m map[string]any) { part(m, 2)["slot"] = "C" }, "not A or B"},
		{"no data", func(m map[string]any) {
			lay := m["layout"].(map[string]any)
			lay["partitions"] = parts(m)[:3]
		}, "data partition"},
		{"tiny partition", func(m map[string]any) { part(m, 3)["size_mib"] = 1 }, "below 8"},
		{"slot on esp", func(m map[string]any) { part(m, 0)["slot"] = "A" }, "only root"},
	}
	if err := parseMap(t, base(t)); err != nil {
		t.Fatalf("unmodified document: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base(t)
			c.mutate(m)
			err := parseMap(t, m)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestLinkFiles(t *testing.T) {
	b, err := Load("x86_64")
	if err != nil {
		t.Fatal(err)
	}
	lf := b.LinkFiles()
	if len(lf) != len(b.Ports) {
		t.Fatalf("%d link files for %d ports", len(lf), len(b.Ports))
	}
	for i, f := range lf {
		p := b.Ports[i]
		if !strings.HasSuffix(f.Name, ".link") || f.Name >= "99-default.link" {
			t.Errorf("%s: must sort before 99-default.link", f.Name)
		}
		if !strings.Contains(f.Content, "\nName="+p.Name+"\n") {
			t.Errorf("%s does not name %s:\n%s", f.Name, p.Name, f.Content)
		}
		if !strings.Contains(f.Content, "\nPath="+strings.Join(p.Match.Path, " ")+"\n") {
			t.Errorf("%s does not match %v:\n%s", f.Name, p.Match.Path, f.Content)
		}
		gro := strings.Contains(f.Content, "GenericReceiveOffload=false")
		if gro != (p.Role != RoleManagement) {
			t.Errorf("%s (%s): GRO off = %v", f.Name, p.Role, gro)
		}
	}
	b.Ports[0].Match = Match{MAC: []string{"52:54:00:00:00:01"}}
	if c := b.LinkFiles()[0].Content; !strings.Contains(c, "PermanentMACAddress=52:54:00:00:00:01\n") || strings.Contains(c, "Path=") {
		t.Errorf("MAC match not rendered:\n%s", c)
	}
}

func TestGenimage(t *testing.T) {
	uuidRE := regexp.MustCompile(`partition-uuid = "([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})"`)
	for _, n := range Names() {
		b, err := Load(n)
		if err != nil {
			t.Fatal(err)
		}
		cfg := b.Genimage("disk.img", map[string]string{"esp": "esp.vfat", "root-a": "root.squashfs", "data": "data.ext4"})
		if cfg != b.Genimage("disk.img", map[string]string{"esp": "esp.vfat", "root-a": "root.squashfs", "data": "data.ext4"}) {
			t.Fatal("Genimage is not deterministic")
		}
		for _, want := range []string{`image = "esp.vfat"`, `image = "root.squashfs"`, `image = "data.ext4"`, "partition root-b {", "align = 1M"} {
			if !strings.Contains(cfg, want) {
				t.Errorf("%s: genimage config lacks %q:\n%s", n, want, cfg)
			}
		}
		ids := uuidRE.FindAllStringSubmatch(cfg, -1)
		if len(ids) != len(b.Layout.Partitions) {
			t.Fatalf("%s: %d well-formed partition UUIDs, want %d:\n%s", n, len(ids), len(b.Layout.Partitions), cfg)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id[1]] {
				t.Errorf("%s: duplicate partition UUID %s", n, id[1])
			}
			seen[id[1]] = true
		}
		rootType := b.PartitionTypeUUID(Partition{Role: PartRoot})
		if (n == "arm64") != (rootType == "b921b045-1df0-41c3-af44-4c6f280d3fae") {
			t.Errorf("%s: root type %s", n, rootType)
		}
	}
}

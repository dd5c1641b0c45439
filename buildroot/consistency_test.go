package buildroot

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ftbridge/ftbridge/board"
	"github.com/ftbridge/ftbridge/firmware/update"
)

// repo is the repository root, seen from this package's directory.
const repo = ".."

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// externalName is the tree's name from external.desc.
func externalName(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^name:\s*(\S+)\s*$`).FindStringSubmatch(read(t, "external.desc"))
	if m == nil {
		t.Fatal("external.desc has no name:")
	}
	return m[1]
}

// resolve turns a path written with the external tree's variable into a
// path from this directory; ok is false for paths not in the tree.
func resolve(name, p string) (string, bool) {
	for _, v := range []string{"$(BR2_EXTERNAL_" + name + "_PATH)", "$BR2_EXTERNAL_" + name + "_PATH", "${BR2_EXTERNAL_" + name + "_PATH}"} {
		if rest, ok := strings.CutPrefix(p, v); ok {
			return filepath.Join(".", rest), true
		}
	}
	return "", false
}

func TestExternalDesc(t *testing.T) {
	name := externalName(t)
	if !regexp.MustCompile(`^[A-Z0-9_]+$`).MatchString(name) {
		t.Fatalf("external name %q: Buildroot wants [A-Z0-9_]", name)
	}
	for _, f := range []string{"Config.in", "external.mk", "package/ftbridge/ftbridge.mk", "package/ftbridge/Config.in"} {
		if body := read(t, f); strings.Contains(body, "BR2_EXTERNAL_") && !strings.Contains(body, "BR2_EXTERNAL_"+name+"_PATH") {
			t.Errorf("%s uses another tree's BR2_EXTERNAL_*_PATH", f)
		}
	}
}

var pathRE = regexp.MustCompile(`\$\(?\{?BR2_EXTERNAL_[A-Z0-9_]+_PATH\)?\}?/[A-Za-z0-9_./@-]+`)

func TestConfigInSourcesExist(t *testing.T) {
	name := externalName(t)
	sourced := map[string]bool{}
	var walk func(f string)
	walk = func(f string) {
		for _, m := range regexp.MustCompile(`(?m)^\s*source\s+"([^"]+)"`).FindAllStringSubmatch(read(t, f), -1) {
			p, ok := resolve(name, m[1])
			if !ok {
				t.Errorf("%s sources %q outside the tree", f, m[1])
				continue
			}
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s sources missing %s", f, m[1])
				continue
			}
			sourced[filepath.Clean(p)] = true
			walk(p)
		}
	}
	walk("Config.in")
	pkgs, _ := filepath.Glob("package/*/*.mk")
	if len(pkgs) == 0 {
		t.Fatal("no packages")
	}
	for _, mk := range pkgs {
		cfg := filepath.Join(filepath.Dir(mk), "Config.in")
		if !sourced[cfg] {
			t.Errorf("%s is not sourced from Config.in", cfg)
		}
		pkg := strings.TrimSuffix(filepath.Base(mk), ".mk")
		sym := "BR2_PACKAGE_" + strings.ToUpper(strings.ReplaceAll(pkg, "-", "_"))
		if !strings.Contains(read(t, cfg), "config "+sym+"\n") {
			t.Errorf("%s does not define %s", cfg, sym)
		}
	}
	if !strings.Contains(read(t, "external.mk"), "package/*/*.mk") {
		t.Error("external.mk does not include the packages")
	}
}

// defconfig parses a defconfig into symbol -> value.
func defconfig(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(read(t, path)))
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(k, "BR2_") {
			t.Errorf("%s:%d: not a BR2_ assignment: %q", path, line, l)
			continue
		}
		if _, dup := out[k]; dup {
			t.Errorf("%s:%d: %s set twice", path, line, k)
		}
		out[k] = strings.Trim(v, `"`)
	}
	return out
}

func TestDefconfigsMatchBoards(t *testing.T) {
	name := externalName(t)
	archSym := map[string]string{"amd64": "BR2_x86_64", "arm64": "BR2_aarch64"}
	configs, _ := filepath.Glob("configs/*_defconfig")
	if len(configs) != len(board.Names()) {
		t.Errorf("%d defconfigs for %d boards", len(configs), len(board.Names()))
	}
	for _, bn := range board.Names() {
		b, err := board.Load(bn)
		if err != nil {
			t.Fatal(err)
		}
		path := "configs/ftbridge_" + bn + "_defconfig"
		c := defconfig(t, path)
		if c[archSym[b.Arch]] != "y" {
			t.Errorf("%s: %s not set for a %s board", path, archSym[b.Arch], b.Arch)
		}
		if c["BR2_TARGET_GENERIC_GETTY_PORT"] != b.Console.Device {
			t.Errorf("%s: getty on %q, board console is %s", path, c["BR2_TARGET_GENERIC_GETTY_PORT"], b.Console.Device)
		}
		if c["BR2_ROOTFS_POST_SCRIPT_ARGS"] != bn {
			t.Errorf("%s: post scripts get %q, want the board name %q", path, c["BR2_ROOTFS_POST_SCRIPT_ARGS"], bn)
		}
		for _, want := range []string{"BR2_INIT_SYSTEMD", "BR2_PACKAGE_FTBRIDGE", "BR2_PACKAGE_RAUC", "BR2_TARGET_ROOTFS_SQUASHFS", "BR2_PACKAGE_SYSTEMD_BOOT", "BR2_PACKAGE_HOST_GENIMAGE", "BR2_PACKAGE_HOST_GO"} {
			if c[want] != "y" {
				t.Errorf("%s: %s is not y", path, want)
			}
		}
		// Every file the defconfig names exists; scripts are executable.
		for k, v := range c {
			for _, p := range pathRE.FindAllString(v, -1) {
				rel, ok := resolve(name, p)
				if !ok {
					t.Errorf("%s: %s names %s of another tree", path, k, p)
					continue
				}
				fi, err := os.Stat(rel)
				if err != nil {
					t.Errorf("%s: %s names missing %s", path, k, p)
					continue
				}
				if strings.HasSuffix(k, "_SCRIPT") && fi.Mode()&0o111 == 0 {
					t.Errorf("%s: %s is not executable", path, rel)
				}
			}
		}
		// The disk layout is the one images/ builds.
		want := b.Genimage("disk.img", map[string]string{"esp": "esp.vfat", "root-a": "rootfs.squashfs", "data": "data.ext4"})
		if got := read(t, filepath.Join("board", "ftbridge", bn, "genimage.cfg")); got != want {
			t.Errorf("board/ftbridge/%s/genimage.cfg differs from board.Genimage; regenerate it:\n%s", bn, want)
		}
	}
}

func TestKernelFragments(t *testing.T) {
	frags, _ := filepath.Glob("board/ftbridge/*/linux.fragment")
	if len(frags) != 1+len(board.Names()) {
		t.Errorf("fragments %v", frags)
	}
	re := regexp.MustCompile(`^(CONFIG_[A-Z0-9_]+=(y|m|n|[0-9]+|"[^"]*")|# CONFIG_[A-Z0-9_]+ is not set)$`)
	for _, f := range frags {
		seen := map[string]bool{}
		for i, l := range strings.Split(read(t, f), "\n") {
			if l == "" || (strings.HasPrefix(l, "# ") && !strings.HasPrefix(l, "# CONFIG_")) {
				continue
			}
			if !re.MatchString(l) {
				t.Errorf("%s:%d: %q", f, i+1, l)
			}
			k, _, _ := strings.Cut(l, "=")
			if seen[k] {
				t.Errorf("%s:%d: %s twice", f, i+1, k)
			}
			seen[k] = true
		}
	}
	common := read(t, "board/ftbridge/common/linux.fragment")
	// Without an initramfs the root slot's file system must be built in.
	for _, want := range []string{"CONFIG_SQUASHFS=y", "CONFIG_EFIVAR_FS=y", "CONFIG_DM_VERITY=y", "CONFIG_PACKET=y"} {
		if !strings.Contains(common, want+"\n") {
			t.Errorf("common fragment lacks %s", want)
		}
	}
}

// mkVar returns a variable's value from a .mk file, with continuation
// lines joined.
func mkVar(mk, name string) string {
	joined := strings.ReplaceAll(mk, "\\\n", " ")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s*\+?=\s*(.*)$`).FindStringSubmatch(joined)
	if m == nil {
		return ""
	}
	return strings.Join(strings.Fields(m[1]), " ")
}

func TestGoPackageMatchesProject(t *testing.T) {
	mk := read(t, "package/ftbridge/ftbridge.mk")
	gomod := read(t, filepath.Join(repo, "go.mod"))
	module := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindStringSubmatch(gomod)[1]
	goVer := regexp.MustCompile(`(?m)^go\s+(\S+)`).FindStringSubmatch(gomod)[1]
	if got := mkVar(mk, "FTBRIDGE_GOMOD"); got != module {
		t.Errorf("FTBRIDGE_GOMOD = %q, go.mod says %q", got, module)
	}
	if got := mkVar(mk, "FTBRIDGE_GO_VERSION"); got != goVer {
		t.Errorf("FTBRIDGE_GO_VERSION = %q, go.mod says go %s", got, goVer)
	}
	if !strings.Contains(mk, "$(eval $(golang-package))") {
		t.Error("ftbridge.mk does not use golang-package")
	}
	targets := strings.Fields(mkVar(mk, "FTBRIDGE_BUILD_TARGETS"))
	bins := strings.Fields(mkVar(mk, "FTBRIDGE_INSTALL_BINS"))
	if len(targets) == 0 || len(targets) != len(bins) {
		t.Fatalf("targets %v, bins %v", targets, bins)
	}
	for i, tg := range targets {
		if !strings.Contains(read(t, filepath.Join(repo, tg, "main.go")), "package main") {
			t.Errorf("%s is not a command", tg)
		}
		if bins[i] != filepath.Base(tg) {
			t.Errorf("installs %s for target %s", bins[i], tg)
		}
	}
	// Units: exactly the image's (but its fallback daemon unit: the .mk
	// installs deploy/systemd's), so both builds boot the same way.
	units := strings.Fields(mkVar(mk, "FTBRIDGE_UNITS"))
	have, _ := filepath.Glob(filepath.Join(repo, "images/rootfs/etc/systemd/system/*.service"))
	var names []string
	for _, h := range have {
		if filepath.Base(h) != "ftbridged.service" {
			names = append(names, filepath.Base(h))
		}
	}
	for _, want := range []string{"$(@D)/deploy/systemd/ftbridged.service", "ftbridged.service.d/10-appliance.conf", "usr/sbin/ftbridged"} {
		if !strings.Contains(mk, want) {
			t.Errorf("ftbridge.mk lacks %s", want)
		}
	}
	sort.Strings(units)
	sort.Strings(names)
	if strings.Join(units, " ") != strings.Join(names, " ") {
		t.Errorf("FTBRIDGE_UNITS %v, images/rootfs has %v", units, names)
	}
	// Every source file the .mk copies exists in the repository.
	for _, m := range regexp.MustCompile(`\$\(@D\)/([A-Za-z0-9_./@-]+)`).FindAllStringSubmatch(mk, -1) {
		if strings.Contains(m[1], "$(") {
			continue
		}
		if _, err := os.Stat(filepath.Join(repo, m[1])); err != nil {
			t.Errorf("ftbridge.mk copies missing %s", m[1])
		}
	}
	for _, f := range []string{"ftbridged-start", "rauc-backend"} {
		if !strings.Contains(mk, "images/rootfs/usr/lib/ftbridge/"+f) {
			t.Errorf("ftbridge.mk does not install %s", f)
		}
	}
}

func TestPostScripts(t *testing.T) {
	post := read(t, "board/ftbridge/common/post-image.sh")
	// The slot A entry is written the way firmware/update writes entries,
	// so the update glue finds and replaces it.
	opts := (&update.ESP{}).Options(update.SlotA)
	if !strings.Contains(post, "options "+opts+" %s") {
		t.Errorf("post-image.sh's entry options differ from update.ESP.Options: want %q", opts)
	}
	e, ok := update.ParseEntryName("ftbridge-0001-A.conf")
	if !ok || !strings.Contains(post, "loader/entries/"+e.File) {
		t.Error("post-image.sh does not write ftbridge-0001-A.conf")
	}
	build := read(t, "board/ftbridge/common/post-build.sh")
	for _, want := range []string{"./images/mkimage gen", "/data/ftbridge", "etc/rauc/keyring.pem", "vmlinuz-"} {
		if !strings.Contains(build, want) {
			t.Errorf("post-build.sh lacks %q", want)
		}
	}
	for _, f := range []string{"board/ftbridge/common/post-build.sh", "board/ftbridge/common/post-image.sh"} {
		if !strings.HasPrefix(read(t, f), "#!/usr/bin/env bash\n") {
			t.Errorf("%s: no bash shebang", f)
		}
	}
}

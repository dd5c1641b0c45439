// Repository hygiene tests: every Go file is gofmt-clean, and the dataplane
// keeps to its dependency rule (docs: /work/shared/design/architecture.md,
// "Dependency rule worth a test").
package ftbridge_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/format"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/ftbridge/ftbridge"

// TestGofmt checks that every .go file in the repository is formatted as
// gofmt formats it. vendor, testdata, node_modules and hidden directories are
// skipped.
func TestGofmt(t *testing.T) {
	var bad []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch name := d.Name(); {
			case path == ".":
			case name == "vendor", name == "testdata", name == "node_modules", strings.HasPrefix(name, "."):
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || !d.Type().IsRegular() {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out, err := format.Source(src)
		switch {
		case err != nil:
			bad = append(bad, path+" (does not parse: "+err.Error()+")")
		case !bytes.Equal(src, out):
			bad = append(bad, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("files not gofmt-clean (run gofmt -w):\n\t%s", strings.Join(bad, "\n\t"))
	}
}

// goTool returns the go command of the toolchain running the test: go test
// puts its own GOROOT/bin first on the test's PATH.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	t.Fatal("no go command on PATH")
	return ""
}

// listedPackage is the part of `go list -json` output the dependency test
// reads.
type listedPackage struct {
	ImportPath string
	Standard   bool
	DepOnly    bool
	Imports    []string
	Error      *struct{ Err string }
}

// dependencyProblem says why the dataplane may not depend on pkg, or returns
// "" if it may.
func dependencyProblem(p listedPackage) string {
	path := p.ImportPath
	under := func(prefix string) bool { return path == prefix || strings.HasPrefix(path, prefix+"/") }
	switch {
	case under(module + "/dataplane"):
		return ""
	case under(module + "/firmware"), under(module + "/webui"), under(module + "/cmd"):
		return "the dataplane must not import firmware, webui or cmd"
	case p.Standard && under("net/http"):
		return "the dataplane must not use net/http"
	case p.Standard:
		return ""
	case under("github.com/gopacket"), under("github.com/google/gopacket"):
		return "gopacket is for tests, the lab and diagnostics only"
	case under("golang.org/x/sys"), under("golang.org/x/net"),
		under("github.com/mdlayher/packet"), under("github.com/mdlayher/socket"):
		return ""
	case under(module):
		return "the dataplane may import only its own packages from this module"
	}
	return "not on the dataplane's allowed list (std, golang.org/x/sys, golang.org/x/net/bpf, mdlayher/packet and its dependencies)"
}

// TestDataplaneDependencies enforces the dependency rule: the non-test
// dependencies of ./dataplane/... are the standard library (without
// net/http), golang.org/x/sys, golang.org/x/net, github.com/mdlayher/packet
// and github.com/mdlayher/socket, and the dataplane's own packages.
func TestDataplaneDependencies(t *testing.T) {
	goBin := goTool(t)
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run("linux_"+arch, func(t *testing.T) {
			cmd := exec.Command(goBin, "list", "-e", "-deps",
				"-json=ImportPath,Standard,DepOnly,Imports,Error", "./dataplane/...")
			cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
			}
			pkgs := make(map[string]listedPackage)
			var roots []string
			dec := json.NewDecoder(bytes.NewReader(out))
			for {
				var p listedPackage
				if err := dec.Decode(&p); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("decoding go list output: %v", err)
				}
				pkgs[p.ImportPath] = p
				if !p.DepOnly {
					roots = append(roots, p.ImportPath)
				}
				if p.Error != nil {
					t.Logf("go list reports for %s: %s", p.ImportPath, p.Error.Err)
				}
			}
			if len(roots) == 0 {
				t.Fatalf("go list found no packages under ./dataplane\n%s", stderr.Bytes())
			}
			// Report the frontier only: a banned package imported by an
			// allowed one, not everything a banned package drags in.
			reported := make(map[string]bool)
			var problems []string
			for _, p := range pkgs {
				if dependencyProblem(p) != "" {
					continue
				}
				for _, imp := range p.Imports {
					q, ok := pkgs[imp]
					if !ok || reported[imp] {
						continue
					}
					if why := dependencyProblem(q); why != "" {
						reported[imp] = true
						problems = append(problems, imp+": "+why+"\n\t\timport chain: "+strings.Join(importChain(pkgs, roots, imp), " -> "))
					}
				}
			}
			sort.Strings(problems)
			if len(problems) > 0 {
				t.Errorf("dataplane dependency rule broken:\n\t%s", strings.Join(problems, "\n\t"))
			}
		})
	}
}

// importChain returns a shortest import chain from one of roots to target.
func importChain(pkgs map[string]listedPackage, roots []string, target string) []string {
	parent := make(map[string]string)
	queue := append([]string(nil), roots...)
	for _, r := range roots {
		parent[r] = ""
	}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == target {
			var chain []string
			for p := cur; p != ""; p = parent[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		for _, imp := range pkgs[cur].Imports {
			if _, seen := parent[imp]; !seen {
				parent[imp] = cur
				queue = append(queue, imp)
			}
		}
	}
	return []string{"?", target}
}

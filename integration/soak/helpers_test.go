package soak

import (
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Binaries are built once per test binary, on first use.
var (
	binsOnce sync.Once
	testBins Binaries
	binsErr  error
	binsDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binsDir != "" {
		os.RemoveAll(binsDir)
	}
	os.Exit(code)
}

// needRoot skips tests that need root and network namespaces.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces and opens raw sockets")
	}
	for _, tool := range []string{"ip", "tc", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

// bins builds ftbridged and labsvc once.
func bins(t *testing.T) Binaries {
	t.Helper()
	binsOnce.Do(func() {
		binsDir, binsErr = os.MkdirTemp("", "ftsoak-bins-")
		if binsErr == nil {
			testBins, binsErr = BuildBinaries(binsDir)
		}
	})
	if binsErr != nil {
		t.Fatal(binsErr)
	}
	return testBins
}

// newTestBridge builds a Bridge torn down with the test.
func newTestBridge(t *testing.T, o BridgeOptions) *Bridge {
	t.Helper()
	o.Bins = bins(t)
	b, err := NewBridge(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ftbridged log (tail):\n%s", b.LogTail(40))
		}
		b.Close()
	})
	return b
}

// linkOf returns the Link of "client" or a replica name.
func linkOf(b *Bridge, name string) Link {
	r := &runner{b: b}
	return r.link(name)
}

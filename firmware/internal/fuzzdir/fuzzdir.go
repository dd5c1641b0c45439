// Package fuzzdir gives fuzz targets that exercise on-disk stores an empty
// directory per input.
package fuzzdir

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// New returns an empty directory for one fuzz input of the target called
// name: on tmpfs when there is one, since the code under test syncs what it
// writes and on a disk the syncs would leave the fuzzer a few inputs a
// second; and always at the same path within a process, since a random
// name (os.MkdirTemp) makes the instrumented code take different paths for
// the same input, which the fuzzer mistakes for new coverage.
func New(t testing.TB, name string) string {
	t.Helper()
	base := filepath.Join(os.TempDir(), "ftb-fuzz-"+name+"-"+strconv.Itoa(os.Getpid()))
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = filepath.Join("/dev/shm", filepath.Base(base))
	}
	dir := filepath.Join(base, "in")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	return dir
}

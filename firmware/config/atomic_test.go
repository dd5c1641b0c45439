package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for i, mode := range []os.FileMode{0o644, 0o600} {
		data := []byte(fmt.Sprintf("version %d\n", i))
		if err := WriteFileAtomic(path, data, mode); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), mode)
		}
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("directory holds %q, want only f", names)
	}
	// A relative path writes in the current directory.
	t.Chdir(dir)
	if err := WriteFileAtomic("rel", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

// TestWriteFileAtomicFailures fails each step before the rename and checks
// that the old file is untouched and the temporary file is gone.
func TestWriteFileAtomicFailures(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name   string
		write  func(f *os.File, data []byte) (int, error)
		rename func(tmp string) error
		want   error
	}{
		{name: "write error", write: func(f *os.File, data []byte) (int, error) {
			n, _ := f.Write(data[:len(data)/2])
			return n, errBoom
		}, want: errBoom},
		{name: "short write", write: func(f *os.File, data []byte) (int, error) {
			return f.Write(data[:len(data)/2])
		}, want: io.ErrShortWrite},
		{name: "crash before rename", rename: func(tmp string) error {
			// The temporary file is complete at this point.
			if got, err := os.ReadFile(tmp); err != nil || string(got) != "new contents\n" {
				t.Errorf("temporary file holds %q, %v", got, err)
			}
			return errBoom
		}, want: errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.json")
			if err := os.WriteFile(path, []byte("old contents\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			testHookWrite, testHookBeforeRename = tt.write, tt.rename
			defer func() { testHookWrite, testHookBeforeRename = nil, nil }()
			err := WriteFileAtomic(path, []byte("new contents\n"), 0o600)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("error %q does not start with the path", err)
			}
			if got, _ := os.ReadFile(path); string(got) != "old contents\n" {
				t.Errorf("file holds %q after a failed write", got)
			}
			if names := listDir(t, dir); len(names) != 1 {
				t.Errorf("directory holds %q after a failed write, want only config.json", names)
			}
		})
	}
}

// TestWriteFileAtomicCrash kills a process in the middle of a write: the
// test binary re-runs itself, and the child exits abruptly once its
// temporary file is complete but before the rename. The file at the path must
// still hold the old contents in full.
func TestWriteFileAtomicCrash(t *testing.T) {
	if p := os.Getenv("FTBRIDGE_TEST_CRASH_PATH"); p != "" {
		testHookBeforeRename = func(string) error { os.Exit(42); return nil }
		_ = WriteFileAtomic(p, bytes.Repeat([]byte("new "), 1<<16), 0o600)
		os.Exit(0) // not reached
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	old := bytes.Repeat([]byte("old "), 1<<10)
	if err := WriteFileAtomic(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteFileAtomicCrash$")
	cmd.Env = append(os.Environ(), "FTBRIDGE_TEST_CRASH_PATH="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 42 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("after the crash the file holds %d bytes, %v; want the old %d", len(got), err, len(old))
	}
	// The crash leaves the hidden temporary file; the next write still works.
	if names := listDir(t, dir); len(names) != 2 {
		t.Errorf("directory holds %q, want config.json and one temporary file", names)
	}
	if err := WriteFileAtomic(path, []byte("next\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "next\n" {
		t.Errorf("file holds %q", got)
	}
}

// TestWriteFileAtomicConcurrent runs writers and readers at once: every read
// sees one writer's complete contents, and at the end the file is one
// writer's complete contents and no temporary file is left.
func TestWriteFileAtomicConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	const writers, rounds = 8, 10
	payload := func(w int) []byte { return bytes.Repeat([]byte{byte('a' + w)}, 64<<10+w) }
	valid := func(b []byte) bool {
		for w := 0; w < writers; w++ {
			if bytes.Equal(b, payload(w)) {
				return true
			}
		}
		return false
	}
	if err := WriteFileAtomic(path, payload(0), 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	var readErr error
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil || !valid(b) {
				readErr = fmt.Errorf("read %d bytes, %v", len(b), err)
				return
			}
		}
	}()
	errs := make(chan error, writers*rounds)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				if err := WriteFileAtomic(path, payload(w), 0o600); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if readErr != nil {
		t.Errorf("a reader saw a partial file: %v", readErr)
	}
	b, err := os.ReadFile(path)
	if err != nil || !valid(b) {
		t.Errorf("final file: %d bytes, %v", len(b), err)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("directory holds %q, want only config.json", names)
	}
}

package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Test hooks; nil in production. testHookWrite replaces the temporary file's
// write; testHookBeforeRename runs after the temporary file is complete and
// closed, just before it is renamed into place.
var (
	testHookWrite        func(f *os.File, data []byte) (int, error)
	testHookBeforeRename func(tmp string) error
)

// WriteFileAtomic writes data to path durably: it writes a temporary file in
// the same directory, sets its mode, fsyncs it, renames it over path and
// fsyncs the directory. Readers see either the old file or the complete new
// one, never a partial file. On error the temporary file is removed and path
// is unchanged (unless the error is from the final directory fsync, when the
// new file is in place but may not survive a power loss). A symbolic link at
// path is replaced, not followed. Errors start with the path.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("%s: %w", path, err)
		}
	}()
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode.Perm()); err != nil {
		return err
	}
	write := (*os.File).Write
	if testHookWrite != nil {
		write = testHookWrite
	}
	n, err := write(f, data)
	if err == nil && n < len(data) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if testHookBeforeRename != nil {
		if err := testHookBeforeRename(tmp); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	renamed = true
	return syncDir(dir)
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		// Some file systems cannot sync directories (EINVAL); the
		// rename is then as durable as they make it.
		return err
	}
	return nil
}

// Marshal returns the document form of c: indented JSON ending in a newline,
// with Version set to CurrentVersion when it is zero. Unset optional fields
// are omitted.
func (c *Config) Marshal() ([]byte, error) {
	cp := *c
	if cp.Version == 0 {
		cp.Version = CurrentVersion
	}
	data, err := json.MarshalIndent(&cp, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// Save validates c and writes it to path with WriteFileAtomic, mode 0600. An
// invalid configuration is not written, so that the box never finds one it
// cannot boot with. Errors start with the path.
func (c *Config) Save(path string) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	data, err := c.Marshal()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return WriteFileAtomic(path, data, 0o600)
}

package imagetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf16"
)

// GPTPartition is one entry of a GUID partition table.
type GPTPartition struct {
	// Name is the partition name (PARTLABEL).
	Name string
	// Type and UUID are GUIDs in their textual form.
	Type, UUID string
	// First and Last are the partition's first and last LBA.
	First, Last uint64
}

// ReadGPT reads the primary GPT of a disk image with 512-byte sectors.
func ReadGPT(path string) ([]GPTPartition, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hdr := make([]byte, 92)
	if _, err := f.ReadAt(hdr, 512); err != nil {
		return nil, err
	}
	if string(hdr[:8]) != "EFI PART" {
		return nil, errors.New("no GPT header at LBA 1")
	}
	start := binary.LittleEndian.Uint64(hdr[72:])
	n := binary.LittleEndian.Uint32(hdr[80:])
	size := binary.LittleEndian.Uint32(hdr[84:])
	if size < 128 || n > 1024 {
		return nil, fmt.Errorf("implausible GPT: %d entries of %d bytes", n, size)
	}
	buf := make([]byte, int(n)*int(size))
	if _, err := f.ReadAt(buf, int64(start)*512); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var out []GPTPartition
	for i := 0; i < int(n); i++ {
		e := buf[i*int(size) : (i+1)*int(size)]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			continue
		}
		u16 := make([]uint16, 36)
		for j := range u16 {
			u16[j] = binary.LittleEndian.Uint16(e[56+2*j:])
		}
		out = append(out, GPTPartition{
			Name:  strings.TrimRight(string(utf16.Decode(u16)), "\x00"),
			Type:  guid(e[0:16]),
			UUID:  guid(e[16:32]),
			First: binary.LittleEndian.Uint64(e[32:]),
			Last:  binary.LittleEndian.Uint64(e[40:]),
		})
	}
	return out, nil
}

// guid formats a GPT's mixed-endian GUID.
func guid(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

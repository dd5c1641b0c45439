package board

import (
	"fmt"
	"strings"
)

// LinkFile is one generated systemd.link file.
type LinkFile struct {
	// Name is the file name, such as "10-ftbridge-uplink0.link".
	Name string
	// Content is the file's text.
	Content string
}

// LinkFiles returns one systemd.link file per port. Each names its NIC by
// ID_PATH or MAC (never by kernel order) and turns off the offloads that
// would hand the dataplane merged or unchecksummed frames. The files sort
// before Debian's 99-default.link, so they win.
func (b *Board) LinkFiles() []LinkFile {
	var out []LinkFile
	for i, p := range b.Ports {
		var s strings.Builder
		fmt.Fprintf(&s, "# Generated from board/%s.json: %s port %s. Do not edit.\n", b.Name, p.Role, p.Name)
		s.WriteString("[Match]\n")
		if len(p.Match.Path) > 0 {
			fmt.Fprintf(&s, "Path=%s\n", strings.Join(p.Match.Path, " "))
		}
		if len(p.Match.MAC) > 0 {
			fmt.Fprintf(&s, "PermanentMACAddress=%s\n", strings.Join(p.Match.MAC, " "))
		}
		s.WriteString("\n[Link]\n")
		fmt.Fprintf(&s, "Name=%s\n", p.Name)
		if p.Role != RoleManagement {
			// The dataplane rewrites TCP segments frame by frame: it needs
			// the frames as they were on the wire.
			s.WriteString("GenericReceiveOffload=false\nLargeReceiveOffload=false\n")
			s.WriteString("TCPSegmentationOffload=false\nGenericSegmentationOffload=false\n")
		}
		out = append(out, LinkFile{Name: fmt.Sprintf("10-ftbridge-%02d-%s.link", i, p.Name), Content: s.String()})
	}
	return out
}

// PartitionTypeUUID returns the GPT type GUID for a partition of the board:
// the ESP type, the Discoverable Partitions root type for the board's
// architecture, or Linux generic data.
func (b *Board) PartitionTypeUUID(p Partition) string {
	switch p.Role {
	case PartESP:
		return "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	case PartRoot:
		if b.Arch == "arm64" {
			return "b921b045-1df0-41c3-af44-4c6f280d3fae"
		}
		return "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
	}
	return "0fc63daf-8483-4772-8e79-3d69d8477de4"
}

// Genimage returns a genimage configuration for the board's disk. images
// maps partition labels to the file genimage writes into them (relative to
// genimage's --inputpath); a label without an image is left empty. The
// partition UUIDs are fixed per label so two builds of one commit produce the
// same partition table.
func (b *Board) Genimage(output string, images map[string]string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "# Generated from board/%s.json. Do not edit.\n", b.Name)
	// Partitions start on 1 MiB boundaries: flash erase blocks and 4K
	// sectors.
	fmt.Fprintf(&s, "image %s {\n\thdimage {\n\t\tpartition-table-type = \"gpt\"\n\t\talign = 1M\n", output)
	fmt.Fprintf(&s, "\t\tdisk-uuid = %q\n\t}\n", stableUUID(b.Name, "disk"))
	for _, p := range b.Layout.Partitions {
		fmt.Fprintf(&s, "\tpartition %s {\n", p.Label)
		fmt.Fprintf(&s, "\t\tpartition-type-uuid = %q\n", b.PartitionTypeUUID(p))
		fmt.Fprintf(&s, "\t\tpartition-uuid = %q\n", stableUUID(b.Name, p.Label))
		if img, ok := images[p.Label]; ok && img != "" {
			fmt.Fprintf(&s, "\t\timage = %q\n", img)
		}
		fmt.Fprintf(&s, "\t\tsize = %dM\n", p.SizeMiB)
		s.WriteString("\t}\n")
	}
	s.WriteString("}\n")
	return s.String()
}

// stableUUID derives a fixed, well-formed version-4-shaped UUID from its
// inputs (FNV-1a spread over 16 bytes), so partition UUIDs do not change
// between builds.
func stableUUID(parts ...string) string {
	var u [16]byte
	h := uint64(14695981039346656037)
	key := strings.Join(parts, "/")
	for i := range u {
		for j := 0; j < len(key); j++ {
			h ^= uint64(key[j])
			h *= 1099511628211
		}
		h ^= uint64(i)
		h *= 1099511628211
		u[i] = byte(h >> 56)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

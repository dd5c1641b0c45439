package update

import (
	"os"

	"golang.org/x/sys/unix"
)

func mountSlot(s Slot) (string, func() error, error) {
	dir, err := os.MkdirTemp("/run", "ftbridge-slot-")
	if err != nil {
		return "", nil, err
	}
	dev := "/dev/disk/by-partlabel/" + s.Label()
	if err := unix.Mount(dev, dir, "squashfs", unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	return dir, func() error {
		err := unix.Unmount(dir, 0)
		os.Remove(dir)
		return err
	}, nil
}

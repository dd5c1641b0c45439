//go:build !linux

package update

import "errors"

func mountSlot(Slot) (string, func() error, error) {
	return "", nil, errors.New("mounting a slot needs Linux")
}

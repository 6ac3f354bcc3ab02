//go:build !linux

package procfault

import "time"

// Kill is unsupported off Linux.
func Kill() error { return ErrUnsupported }

// Stop is unsupported off Linux.
func Stop(d time.Duration) error { return ErrUnsupported }

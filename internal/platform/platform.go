// Package platform describes the machine a member runs on: the facts advisories are
// evaluated against (operating system, architecture, kernel release).
package platform

import (
	"runtime"
	"sync"
)

// Facts are this machine's platform facts.
type Facts struct {
	OS     string `json:"os"`     // runtime.GOOS: linux, darwin, ...
	Arch   string `json:"arch"`   // runtime.GOARCH: amd64, arm64, ...
	Kernel string `json:"kernel"` // the kernel release as uname -r prints it ("" if unknown)
}

var (
	once  sync.Once
	local Facts
)

// Local returns this machine's facts (read once).
func Local() Facts {
	once.Do(func() {
		local = Facts{OS: runtime.GOOS, Arch: runtime.GOARCH, Kernel: kernelRelease()}
	})
	return local
}

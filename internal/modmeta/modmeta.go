// Package modmeta reads and writes a guest module's metadata (name, version, the ftvs
// versions it runs on, its ABI level), kept in the module's "ftvs.module" custom section.
package modmeta

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/ftvs/ftvs/internal/vrange"
)

// SectionName is the name of the custom section that holds the metadata.
const SectionName = "ftvs.module"

// Limits on what a section may hold. The payload limit leaves room for fields later
// versions may add; the field limits keep names printable in one line.
const (
	MaxPayloadBytes = 64 << 10
	MaxNameBytes    = 64
	MaxFieldBytes   = 256 // version and requires_ftvs
)

// NoSectionWarning is what Describe says about a module without metadata.
const NoSectionWarning = "module has no " + SectionName + " section: assuming version 0.0.0, any runtime, ABI 1; " +
	"build it with `ftvs module build` or stamp it with `ftvs module stamp`"

// ErrInvalid is wrapped by every complaint about metadata: a field Validate refuses, a
// section payload that is not the JSON object below, or more than one section.
var ErrInvalid = errors.New("invalid module metadata")

// ErrUnsupported is wrapped by Supports when a runtime cannot run a module.
var ErrUnsupported = errors.New("module not supported by this runtime")

// Meta is the metadata of a guest module. In the section it is a JSON object:
//
//	{"name":"kv","version":"1.0.0","requires_ftvs":">=0.1.0-0, <1","abi":1,"reads":["GET /kv/"]}
//
// Unknown fields are ignored, so a later ftvs can add fields without breaking
// older runtimes; a known field of the wrong JSON type is an error.
type Meta struct {
	// Name identifies the service: lower-case letters, digits, '.', '_' and '-'.
	Name string `json:"name"`
	// Version is the module's own version (vrange.ParseVersion syntax: 1.2.3, 1.0-rc1).
	Version string `json:"version"`
	// RequiresFTVS is the range of ftvs runtime versions the module runs on
	// (vrange.ParseRange syntax: ">=0.1.0-0, <1"; "*" for any).
	RequiresFTVS string `json:"requires_ftvs"`
	// ABI is the guest ABI level the module needs (guest/ABI.md); a runtime runs it
	// when its own level is at least this.
	ABI int `json:"abi"`
	// Reads are the module's read-only routes ("GET /kv/", "POST /query"): requests
	// that change no state, which the leading CoServer runs without a log entry,
	// discarding whatever they wrote to guest memory (ReadOnly). Runtimes without the
	// read path ignore the field and send them through the log.
	Reads []string `json:"reads,omitempty"`
}

// Defaults is the metadata assumed for a module without a section: the given name
// (not validated), version 0.0.0, any runtime, ABI 1.
func Defaults(name string) Meta {
	return Meta{Name: name, Version: "0.0.0", RequiresFTVS: "*", ABI: 1}
}

// Validate checks every field. Errors wrap ErrInvalid and name the field and the fix.
func (m Meta) Validate() error {
	if err := validName(m.Name); err != nil {
		return err
	}
	if len(m.Version) > MaxFieldBytes {
		return fmt.Errorf("%w: version is %d bytes long, at most %d", ErrInvalid, len(m.Version), MaxFieldBytes)
	}
	if _, err := vrange.ParseVersion(m.Version); err != nil {
		return fmt.Errorf("%w: version: %w", ErrInvalid, err)
	}
	if strings.TrimSpace(m.RequiresFTVS) == "" {
		return fmt.Errorf("%w: requires_ftvs is empty: give the ftvs versions the module runs on, e.g. \">=0.1.0-0, <1\", or \"*\" for any", ErrInvalid)
	}
	if len(m.RequiresFTVS) > MaxFieldBytes {
		return fmt.Errorf("%w: requires_ftvs is %d bytes long, at most %d", ErrInvalid, len(m.RequiresFTVS), MaxFieldBytes)
	}
	if _, err := vrange.ParseRange(m.RequiresFTVS); err != nil {
		return fmt.Errorf("%w: requires_ftvs: %w", ErrInvalid, err)
	}
	if err := validReads(m.Reads); err != nil {
		return err
	}
	if m.ABI < 1 {
		return fmt.Errorf("%w: abi %d: the guest ABI level starts at 1 (guest/ABI.md); give 1 unless the module needs a later level", ErrInvalid, m.ABI)
	}
	return nil
}

func validName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: name is empty: give the service's name, e.g. \"kv\"", ErrInvalid)
	}
	if len(name) > MaxNameBytes {
		return fmt.Errorf("%w: name is %d bytes long, at most %d", ErrInvalid, len(name), MaxNameBytes)
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: name %q: use only lower-case letters, digits, '.', '_' and '-' (e.g. \"kv\", \"orders-api\")", ErrInvalid, name)
		}
	}
	return nil
}

// Supports tells whether a runtime of the given version and guest ABI level can run
// the module: nil if the version is in RequiresFTVS and ABI is at most abi. Otherwise
// the error wraps ErrUnsupported (or ErrInvalid for bad metadata) and says what to do.
func (m Meta) Supports(runtime string, abi int) error {
	if err := m.Validate(); err != nil {
		return err
	}
	rv, err := vrange.ParseVersion(runtime)
	if err != nil {
		return fmt.Errorf("%w: this member's own version: %w", ErrUnsupported, err)
	}
	r, _ := vrange.ParseRange(m.RequiresFTVS) // Validate parsed it
	if !r.Contains(rv) {
		return fmt.Errorf("%w: module %s %s requires ftvs %s; this member runs %s: %s", ErrUnsupported,
			m.Name, m.Version, m.RequiresFTVS, runtime, rangeFix(r, rv))
	}
	if m.ABI > abi {
		return fmt.Errorf("%w: module %s %s needs guest ABI %d, this member implements ABI %d: upgrade the members first (the rolling upgrade in UPGRADING.md)",
			ErrUnsupported, m.Name, m.Version, m.ABI, abi)
	}
	return nil
}

// rangeFix advises on the first constraint of r that v fails: a runtime below a lower
// bound needs upgraded members; one above an upper bound needs a rebuilt module.
func rangeFix(r vrange.Range, v vrange.Version) string {
	for _, c := range r.Constraints {
		if (vrange.Range{Constraints: []vrange.Constraint{c}}).Contains(v) {
			continue
		}
		switch c.Op {
		case vrange.OpGe, vrange.OpGt:
			return "upgrade the members first (the rolling upgrade in UPGRADING.md)"
		case vrange.OpLt, vrange.OpLe:
			return "rebuild the module with this ftvs (`ftvs module build`), or widen its requires_ftvs if it is known to work here"
		}
		break // = or !=: no direction to advise
	}
	return "run it on members whose version is in that range, or rebuild the module for this one"
}

// DefaultRequires is the range `ftvs module build` and `ftvs module stamp` write when
// none is given: from the runtime's major.minor release, prereleases included, up to
// the next major release. For 0.1.0-dev it is ">=0.1.0-0, <1". A module built with one
// runtime may use what that minor release added, so older runtimes are excluded; a new
// major release may change what guests see, so it must be allowed explicitly.
func DefaultRequires(runtime string) (string, error) {
	v, err := vrange.ParseVersion(runtime)
	if err != nil {
		return "", fmt.Errorf("this ftvs's version: %w: give the range explicitly", err)
	}
	if v.Parts[0] == math.MaxUint64 {
		return "", fmt.Errorf("this ftvs's version %s has no next major release: give the range explicitly", runtime)
	}
	return fmt.Sprintf(">=%d.%d.0-0, <%d", v.Parts[0], v.Parts[1], v.Parts[0]+1), nil
}

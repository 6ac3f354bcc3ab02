package modmeta

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Limits on the read-only routes a module may declare.
const (
	MaxReads     = 64
	MaxReadBytes = 256
)

// validReads checks the read-only routes (Meta.Reads): each is "METHOD /path" or
// "METHOD /prefix/".
func validReads(reads []string) error {
	if len(reads) > MaxReads {
		return fmt.Errorf("%w: reads has %d routes, at most %d", ErrInvalid, len(reads), MaxReads)
	}
	for _, r := range reads {
		if err := validRead(r); err != nil {
			return err
		}
	}
	return nil
}

func validRead(r string) error {
	const fix = `give "METHOD /path" (that path only) or "METHOD /prefix/" (every path under it), e.g. "GET /kv/"`
	if len(r) > MaxReadBytes {
		return fmt.Errorf("%w: read-only route is %d bytes long, at most %d", ErrInvalid, len(r), MaxReadBytes)
	}
	method, p, ok := strings.Cut(r, " ")
	if !ok || method == "" {
		return fmt.Errorf("%w: read-only route %q: %s", ErrInvalid, r, fix)
	}
	for _, c := range []byte(method) {
		if c < 'A' || c > 'Z' {
			return fmt.Errorf("%w: read-only route %q: the method must be upper-case letters (GET, POST, ...): %s", ErrInvalid, r, fix)
		}
	}
	if !strings.HasPrefix(p, "/") || !cleanPath(p) {
		return fmt.Errorf("%w: read-only route %q: the path must be absolute and clean (no //, /./ or /../, no spaces): %s", ErrInvalid, r, fix)
	}
	return nil
}

// cleanPath reports whether p is an absolute path as path.Clean leaves it, but for a
// trailing slash.
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' || strings.ContainsAny(p, " \t") {
		return false
	}
	trimmed := p
	if len(p) > 1 {
		trimmed = strings.TrimSuffix(p, "/")
	}
	return path.Clean(trimmed) == trimmed
}

// ReadOnly reports whether the module declares a request to method and p (the URL's
// path, decoded) read-only: it changes no state, so a member may run it without a log
// entry and discard what it changed in guest memory. A route "GET /kv/" covers every
// path under /kv/, "GET /stats" that path only; a GET route covers HEAD as well. A path
// that is not clean (//, /./, /../) is never read-only: the guest's router may resolve
// it elsewhere.
func (m Meta) ReadOnly(method, p string) bool {
	if len(m.Reads) == 0 || !cleanPath(p) {
		return false
	}
	for _, r := range m.Reads {
		rm, rp, _ := strings.Cut(r, " ")
		if rm != method && !(rm == "GET" && method == "HEAD") {
			continue
		}
		if strings.HasSuffix(rp, "/") && strings.HasPrefix(p, rp) || p == rp {
			return true
		}
	}
	return false
}

// Equal reports whether m and o are the same metadata.
func (m Meta) Equal(o Meta) bool {
	return m.Name == o.Name && m.Version == o.Version && m.RequiresFTVS == o.RequiresFTVS && m.ABI == o.ABI &&
		slices.Equal(m.Reads, o.Reads)
}

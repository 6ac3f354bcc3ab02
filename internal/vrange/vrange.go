// Package vrange parses version numbers of up to four numeric parts (1, 1.2, 6.1.2.2147,
// with an optional -suffix such as 0.1.0-dev) and ranges over them (">=6.1, <6.1.2.2147").
// Module requirements and advisories use it.
package vrange

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxParts is the most numeric parts a version may have.
const MaxParts = 4

// Version is a parsed version. Missing parts are 0: 6.1 equals 6.1.0.0. A suffix
// (0.1.0-dev) sorts before the same numbers without one, as in semver.
type Version struct {
	Parts  [MaxParts]uint64
	N      int    // how many parts were written
	Suffix string // after '-' (or '+'), without it
}

// ParseVersion reads "6.1.2.2147", "1.2", "v0.1.0-dev".
func ParseVersion(s string) (Version, error) {
	var v Version
	orig := s
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		v.Suffix = s[i+1:]
		s = s[:i]
		if v.Suffix == "" {
			return v, fmt.Errorf("version %q: nothing after %q: write e.g. 1.2.0-rc1, or drop it", orig, orig[len(orig)-1:])
		}
	}
	if s == "" {
		return v, fmt.Errorf("version %q: empty: write numbers separated by dots, e.g. 1.2.3", orig)
	}
	parts := strings.Split(s, ".")
	if len(parts) > MaxParts {
		return v, fmt.Errorf("version %q: %d parts, at most %d (e.g. 6.1.2.2147)", orig, len(parts), MaxParts)
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || p == "" || (len(p) > 1 && p[0] == '+') {
			return v, fmt.Errorf("version %q: part %d (%q) is not a number: write numbers separated by dots, e.g. 1.2.3", orig, i+1, p)
		}
		v.Parts[i] = n
	}
	v.N = len(parts)
	return v, nil
}

// MustParse is ParseVersion for constants; it panics on a bad version.
func MustParse(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// Compare orders versions: -1, 0 or 1.
func (v Version) Compare(w Version) int {
	for i := range MaxParts {
		if c := cmp.Compare(v.Parts[i], w.Parts[i]); c != 0 {
			return c
		}
	}
	switch {
	case v.Suffix == w.Suffix:
		return 0
	case v.Suffix == "":
		return 1
	case w.Suffix == "":
		return -1
	}
	return cmp.Compare(v.Suffix, w.Suffix)
}

func (v Version) String() string {
	n := max(v.N, 1)
	s := make([]string, n)
	for i := range n {
		s[i] = strconv.FormatUint(v.Parts[i], 10)
	}
	out := strings.Join(s, ".")
	if v.Suffix != "" {
		out += "-" + v.Suffix
	}
	return out
}

// Op is a comparison in a range.
type Op string

const (
	OpEq Op = "="
	OpNe Op = "!="
	OpLt Op = "<"
	OpLe Op = "<="
	OpGt Op = ">"
	OpGe Op = ">="
)

// Constraint is one comparison: ">= 6.1".
type Constraint struct {
	Op      Op
	Version Version
}

// Range is constraints that must all hold; empty (or "*") is every version.
type Range struct {
	Constraints []Constraint
}

// ErrRange is wrapped by every range syntax error.
var ErrRange = errors.New("bad version range")

// ParseRange reads "*", "1.2" (exactly), ">=6.1, <6.1.2.2147", ">= 1 < 2" (commas are
// optional between constraints).
func ParseRange(s string) (Range, error) {
	var r Range
	rest := strings.TrimSpace(s)
	if rest == "" || rest == "*" {
		return r, nil
	}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,\t")
		if rest == "" {
			break
		}
		op := OpEq
		for _, o := range []Op{OpGe, OpLe, OpNe, "==", OpGt, OpLt, OpEq} {
			if strings.HasPrefix(rest, string(o)) {
				op = o
				if o == "==" {
					op = OpEq
				}
				rest = strings.TrimLeft(rest[len(o):], " \t")
				break
			}
		}
		end := strings.IndexAny(rest, " ,\t<>=!")
		if end < 0 {
			end = len(rest)
		}
		word := rest[:end]
		rest = rest[end:]
		if word == "" {
			return Range{}, fmt.Errorf("%w %q: %q has no version after it: write e.g. \">=6.1, <6.1.2.2147\"", ErrRange, s, op)
		}
		v, err := ParseVersion(word)
		if err != nil {
			return Range{}, fmt.Errorf("%w %q: %w", ErrRange, s, err)
		}
		r.Constraints = append(r.Constraints, Constraint{Op: op, Version: v})
	}
	return r, nil
}

// Contains reports whether v satisfies every constraint.
func (r Range) Contains(v Version) bool {
	for _, c := range r.Constraints {
		d := v.Compare(c.Version)
		ok := false
		switch c.Op {
		case OpEq:
			ok = d == 0
		case OpNe:
			ok = d != 0
		case OpLt:
			ok = d < 0
		case OpLe:
			ok = d <= 0
		case OpGt:
			ok = d > 0
		case OpGe:
			ok = d >= 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// Any reports whether the range admits every version.
func (r Range) Any() bool { return len(r.Constraints) == 0 }

func (r Range) String() string {
	if r.Any() {
		return "*"
	}
	s := make([]string, len(r.Constraints))
	for i, c := range r.Constraints {
		s[i] = string(c.Op) + c.Version.String()
	}
	return strings.Join(s, ", ")
}

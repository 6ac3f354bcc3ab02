package advisory

import (
	"strconv"

	"github.com/ftvs/ftvs/internal/vrange"
)

// KernelVersion reads a kernel release as uname -r prints it into a version a kernel
// condition compares: the leading dotted numbers, then — if there are fewer than four
// and a '-' and digits follow them — those digits as the next part. Everything else is
// ignored:
//
//	6.1.0-18-amd64           -> 6.1.0.18
//	5.15.0-91-generic        -> 5.15.0.91
//	4.18.0-513.9.1.el8_9     -> 4.18.0.513
//	6.1.2.2147               -> 6.1.2.2147
//	6.6.13+bpo-amd64         -> 6.6.13
//	14.0-RELEASE-p3          -> 14.0
//
// A release that does not start with a number (or is empty) is not a version: ok is
// false, and no kernel condition holds for it.
func KernelVersion(release string) (v vrange.Version, ok bool) {
	s := release
	for v.N < vrange.MaxParts {
		n, rest, found := leadingNumber(s)
		if !found {
			break
		}
		v.Parts[v.N] = n
		v.N++
		s = rest
		if len(s) < 2 || s[0] != '.' || !isDigit(s[1]) {
			break
		}
		s = s[1:]
	}
	if v.N == 0 {
		return vrange.Version{}, false
	}
	if v.N < vrange.MaxParts && len(s) >= 2 && s[0] == '-' {
		if n, _, found := leadingNumber(s[1:]); found {
			v.Parts[v.N] = n
			v.N++
		}
	}
	return v, true
}

// leadingNumber reads the decimal digits at the start of s (at most 19 of them, so it
// fits; longer runs are not a number).
func leadingNumber(s string) (n uint64, rest string, ok bool) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 0 || i > 19 {
		return 0, s, false
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return 0, s, false
	}
	return n, s[i:], true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

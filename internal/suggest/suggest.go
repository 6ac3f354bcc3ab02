// Package suggest finds the name a user most likely meant by a name that is not one
// (a misspelt setting or key), for "unknown X (did you mean Y?)" messages.
package suggest

import (
	"fmt"
	"strings"
)

// maxBytes bounds the inputs of Distance: a longer name is no typo of a known one.
const maxBytes = 64

// DidYouMean is the hint that names the suggestion: did you mean "name"?
func DidYouMean(name string) string { return fmt.Sprintf("did you mean %q?", name) }

// Normalize is name as names are compared: in lower case, with '-' for '_'.
func Normalize(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "-", "_"))
}

// Closest is the candidate that word most likely meant, and whether there is one. It
// compares word and the candidates normalized (Normalize) and tries, in order:
//
//  1. the same name, or the same in the singular (advisories, advisory);
//  2. a name that starts with word;
//  3. a name that contains word, for a word of three bytes or more;
//  4. a name one typo away (Distance);
//  5. a name two typos away, for a word of more than four bytes.
//
// The first test that a candidate passes gives the answer: of several that pass it, the
// one nearest to word ("modul" means "module", not "module_version"), and none where
// two are as near (better no hint than a wrong one).
func Closest(word string, candidates []string) (string, bool) {
	k := Normalize(word)
	if k == "" {
		return "", false
	}
	for _, match := range []func(name string) bool{
		func(name string) bool { return name == k || singular(name) == singular(k) },
		func(name string) bool { return strings.HasPrefix(name, k) },
		func(name string) bool { return len(k) >= 3 && strings.Contains(name, k) },
		func(name string) bool { return Distance(name, k) <= 1 },
		func(name string) bool { return len(k) > 4 && Distance(name, k) <= 2 },
	} {
		if best, ok, found := nearest(k, candidates, match); found {
			return best, ok
		}
	}
	return "", false
}

// nearest is the candidate that passes match nearest to k (Distance); ok is false, and
// best "", if several are as near; found is whether any passes at all.
func nearest(k string, candidates []string, match func(name string) bool) (best string, ok, found bool) {
	bestD, ties := 0, 0
	for _, c := range candidates {
		n := Normalize(c)
		if !match(n) {
			continue
		}
		switch d := Distance(n, k); {
		case !found || d < bestD:
			best, bestD, ties, found = c, d, 1, true
		case d == bestD:
			ties++
		}
	}
	if ties > 1 {
		return "", false, true
	}
	return best, found, found
}

// singular drops an English plural ending: advisories -> advisory, keys -> key.
func singular(s string) string {
	if t, ok := strings.CutSuffix(s, "ies"); ok {
		return t + "y"
	}
	return strings.TrimSuffix(s, "s")
}

// Distance counts the typos (a byte inserted, deleted or changed, or two neighbours
// swapped) that turn a into b: the optimal string alignment distance, over bytes.
// Inputs longer than 64 bytes are 64 apart from anything.
func Distance(a, b string) int {
	if len(a) > maxBytes || len(b) > maxBytes {
		return maxBytes
	}
	// Three rows of the matrix: two back, one back, this one.
	pp := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pp[j-2]+1)
			}
		}
		pp, prev, cur = prev, cur, pp
	}
	return prev[len(b)]
}

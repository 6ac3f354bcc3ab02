package suggest

import (
	"strings"
	"testing"
)

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"fuel", "fuel", 0},
		{"feul", "fuel", 1},  // a swap is one typo
		{"tsl", "tls", 1},    // at the end too
		{"fuel", "fuels", 1}, // an insertion
		{"kernal", "kernel", 1},
		{"ca", "abc", 3}, // OSA: no edit of a swapped pair
		{"heartbeat", "heart_beat", 1},
		{strings.Repeat("a", 65), "a", maxBytes},
	} {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Distance(tt.b, tt.a); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d (symmetric)", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestClosest(t *testing.T) {
	settings := []string{"name", "data_dir", "members", "link_a", "link_b", "heartbeat_timeout", "fuel", "memory_limit_mib", "token_file"}
	for _, tt := range []struct {
		word, want string
	}{
		{"Name", "name"},                         // case
		{"memory-limit-mib", "memory_limit_mib"}, // '-' for '_'
		{"member", "members"},                    // singular
		{"heartbeat", "heartbeat_timeout"},       // prefix
		{"limit", "memory_limit_mib"},            // contained
		{"feul", "fuel"},                         // one typo
		{"linkb", "link_b"},                      // one typo, of two alike: the other is two away
		{"tokn_fil", "token_file"},               // two typos, long enough
		{"link", ""},                             // prefix of two as near: ambiguous
		{"token", "token_file"},                  // prefix
		{"link_c", ""},                           // one typo from two: ambiguous
		{"fl", ""},                               // too far
		{"nme_", ""},                             // two typos, but short
		{"", ""},
		{"zzzzzzzzz", ""},
	} {
		got, ok := Closest(tt.word, settings)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("Closest(%q) = %q, %v; want %q", tt.word, got, ok, tt.want)
		}
	}
	if got, ok := Closest("modul", []string{"module", "module_version"}); got != "module" || !ok {
		t.Errorf("Closest(modul) = %q, %v; want the nearer of two prefixes", got, ok)
	}
	if got, ok := Closest("advisories", []string{"advisory"}); got != "advisory" || !ok {
		t.Errorf("Closest(advisories) = %q, %v; want advisory (singular)", got, ok)
	}
	if got, ok := Closest("advisory", []string{"advisories"}); got != "advisories" || !ok {
		t.Errorf("Closest(advisory) = %q, %v; want advisories (singular)", got, ok)
	}
	if got, _ := Closest("linux", []string{"Linux"}); got != "Linux" {
		t.Errorf("Closest returns %q, want the candidate as given", got)
	}
}

func TestDidYouMean(t *testing.T) {
	if got, want := DidYouMean("guest.fuel"), `did you mean "guest.fuel"?`; got != want {
		t.Fatalf("DidYouMean = %s, want %s", got, want)
	}
}

// FuzzDistance checks the properties of a distance: zero only to itself, symmetric,
// at most the longer length, at least the difference of lengths, and Closest never
// returns a word that is not a candidate.
func FuzzDistance(f *testing.F) {
	f.Add("feul", "fuel")
	f.Add("", "abc")
	f.Add("heartbeat", "heartbeat_timeout")
	f.Fuzz(func(t *testing.T, a, b string) {
		d := Distance(a, b)
		if len(a) > maxBytes || len(b) > maxBytes {
			if d != maxBytes {
				t.Fatalf("Distance of long inputs = %d", d)
			}
			return
		}
		if (d == 0) != (a == b) {
			t.Fatalf("Distance(%q, %q) = %d", a, b, d)
		}
		if e := Distance(b, a); e != d {
			t.Fatalf("Distance(%q, %q) = %d, reversed %d", a, b, d, e)
		}
		if d > max(len(a), len(b)) || d < max(len(a)-len(b), len(b)-len(a)) {
			t.Fatalf("Distance(%q, %q) = %d, out of bounds", a, b, d)
		}
		if got, ok := Closest(a, []string{b, "x"}); ok && got != b && got != "x" {
			t.Fatalf("Closest returned %q, not a candidate", got)
		}
	})
}

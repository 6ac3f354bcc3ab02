package vrange

import (
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"1", "1"}, {"6.1.2.2147", "6.1.2.2147"}, {"v0.1.0-dev", "0.1.0-dev"}, {" 2.0 ", "2.0"}, {"1.2+build5", "1.2-build5"},
	} {
		v, err := ParseVersion(tc.in)
		if err != nil || v.String() != tc.want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %s", tc.in, v, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty"}, {"1.2.3.4.5", "at most 4"}, {"1.x", `part 2 ("x") is not a number`}, {"1..2", "part 2"}, {"1.2-", "nothing after"}, {"-1", "empty"},
	} {
		if _, err := ParseVersion(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseVersion(%q) error %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
}

func TestCompare(t *testing.T) {
	order := []string{"0.1.0-dev", "0.1", "0.1.0.1", "1.0-rc1", "1.0-rc2", "1", "6.1.2.2146", "6.1.2.2147", "6.2"}
	for i := range order {
		for j := range order {
			a, b := MustParse(order[i]), MustParse(order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
	if MustParse("6.1").Compare(MustParse("6.1.0.0")) != 0 {
		t.Error("6.1 != 6.1.0.0")
	}
}

func TestRange(t *testing.T) {
	for _, tc := range []struct {
		r   string
		in  []string
		out []string
	}{
		{"*", []string{"0", "99.9"}, nil},
		{"", []string{"1"}, nil},
		{">=6.1, <6.1.2.2147", []string{"6.1", "6.1.2.2146", "6.1.1.9999"}, []string{"6.0.9", "6.1.2.2147", "6.2"}},
		{">= 1 < 2", []string{"1", "1.9"}, []string{"2", "0.9"}},
		{"1.2", []string{"1.2", "1.2.0.0"}, []string{"1.2.1"}},
		{"==1.2", []string{"1.2"}, []string{"1.3"}},
		{"!=0.2,>0.1", []string{"0.3", "0.1.1"}, []string{"0.2", "0.1"}},
		{"<=0.1", []string{"0.1", "0.1.0-dev"}, []string{"0.1.1"}},
	} {
		r, err := ParseRange(tc.r)
		if err != nil {
			t.Fatalf("ParseRange(%q): %v", tc.r, err)
		}
		for _, v := range tc.in {
			if !r.Contains(MustParse(v)) {
				t.Errorf("%q (%s) should contain %s", tc.r, r, v)
			}
		}
		for _, v := range tc.out {
			if r.Contains(MustParse(v)) {
				t.Errorf("%q (%s) should not contain %s", tc.r, r, v)
			}
		}
	}
	for _, bad := range []string{">=", "<1.x", ">=1,,<", "1.2.3.4.5", "=>1"} {
		if _, err := ParseRange(bad); err == nil {
			t.Errorf("ParseRange(%q) accepted", bad)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"*", ">=6.1, <6.1.2.2147", "1.2", "!=0.2,>0.1", "v1-rc", ">= 1 < 2"} {
		f.Add(s, "6.1.2")
	}
	f.Fuzz(func(t *testing.T, rs, vs string) {
		r, err := ParseRange(rs)
		if err != nil {
			return
		}
		// The printed form parses back to the same range.
		r2, err := ParseRange(r.String())
		if err != nil {
			t.Fatalf("ParseRange(%q).String() = %q does not parse: %v", rs, r.String(), err)
		}
		if v, err := ParseVersion(vs); err == nil && r.Contains(v) != r2.Contains(v) {
			t.Fatalf("%q and its printed form %q disagree on %s", rs, r.String(), v)
		}
	})
}

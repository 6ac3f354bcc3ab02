package crashfs

import (
	"flag"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/fsx"
)

var seedFlag = flag.Uint64("seed", 0, "base seed of the randomized tests (0: from the clock)")

// baseSeed returns the seed of a randomized test and logs it if the test fails.
func baseSeed(t *testing.T) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("base seed %d: rerun with -seed=%d", seed, seed)
		}
	})
	return seed
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// create opens name for writing, creating or truncating it, or fails the test.
func create(t *testing.T, fsys fsx.FS, name string) fsx.File {
	t.Helper()
	f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// content returns the content of name, or "<missing>" / "<error>".
func content(fsys *FS, name string) string {
	b, err := fsys.ReadFile(name)
	if err != nil {
		if os.IsNotExist(err) {
			return "<missing>"
		}
		return "<error " + err.Error() + ">"
	}
	return string(b)
}

func write(t *testing.T, f fsx.File, s string) {
	t.Helper()
	if _, err := f.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

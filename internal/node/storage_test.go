package node

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/fsx"
)

// Raft state of a development build from before the first release (a v1 segment log, a
// bbolt stable store or log) is not read: a lone CoServer refuses to start and changes
// nothing; a cluster member sets it aside and starts empty, to be repaired by its peers.
func TestDevelopmentBuildStateNotRead(t *testing.T) {
	for _, leftover := range []string{"raft/log", "raft/stable.db", "raft/log.db"} {
		for _, repair := range []bool{false, true} {
			t.Run(strings.ReplaceAll(leftover, "/", "-")+map[bool]string{false: "-lone", true: "-member"}[repair], func(t *testing.T) {
				path := t.TempDir()
				d, err := openDataDir(fsx.OS, path)
				if err != nil {
					t.Fatal(err)
				}
				defer d.close()
				p := filepath.Join(path, leftover)
				if leftover == "raft/log" {
					err = os.MkdirAll(p, 0o700)
				} else {
					err = os.WriteFile(p, []byte("bbolt"), 0o600)
				}
				if err != nil {
					t.Fatal(err)
				}
				o := storeOptions{fs: fsx.OS, log: slog.New(slog.NewTextHandler(io.Discard, nil)), repair: repair}
				s, found, err := openStores(d, o)
				if !repair {
					if err == nil || !errors.Is(err, errLegacyUnreadable) || !strings.Contains(err.Error(), "development build") ||
						!strings.Contains(err.Error(), "Nothing was changed") {
						t.Fatalf("lone CoServer: err %v, want the development build named and nothing changed", err)
					}
					if _, err := os.Stat(p); err != nil {
						t.Fatalf("the leftover was touched: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer s.close()
				if len(found) != 1 || !errors.Is(found[0].err, errLegacyUnreadable) {
					t.Fatalf("damage found %+v, want the development build's state", found)
				}
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Fatalf("the leftover is still in place: %v", err)
				}
				if _, err := os.Stat(filepath.Join(found[0].aside, "REASON.txt")); err != nil {
					t.Fatalf("no REASON.txt where it was set aside: %v", err)
				}
			})
		}
	}
}

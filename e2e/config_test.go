package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/config"
)

// refuseQuickly bounds how long a member may take to refuse a bad config: it must
// decide before it loads a guest or opens anything.
const refuseQuickly = 5 * time.Second

// dirEntries lists dir's names, sorted.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// A broken config file is refused before anything starts: exit 2, a message that names
// the setting (or the line) and the fix, and no data dir created.
func TestBadConfigs(t *testing.T) {
	initDir := filepath.Join(t.TempDir(), "cluster")
	if code, out, stderr := ftvs(t, "init", initDir); code != 0 {
		t.Fatalf("ftvs init: exit %d\n%s%s", code, out, stderr)
	}
	good := filepath.Join(initDir, config.CoServer1+".toml")
	cfg, err := config.Load(good)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	orig := string(b)
	http1, _ := cfg.Member(config.CoServer1)
	http2, _ := cfg.Member(config.CoServer2)

	// lineOf is the 1-based line of the first line of s that starts with prefix.
	lineOf := func(s, prefix string) int {
		for i, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, prefix) {
				return i + 1
			}
		}
		t.Fatalf("no line starting with %q in\n%s", prefix, s)
		return 0
	}
	replaceLine := func(s, prefix, with string) string {
		lines := strings.Split(s, "\n")
		i := lineOf(s, prefix) - 1
		lines[i] = with
		return strings.Join(lines, "\n")
	}
	mustReplace := func(s, old, new string, n int) string {
		if strings.Count(s, old) < 1 {
			t.Fatalf("%q not in the file", old)
		}
		return strings.Replace(s, old, new, n)
	}

	syntax := replaceLine(orig, "fuel = ", "fuel = = 200000000")
	tests := []struct {
		name string
		file string
		want []string // all of these in stderr
	}{
		{"missing data_dir", replaceLine(orig, "data_dir = ", ""),
			[]string{"missing field data_dir", `add it, e.g. data_dir = "coserver1"`}},
		{"duplicate ports", mustReplace(orig, `http = "`+http2.HTTP+`"`, `http = "`+http1.HTTP+`"`, 1),
			[]string{"members[0].http and members[1].http both use " + http1.HTTP, "give each its own port"}},
		{"unknown member name", replaceLine(orig, "name = ", `name = "coserver3"`),
			[]string{`name "coserver3" is not a member`, "use coserver1, coserver2 or witness"}},
		{"unknown member in the members list", mustReplace(orig, `name = "coserver2"`, `name = "coserver3"`, 1),
			[]string{`members[1].name "coserver3" is not a member`, "coserver2 is not listed", "add a [[members]] table"}},
		{"misspelt setting", mustReplace(orig, "heartbeat_timeout = ", "heartbeat = ", 1),
			[]string{`unknown setting "raft.heartbeat"`, `did you mean "raft.heartbeat_timeout"`}},
		{"syntax error", syntax,
			[]string{fmt.Sprintf("coserver1.toml:%d:", lineOf(syntax, "fuel = ")), "not valid TOML"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "broken")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, config.CoServer1+".toml")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			code, stdout, stderr := ftvs(t, "coserver", "--config", path)
			took := time.Since(start)
			if code != 2 || !contains(stderr, tc.want...) {
				t.Fatalf("exit %d (want 2), stderr:\n%s\nwant it to mention %q", code, stderr, tc.want)
			}
			if !strings.HasPrefix(stderr, "ftvs coserver: "+path) {
				t.Errorf("the message does not start by naming the command and the file:\n%s", stderr)
			}
			if stdout != "" {
				t.Errorf("a refused config printed on stdout: %q", stdout)
			}
			if took > refuseQuickly {
				t.Errorf("took %v to refuse a bad config (want under %v)", took, refuseQuickly)
			}
			if got := dirEntries(t, dir); !slices.Equal(got, []string{config.CoServer1 + ".toml"}) {
				t.Errorf("refused start left %v in %s (want only the config file)", got, dir)
			}
		})
	}

	// The wrong command for a good file: the witness is told to run the coserver command,
	// and the other way round.
	wrong := []struct{ cmd, file, want string }{
		{"witness", config.CoServer1, "run `ftvs coserver --config "},
		{"coserver", config.Witness, "run `ftvs witness --config "},
	}
	for _, w := range wrong {
		t.Run("ftvs "+w.cmd+" --config "+w.file+".toml", func(t *testing.T) {
			path := filepath.Join(initDir, w.file+".toml")
			start := time.Now()
			code, _, stderr := ftvs(t, w.cmd, "--config", path)
			if code != 2 || !contains(stderr, w.want+path+"`", "configures "+w.file) {
				t.Fatalf("exit %d (want 2), stderr:\n%s\nwant it to mention %q", code, stderr, w.want+path)
			}
			if took := time.Since(start); took > refuseQuickly {
				t.Errorf("took %v to refuse (want under %v)", took, refuseQuickly)
			}
		})
	}

	// Nothing was created next to the good files: no data dir for any member.
	if got := dirEntries(t, initDir); !slices.Equal(got, []string{"coserver1.toml", "coserver2.toml", "manager.token", "pki", "witness.toml"}) {
		t.Errorf("refused starts created %v in %s", got, initDir)
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("data dir %s exists after refused starts (%v)", cfg.DataDir, err)
	}
}

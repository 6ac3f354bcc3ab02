package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testConfig is a valid configuration of member name.
func testConfig(name string) *Config {
	c := &Config{
		Cluster: "00112233445566778899aabbccddeeff",
		Name:    name,
		DataDir: name,
		Members: []Member{
			{Name: CoServer1, LinkA: "127.0.0.1:7101", LinkB: "127.0.0.1:7201", HTTP: "127.0.0.1:8081"},
			{Name: CoServer2, LinkA: "127.0.0.1:7102", LinkB: "127.0.0.1:7202", HTTP: "127.0.0.1:8082"},
			{Name: Witness, LinkA: "127.0.0.1:7103", LinkB: "127.0.0.1:7203", HTTP: "127.0.0.1:8083"},
		},
	}
	c.SetDefaults()
	return c
}

func TestDefaults(t *testing.T) {
	c := testConfig(CoServer1)
	want := Raft{
		HeartbeatTimeout: Duration{100 * time.Millisecond}, ElectionTimeout: Duration{100 * time.Millisecond},
		LeaderLeaseTimeout: Duration{100 * time.Millisecond}, CommitTimeout: Duration{5 * time.Millisecond},
		SnapshotThreshold: 32768, SnapshotInterval: Duration{5 * time.Second}, TrailingLogs: 10240,
	}
	if c.Raft != want {
		t.Errorf("raft defaults = %+v, want %+v", c.Raft, want)
	}
	if g := (Guest{MemoryLimitMiB: 1024, MaxRequestBytes: 4194304, Fuel: 200000000, CheckInterval: Duration{5 * time.Second}}); c.Guest != g {
		t.Errorf("guest defaults = %+v, want %+v", c.Guest, g)
	}
	if c.Log != (Log{Level: "info", Format: "text"}) {
		t.Errorf("log defaults = %+v", c.Log)
	}
	if l := (Links{ProbeInterval: Duration{20 * time.Millisecond}, DownAfter: Duration{60 * time.Millisecond}}); c.Links != l {
		t.Errorf("links defaults = %+v, want %+v", c.Links, l)
	}
	if tl := (TLS{Mode: "mutual", Dir: "pki", ExpiryWarning: Duration{720 * time.Hour}}); c.TLS != tl {
		t.Errorf("tls defaults = %+v, want %+v", c.TLS, tl)
	}
	if c.Gateway != (Gateway{}) {
		t.Errorf("gateway defaults = %+v, want none", c.Gateway)
	}
	if c.Manager != (Manager{TokenFile: "manager.token", Reads: ReadsOpen}) {
		t.Errorf("manager defaults = %+v", c.Manager)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("warnings of the defaults: %q", w)
	}
	if w := testConfig(Witness); w.Raft.TrailingLogs != 1_000_000 {
		t.Errorf("witness trailing_logs = %d, want 1000000", w.Raft.TrailingLogs)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSelfAndMember(t *testing.T) {
	c := testConfig(CoServer2)
	if s := c.Self(); s.LinkA != "127.0.0.1:7102" || s.Links() != [2]string{"127.0.0.1:7102", "127.0.0.1:7202"} {
		t.Errorf("Self = %+v, Links %q", s, s.Links())
	}
	if _, ok := c.Member("coserver3"); ok {
		t.Error("Member(coserver3) found")
	}
	if c.IsWitness() || !testConfig(Witness).IsWitness() {
		t.Error("IsWitness wrong")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, name := range MemberNames {
		c := testConfig(name)
		c.Guest.MaxRequestBytes = 1000
		c.Raft.SnapshotInterval = Duration{90 * time.Second}
		c.Links.DownAfter = Duration{45 * time.Millisecond}
		c.TLS = TLS{Mode: TLSOff, Dir: "/etc/ftvs/pki", ExpiryWarning: Duration{24 * time.Hour}}
		c.Gateway = Gateway{TLSCert: "gw.crt", TLSKey: "gw.key", ClientTokenFile: "clients/token"}
		c.Manager.TokenFile = "/etc/ftvs/manager.token"
		c.DataDir = "dir with \"quotes\", \\ and a\ttab\x01"
		if name != Witness {
			c.Guest.File = "/opt/app/ü.wasm"
		}
		data := c.Marshal()
		got, err := Parse(data, name+".toml")
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, data)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", name, got, c)
		}
	}
}

// TestMarshalComments checks that every setting has a comment right above it.
func TestMarshalComments(t *testing.T) {
	lines := strings.Split(string(testConfig(CoServer1).Marshal()), "\n")
	n := 0
	for i, line := range lines {
		if strings.Contains(line, " = ") && !strings.HasPrefix(line, "#") {
			n++
			if i == 0 || !strings.HasPrefix(lines[i-1], "# ") {
				t.Errorf("line %d %q has no comment above it", i+1, line)
			}
		}
	}
	if want := 3 + 3*4 + 6 + 7 + 2 + 3 + 3 + 3 + 3 + 2; n != want {
		t.Errorf("%d settings written, want %d", n, want)
	}
}

func TestErrorsAreInvalid(t *testing.T) {
	_, err := Parse([]byte("cluster = 1\nname = 2\n"), "x.toml")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Source != "x.toml" || e.Field != "cluster" {
		t.Fatalf("errors.As: %+v", e)
	}
}

// TestDocExamples keeps the examples in CONFIG.md valid.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```toml\n")[1:]
	if len(blocks) != 2 {
		t.Fatalf("%d toml examples in CONFIG.md, want 2", len(blocks))
	}
	for i, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		if _, err := Parse([]byte(b), fmt.Sprintf("CONFIG.md example %d", i+1)); err != nil {
			t.Error(err)
		}
	}
}

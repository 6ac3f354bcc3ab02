package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestValidateErrors mutates a valid file and checks that Parse names the file, the
// setting and the fix.
func TestValidateErrors(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		member string // default coserver1
		edit   func(c *Config)
		want   []string
	}{
		{"missing cluster", "", func(c *Config) { c.Cluster = "" }, []string{"missing field cluster: add it, e.g. cluster = \""}},
		{"bad cluster", "", func(c *Config) { c.Cluster = "xyz" }, []string{`cluster "xyz"`, "32 lowercase hex"}},
		{"upper-case cluster", "", func(c *Config) { c.Cluster = strings.ToUpper(c.Cluster) }, []string{"cluster", "32 lowercase hex"}},
		{"missing name", "", func(c *Config) { c.Name = "" }, []string{`missing field name: add it, e.g. name = "coserver1"`}},
		{"unknown name", "", func(c *Config) { c.Name = "coserver3" }, []string{`name "coserver3"`, "use coserver1, coserver2 or witness"}},
		{"missing data_dir", "", func(c *Config) { c.DataDir = "" }, []string{`missing field data_dir: add it, e.g. data_dir = "coserver1"`}},
		{"missing member name", "", func(c *Config) { c.Members[1].Name = "" }, []string{"missing field members[1].name: add it, e.g. name =", "coserver2 is not listed: add a [[members]] table"}},
		{"missing member raft", "", func(c *Config) { c.Members[1].Raft = "" }, []string{`missing field members[1].raft: add it, e.g. raft = "10.0.0.2:7102"`}},
		{"missing member http", "", func(c *Config) { c.Members[2].HTTP = "" }, []string{`missing field members[2].http: add it, e.g. http = "`}},
		{"unknown member", "", func(c *Config) { c.Members[2].Name = "observer" }, []string{`members[2].name "observer" is not a member: the members are coserver1, coserver2 and witness`, "witness is not listed"}},
		{"duplicate member", "", func(c *Config) { c.Members[1].Name = CoServer1 }, []string{`members[0].name and members[1].name are both "coserver1": list each`}},
		{"self not a member", "", func(c *Config) { c.Members = c.Members[1:] }, []string{"members: coserver1 is not listed: add a [[members]] table with name = \"coserver1\""}},
		{"no port", "", func(c *Config) { c.Members[1].Raft = "127.0.0.1" }, []string{`members[1].raft "127.0.0.1": not host:port: write it as host:port`}},
		{"port 0", "", func(c *Config) { c.Members[0].HTTP = "127.0.0.1:0" }, []string{`members[0].http "127.0.0.1:0": port 0 is not allowed in a config file`, "give a fixed one"}},
		{"port too big", "", func(c *Config) { c.Members[0].HTTP = "127.0.0.1:70000" }, []string{`members[0].http "127.0.0.1:70000": port "70000" is not a number from 1 to 65535`}},
		{"port name", "", func(c *Config) { c.Members[0].Raft = "host:http" }, []string{`members[0].raft "host:http": port "http"`}},
		{"bad host", "", func(c *Config) { c.Members[0].Raft = "a b:7101" }, []string{`members[0].raft "a b:7101": the host`}},
		{"raft on every interface", "", func(c *Config) { c.Members[0].Raft = "0.0.0.0:7101" }, []string{"members[0].raft", "the other members dial this address: give the host"}},
		{"raft without host", "", func(c *Config) { c.Members[0].Raft = ":7101" }, []string{"members[0].raft", "give the host"}},
		{"duplicate address", "", func(c *Config) { c.Members[2].Raft = "127.0.0.1:8081" }, []string{"members[0].http and members[2].raft both use 127.0.0.1:8081: give each its own port"}},
		{"duplicate address case", "", func(c *Config) { c.Members[0].Raft, c.Members[1].Raft = "Host:1", "host:1" }, []string{"members[0].raft and members[1].raft both use host:1"}},
		{"negative heartbeat", "", func(c *Config) { c.Raft.HeartbeatTimeout.Duration = -ms }, []string{`raft.heartbeat_timeout "-1ms" is too short (raft needs at least 5ms): use e.g. heartbeat_timeout = "100ms"`}},
		{"short election", "", func(c *Config) { c.Raft.ElectionTimeout.Duration = 2 * ms }, []string{"raft.election_timeout", "at least 5ms"}},
		{"short lease", "", func(c *Config) { c.Raft.LeaderLeaseTimeout.Duration = 4 * ms }, []string{"raft.leader_lease_timeout", "at least 5ms"}},
		{"short commit", "", func(c *Config) { c.Raft.CommitTimeout.Duration = 999 * time.Microsecond }, []string{"raft.commit_timeout", "at least 1ms"}},
		{"short snapshot interval", "", func(c *Config) { c.Raft.SnapshotInterval.Duration = ms }, []string{"raft.snapshot_interval", "at least 5ms"}},
		{"election below heartbeat", "", func(c *Config) { c.Raft.ElectionTimeout.Duration = 50 * ms }, []string{`raft.election_timeout "50ms" is shorter than raft.heartbeat_timeout "100ms": make it at least "100ms"`}},
		{"lease above heartbeat", "", func(c *Config) { c.Raft.LeaderLeaseTimeout.Duration = 200 * ms }, []string{`raft.leader_lease_timeout "200ms" is longer than raft.heartbeat_timeout "100ms": make it at most "100ms"`}},
		{"memory too big", "", func(c *Config) { c.Guest.MemoryLimitMiB = 5000 }, []string{"guest.memory_limit_mib 5000 is out of range: give 1 to 4096 (MiB)"}},
		{"negative request size", "", func(c *Config) { c.Guest.MaxRequestBytes = -1 }, []string{"guest.max_request_bytes is -1: give a positive number, e.g. max_request_bytes = 4194304"}},
		{"zero fuel", "", func(c *Config) { c.Guest.Fuel = 0 }, []string{"guest.fuel is 0: give a positive number", "or remove the line for the default (200000000)"}},
		{"zero duration", "", func(c *Config) { c.Raft.CommitTimeout.Duration = 0 }, []string{`raft.commit_timeout is 0: give a positive duration`, `remove the line for the default ("5ms")`}},
		{"log level", "", func(c *Config) { c.Log.Level = "verbose" }, []string{`log.level "verbose": use debug, info, warn or error`}},
		{"log format", "", func(c *Config) { c.Log.Format = "yaml" }, []string{`log.format "yaml": use text or json`}},
		{"empty log level", "", func(c *Config) { c.Log.Level = "" }, []string{`log.level is empty: give a value, e.g. level = "info", or remove the line`}},
		{"witness guest", Witness, func(c *Config) { c.Guest.File = "app.wasm" }, []string{`guest.file is "app.wasm", but the witness never runs the guest: remove guest.file`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			member := tt.member
			if member == "" {
				member = CoServer1
			}
			c := testConfig(member)
			tt.edit(c)
			source := member + ".toml"
			_, err := Parse(c.Marshal(), source)
			if err == nil {
				t.Fatalf("no error for\n%s", c.Marshal())
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, source+": ") {
					t.Errorf("%q does not start with the file name", line)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

// TestFileErrors covers what only a file can get wrong: syntax, unknown keys, types.
func TestFileErrors(t *testing.T) {
	valid := string(testConfig(CoServer1).Marshal())
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"syntax", "cluster = \"abc\nname = 1\n", []string{"coserver1.toml:1:", "not valid TOML"}},
		{"syntax line", valid + "x = = 1\n", []string{fmt.Sprintf("coserver1.toml:%d:5: not valid TOML", strings.Count(valid, "\n")+1)}},
		{"unknown raft key", strings.Replace(valid, "heartbeat_timeout =", "heartbeat =", 1), []string{`coserver1.toml: unknown setting "raft.heartbeat" (did you mean "raft.heartbeat_timeout"?)`}},
		{"hyphen", strings.Replace(valid, "memory_limit_mib =", "memory-limit-mib =", 1), []string{`unknown setting "guest.memory-limit-mib" (did you mean "guest.memory_limit_mib"?)`}},
		{"typo", strings.Replace(valid, "fuel =", "feul =", 1), []string{`unknown setting "guest.feul" (did you mean "guest.fuel"?)`}},
		{"wrong table", "fuel = 5\n" + valid, []string{`unknown setting "fuel" (did you mean "guest.fuel"?)`}},
		{"unknown table", strings.Replace(valid, "[guest]", "[gust]", 1), []string{`unknown setting "gust" (did you mean "guest"?)`}},
		{"unknown member key", strings.Replace(valid, "http = \"127.0.0.1:8082\"", "http = \"127.0.0.1:8082\"\nport = 1", 1), []string{`unknown setting "members[1].port"`}},
		{"no suggestion", "zzz = 1\n" + valid, []string{`unknown setting "zzz": remove it`}},
		{"string for int", strings.Replace(valid, "fuel = 200000000", `fuel = "lots"`, 1), []string{`guest.fuel is a string: write an integer, e.g. fuel = 200000000`}},
		{"int for duration", strings.Replace(valid, `heartbeat_timeout = "100ms"`, "heartbeat_timeout = 100", 1), []string{`raft.heartbeat_timeout is an integer: write a duration as a string with a unit, e.g. heartbeat_timeout = "100ms"`}},
		{"bad duration", strings.Replace(valid, `heartbeat_timeout = "100ms"`, `heartbeat_timeout = "100"`, 1), []string{`raft.heartbeat_timeout: "100" is not a duration: write a number with a unit`}},
		{"negative uint", strings.Replace(valid, "snapshot_threshold = 32768", "snapshot_threshold = -1", 1), []string{"raft.snapshot_threshold is -1: give a positive number"}},
		{"members as table", strings.Replace(valid, "[[members]]", "[members]", 1), []string{"not valid TOML"}},
		{"members not tables", "members = 3\n", []string{"members is an integer: write one [[members]] table per member"}},
		{"guest not a table", "guest = 3\n", []string{"guest is an integer: write it as a table, [guest]"}},
		{"date", "cluster = 1979-05-27\n", []string{"cluster is a date-time: write a string"}},
		{"capitalized key", "Name = \"coserver1\"\n", []string{`unknown setting "Name" (did you mean "name"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.file), "coserver1.toml")
			if err == nil {
				t.Fatalf("no error for\n%s", tt.file)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestInlineMembers(t *testing.T) {
	file := `cluster = "00112233445566778899aabbccddeeff"
name = "witness"
data_dir = "w"
members = [
  {name = "coserver1", raft = "10.0.0.1:7101", http = "10.0.0.1:8080"},
  {name = "coserver2", raft = "10.0.0.2:7101", http = "10.0.0.2:8080"},
  {name = "witness", raft = "10.0.0.3:7101", http = "10.0.0.3:8080"},
]
`
	c, err := Parse([]byte(file), "w.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Self().Raft != "10.0.0.3:7101" || c.Raft.TrailingLogs != DefaultWitnessTrailingLogs {
		t.Fatalf("%+v", c)
	}
}

func TestManyErrorsBounded(t *testing.T) {
	var b strings.Builder
	for i := range 30 {
		b.WriteString("x" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + " = 1\n")
	}
	_, err := Parse([]byte(b.String()), "f.toml")
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 || !strings.Contains(lines[maxErrors], "and 10 more problems") {
		t.Fatalf("%d lines:\n%v", len(lines), err)
	}
}

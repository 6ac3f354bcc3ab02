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
		{"missing member link_a", "", func(c *Config) { c.Members[1].LinkA = "" }, []string{`missing field members[1].link_a: add it, e.g. link_a = "10.0.0.2:7102"`}},
		{"missing member link_b", "", func(c *Config) { c.Members[1].LinkB = "" }, []string{`missing field members[1].link_b: add it, e.g. link_b = "10.0.1.2:7102"`}},
		{"missing member http", "", func(c *Config) { c.Members[2].HTTP = "" }, []string{`missing field members[2].http: add it, e.g. http = "`}},
		{"unknown member", "", func(c *Config) { c.Members[2].Name = "observer" }, []string{`members[2].name "observer" is not a member: the members are coserver1, coserver2 and witness`, "witness is not listed"}},
		{"duplicate member", "", func(c *Config) { c.Members[1].Name = CoServer1 }, []string{`members[0].name and members[1].name are both "coserver1": list each`}},
		{"self not a member", "", func(c *Config) { c.Members = c.Members[1:] }, []string{`members: coserver1 is not listed: add a [[members]] table with name = "coserver1", link_a = "host:port", link_b = "host:port" and http = "host:port"`}},
		{"no port", "", func(c *Config) { c.Members[1].LinkA = "127.0.0.1" }, []string{`members[1].link_a "127.0.0.1": not host:port: write it as host:port`}},
		{"no port link b", "", func(c *Config) { c.Members[1].LinkB = "127.0.0.1" }, []string{`members[1].link_b "127.0.0.1": not host:port: write it as host:port`}},
		{"port 0", "", func(c *Config) { c.Members[0].HTTP = "127.0.0.1:0" }, []string{`members[0].http "127.0.0.1:0": port 0 is not allowed in a config file`, "give a fixed one"}},
		{"port too big", "", func(c *Config) { c.Members[0].HTTP = "127.0.0.1:70000" }, []string{`members[0].http "127.0.0.1:70000": port "70000" is not a number from 1 to 65535`}},
		{"port name", "", func(c *Config) { c.Members[0].LinkA = "host:http" }, []string{`members[0].link_a "host:http": port "http"`}},
		{"bad host", "", func(c *Config) { c.Members[0].LinkB = "a b:7101" }, []string{`members[0].link_b "a b:7101": the host`}},
		{"link a on every interface", "", func(c *Config) { c.Members[0].LinkA = "0.0.0.0:7101" }, []string{"members[0].link_a", "the other members dial this address: give the host"}},
		{"link b on every interface", "", func(c *Config) { c.Members[0].LinkB = "[::]:7201" }, []string{"members[0].link_b", "the other members dial this address: give the host"}},
		{"link b without host", "", func(c *Config) { c.Members[0].LinkB = ":7101" }, []string{"members[0].link_b", "give the host"}},
		{"duplicate address", "", func(c *Config) { c.Members[2].LinkA = "127.0.0.1:8081" }, []string{"members[0].http and members[2].link_a both use 127.0.0.1:8081: give each its own port"}},
		{"duplicate address case", "", func(c *Config) { c.Members[0].LinkA, c.Members[1].LinkA = "Host:1", "host:1" }, []string{"members[0].link_a and members[1].link_a both use host:1"}},
		{"same address for both links", "", func(c *Config) { c.Members[1].LinkB = c.Members[1].LinkA }, []string{"members[1].link_a and members[1].link_b both use 127.0.0.1:7102: give each its own port"}},
		{"link b is another member's link a", "", func(c *Config) { c.Members[2].LinkB = "127.0.0.1:7101" }, []string{"members[0].link_a and members[2].link_b both use 127.0.0.1:7101"}},
		{"link b is an http address", "", func(c *Config) { c.Members[0].LinkB = "127.0.0.1:8083" }, []string{"members[0].link_b and members[2].http both use 127.0.0.1:8083"}},
		{"http is a link b", "", func(c *Config) { c.Members[1].HTTP = "127.0.0.1:7201" }, []string{"members[0].link_b and members[1].http both use 127.0.0.1:7201"}},
		{"negative heartbeat", "", func(c *Config) { c.Raft.HeartbeatTimeout.Duration = -ms }, []string{`raft.heartbeat_timeout "-1ms" is too short (raft needs at least 5ms): use e.g. heartbeat_timeout = "100ms"`}},
		{"short election", "", func(c *Config) { c.Raft.ElectionTimeout.Duration = 2 * ms }, []string{"raft.election_timeout", "at least 5ms"}},
		{"short lease", "", func(c *Config) { c.Raft.LeaderLeaseTimeout.Duration = 4 * ms }, []string{"raft.leader_lease_timeout", "at least 5ms"}},
		{"short commit", "", func(c *Config) { c.Raft.CommitTimeout.Duration = 999 * time.Microsecond }, []string{"raft.commit_timeout", "at least 1ms"}},
		{"short snapshot interval", "", func(c *Config) { c.Raft.SnapshotInterval.Duration = ms }, []string{"raft.snapshot_interval", "at least 5ms"}},
		{"election below heartbeat", "", func(c *Config) { c.Raft.ElectionTimeout.Duration = 50 * ms }, []string{`raft.election_timeout "50ms" is shorter than raft.heartbeat_timeout "100ms": make it at least "100ms"`}},
		{"lease above heartbeat", "", func(c *Config) { c.Raft.LeaderLeaseTimeout.Duration = 200 * ms }, []string{`raft.leader_lease_timeout "200ms" is longer than raft.heartbeat_timeout "100ms": make it at most "100ms"`}},
		{"memory too big", "", func(c *Config) { c.Guest.MemoryLimitMiB = 5000 }, []string{"guest.memory_limit_mib 5000 is out of range: give 1 to 4096 (MiB)"}},
		{"negative request size", "", func(c *Config) { c.Guest.MaxRequestBytes = -1 }, []string{"guest.max_request_bytes is -1: give a positive number, e.g. max_request_bytes = 4194304"}},
		{"short check interval", "", func(c *Config) { c.Guest.CheckInterval.Duration = 50 * ms }, []string{`guest.check_interval "50ms" is too short`, `at least 100ms, e.g. check_interval = "5s"`}},
		{"short tick interval", "", func(c *Config) { c.Guest.TickInterval.Duration = 5 * ms }, []string{`guest.tick_interval "5ms": give 0 (no tick entries) or at least 10ms`}},
		{"negative tick interval", "", func(c *Config) { c.Guest.TickInterval.Duration = -ms }, []string{`guest.tick_interval "-1ms"`}},
		{"zero fuel", "", func(c *Config) { c.Guest.Fuel = 0 }, []string{"guest.fuel is 0: give a positive number", "or remove the line for the default (200000000)"}},
		{"zero duration", "", func(c *Config) { c.Raft.CommitTimeout.Duration = 0 }, []string{`raft.commit_timeout is 0: give a positive duration`, `remove the line for the default ("5ms")`}},
		{"short probe interval", "", func(c *Config) { c.Links.ProbeInterval.Duration = 500 * time.Microsecond }, []string{`links.probe_interval "500µs" is too short: give at least 1ms, e.g. probe_interval = "20ms"`}},
		{"down_after not above probe_interval", "", func(c *Config) { c.Links.DownAfter.Duration = 20 * ms }, []string{`links.down_after "20ms" is not longer than links.probe_interval "20ms"`, `e.g. down_after = "60ms"`}},
		{"down_after at election_timeout", "", func(c *Config) { c.Links.DownAfter.Duration = 100 * ms }, []string{`links.down_after "100ms" is not shorter than raft.election_timeout "100ms": a link must be declared down and its traffic moved to the other link before followers start an election`, `make links.down_after shorter (e.g. "60ms") or raft.election_timeout longer`}},
		{"down_after above election_timeout", "", func(c *Config) {
			c.Raft.HeartbeatTimeout.Duration, c.Raft.ElectionTimeout.Duration, c.Raft.LeaderLeaseTimeout.Duration = 40*ms, 50*ms, 40*ms
		}, []string{`links.down_after "60ms" is not shorter than raft.election_timeout "50ms"`}},
		{"down_after at heartbeat_timeout", "", func(c *Config) {
			c.Raft.HeartbeatTimeout.Duration, c.Raft.LeaderLeaseTimeout.Duration, c.Links.DownAfter.Duration = 50*ms, 50*ms, 70*ms
		}, []string{`links.down_after "70ms" is not shorter than raft.heartbeat_timeout "50ms" (the time after which a follower stands for election)`}},
		{"zero down_after", "", func(c *Config) { c.Links.DownAfter.Duration = 0 }, []string{`links.down_after is 0: give a positive duration, e.g. down_after = "60ms", or remove the line for the default ("60ms")`}},
		{"bad tls mode", "", func(c *Config) { c.TLS.Mode = "on" }, []string{`tls.mode "on": use "mutual" (members authenticate each other with the certificates in tls.dir) or "off"`}},
		{"empty tls mode", "", func(c *Config) { c.TLS.Mode = "" }, []string{`tls.mode is empty: give a value, e.g. mode = "mutual", or remove the line for the default ("mutual")`}},
		{"empty tls dir", "", func(c *Config) { c.TLS.Dir = "" }, []string{`tls.dir is empty: give a value, e.g. dir = "pki", or remove the line for the default ("pki")`}},
		{"negative expiry warning", "", func(c *Config) { c.TLS.ExpiryWarning.Duration = -time.Hour }, []string{`tls.expiry_warning "-1h0m0s": give a positive duration, e.g. expiry_warning = "720h" (30 days)`}},
		{"gateway cert without key", "", func(c *Config) { c.Gateway.TLSCert = "gw.crt" }, []string{`gateway.tls_cert is set but gateway.tls_key is missing: give both (a PEM certificate and its private key) for HTTPS, or neither for plain HTTP, e.g. tls_key = "gateway.key"`}},
		{"gateway key without cert", "", func(c *Config) { c.Gateway.TLSKey = "gw.key" }, []string{`gateway.tls_key is set but gateway.tls_cert is missing`, `e.g. tls_cert = "gateway.crt"`}},
		{"alerts URL not http", "", func(c *Config) { c.Alerts.WebhookURL = "alerts.example.com/hook" }, []string{`alerts.webhook_url "alerts.example.com/hook": give an http or https URL, e.g. webhook_url = "https://alerts.example.com/ftvs"`}},
		{"alerts severity", "", func(c *Config) { c.Alerts.WebhookURL, c.Alerts.MinSeverity = "https://h/x", "loud" }, []string{`alerts.min_severity "loud": use info, warning or error`}},
		{"alerts token without URL", "", func(c *Config) { c.Alerts.TokenFile = "a.token" }, []string{"alerts.token_file is set but alerts.webhook_url is not"}},
		{"empty manager token file", "", func(c *Config) { c.Manager.TokenFile = "" }, []string{`manager.token_file is empty: give a value, e.g. token_file = "manager.token", or remove the line for the default ("manager.token")`}},
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
		{"renamed raft", renamedRaft(valid), []string{
			"coserver1.toml: members[0].raft: renamed: every member now has two links, link_a and link_b (host:port on two separate networks; both may be on one network, e.g. loopback, for testing)",
			"coserver1.toml: members[2].raft: renamed: every member now has two links"}},
		{"renamed raft inline", `members = [{name = "witness", raft = "10.0.0.3:7101", http = "10.0.0.3:8080"}]`, []string{"members[0].raft: renamed: every member now has two links, link_a and link_b"}},
		{"member link typo", strings.Replace(valid, "link_b =", "linkb =", 1), []string{`unknown setting "members[0].linkb" (did you mean "members[0].link_b"?)`}},
		{"member link hyphen", strings.Replace(valid, "link_a =", "link-a =", 1), []string{`unknown setting "members[0].link-a" (did you mean "members[0].link_a"?)`}},
		{"unknown links key", strings.Replace(valid, "down_after =", "down =", 1), []string{`unknown setting "links.down" (did you mean "links.down_after"?)`}},
		{"links key at the top", "probe_interval = \"20ms\"\n" + valid, []string{`unknown setting "probe_interval" (did you mean "links.probe_interval"?)`}},
		{"tls key in gateway", strings.Replace(valid, "[gateway]\n", "[gateway]\nexpiry_warning = \"1h\"\n", 1), []string{`unknown setting "gateway.expiry_warning" (did you mean "tls.expiry_warning"?)`}},
		{"gateway cert typo", strings.Replace(valid, "tls_cert =", "cert =", 1), []string{`unknown setting "gateway.cert" (did you mean "gateway.tls_cert"?)`}},
		{"manager token typo", strings.Replace(valid, "\ntoken_file =", "\ntoken =", 1), []string{`unknown setting "manager.token" (did you mean "manager.token_file"?)`}},
		{"unknown tls table", strings.Replace(valid, "[tls]", "[tsl]", 1), []string{`unknown setting "tsl" (did you mean "tls"?)`}},
		{"int for probe interval", strings.Replace(valid, `probe_interval = "20ms"`, "probe_interval = 20", 1), []string{`links.probe_interval is an integer: write a duration as a string with a unit, e.g. probe_interval = "20ms"`}},
		{"bad down_after", strings.Replace(valid, `down_after = "60ms"`, `down_after = "60"`, 1), []string{`links.down_after: "60" is not a duration`}},
		{"zero expiry warning", strings.Replace(valid, `expiry_warning = "720h0m0s"`, `expiry_warning = "0s"`, 1), []string{`tls.expiry_warning is 0: give a positive duration, e.g. expiry_warning = "720h", or remove the line for the default ("720h0m0s")`}},
		{"bool for tls mode", strings.Replace(valid, `mode = "mutual"`, "mode = false", 1), []string{`tls.mode is a boolean: write a string, e.g. mode = "mutual"`}},
		{"int for token file", strings.Replace(valid, `token_file = "manager.token"`, "token_file = 1", 1), []string{`manager.token_file is an integer: write a string, e.g. token_file = "manager.token"`}},
		{"gateway not a table", "gateway = 3\n", []string{"gateway is an integer: write it as a table, [gateway]"}},
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

// renamedRaft turns a valid file back into one with the old raft address per member.
func renamedRaft(valid string) string {
	var out []string
	for _, line := range strings.Split(valid, "\n") {
		if strings.HasPrefix(line, "link_b = ") {
			continue
		}
		out = append(out, strings.Replace(line, "link_a = ", "raft = ", 1))
	}
	return strings.Join(out, "\n")
}

func TestInlineMembers(t *testing.T) {
	file := `cluster = "00112233445566778899aabbccddeeff"
name = "witness"
data_dir = "w"
members = [
  {name = "coserver1", link_a = "10.0.0.1:7101", link_b = "10.0.1.1:7101", http = "10.0.0.1:8080"},
  {name = "coserver2", link_a = "10.0.0.2:7101", link_b = "10.0.1.2:7101", http = "10.0.0.2:8080"},
  {name = "witness", link_a = "10.0.0.3:7101", link_b = "10.0.1.3:7101", http = "10.0.0.3:8080"},
]
`
	c, err := Parse([]byte(file), "w.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Self().Links() != [2]string{"10.0.0.3:7101", "10.0.1.3:7101"} || c.Raft.TrailingLogs != DefaultWitnessTrailingLogs {
		t.Fatalf("%+v", c)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
}

func TestWarnings(t *testing.T) {
	c := testConfig(CoServer1)
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("defaults: %q", w)
	}
	c.TLS.Mode = TLSOff
	if err := c.Validate(); err != nil {
		t.Fatalf("tls.mode off refused: %v", err)
	}
	want := `tls.mode = "off": member-to-member traffic is neither encrypted nor authenticated; use only for measurements`
	if w := c.Warnings(); len(w) != 1 || w[0] != want {
		t.Errorf("tls off: %q", w)
	}

	c = testConfig(CoServer1)
	c.Gateway.ClientTokenFile = "clients.token"
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "gateway.client_token_file is set but the gateway serves plain HTTP") {
		t.Errorf("token over HTTP: %q", w)
	}
	c.Gateway.TLSCert, c.Gateway.TLSKey = "gw.crt", "gw.key"
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("token over HTTPS: %q", w)
	}

	c = testConfig(CoServer1)
	c.Alerts.WebhookURL, c.Alerts.TokenFile = "http://alerts.example.com/ftvs", "alerts.token"
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "alerts.webhook_url is plain http") {
		t.Errorf("alerts token over HTTP: %q", w)
	}
	c.Alerts.WebhookURL = "https://alerts.example.com/ftvs"
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("alerts token over HTTPS: %q", w)
	}

	// Both links of a member on one (non-loopback) host share its network path.
	c = testConfig(CoServer1)
	c.Members[1].LinkA, c.Members[1].LinkB = "10.0.0.2:7101", "10.0.0.2:7201"
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "members[1] (coserver2): link_a and link_b both use host 10.0.0.2") {
		t.Errorf("one host: %q", w)
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

package config

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func parseFlags(t *testing.T, args ...string) *Flags {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFlagsUnsetChangeNothing(t *testing.T) {
	c := testConfig(CoServer1)
	c.Guest.Fuel = 5 // not the flag's default: an unset flag must not reset it
	want := *c
	want.Members = append([]Member(nil), c.Members...)
	if err := parseFlags(t).Apply(c); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("unset flags changed the config:\n got %+v\nwant %+v", *c, want)
	}
}

func TestFlagsApply(t *testing.T) {
	c := testConfig(CoServer1)
	f := parseFlags(t,
		"--cluster", "ffffffffffffffffffffffffffffffff", "--name", "coserver2", "--data", "/d",
		"--link-a", "10.0.0.2:9000", "--link-b", "10.0.1.2:9000", "--http", "10.0.0.2:9001", "--guest", "app.wasm",
		"--memory-limit", "64", "--max-request-bytes", "100", "--fuel", "7", "--check-interval", "750ms",
		"--heartbeat-timeout", "200ms", "--election-timeout", "300ms", "--leader-lease-timeout", "150ms",
		"--commit-timeout", "2ms", "--snapshot-threshold", "10", "--snapshot-interval", "1m",
		"--trailing-logs", "20", "--log-level", "debug", "--log-format", "json",
		"--link-probe-interval", "10ms", "--link-down-after", "40ms",
		"--tls-mode", "off", "--tls-dir", "/etc/pki", "--tls-expiry-warning", "48h",
		"--gateway-tls-cert", "gw.crt", "--gateway-tls-key", "gw.key", "--client-token-file", "clients.token",
		"--manager-token-file", "/etc/m.token",
	)
	if err := f.Apply(c); err != nil {
		t.Fatal(err)
	}
	want := testConfig(CoServer1)
	want.Cluster, want.Name, want.DataDir = "ffffffffffffffffffffffffffffffff", CoServer2, "/d"
	want.Members[1] = Member{Name: CoServer2, LinkA: "10.0.0.2:9000", LinkB: "10.0.1.2:9000", HTTP: "10.0.0.2:9001"}
	want.Guest = Guest{File: "app.wasm", MemoryLimitMiB: 64, MaxRequestBytes: 100, Fuel: 7, CheckInterval: Duration{750 * time.Millisecond}}
	want.Raft = Raft{
		HeartbeatTimeout: Duration{200 * time.Millisecond}, ElectionTimeout: Duration{300 * time.Millisecond},
		LeaderLeaseTimeout: Duration{150 * time.Millisecond}, CommitTimeout: Duration{2 * time.Millisecond},
		SnapshotThreshold: 10, SnapshotInterval: Duration{time.Minute}, TrailingLogs: 20,
	}
	want.Log = Log{Level: "debug", Format: "json"}
	want.Links = Links{ProbeInterval: Duration{10 * time.Millisecond}, DownAfter: Duration{40 * time.Millisecond}}
	want.TLS = TLS{Mode: TLSOff, Dir: "/etc/pki", ExpiryWarning: Duration{48 * time.Hour}}
	want.Gateway = Gateway{TLSCert: "gw.crt", TLSKey: "gw.key", ClientTokenFile: "clients.token"}
	want.Manager = Manager{TokenFile: "/etc/m.token", Reads: ReadsOpen}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

// TestFlagsOnly builds a configuration from flags alone (no file).
func TestFlagsOnly(t *testing.T) {
	var c Config
	if err := parseFlags(t, "--name", "witness", "--http", "127.0.0.1:1", "--link-a", "127.0.0.1:2", "--link-b", "127.0.0.1:3").Apply(&c); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if c.Self() != (Member{Name: Witness, LinkA: "127.0.0.1:2", LinkB: "127.0.0.1:3", HTTP: "127.0.0.1:1"}) || c.Raft.TrailingLogs != DefaultWitnessTrailingLogs {
		t.Errorf("%+v", c)
	}
	if c.TLS.Mode != TLSMutual || c.TLS.Dir != DefaultTLSDir || c.Manager.TokenFile != DefaultManagerTokenFile {
		t.Errorf("defaults not set: %+v %+v", c.TLS, c.Manager)
	}
}

// TestFlagsOverrideOne: each new flag changes its setting and nothing else.
func TestFlagsOverrideOne(t *testing.T) {
	tests := []struct {
		args []string
		edit func(c *Config)
	}{
		{[]string{"--link-a", "10.0.0.9:1"}, func(c *Config) { c.Members[0].LinkA = "10.0.0.9:1" }},
		{[]string{"--link-b", "10.0.1.9:1"}, func(c *Config) { c.Members[0].LinkB = "10.0.1.9:1" }},
		{[]string{"--link-probe-interval", "5ms"}, func(c *Config) { c.Links.ProbeInterval.Duration = 5 * time.Millisecond }},
		{[]string{"--link-down-after", "30ms"}, func(c *Config) { c.Links.DownAfter.Duration = 30 * time.Millisecond }},
		{[]string{"--tls-mode", "off"}, func(c *Config) { c.TLS.Mode = TLSOff }},
		{[]string{"--tls-dir", "certs"}, func(c *Config) { c.TLS.Dir = "certs" }},
		{[]string{"--tls-expiry-warning", "1h"}, func(c *Config) { c.TLS.ExpiryWarning.Duration = time.Hour }},
		{[]string{"--gateway-tls-cert", "a.crt", "--gateway-tls-key", "a.key"}, func(c *Config) { c.Gateway.TLSCert, c.Gateway.TLSKey = "a.crt", "a.key" }},
		{[]string{"--client-token-file", "t"}, func(c *Config) { c.Gateway.ClientTokenFile = "t" }},
		{[]string{"--manager-token-file", "m"}, func(c *Config) { c.Manager.TokenFile = "m" }},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			c, want := testConfig(CoServer1), testConfig(CoServer1)
			tt.edit(want)
			if err := parseFlags(t, tt.args...).Apply(c); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got  %+v\nwant %+v", c, want)
			}
			if err := c.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
	// The gateway settings may be turned off from the command line.
	c := testConfig(CoServer1)
	c.Gateway = Gateway{TLSCert: "a.crt", TLSKey: "a.key", ClientTokenFile: "t"}
	if err := parseFlags(t, "--gateway-tls-cert=", "--gateway-tls-key=", "--client-token-file=").Apply(c); err != nil || c.Gateway != (Gateway{}) {
		t.Errorf("empty gateway flags: %v %+v", err, c.Gateway)
	}
}

func TestFlagsErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--fuel", "0"}, "--fuel 0: give a positive value"},
		{[]string{"--heartbeat-timeout", "-1s"}, "--heartbeat-timeout -1s: give a positive value"},
		{[]string{"--snapshot-threshold", "0"}, "--snapshot-threshold 0"},
		{[]string{"--data", ""}, "--data is empty"},
		{[]string{"--name", ""}, "--name is empty"},
		{[]string{"--link-a", ""}, "--link-a is empty: give host:port"},
		{[]string{"--link-b", ""}, "--link-b is empty: give host:port"},
		{[]string{"--link-probe-interval", "0s"}, "--link-probe-interval 0s: give a positive value"},
		{[]string{"--link-down-after", "-1ms"}, "--link-down-after -1ms: give a positive value"},
		{[]string{"--tls-expiry-warning", "0s"}, "--tls-expiry-warning 0s: give a positive value"},
		{[]string{"--tls-mode", ""}, "--tls-mode is empty"},
		{[]string{"--tls-dir", ""}, "--tls-dir is empty"},
		{[]string{"--manager-token-file", ""}, "--manager-token-file is empty"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := parseFlags(t, tt.args...).Apply(testConfig(CoServer1))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Apply = %v, want %q", err, tt.want)
			}
		})
	}
	var c Config
	if err := parseFlags(t, "--link-b", "127.0.0.1:1").Apply(&c); err == nil || !strings.Contains(err.Error(), "give --name") {
		t.Errorf("--link-b without a name: %v", err)
	}
	// A flag value the file cannot have shows up in Validate.
	c2 := testConfig(CoServer1)
	if err := parseFlags(t, "--election-timeout", "10ms").Apply(c2); err != nil {
		t.Fatal(err)
	}
	if err := c2.Validate(); err == nil || !strings.Contains(err.Error(), "raft.election_timeout") {
		t.Errorf("Validate = %v", err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-mode", "tls"}, `tls.mode "tls": use "mutual"`},
		{[]string{"--link-down-after", "100ms"}, `links.down_after "100ms" is not shorter than raft.election_timeout "100ms"`},
		{[]string{"--gateway-tls-key", "k"}, "gateway.tls_cert is missing"},
	} {
		c := testConfig(CoServer1)
		if err := parseFlags(t, tt.args...).Apply(c); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: Validate = %v, want %q", tt.args, err, tt.want)
		}
	}
	// --raft is gone: the flag package refuses it.
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--raft", "127.0.0.1:1"}); err == nil {
		t.Error("--raft accepted")
	}
}

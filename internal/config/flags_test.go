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
		"--raft", "10.0.0.2:9000", "--http", "10.0.0.2:9001", "--guest", "app.wasm",
		"--memory-limit", "64", "--max-request-bytes", "100", "--fuel", "7",
		"--heartbeat-timeout", "200ms", "--election-timeout", "300ms", "--leader-lease-timeout", "150ms",
		"--commit-timeout", "2ms", "--snapshot-threshold", "10", "--snapshot-interval", "1m",
		"--trailing-logs", "20", "--log-level", "debug", "--log-format", "json",
	)
	if err := f.Apply(c); err != nil {
		t.Fatal(err)
	}
	want := testConfig(CoServer1)
	want.Cluster, want.Name, want.DataDir = "ffffffffffffffffffffffffffffffff", CoServer2, "/d"
	want.Members[1] = Member{Name: CoServer2, Raft: "10.0.0.2:9000", HTTP: "10.0.0.2:9001"}
	want.Guest = Guest{File: "app.wasm", MemoryLimitMiB: 64, MaxRequestBytes: 100, Fuel: 7}
	want.Raft = Raft{
		HeartbeatTimeout: Duration{200 * time.Millisecond}, ElectionTimeout: Duration{300 * time.Millisecond},
		LeaderLeaseTimeout: Duration{150 * time.Millisecond}, CommitTimeout: Duration{2 * time.Millisecond},
		SnapshotThreshold: 10, SnapshotInterval: Duration{time.Minute}, TrailingLogs: 20,
	}
	want.Log = Log{Level: "debug", Format: "json"}
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
	if err := parseFlags(t, "--name", "witness", "--http", "127.0.0.1:1", "--raft", "127.0.0.1:2").Apply(&c); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if c.Self() != (Member{Name: Witness, Raft: "127.0.0.1:2", HTTP: "127.0.0.1:1"}) || c.Raft.TrailingLogs != DefaultWitnessTrailingLogs {
		t.Errorf("%+v", c)
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
		{[]string{"--raft", ""}, "--raft is empty: give host:port"},
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
	if err := parseFlags(t, "--raft", "127.0.0.1:1").Apply(&c); err == nil || !strings.Contains(err.Error(), "give --name") {
		t.Errorf("--raft without a name: %v", err)
	}
	// A flag value the file cannot have shows up in Validate.
	c2 := testConfig(CoServer1)
	if err := parseFlags(t, "--election-timeout", "10ms").Apply(c2); err != nil {
		t.Fatal(err)
	}
	if err := c2.Validate(); err == nil || !strings.Contains(err.Error(), "raft.election_timeout") {
		t.Errorf("Validate = %v", err)
	}
}

package config

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/divergence"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/node"
	"github.com/ftvs/ftvs/internal/vm"
)

// A setting that another package uses takes that package's default: the file, the flags
// and the package agree.
func TestDefaultsHaveOneHome(t *testing.T) {
	c := testConfig(CoServer1)
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"guest.memory_limit_mib", c.Guest.MemoryLimitMiB << 20, uint64(vm.DefaultMemoryLimitBytes)},
		{"guest.memory_limit_mib maximum", uint64(MaxMemoryLimitMiB) << 20, uint64(vm.MaxMemoryLimitBytes)},
		{"guest.max_request_bytes", c.Guest.MaxRequestBytes, vm.DefaultMaxRequestBytes},
		{"guest.fuel", c.Guest.Fuel, int64(vm.DefaultFuelPerEntry)},
		{"guest.check_interval", c.Guest.CheckInterval.Duration, divergence.DefaultCheckInterval},
		{"guest.tick_interval", c.Guest.TickInterval.Duration, time.Duration(0)},
		{"raft.heartbeat_timeout", c.Raft.HeartbeatTimeout.Duration, node.DefaultHeartbeatTimeout},
		{"raft.election_timeout", c.Raft.ElectionTimeout.Duration, node.DefaultElectionTimeout},
		{"raft.leader_lease_timeout", c.Raft.LeaderLeaseTimeout.Duration, node.DefaultLeaderLeaseTimeout},
		{"raft.commit_timeout", c.Raft.CommitTimeout.Duration, node.DefaultCommitTimeout},
		{"raft.snapshot_threshold", c.Raft.SnapshotThreshold, uint64(node.DefaultSnapshotThreshold)},
		{"raft.snapshot_interval", c.Raft.SnapshotInterval.Duration, node.DefaultSnapshotInterval},
		{"raft.trailing_logs", c.Raft.TrailingLogs, uint64(node.DefaultTrailingLogs)},
		{"links.probe_interval", c.Links.ProbeInterval.Duration, link.DefaultProbeInterval},
		{"links.down_after", c.Links.DownAfter.Duration, link.DefaultDownAfter},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: the file's default is %v, its package's %v", tc.name, tc.got, tc.want)
		}
	}
}

// CONFIG.md gives every default the code has, with the same value.
func TestDocDefaults(t *testing.T) {
	doc, err := os.ReadFile("CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile("^### `\\[(\\w+)\\]`")
	row := regexp.MustCompile("^\\| `(\\w+)` \\| [^|]+ \\| ([^|]+) \\|")
	cells := map[string]string{} // table.key -> the default column
	table := ""
	for _, line := range strings.Split(string(doc), "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			table = m[1]
		} else if m := row.FindStringSubmatch(line); m != nil && table != "" {
			cells[table+"."+m[1]] = m[2]
		}
	}
	code := regexp.MustCompile("`([^`]*)`")
	for _, tab := range fileSettings {
		for _, s := range tab.sub {
			if s.def == "" {
				continue
			}
			path := tab.name + "." + s.name
			cell, ok := cells[path]
			if !ok {
				t.Errorf("CONFIG.md has no row for %s (default %s)", path, s.def)
				continue
			}
			var documented []string
			for _, m := range code.FindAllStringSubmatch(cell, -1) {
				documented = append(documented, m[1])
			}
			want := strings.Split(s.def, ", witness ") // trailing_logs: "10240, witness 1000000"
			if len(documented) != len(want) {
				t.Errorf("CONFIG.md: %s default %q, want %s", path, cell, s.def)
				continue
			}
			for i := range want {
				if !sameValue(s.kind, documented[i], want[i]) {
					t.Errorf("CONFIG.md: %s default %q, want %s", path, cell, s.def)
				}
			}
		}
	}
}

// sameValue compares two TOML values of kind: durations by what they mean ("720h" is
// "720h0m0s").
func sameValue(k kind, a, b string) bool {
	if k != kDuration {
		return a == b
	}
	parse := func(s string) time.Duration {
		u, err := strconv.Unquote(s)
		if err != nil {
			return -1
		}
		d, err := time.ParseDuration(u)
		if err != nil {
			return -1
		}
		return d
	}
	return parse(a) >= 0 && parse(a) == parse(b)
}

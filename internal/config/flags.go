package config

import (
	"flag"
	"fmt"
	"time"
)

// Flags are the command-line overrides of a Config. Only flags the user set are applied.
type Flags struct {
	fs                                                         *flag.FlagSet
	cluster, name, dataDir, raft, http, guest                  string
	memoryLimitMiB                                             uint64
	maxRequestBytes                                            int
	fuel                                                       int64
	heartbeat, election, leaderLease, commit, snapshotInterval time.Duration
	snapshotThreshold, trailingLogs                            uint64
	logLevel, logFormat                                        string
}

// RegisterFlags defines a flag for every setting on fs. Call Apply after fs.Parse.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.cluster, "cluster", "", "cluster id, 32 hex characters (cluster)")
	fs.StringVar(&f.name, "name", "", "this member: coserver1, coserver2 or witness (name)")
	fs.StringVar(&f.dataDir, "data", "", "data directory: raft log and snapshots (data_dir)")
	fs.StringVar(&f.raft, "raft", "", "this member's host:port for raft traffic (its members[].raft)")
	fs.StringVar(&f.http, "http", "", "this member's host:port for the gateway and API (its members[].http)")
	fs.StringVar(&f.guest, "guest", "", "guest module (.wasm) for a new virtual server; default the embedded kv example (guest.file)")
	fs.Uint64Var(&f.memoryLimitMiB, "memory-limit", DefaultMemoryLimitMiB, "guest memory limit in MiB, 1 to 4096 (guest.memory_limit_mib)")
	fs.IntVar(&f.maxRequestBytes, "max-request-bytes", DefaultMaxRequestBytes, "largest request (headers and body) the virtual server accepts (guest.max_request_bytes)")
	fs.Int64Var(&f.fuel, "fuel", DefaultFuel, "per-entry budget in fuel units, one per guest function call or loop iteration (guest.fuel)")
	fs.DurationVar(&f.heartbeat, "heartbeat-timeout", DefaultHeartbeatTimeout, "time without contact from the leader before a follower stands for election (raft.heartbeat_timeout)")
	fs.DurationVar(&f.election, "election-timeout", DefaultElectionTimeout, "time a candidate waits before a new election; at least --heartbeat-timeout (raft.election_timeout)")
	fs.DurationVar(&f.leaderLease, "leader-lease-timeout", DefaultLeaderLeaseTimeout, "time a leader stays leader without a majority; at most --heartbeat-timeout (raft.leader_lease_timeout)")
	fs.DurationVar(&f.commit, "commit-timeout", DefaultCommitTimeout, "time without new entries before the leader sends the commit index anyway (raft.commit_timeout)")
	fs.Uint64Var(&f.snapshotThreshold, "snapshot-threshold", DefaultSnapshotThreshold, "take a snapshot after this many new log entries (raft.snapshot_threshold)")
	fs.DurationVar(&f.snapshotInterval, "snapshot-interval", DefaultSnapshotInterval, "how often to check whether a snapshot is due (raft.snapshot_interval)")
	fs.Uint64Var(&f.trailingLogs, "trailing-logs", DefaultTrailingLogs, fmt.Sprintf("log entries kept after a snapshot; the witness's default is %d (raft.trailing_logs)", DefaultWitnessTrailingLogs))
	fs.StringVar(&f.logLevel, "log-level", DefaultLogLevel, "debug, info, warn or error (log.level)")
	fs.StringVar(&f.logFormat, "log-format", DefaultLogFormat, "text or json (log.format)")
	return f
}

// Apply sets in c the settings whose flags were given. --raft and --http change the
// entry of this member (c.Name, after --name) in c.Members, adding it if missing.
// Apply refuses a flag given as zero or empty where the setting needs a value; the
// caller validates the result as a whole (SetDefaults, then Validate).
func (f *Flags) Apply(c *Config) error {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	p := &problems{}
	str := func(name string, dst *string, v string) {
		if set[name] && v == "" && name != "guest" {
			p.add("--"+name, "--%s is empty: give a value, or leave the flag out", name)
		} else if set[name] {
			*dst = v
		}
	}
	str("cluster", &c.Cluster, f.cluster)
	str("name", &c.Name, f.name)
	str("data", &c.DataDir, f.dataDir)
	if set["raft"] || set["http"] {
		f.applyAddrs(p, c, set)
	}
	str("guest", &c.Guest.File, f.guest)
	positive(p, set, "memory-limit", &c.Guest.MemoryLimitMiB, f.memoryLimitMiB)
	positive(p, set, "max-request-bytes", &c.Guest.MaxRequestBytes, f.maxRequestBytes)
	positive(p, set, "fuel", &c.Guest.Fuel, f.fuel)
	positive(p, set, "heartbeat-timeout", &c.Raft.HeartbeatTimeout.Duration, f.heartbeat)
	positive(p, set, "election-timeout", &c.Raft.ElectionTimeout.Duration, f.election)
	positive(p, set, "leader-lease-timeout", &c.Raft.LeaderLeaseTimeout.Duration, f.leaderLease)
	positive(p, set, "commit-timeout", &c.Raft.CommitTimeout.Duration, f.commit)
	positive(p, set, "snapshot-threshold", &c.Raft.SnapshotThreshold, f.snapshotThreshold)
	positive(p, set, "snapshot-interval", &c.Raft.SnapshotInterval.Duration, f.snapshotInterval)
	positive(p, set, "trailing-logs", &c.Raft.TrailingLogs, f.trailingLogs)
	str("log-level", &c.Log.Level, f.logLevel)
	str("log-format", &c.Log.Format, f.logFormat)
	return p.err()
}

func (f *Flags) applyAddrs(p *problems, c *Config, set map[string]bool) {
	if c.Name == "" {
		p.add("--name", "--raft and --http set this member's addresses, but which member is this? give --name or name in the file")
		return
	}
	i := -1
	for j, m := range c.Members {
		if m.Name == c.Name {
			i = j
		}
	}
	if i < 0 {
		c.Members = append(c.Members, Member{Name: c.Name})
		i = len(c.Members) - 1
	}
	str := func(name string, dst *string, v string) {
		if set[name] && v == "" {
			p.add("--"+name, "--%s is empty: give host:port, or leave the flag out", name)
		} else if set[name] {
			*dst = v
		}
	}
	str("raft", &c.Members[i].Raft, f.raft)
	str("http", &c.Members[i].HTTP, f.http)
}

func positive[T int | int64 | uint64 | time.Duration](p *problems, set map[string]bool, name string, dst *T, v T) {
	if !set[name] {
		return
	}
	if v <= 0 {
		p.add("--"+name, "--%s %v: give a positive value, or leave the flag out for the file's setting", name, v)
		return
	}
	*dst = v
}

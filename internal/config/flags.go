package config

import (
	"flag"
	"fmt"
	"time"
)

// Flags are the command-line overrides of a Config. Only flags the user set are applied.
type Flags struct {
	fs                                                         *flag.FlagSet
	cluster, name, dataDir, linkA, linkB, http, guest          string
	memoryLimitMiB                                             uint64
	maxRequestBytes                                            int
	fuel                                                       int64
	checkInterval, tickInterval                                time.Duration
	heartbeat, election, leaderLease, commit, snapshotInterval time.Duration
	snapshotThreshold, trailingLogs                            uint64
	linkProbeInterval, linkDownAfter                           time.Duration
	tlsMode, tlsDir                                            string
	tlsExpiryWarning                                           time.Duration
	gatewayTLSCert, gatewayTLSKey, clientTokenFile             string
	managerTokenFile, managerTokensFile, managerReads          string
	alertsURL, alertsSeverity, alertsTokenFile                 string
	logLevel, logFormat                                        string
}

// RegisterFlags defines a flag for every setting on fs. Call Apply after fs.Parse.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.cluster, "cluster", "", "cluster id, 32 hex characters (cluster)")
	fs.StringVar(&f.name, "name", "", "this member: coserver1, coserver2 or witness (name)")
	fs.StringVar(&f.dataDir, "data", "", "data directory: raft log and snapshots (data_dir)")
	fs.StringVar(&f.linkA, "link-a", "", "this member's host:port for member-to-member traffic on the first network (its members[].link_a)")
	fs.StringVar(&f.linkB, "link-b", "", "this member's host:port for member-to-member traffic on the second network (its members[].link_b)")
	fs.StringVar(&f.http, "http", "", "this member's host:port for the gateway and API (its members[].http)")
	fs.StringVar(&f.guest, "guest", "", "guest module (.wasm) for a new virtual server; default the embedded kv example (guest.file)")
	fs.Uint64Var(&f.memoryLimitMiB, "memory-limit", DefaultMemoryLimitMiB, "guest memory limit in MiB, 1 to 4096 (guest.memory_limit_mib)")
	fs.IntVar(&f.maxRequestBytes, "max-request-bytes", DefaultMaxRequestBytes, "largest request (headers and body) the virtual server accepts (guest.max_request_bytes)")
	fs.Int64Var(&f.fuel, "fuel", DefaultFuel, "per-entry budget in fuel units, one per guest function call or loop iteration and per 64 bytes of memory.copy/fill (guest.fuel)")
	fs.DurationVar(&f.checkInterval, "check-interval", DefaultCheckInterval, "how often the leading CoServer appends a check entry, at which both CoServers compare their state hashes (guest.check_interval)")
	fs.DurationVar(&f.tickInterval, "tick-interval", 0, "how often the leading CoServer appends a tick entry, at which the guest's tick export runs on every CoServer; 0: never (guest.tick_interval)")
	fs.DurationVar(&f.heartbeat, "heartbeat-timeout", DefaultHeartbeatTimeout, "time without contact from the leader before a follower stands for election (raft.heartbeat_timeout)")
	fs.DurationVar(&f.election, "election-timeout", DefaultElectionTimeout, "time a candidate waits before a new election; at least --heartbeat-timeout (raft.election_timeout)")
	fs.DurationVar(&f.leaderLease, "leader-lease-timeout", DefaultLeaderLeaseTimeout, "time a leader stays leader without a majority; at most --heartbeat-timeout (raft.leader_lease_timeout)")
	fs.DurationVar(&f.commit, "commit-timeout", DefaultCommitTimeout, "time without new entries before the leader sends the commit index anyway (raft.commit_timeout)")
	fs.Uint64Var(&f.snapshotThreshold, "snapshot-threshold", DefaultSnapshotThreshold, "take a snapshot after this many new log entries (raft.snapshot_threshold)")
	fs.DurationVar(&f.snapshotInterval, "snapshot-interval", DefaultSnapshotInterval, "how often to check whether a snapshot is due (raft.snapshot_interval)")
	fs.Uint64Var(&f.trailingLogs, "trailing-logs", DefaultTrailingLogs, fmt.Sprintf("log entries kept after a snapshot; the witness's default is %d (raft.trailing_logs)", DefaultWitnessTrailingLogs))
	fs.DurationVar(&f.linkProbeInterval, "link-probe-interval", DefaultLinkProbeInterval, "how often each link to another member is probed (links.probe_interval)")
	fs.DurationVar(&f.linkDownAfter, "link-down-after", DefaultLinkDownAfter, "time without an answer to probes before a link is declared down and its traffic moves to the other link; longer than --link-probe-interval, shorter than --heartbeat-timeout and --election-timeout (links.down_after)")
	fs.StringVar(&f.tlsMode, "tls-mode", TLSMutual, `member links: "mutual" (mTLS) or "off" (plaintext, for measurements only) (tls.mode)`)
	fs.StringVar(&f.tlsDir, "tls-dir", DefaultTLSDir, "directory holding ca.crt and this member's <name>.crt and <name>.key (tls.dir)")
	fs.DurationVar(&f.tlsExpiryWarning, "tls-expiry-warning", DefaultExpiryWarning, "warn this long before this member's certificate expires (tls.expiry_warning)")
	fs.StringVar(&f.gatewayTLSCert, "gateway-tls-cert", "", "PEM certificate of the gateway; with --gateway-tls-key the gateway serves HTTPS (gateway.tls_cert)")
	fs.StringVar(&f.gatewayTLSKey, "gateway-tls-key", "", "PEM private key of --gateway-tls-cert (gateway.tls_key)")
	fs.StringVar(&f.clientTokenFile, "client-token-file", "", "file holding the token clients must send as Authorization: Bearer <token>; empty: no token (gateway.client_token_file)")
	fs.StringVar(&f.managerTokenFile, "manager-token-file", DefaultManagerTokenFile, "file holding the token the API requires for anything that changes state (manager.token_file)")
	fs.StringVar(&f.managerReads, "manager-reads", ReadsOpen, `who may read the API: "open", or "token" (manager.reads)`)
	fs.StringVar(&f.managerTokensFile, "manager-tokens-file", "", `file of more tokens, one "NAME TOKEN" per line, named in the events of what each holder did (manager.tokens_file)`)
	fs.StringVar(&f.logLevel, "log-level", DefaultLogLevel, "debug, info, warn or error (log.level)")
	fs.StringVar(&f.alertsURL, "alerts-webhook-url", "", "http(s) URL this member POSTs its events to as JSON (alerts.webhook_url)")
	fs.StringVar(&f.alertsSeverity, "alerts-min-severity", DefaultAlertSeverity, "the least severe event sent to the webhook: info, warning or error (alerts.min_severity)")
	fs.StringVar(&f.alertsTokenFile, "alerts-token-file", "", "file holding a token sent to the webhook as Authorization: Bearer (alerts.token_file)")
	fs.StringVar(&f.logFormat, "log-format", DefaultLogFormat, "text or json (log.format)")
	return f
}

// mayBeEmpty are the string flags whose setting may be empty: "" turns it off.
var mayBeEmpty = map[string]bool{"guest": true, "gateway-tls-cert": true, "gateway-tls-key": true, "client-token-file": true}

// Apply sets in c the settings whose flags were given. --link-a, --link-b and --http
// change the entry of this member (c.Name, after --name) in c.Members, adding it if
// missing. Apply refuses a flag given as zero or empty where the setting needs a value;
// the caller validates the result as a whole (SetDefaults, then Validate).
func (f *Flags) Apply(c *Config) error {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	p := &problems{}
	str := func(name string, dst *string, v string) {
		if set[name] && v == "" && !mayBeEmpty[name] {
			p.add("--"+name, "--%s is empty: give a value, or leave the flag out", name)
		} else if set[name] {
			*dst = v
		}
	}
	str("cluster", &c.Cluster, f.cluster)
	str("name", &c.Name, f.name)
	str("data", &c.DataDir, f.dataDir)
	if set["link-a"] || set["link-b"] || set["http"] {
		f.applyAddrs(p, c, set)
	}
	str("guest", &c.Guest.File, f.guest)
	positive(p, set, "memory-limit", &c.Guest.MemoryLimitMiB, f.memoryLimitMiB)
	positive(p, set, "max-request-bytes", &c.Guest.MaxRequestBytes, f.maxRequestBytes)
	positive(p, set, "fuel", &c.Guest.Fuel, f.fuel)
	positive(p, set, "check-interval", &c.Guest.CheckInterval.Duration, f.checkInterval)
	if set["tick-interval"] {
		c.Guest.TickInterval.Duration = f.tickInterval // 0 turns ticks off; Validate checks the rest
	}
	positive(p, set, "heartbeat-timeout", &c.Raft.HeartbeatTimeout.Duration, f.heartbeat)
	positive(p, set, "election-timeout", &c.Raft.ElectionTimeout.Duration, f.election)
	positive(p, set, "leader-lease-timeout", &c.Raft.LeaderLeaseTimeout.Duration, f.leaderLease)
	positive(p, set, "commit-timeout", &c.Raft.CommitTimeout.Duration, f.commit)
	positive(p, set, "snapshot-threshold", &c.Raft.SnapshotThreshold, f.snapshotThreshold)
	positive(p, set, "snapshot-interval", &c.Raft.SnapshotInterval.Duration, f.snapshotInterval)
	positive(p, set, "trailing-logs", &c.Raft.TrailingLogs, f.trailingLogs)
	positive(p, set, "link-probe-interval", &c.Links.ProbeInterval.Duration, f.linkProbeInterval)
	positive(p, set, "link-down-after", &c.Links.DownAfter.Duration, f.linkDownAfter)
	str("tls-mode", &c.TLS.Mode, f.tlsMode)
	str("tls-dir", &c.TLS.Dir, f.tlsDir)
	positive(p, set, "tls-expiry-warning", &c.TLS.ExpiryWarning.Duration, f.tlsExpiryWarning)
	str("gateway-tls-cert", &c.Gateway.TLSCert, f.gatewayTLSCert)
	str("gateway-tls-key", &c.Gateway.TLSKey, f.gatewayTLSKey)
	str("client-token-file", &c.Gateway.ClientTokenFile, f.clientTokenFile)
	str("manager-token-file", &c.Manager.TokenFile, f.managerTokenFile)
	str("manager-tokens-file", &c.Manager.TokensFile, f.managerTokensFile)
	str("manager-reads", &c.Manager.Reads, f.managerReads)
	str("log-level", &c.Log.Level, f.logLevel)
	str("log-format", &c.Log.Format, f.logFormat)
	str("alerts-webhook-url", &c.Alerts.WebhookURL, f.alertsURL)
	str("alerts-min-severity", &c.Alerts.MinSeverity, f.alertsSeverity)
	str("alerts-token-file", &c.Alerts.TokenFile, f.alertsTokenFile)
	return p.err()
}

func (f *Flags) applyAddrs(p *problems, c *Config, set map[string]bool) {
	if c.Name == "" {
		p.add("--name", "--link-a, --link-b and --http set this member's addresses, but which member is this? give --name or name in the file")
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
	str("link-a", &c.Members[i].LinkA, f.linkA)
	str("link-b", &c.Members[i].LinkB, f.linkB)
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

// Package config reads, validates and writes the configuration of a cluster member.
package config

import (
	"slices"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/divergence"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/node"
	"github.com/ftvs/ftvs/internal/vm"
)

// The three members of every cluster, named in this package too for its many users
// (their home is package cluster).
const (
	CoServer1 = cluster.CoServer1
	CoServer2 = cluster.CoServer2
	Witness   = cluster.Witness
)

// MemberNames are the names of the members, in the order Init writes them.
var MemberNames = []string{CoServer1, CoServer2, Witness}

// Defaults for settings left out of the file (SetDefaults). A setting that another
// package uses takes that package's default: the value has one home (vm for the guest's
// limits, node for raft, divergence for the checks, link for the probes), and this file format only
// names it.
const (
	DefaultMemoryLimitMiB  = vm.DefaultMemoryLimitBytes >> 20
	MaxMemoryLimitMiB      = vm.MaxMemoryLimitBytes >> 20
	DefaultMaxRequestBytes = vm.DefaultMaxRequestBytes
	DefaultFuel            = vm.DefaultFuelPerEntry
	DefaultCheckInterval   = divergence.DefaultCheckInterval
	// MinTickInterval bounds guest.tick_interval from below (0 turns ticks off).
	MinTickInterval           = 10 * time.Millisecond
	DefaultHeartbeatTimeout   = node.DefaultHeartbeatTimeout
	DefaultElectionTimeout    = node.DefaultElectionTimeout
	DefaultLeaderLeaseTimeout = node.DefaultLeaderLeaseTimeout
	DefaultCommitTimeout      = node.DefaultCommitTimeout
	DefaultSnapshotThreshold  = node.DefaultSnapshotThreshold
	DefaultSnapshotInterval   = node.DefaultSnapshotInterval
	DefaultTrailingLogs       = node.DefaultTrailingLogs
	// DefaultWitnessTrailingLogs is long so that a CoServer that was away can almost
	// always catch up from the witness's log instead of needing a snapshot, which the
	// witness never hands to a CoServer.
	DefaultWitnessTrailingLogs = 1_000_000
	DefaultLogLevel            = "info"
	DefaultLogFormat           = "text"
	DefaultAlertSeverity       = "error"
	ReadsOpen                  = "open"
	ReadsToken                 = "token"
	DefaultLinkProbeInterval   = link.DefaultProbeInterval
	DefaultLinkDownAfter       = link.DefaultDownAfter
	DefaultTLSDir              = "pki"
	DefaultExpiryWarning       = 720 * time.Hour
	DefaultManagerTokenFile    = "manager.token"
)

// The values of tls.mode.
const (
	TLSMutual = "mutual" // members authenticate each other with the cluster's certificates
	TLSOff    = "off"    // plaintext member links, for measurements only
)

// Member is one member of the cluster as every member's file lists it.
type Member struct {
	Name  string `toml:"name"`   // "coserver1", "coserver2" or "witness"
	LinkA string `toml:"link_a"` // host:port of member-to-member traffic on the first network
	LinkB string `toml:"link_b"` // host:port of member-to-member traffic on the second network
	HTTP  string `toml:"http"`   // host:port: the gateway + API of a CoServer, the API of the witness
}

// Links are the member's two member-to-member addresses, link a first.
func (m Member) Links() [2]string { return [2]string{m.LinkA, m.LinkB} }

// Guest are the limits of the virtual server (ignored on the witness).
type Guest struct {
	File            string `toml:"file"`              // .wasm for a new virtual server; "" = embedded kv
	MemoryLimitMiB  uint64 `toml:"memory_limit_mib"`  // default 1024, 1..4096
	MaxRequestBytes int    `toml:"max_request_bytes"` // default 4194304
	Fuel            int64  `toml:"fuel"`              // default 200000000
	// CheckInterval: how often the leading CoServer appends a check entry, at which
	// the two CoServers compare their state hashes.
	CheckInterval Duration `toml:"check_interval"` // default 5s, at least 100ms
	// TickInterval: how often the leading CoServer appends a tick entry, at which the
	// guest's tick export (guest.HandleTick) runs on every CoServer; 0: never.
	TickInterval Duration `toml:"tick_interval"` // default 0 (off), else at least 10ms
}

// Raft are the replication timings, with hashicorp/raft's meaning.
type Raft struct {
	HeartbeatTimeout   Duration `toml:"heartbeat_timeout"`    // default 100ms
	ElectionTimeout    Duration `toml:"election_timeout"`     // default 100ms
	LeaderLeaseTimeout Duration `toml:"leader_lease_timeout"` // default 100ms
	CommitTimeout      Duration `toml:"commit_timeout"`       // default 5ms
	SnapshotThreshold  uint64   `toml:"snapshot_threshold"`   // default 32768
	SnapshotInterval   Duration `toml:"snapshot_interval"`    // default 5s
	TrailingLogs       uint64   `toml:"trailing_logs"`        // default 10240 (witness: default 1000000)
}

// Links are the timings of the two redundant links between members.
type Links struct {
	ProbeInterval Duration `toml:"probe_interval"` // default 20ms
	DownAfter     Duration `toml:"down_after"`     // default 60ms; longer than probe_interval, shorter than raft.heartbeat_timeout and raft.election_timeout
}

// TLS is how members authenticate each other on the links (mTLS).
type TLS struct {
	Mode          string   `toml:"mode"`           // "mutual" (default) or "off"
	Dir           string   `toml:"dir"`            // ca.crt, <member>.crt, <member>.key; default "pki", relative to the config file (resolve on Load)
	ExpiryWarning Duration `toml:"expiry_warning"` // warn this long before this member's certificate expires; default 720h
}

// Gateway is how clients reach the virtual server: HTTPS and a client token, both
// optional. Paths are relative to the config file's directory (resolved by Load).
type Gateway struct {
	TLSCert         string `toml:"tls_cert"`          // PEM certificate (chain); with TLSKey the gateway serves HTTPS
	TLSKey          string `toml:"tls_key"`           // PEM private key of TLSCert
	ClientTokenFile string `toml:"client_token_file"` // if set, clients must send Authorization: Bearer <token>
}

// Manager is the access to the Manager/status API.
type Manager struct {
	TokenFile string `toml:"token_file"` // token required for anything that changes state; default "manager.token", relative to the config file (resolve on Load)
	// TokensFile, if set, holds more tokens, one "NAME TOKEN" per line, each accepted as
	// the manager token is and named in the events of what its holder did.
	TokensFile string `toml:"tokens_file"`
	// Reads is who may read the API (status, events, metrics, history): "open" (the
	// default) or "token" (a token, as actions need). GET /ftvs/health and the page's
	// files stay open either way.
	Reads string `toml:"reads"`
}

// Alerts sends this member's events to an operator's webhook (internal/alerts).
type Alerts struct {
	WebhookURL  string `toml:"webhook_url"`  // http(s) URL each event is POSTed to as JSON; "" = none
	MinSeverity string `toml:"min_severity"` // info|warning|error: the least severe event sent; default error
	TokenFile   string `toml:"token_file"`   // if set, sent as Authorization: Bearer <token>; relative to the config file (resolve on Load)
}

// Log is the process log (slog on stderr).
type Log struct {
	Level  string `toml:"level"`  // debug|info|warn|error, default info
	Format string `toml:"format"` // text|json, default text
}

// Config is the configuration of one member: who it is, who the others are, and its settings.
type Config struct {
	Cluster string   `toml:"cluster"`  // cluster id: 32 hex chars, same in every member's file
	Name    string   `toml:"name"`     // this member: one of Members[].Name
	DataDir string   `toml:"data_dir"` // relative paths are relative to the config file's directory (resolve on Load)
	Members []Member `toml:"members"`  // exactly coserver1, coserver2, witness (any order), as [[members]] tables
	Guest   Guest    `toml:"guest"`
	Raft    Raft     `toml:"raft"`
	Links   Links    `toml:"links"`
	TLS     TLS      `toml:"tls"`
	Gateway Gateway  `toml:"gateway"`
	Manager Manager  `toml:"manager"`
	Alerts  Alerts   `toml:"alerts"`
	Log     Log      `toml:"log"`
}

// Self is the member named c.Name (the zero Member if there is none).
func (c *Config) Self() Member {
	m, _ := c.Member(c.Name)
	return m
}

// Member is the member called name.
func (c *Config) Member(name string) (Member, bool) {
	i := slices.IndexFunc(c.Members, func(m Member) bool { return m.Name == name })
	if i < 0 {
		return Member{}, false
	}
	return c.Members[i], true
}

// IsWitness reports whether this member is the witness.
func (c *Config) IsWitness() bool { return c.Name == Witness }

// SetDefaults fills the zero settings with their defaults. Set Name first: the
// witness keeps a longer log by default.
func (c *Config) SetDefaults() {
	setDefault(&c.Guest.MemoryLimitMiB, DefaultMemoryLimitMiB)
	setDefault(&c.Guest.MaxRequestBytes, DefaultMaxRequestBytes)
	setDefault(&c.Guest.Fuel, DefaultFuel)
	setDefault(&c.Guest.CheckInterval.Duration, DefaultCheckInterval)
	r := &c.Raft
	setDefault(&r.HeartbeatTimeout.Duration, DefaultHeartbeatTimeout)
	setDefault(&r.ElectionTimeout.Duration, DefaultElectionTimeout)
	setDefault(&r.LeaderLeaseTimeout.Duration, DefaultLeaderLeaseTimeout)
	setDefault(&r.CommitTimeout.Duration, DefaultCommitTimeout)
	setDefault(&r.SnapshotThreshold, DefaultSnapshotThreshold)
	setDefault(&r.SnapshotInterval.Duration, DefaultSnapshotInterval)
	if c.IsWitness() {
		setDefault(&r.TrailingLogs, DefaultWitnessTrailingLogs)
	} else {
		setDefault(&r.TrailingLogs, DefaultTrailingLogs)
	}
	setDefault(&c.Links.ProbeInterval.Duration, DefaultLinkProbeInterval)
	setDefault(&c.Links.DownAfter.Duration, DefaultLinkDownAfter)
	setDefault(&c.TLS.Mode, TLSMutual)
	setDefault(&c.TLS.Dir, DefaultTLSDir)
	setDefault(&c.TLS.ExpiryWarning.Duration, DefaultExpiryWarning)
	setDefault(&c.Manager.TokenFile, DefaultManagerTokenFile)
	setDefault(&c.Alerts.MinSeverity, DefaultAlertSeverity)
	setDefault(&c.Manager.Reads, ReadsOpen)
	setDefault(&c.Log.Level, DefaultLogLevel)
	setDefault(&c.Log.Format, DefaultLogFormat)
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

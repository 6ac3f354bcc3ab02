package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/fsx"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/pki"
	"github.com/ftvs/ftvs/internal/version"
	"github.com/ftvs/ftvs/internal/vm"
)

// Defaults for Config fields left zero.
const (
	DefaultSnapshotThreshold = 32768
	DefaultSnapshotInterval  = 5 * time.Second
	DefaultTrailingLogs      = 10240
	DefaultProposeTimeout    = 5 * time.Second
	// Raft timings for members on one LAN (see internal/node/DESIGN.md for why these
	// are safe): a leader is replaced within ~2-3 election timeouts.
	DefaultHeartbeatTimeout   = 100 * time.Millisecond
	DefaultElectionTimeout    = 100 * time.Millisecond
	DefaultLeaderLeaseTimeout = 100 * time.Millisecond
	DefaultCommitTimeout      = 5 * time.Millisecond
)

// Peer is one member of a cluster as every member knows it.
type Peer struct {
	Name  string    // coserver1, coserver2, witness
	Links [2]string // host:port of its link a and link b (member-to-member traffic)
	HTTP  string    // host:port of its gateway/API
}

// Kind is what the peer is: a CoServer or the witness.
func (p Peer) Kind() cluster.Kind { return cluster.KindOf(p.Name) }

// Config configures a Member.
type Config struct {
	Name string // this member
	// ClusterID is the cluster's id (cluster in the member file): backups name it.
	ClusterID string
	DataDir   string
	HTTPAddr  string    // gateway listen address (":0" picks a port)
	Links     [2]string // listen addresses of link a and link b (cluster mode; ":0" picks)
	Peers     []Peer    // every member, this one included (cluster mode)
	// TLS authenticates member links (mutual TLS with the cluster CA); nil means
	// plaintext links (tls.mode = "off", for measurements only).
	TLS *pki.Material
	// CertExpiryWarning: warn when this member's certificate expires within it.
	CertExpiryWarning time.Duration
	// LinkProbeInterval and LinkDownAfter time the link liveness probes (internal/link).
	LinkProbeInterval time.Duration
	LinkDownAfter     time.Duration
	// ManagerToken is required (Authorization: Bearer) by every API call that changes
	// state; "" requires none (in-process tests only: `ftvs coserver` and `ftvs witness`
	// always read or write one, the lone CoServer's in its data dir).
	ManagerToken string
	// ClientToken, when set, is required from the virtual server's clients.
	ClientToken string
	// GatewayTLS, when set, makes the gateway serve HTTPS.
	GatewayTLS *tls.Config
	// Manager builds the handler of the Manager's routes (every path under /ftvs/, and
	// /metrics) on the public port, given this member: cmd/ftvs passes one that returns
	// internal/manager's Handler. It is called once, during Start, before the port
	// serves. Without it those paths answer 404 and the port serves the virtual server
	// only.
	Manager func(*Member) (http.Handler, error)
	// Gateway builds the handler of the virtual server's clients (every other path of
	// the public port) given this member, which it proposes entries to: cmd/ftvs
	// passes one that returns internal/gateway's. It is called once, during Start,
	// before the port serves. Without it those paths answer 404.
	Gateway func(*Member) (http.Handler, error)
	// FaultInjection enables POST /ftvs/v1/faults/link (cut and restore links),
	// /process (SIGKILL or SIGSTOP this process), /disk (a full disk, failing syncs: the
	// member's file system is then an fsx.Faulty) and /vs (flip guest memory, perturb a
	// guest's clock), for tests and drills. They require the manager token.
	FaultInjection bool
	// Registry is where the member registers its metrics (nil: a registry of its own):
	// the process's, so that GET /metrics also shows what the caller registered there
	// (the Go runtime, the process, raft's own metrics).
	Registry *prometheus.Registry
	// CheckInterval is how often the leading CoServer appends a check entry, at which
	// the two CoServers compare their state hashes (0: divergence.DefaultCheckInterval;
	// negative: never).
	CheckInterval time.Duration
	// TickInterval is how often the leading CoServer appends a tick entry, at which the
	// guest's tick export runs on every CoServer (0: never). It is one of the settings
	// the cluster records: the leader ticks at the recorded interval.
	TickInterval time.Duration
	// Simplex runs a lone CoServer: a single raft voter, the one-sided start.
	Simplex bool
	// Witness makes this member the witness: a voter that never runs the guest.
	Witness bool
	// GuestName and Guest are the module installed when the virtual server has none.
	// GuestExplicit says the operator chose it: then a data dir running another module
	// is an error instead of being kept.
	GuestName     string
	Guest         []byte
	GuestExplicit bool

	// The member's dependencies, as raft.NewRaft takes its stores and transport; the
	// zero values are the real ones. Network carries the member links, and with them
	// raft's transport, forwarding and member-to-member HTTP, and the public port
	// (HTTPAddr): TCP when nil, or a link.MemNetwork that runs a whole cluster in one
	// process (the package's tests).
	// FS is the file system under the data dir's raft state, on which the log store
	// and the snapshot store are built: fsx.OS when nil (crashfs, an in-memory disk
	// that can lose what was not synced, and fault injection put another under it).
	// Engine runs the guest on a CoServer: nil makes one from VM, which Close closes.
	// One given stays the caller's (Close leaves it open) and VM is not used: the
	// members of an in-process cluster (the package's tests) share one, so that each
	// module is validated and compiled once, as a machine's CoServer processes share
	// their compilation cache. Guest output is then logged through its logger.
	Network link.Network
	FS      fsx.FS
	Engine  *vm.Engine
	// Build is what this member tells its peers it is (release and protocol levels);
	// zero: this build's, version.Self(). The package's tests set it to run members of
	// another level in one process (the e2e tests build binaries with -X instead).
	Build version.Build

	VM                 vm.Config
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64
	ProposeTimeout     time.Duration
	Logger             *slog.Logger
}

func (c *Config) validate() error {
	switch {
	case c.Name == "":
		return errors.New("member name is empty: give --name (e.g. coserver1)")
	case c.DataDir == "":
		return errors.New("data dir is empty: give --data DIR")
	case c.HTTPAddr == "":
		return errors.New("HTTP address is empty: give --http HOST:PORT")
	case c.Simplex && c.Witness:
		return errors.New("a witness cannot run simplex: only a CoServer can run the virtual server alone")
	case !c.Simplex && len(c.Peers) == 0:
		return errors.New("no cluster members given: use a config file from `ftvs init`, or --simplex for a lone CoServer")
	case !c.Simplex && (c.Links[0] == "" || c.Links[1] == ""):
		return errors.New("link address is empty: give --link-a HOST:PORT and --link-b HOST:PORT")
	case !c.Witness && len(c.Guest) == 0:
		return errors.New("no guest module given")
	}
	if !c.Simplex {
		found := false
		for _, p := range c.Peers {
			found = found || p.Name == c.Name
		}
		if !found {
			return fmt.Errorf("member %q is not among the cluster's members", c.Name)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.ElectionTimeout, DefaultElectionTimeout)
	def(&c.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	def(&c.CommitTimeout, DefaultCommitTimeout)
	def(&c.SnapshotInterval, DefaultSnapshotInterval)
	def(&c.ProposeTimeout, DefaultProposeTimeout)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

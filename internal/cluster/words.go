package cluster

// The words of a member's status and of the cluster view. Each is a string on the
// wire (JSON marshals a named string type as its value): the API, the CLI, the web UI
// and scripts read them.

// Role is a member's raft role as its status reports it.
type Role string

// The roles.
const (
	RoleLeader    Role = "leader"
	RoleFollower  Role = "follower"
	RoleCandidate Role = "candidate"
	// RoleShutdown: the member's raft has stopped (it is closing).
	RoleShutdown Role = "shutdown"
	// RoleUnreachable is set by the asker, not the member: it did not answer, or
	// refused (Status.Error says why).
	RoleUnreachable Role = "unreachable"
)

// Kind is what a member is.
type Kind string

// The kinds.
const (
	KindCoServer Kind = "coserver" // runs the virtual server
	KindWitness  Kind = "witness"  // a raft voter that never runs the guest
)

// Mode is the state of the virtual server's redundancy, decided by BuildView (a lone
// CoServer reports its own in Status.Mode).
type Mode string

// The modes.
const (
	ModeDuplex   Mode = "duplex"    // both CoServers run the virtual server
	ModeSimplex  Mode = "simplex"   // one CoServer runs it: redundancy lost
	ModeSyncing  Mode = "syncing"   // a CoServer is being brought back (or none runs yet)
	ModeNoQuorum Mode = "no-quorum" // no leader a majority reaches: no service
)

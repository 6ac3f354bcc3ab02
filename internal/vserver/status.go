package vserver

// Status is what one member's copy of the virtual server is doing, as the member's
// status reports it (the "virtual_server" of GET /ftvs/status: a string on the wire).
type Status string

// The statuses. Only StatusRunning counts as a copy that serves.
const (
	StatusRunning  Status = "running"   // applies entries and answers clients
	StatusSyncing  Status = "syncing"   // being brought back: snapshot or log catch-up
	StatusNoModule Status = "no-module" // no guest module installed yet
	StatusDisabled Status = "disabled"  // taken out of service by the operator
	// StatusQuarantined: it diverged, or a divergence could not be attributed; it
	// answers no client until it re-syncs.
	StatusQuarantined Status = "quarantined"
	StatusFailed      Status = "failed"  // stopped applying (trap it could not undo, storage failure)
	StatusNone        Status = "none"    // the witness: it runs no guest
	StatusUnknown     Status = "unknown" // set by the asker: the member did not answer
	StatusStopped     Status = "stopped" // ftvs inspect: read from a stopped member's data dir
)

package guest

import (
	"net/http"
	"time"
)

// ABIVersion is the version of the host/guest interface this SDK implements
// (see ABI.md).
const ABIVersion = 1

// Registered callbacks. The host never calls into the guest concurrently, so
// no locking is needed.
var (
	handler    http.Handler
	tickFunc   func(now time.Time)
	exportFunc func() ([]byte, error)
	importFunc func(state []byte) error
)

// Handle sets the handler that serves every request the host passes to the
// guest. Call it from an init function. A later call replaces the handler.
// Without a handler every request is answered 500.
func Handle(h http.Handler) {
	handler = h
}

// HandleTick sets the function run by the host's timer entries. now is the
// guest's virtual time at the start of the tick, the same value time.Now
// would return. Without a tick function, ticks do nothing. A panic in f is
// recovered and written to stderr.
func HandleTick(f func(now time.Time)) {
	tickFunc = f
}

// HandleState sets the functions that carry the guest's state across a
// module update. export serializes the current state; load replaces the
// current state with one produced by export of this or an older version of
// the guest, and must accept every format an older version exported. load
// runs in the new module after its initialization, before any request.
// Without HandleState the host is told that state transfer is not supported.
func HandleState(export func() ([]byte, error), load func(state []byte) error) {
	exportFunc = export
	importFunc = load
}

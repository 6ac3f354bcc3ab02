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
	exportFunc func(dst []byte) ([]byte, error) // appends the state to dst
	importFunc func(state []byte) error
)

// Handle sets the handler that serves every request the host passes to the
// guest. Call it from an init function. A later call replaces the handler.
// Without a handler every request is answered 500.
func Handle(h http.Handler) {
	handler = h
}

// HandleTick sets the function run by the host's timer entries, which the leading
// CoServer appends every guest.tick_interval (none unless that is set). now is the
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
//
// The state is held three times at the peak of an export: the guest's data, the
// slice export returns, and the SDK's copy of it behind the result frame's status
// byte. For a large state use HandleStateAppend, which saves that copy.
func HandleState(export func() ([]byte, error), load func(state []byte) error) {
	exportFunc = nil
	if export != nil {
		exportFunc = func(dst []byte) ([]byte, error) {
			b, err := export()
			return append(dst, b...), err
		}
	}
	importFunc = load
}

// HandleStateAppend is HandleState for a state too large to hold twice at once:
// export appends the serialized state to dst and returns the extended slice, as the
// standard library's Append functions do (grow dst once, with slices.Grow, when the
// size is known in advance). dst is the buffer the host reads the state from, so the
// state is written once and never copied inside the guest.
//
// load is as in HandleState. With either function, load is handed the buffer the host
// wrote the state to, not a copy, whenever that buffer is the guest's own: it may keep
// slices of it.
func HandleStateAppend(export func(dst []byte) ([]byte, error), load func(state []byte) error) {
	exportFunc = export
	importFunc = load
}

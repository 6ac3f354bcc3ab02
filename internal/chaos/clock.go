package chaos

import (
	"time"
)

// entryTimeHeader is where the kv example guest says its clock for the entry that
// carried a request (examples/kv).
const entryTimeHeader = "X-Entry-Time"

// EntryTimeErrors compares, for each acknowledged write whose answer said the guest's
// clock (Op.EntryNs), that clock with the time the write was made, by this process's
// clock: how far it lies before the call or after the return (0 inside). The leader
// stamps an entry between the two, so on a cluster whose clocks agree with this
// process's the errors are all near 0; a constant error is a difference of clocks
// between this machine and the cluster, and an error that differs from the others is
// the guest's clock moved by something else (a member's wrong clock). setup says
// whether each write cleared a key before the run (Op.Setup).
func (h *History) EntryTimeErrors() (errs []time.Duration, setup []bool) {
	for _, op := range h.Records() {
		if op.EntryNs == 0 {
			continue
		}
		call := h.start.Add(time.Duration(op.CallNs)).UnixNano()
		ret := h.start.Add(time.Duration(op.ReturnNs)).UnixNano()
		switch {
		case op.EntryNs < call:
			errs = append(errs, time.Duration(op.EntryNs-call))
		case op.EntryNs > ret:
			errs = append(errs, time.Duration(op.EntryNs-ret))
		default:
			errs = append(errs, 0)
		}
		setup = append(setup, op.Setup)
	}
	return errs, setup
}

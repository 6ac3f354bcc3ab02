package gateway

import (
	"errors"
	"net/http"

	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// writeError maps every error the gateway can meet to one HTTP answer. It is the only
// place that decides status codes.
//
// Every answer also carries X-Ftvs-Outcome, for clients and test harnesses that must
// know what happened to their request: applied, undone (failed and rolled back on every
// CoServer), not-applied (never entered the log), unknown (may or may not have been
// applied).
func (g *gateway) writeError(w http.ResponseWriter, err error, outcome vserver.Outcome) {
	var trap *vm.TrapError
	w.Header().Set(vserver.OutcomeHeader, string(outcome))
	switch {
	case errors.As(err, &trap):
		problem(w, http.StatusInternalServerError, "virtual server: %v; the request was undone and the virtual server reset to its state before it", err)
	case errors.Is(err, vm.ErrRequestTooLarge):
		problem(w, http.StatusRequestEntityTooLarge, "%v", err)
	case errors.Is(err, vserver.ErrNoModule):
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusServiceUnavailable, "%v: it is starting; retry shortly", err)
	case errors.Is(err, vserver.ErrReplicaFailed):
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusServiceUnavailable, "%v", err)
	case errors.Is(err, vserver.ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusServiceUnavailable, "%v; retry shortly", err)
	case errors.Is(err, vserver.ErrWrongMember):
		problem(w, http.StatusMisdirectedRequest, "%v", err)
	case errors.Is(err, vserver.ErrStorageFull):
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusInsufficientStorage, "%v; send the request to the other CoServer", err)
	case errors.Is(err, vserver.ErrStorageFailed):
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusServiceUnavailable, "%v; send the request to the other CoServer", err)
	case errors.Is(err, vserver.ErrUncertain):
		problem(w, http.StatusServiceUnavailable, "%v: the request may or may not have been applied; send it again with the same Idempotency-Key header (applied once either way), or check before retrying", err)
	default:
		g.log.Error("request failed", "err", err)
		problem(w, http.StatusInternalServerError, "%v", err)
	}
}

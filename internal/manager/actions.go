package manager

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/cluster"
)

// The operator's actions (POST, with the manager token). The Manager reads and checks
// the request; the member carries the action out where it belongs (on the CoServer
// concerned, or on the leader, over the member links) and says how it went.

// maxActionBody bounds the body of every other action.
const maxActionBody = 4096

// coserverAction is POST /ftvs/v1/coservers/{name}/{action} (disable, enable, sync).
func (s *server) coserverAction(w http.ResponseWriter, r *http.Request) {
	msg, err := s.m.CoServerAction(r.Context(), r.PathValue("name"), r.PathValue("action"))
	answer(w, msg, err)
}

// transfer is POST /ftvs/v1/leadership/transfer {"to": "coserver2"}.
func (s *server) transfer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		To string `json:"to"`
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
	if err == nil {
		err = json.Unmarshal(b, &body)
	}
	if err != nil {
		apijson.Error(w, http.StatusBadRequest, fmt.Sprintf(`the body must be JSON like {"to": "coserver2"}: %v`, err))
		return
	}
	msg, err := s.m.TransferLeadership(r.Context(), body.To)
	answer(w, msg, err)
}

// override is POST /ftvs/v1/override/start-without-quorum: the classic one-sided
// start. It runs on the CoServer that is to start, so it is sent to that CoServer's own
// Manager (its peers are down: nobody could relay it).
func (s *server) override(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CoServer string `json:"coserver"`
		Confirm  string `json:"confirm"`
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
	if err == nil {
		err = json.Unmarshal(b, &req)
	}
	if err != nil {
		apijson.Error(w, http.StatusBadRequest, fmt.Sprintf(`the body must be JSON like {"coserver": "coserver1", "confirm": "coserver1"}: %v`, err))
		return
	}
	msg, err := s.m.StartWithoutQuorum(r.Context(), req.CoServer, req.Confirm, r.RemoteAddr)
	answer(w, msg, err)
}

// update is POST /ftvs/v1/update.
func (s *server) update(w http.ResponseWriter, r *http.Request) {
	var req cluster.UpdateRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, cluster.MaxUpdateBody)).Decode(&req); err != nil {
		apijson.Error(w, http.StatusBadRequest, fmt.Sprintf(`the body must be JSON like {"module": "<the .wasm, base64>", "simplex": false, "advisories": "<file text>"} of at most %d MiB: %v`, cluster.MaxUpdateBody>>20, err))
		return
	}
	bin, err := base64.StdEncoding.DecodeString(req.Module)
	if err != nil || len(bin) == 0 {
		apijson.Error(w, http.StatusBadRequest, fmt.Sprintf(`"module" must be the .wasm binary in standard base64: %v`, err))
		return
	}
	code, rep := s.m.Update(r.Context(), req, bin)
	apijson.Write(w, code, rep)
}

// rollback is POST /ftvs/v1/rollback.
func (s *server) rollback(w http.ResponseWriter, r *http.Request) {
	var req cluster.RollbackRequest
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		err = json.Unmarshal(b, &req)
	}
	if err != nil {
		apijson.Error(w, http.StatusBadRequest, `the body must be empty or JSON like {"to": "<sha256 or a prefix of it>"}: `+err.Error())
		return
	}
	code, rep := s.m.Rollback(r.Context(), req)
	apijson.Write(w, code, rep)
}

// linkFault is POST /ftvs/v1/faults/link?peer=P&link=a|b|both&action=cut|restore:
// fault injection for tests and drills, enabled by config and guarded by the manager
// token. A cut is a black hole as seen from this member (see internal/link).
func (s *server) linkFault(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	peer, which, action := q.Get("peer"), q.Get("link"), q.Get("action")
	if action == "impair" {
		s.impairLink(w, q)
		return
	}
	if err := s.m.InjectLinkFault(peer, which, action); err != nil {
		apijson.Write(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	apijson.Write(w, http.StatusOK, map[string]string{"peer": peer, "link": which, "action": action})
}

// impairLink is POST /ftvs/v1/faults/link?action=impair&peer=P&link=a|b|both&delay=D&loss=F.
func (s *server) impairLink(w http.ResponseWriter, q url.Values) {
	peer, which := q.Get("peer"), q.Get("link")
	delay, ok := durationParam(w, q, "delay", 0, "20ms")
	if !ok {
		return
	}
	var loss float64
	var err error
	if v := q.Get("loss"); v != "" {
		if loss, err = strconv.ParseFloat(v, 64); err != nil {
			apijson.Error(w, http.StatusBadRequest, fmt.Sprintf("loss %q: want a fraction such as 0.05", v))
			return
		}
	}
	if err := s.m.ImpairLink(peer, which, delay, loss); err != nil {
		apijson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	apijson.Write(w, http.StatusOK, map[string]any{"peer": peer, "link": which, "action": "impair", "delay": delay.String(), "loss": loss})
}

// durationParam reads the duration of query parameter name (def when absent); a bad one
// is answered 400 with an example, and ok is false.
func durationParam(w http.ResponseWriter, q url.Values, name string, def time.Duration, example string) (d time.Duration, ok bool) {
	v := q.Get(name)
	if v == "" {
		return def, true
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		apijson.Error(w, http.StatusBadRequest, fmt.Sprintf("%s %q: want a duration such as %s", name, v, example))
		return 0, false
	}
	return d, true
}

// processFault is POST /ftvs/v1/faults/process?action=kill or ?action=stop&for=DURATION:
// fault injection into this member's process, for tests and drills (enabled by config,
// guarded by the manager token). kill ends it with SIGKILL (its supervisor restarts it);
// stop freezes it with SIGSTOP for DURATION (default 10s). Both happen just after the
// answer is sent.
func (s *server) processFault(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	action := q.Get("action")
	var d time.Duration
	switch action {
	case "kill":
	case "stop":
		var ok bool
		if d, ok = durationParam(w, q, "for", 10*time.Second, "10s"); !ok {
			return
		}
	default:
		apijson.Error(w, http.StatusBadRequest, fmt.Sprintf("action %q: use action=kill, or action=stop with for=DURATION", action))
		return
	}
	if err := s.m.InjectProcessFault(action, d); err != nil {
		apijson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	rep := map[string]any{"action": action, "member": s.m.Name()}
	if action == "stop" {
		rep["for"] = d.String()
	}
	apijson.Write(w, http.StatusAccepted, rep)
}

// drill is POST /ftvs/v1/drill with a cluster.Drill: a fault drill announces itself
// (running) and its verdict, for the UI's banner and the event log.
func (s *server) drill(w http.ResponseWriter, r *http.Request) {
	var d cluster.Drill
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&d); err != nil {
		apijson.Error(w, http.StatusBadRequest, `want a drill as JSON: {"state": "running|passed|failed", "seed": N, "started": "RFC 3339 time", ...}: `+err.Error())
		return
	}
	if err := s.m.NoteDrill(d); err != nil {
		apijson.Error(w, http.StatusBadRequest, "drill: "+err.Error())
		return
	}
	apijson.Write(w, http.StatusOK, map[string]string{"message": "noted"})
}

// diskFault is POST /ftvs/v1/faults/disk?mode=full|sync&for=DURATION: this member's
// disk fails for DURATION (default 5s): full (no space left) or sync (fsync fails), for
// tests and drills (enabled by config, guarded by the manager token).
func (s *server) diskFault(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, ok := durationParam(w, q, "for", 5*time.Second, "5s")
	if !ok {
		return
	}
	mode := q.Get("mode")
	if err := s.m.InjectDiskFault(mode, d); err != nil {
		apijson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	apijson.Write(w, http.StatusOK, map[string]any{"mode": mode, "for": d.String(), "member": s.m.Name()})
}

// clockFault is POST /ftvs/v1/faults/clock?skew=DURATION: this member's wall clock
// runs DURATION ahead of the host's (negative: behind; 0 ends it), as a step of the
// system clock would make it, for tests and drills (enabled by config, guarded by the
// manager token). Its timeouts, on the monotonic clock, are not moved.
func (s *server) clockFault(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("skew") == "" {
		apijson.Error(w, http.StatusBadRequest, "skew: want a duration such as 90s or -5m (0 ends an injected skew)")
		return
	}
	d, ok := durationParam(w, q, "skew", 0, "90s or -5m")
	if !ok {
		return
	}
	if err := s.m.SkewClock(d); err != nil {
		apijson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	apijson.Write(w, http.StatusOK, map[string]any{"skew": d.String(), "member": s.m.Name()})
}

// vsFault is POST /ftvs/v1/faults/vs?mode=memory[&offset=N] or ?mode=clock[&by=DURATION]:
// fault injection into this CoServer's virtual server, for tests and drills (enabled by
// config, guarded by the manager token). memory flips one byte of guest memory
// (default: offset 2^64-1 modulo the memory size, API.md); clock makes the next request this CoServer applies see its
// time moved by DURATION (default 1h).
func (s *server) vsFault(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch mode := q.Get("mode"); mode {
	case "memory":
		off := uint64(1<<64 - 1) // modulo the memory size
		if v := q.Get("offset"); v != "" {
			var err error
			if off, err = strconv.ParseUint(v, 10, 64); err != nil {
				apijson.Error(w, http.StatusBadRequest, "offset: "+err.Error()+" (want a byte offset)")
				return
			}
		}
		got, applied, err := s.m.FlipGuestMemory(off)
		if err != nil {
			apijson.Error(w, http.StatusConflict, "flip guest memory: "+err.Error())
			return
		}
		apijson.Write(w, http.StatusOK, map[string]any{"mode": mode, "offset": got, "applied": applied})
	case "clock":
		by := time.Hour
		if v := q.Get("by"); v != "" {
			var err error
			if by, err = time.ParseDuration(v); err != nil || by == 0 {
				apijson.Error(w, http.StatusBadRequest, fmt.Sprintf("by %q: want a nonzero duration such as 1h or -30s", v))
				return
			}
		}
		s.m.ShiftNextRequestClock(by)
		apijson.Write(w, http.StatusOK, map[string]any{"mode": mode, "by": by.String()})
	default:
		apijson.Error(w, http.StatusBadRequest, fmt.Sprintf("mode %q: use mode=memory (with offset=N) or mode=clock (with by=DURATION)", mode))
	}
}

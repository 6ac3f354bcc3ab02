package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

const verifyAttemptsPerEndpoint = 5

// VerifyAcked reads every key back (through any endpoint that answers) and returns the
// acknowledged writes whose effect is not visible in a way any linearization allows,
// one line per key, starting with the key. It returns an error only if some key could
// not be read at all. Call it after Run, once the cluster is expected to serve again;
// endpoints may differ from Config.Endpoints (e.g. after restarts); empty means those.
//
// The rule, for each key: a write (put or delete) that was acknowledged or is
// ambiguous "could be last" unless an acknowledged write on the same key was sent
// after it had been acknowledged (an ambiguous write could be applied at any time, so
// it always could be last). The initial absence could be last only if no write on the
// key was acknowledged. The final read must show the effect of one of the writes that
// could be last: the value of such a put, or absence if it is such a delete. Otherwise
// an acknowledged write was lost (or a value appeared from nowhere). The rule needs no
// search and is sound: it never reports a history that has a linearization ending in
// the final read.
func (h *History) VerifyAcked(ctx context.Context, endpoints []string) (lost []string, err error) {
	if h == nil {
		return nil, errors.New("chaos: VerifyAcked on a nil history")
	}
	if len(endpoints) == 0 {
		endpoints = h.cfg.Endpoints
	}
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, TLSClientConfig: h.cfg.TLS}}
	defer hc.CloseIdleConnections()
	var finals []Op
	attempts := verifyAttemptsPerEndpoint * len(endpoints)
	for i := range h.cfg.Keys {
		key := h.cfg.key(i)
		var got *Op
		for a := 0; a < attempts && got == nil; a++ {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("chaos: reading %s back: %w", key, err)
			}
			op := do(ctx, h, hc, -1, strings.TrimRight(endpoints[a%len(endpoints)], "/"), Get, key, "")
			op.Final = true
			if op.Outcome == OK || op.Outcome == Absent {
				got = &op
				break
			}
			sleep(ctx, min(minBackoff<<min(a, 5), maxBackoff))
		}
		if got == nil {
			return nil, fmt.Errorf("chaos: reading %s back: no definite answer from %v in %d attempts", key, endpoints, attempts)
		}
		finals = append(finals, *got)
	}
	h.mu.Lock()
	h.finals = finals
	ops := append([]Op(nil), h.ops...)
	h.mu.Unlock()
	return lostWrites(ops, finals), nil
}

// lostWrites applies VerifyAcked's rule to the history ops and the final reads.
func lostWrites(ops []Op, finals []Op) []string {
	writes := map[string][]Op{} // acknowledged or ambiguous writes, by key
	for _, op := range ops {
		if op.Kind != Get && (op.Outcome == OK || op.Outcome == Ambiguous) {
			writes[op.Key] = append(writes[op.Key], op)
		}
	}
	var lost []string
	for _, f := range finals {
		ws := writes[f.Key]
		// The latest call of an acknowledged write: every acknowledged write that
		// returned before it cannot be last.
		latestAckedCall := int64(-1 << 63)
		anyAcked := false
		for _, w := range ws {
			if w.Outcome == OK {
				anyAcked = true
				latestAckedCall = max(latestAckedCall, w.CallNs)
			}
		}
		var last []Op
		for _, w := range ws {
			if w.Outcome == Ambiguous || w.ReturnNs >= latestAckedCall {
				last = append(last, w)
			}
		}
		ok := !anyAcked && f.Outcome == Absent
		for _, w := range last {
			if (w.Kind == Delete && f.Outcome == Absent) || (w.Kind == Put && f.Outcome == OK && w.Value == f.Value) {
				ok = true
				break
			}
		}
		if !ok {
			lost = append(lost, describeLoss(f, last))
		}
	}
	return lost
}

func describeLoss(f Op, last []Op) string {
	seen := "absent"
	if f.Outcome == OK {
		seen = fmt.Sprintf("%q", f.Value)
	}
	// Acknowledged writes first, newest first: they are the ones that were lost.
	sort.SliceStable(last, func(i, j int) bool {
		if (last[i].Outcome == OK) != (last[j].Outcome == OK) {
			return last[i].Outcome == OK
		}
		return last[i].CallNs > last[j].CallNs
	})
	const show = 4
	var b strings.Builder
	fmt.Fprintf(&b, "%s: read %s from %s, but the last write can only be one of these %d:", f.Key, seen, f.Endpoint, len(last))
	for i, w := range last {
		if i == show {
			fmt.Fprintf(&b, " …")
			break
		}
		what := "delete"
		if w.Kind == Put {
			what = fmt.Sprintf("put %q", w.Value)
		}
		fmt.Fprintf(&b, " %s (%s, client %d, at %v);", what, w.Outcome, w.Client, time.Duration(w.CallNs))
	}
	return strings.TrimSuffix(b.String(), ";")
}

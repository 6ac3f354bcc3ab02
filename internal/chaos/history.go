package chaos

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Kind is the kind of a kv operation.
type Kind string

// The three kv operations.
const (
	Put    Kind = "put"
	Get    Kind = "get"
	Delete Kind = "delete"
)

// Outcome is what a client learned from one request.
type Outcome string

const (
	// OK: a definite answer (204 for a write, 200 for a read). The operation took effect.
	OK Outcome = "ok"
	// Absent: a read answered 404; the key had no value.
	Absent Outcome = "absent"
	// NotApplied: a write that definitely had no effect (503 unavailable before the
	// entry was proposed, or 500 after which the entry was undone).
	NotApplied Outcome = "not-applied"
	// Ambiguous: a write whose effect is unknown (transport error, timeout, 503
	// "outcome unknown", any other status). It may take effect at any time after
	// its call, even after the history ends.
	Ambiguous Outcome = "ambiguous"
	// Failed: a read without a definite answer. A read changes nothing, so it is
	// left out of the check.
	Failed Outcome = "failed"
)

// Op is one recorded request, as written to the JSON lines report.
type Op struct {
	Client   int     `json:"client"`
	Kind     Kind    `json:"kind"`
	Key      string  `json:"key"`
	Value    string  `json:"value,omitempty"` // written by a put, or read by a get
	CallNs   int64   `json:"call_ns"`         // since the start of the history
	ReturnNs int64   `json:"return_ns"`       // when the answer (or the error) came
	Outcome  Outcome `json:"outcome"`
	Status   int     `json:"status,omitempty"` // HTTP status, 0 on a transport error
	Endpoint string  `json:"endpoint"`
	Detail   string  `json:"detail,omitempty"` // error text or the start of an error body
	Setup    bool    `json:"setup,omitempty"`  // part of the initial clearing of the keys
	Final    bool    `json:"final,omitempty"`  // a read made by VerifyAcked, not part of the check
	// ReadPath: a read served by the read path (X-Ftvs-Outcome: read), without a log
	// entry.
	ReadPath bool `json:"read_path,omitempty"`
	// EntryNs is the guest's clock for an acknowledged write's entry, in Unix
	// nanoseconds, where the guest says it (the kv example's X-Entry-Time): the time
	// the leader stamped on the entry.
	EntryNs int64 `json:"entry_ns,omitempty"`
}

// History is the record of one Run: every request with its call and return times
// and what its answer means.
type History struct {
	cfg   Config
	start time.Time
	endNs int64 // time of the last event of the run

	mu     sync.Mutex
	ops    []Op
	finals []Op // reads made by VerifyAcked
}

func newHistory(cfg Config) *History {
	return &History{cfg: cfg, start: time.Now()}
}

func (h *History) now() int64 { return int64(time.Since(h.start)) }

// Start is when the history began: its operations' CallNs and ReturnNs count from it.
func (h *History) Start() time.Time { return h.start }

func (h *History) add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Seed returns the seed of the operation mix; print it with any failure.
func (h *History) Seed() uint64 { return h.cfg.Seed }

// Ops returns the number of recorded requests, whatever their outcome.
func (h *History) Ops() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// Acked returns the number of operations with a definite answer.
func (h *History) Acked() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, op := range h.ops {
		if op.Outcome == OK || op.Outcome == Absent {
			n++
		}
	}
	return n
}

// Records returns a copy of the recorded operations in the order they were recorded.
func (h *History) Records() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// Phrases of internal/gateway's answers that the classification relies on. ftvs sends
// them in plain text; keep them in step with internal/gateway/errors.go.
const (
	unavailablePhrase = "virtual server unavailable" // vserver.ErrUnavailable
	uncertainPhrase   = "may or may not have been applied"
	undonePhrase      = "undone" // a trap: "the request was undone and the virtual server reset"
)

// outcomeHeader is the header in which ftvs's gateway says what happened to a request
// (internal/vserver.OutcomeHeader), with its values.
const (
	outcomeHeader     = "X-Ftvs-Outcome"
	outcomeApplied    = "applied"     // the entry was committed and applied
	outcomeUndone     = "undone"      // applied, failed, and rolled back on every CoServer
	outcomeNotApplied = "not-applied" // never entered the log
	outcomeUnknown    = "unknown"     // may or may not have been applied
	outcomeRead       = "read"        // a read-only request, run without a log entry
)

// classify decides what an answer means. It is deliberately conservative: a write is
// NotApplied only when ftvs says so unmistakably; every other failed write is
// Ambiguous, because counting a write that did take effect as "not applied" would
// make the checker report violations that are not there.
//
// For a write, the machine-readable X-Ftvs-Outcome header decides when it is present
// and known; the text rules are the fallback for answers without it (older servers,
// proxies, answers given before the gateway).
func classify(kind Kind, status int, header http.Header, body string, err error) Outcome {
	if kind != Get && err == nil {
		if o, ok := classifyOutcomeHeader(status, header); ok {
			return o
		}
	}
	return classifyText(kind, status, header, body, err)
}

// classifyOutcomeHeader classifies a write's complete answer by X-Ftvs-Outcome; ok is
// false when the header is absent or has a value this harness does not know.
func classifyOutcomeHeader(status int, header http.Header) (_ Outcome, ok bool) {
	if header.Get("X-Ftvs-Reset") != "" {
		// The guest aborted the entry and ftvs undid it everywhere: definite whatever
		// the outcome header says.
		return NotApplied, true
	}
	switch strings.TrimSpace(strings.ToLower(header.Get(outcomeHeader))) {
	case outcomeNotApplied, outcomeUndone:
		return NotApplied, true // no effect: never in the log, or rolled back everywhere
	case outcomeUnknown:
		return Ambiguous, true
	case outcomeApplied:
		if status >= 200 && status < 300 {
			return OK, true
		}
		// Applied, but the guest (or the gateway after it) did not answer success:
		// what the entry did to the key is not known from the answer.
		return Ambiguous, true
	}
	return "", false
}

// classifyText is the classification by status and error text, for answers without a
// (known) X-Ftvs-Outcome header, and for reads.
func classifyText(kind Kind, status int, header http.Header, body string, err error) Outcome {
	if kind == Get {
		switch {
		case err != nil:
			return Failed
		case status == http.StatusOK:
			return OK
		case status == http.StatusNotFound:
			return Absent
		default:
			return Failed
		}
	}
	if err != nil {
		return Ambiguous // the request may have reached the leader
	}
	if header.Get("X-Ftvs-Reset") != "" {
		return NotApplied // the guest aborted the entry and ftvs undid it everywhere
	}
	switch {
	case status >= 200 && status < 300:
		return OK
	case status == http.StatusServiceUnavailable:
		// ErrUnavailable is answered before anything was appended to the log, so it
		// carries no X-Ftvs-Index. Every other 503 (outcome unknown, a replica that
		// failed after the entry was committed, no module) is ambiguous.
		if header.Get("Retry-After") != "" && header.Get("X-Ftvs-Index") == "" &&
			strings.Contains(body, unavailablePhrase) && !strings.Contains(body, uncertainPhrase) {
			return NotApplied
		}
		return Ambiguous
	case status == http.StatusInternalServerError:
		// The guest trapped: the entry was undone on every CoServer. Any other 500
		// (an unexpected error in the gateway) is ambiguous.
		if strings.Contains(body, undonePhrase) {
			return NotApplied
		}
		return Ambiguous
	default:
		return Ambiguous
	}
}

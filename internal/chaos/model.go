package chaos

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/anishathalye/porcupine"
)

// kvInput is the input of a porcupine operation.
type kvInput struct {
	Kind  Kind
	Key   string
	Value string // of a put
}

// kvOutput is the output of a porcupine operation.
type kvOutput struct {
	Found     bool   // a get saw a value
	Value     string // the value a get saw
	Ambiguous bool   // a write whose effect is unknown; its return is the end of the history
}

// kvState is the state of one key.
type kvState struct {
	Present bool
	Value   string
}

// model returns the sequential specification of one key of the kv store: Init is
// absent, put sets the value, delete makes it absent, get must see the current state.
func (h *History) model() porcupine.Model {
	return porcupine.Model{
		Partition:                 partitionByKey(h.cfg.Clients),
		Init:                      func() any { return kvState{} },
		Step:                      kvStep,
		DescribeOperation:         describeKVOperation,
		DescribeState:             describeKVState,
		DescribeOperationMetadata: describeOpMetadata,
	}
}

// partitionByKey returns the model's partition: one history per key, in key order. The
// ambiguous writes of a key are moved to rows of their own, below the clients' rows.
func partitionByKey(clients int) func(history []porcupine.Operation) [][]porcupine.Operation {
	return func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			ops := byKey[k]
			// An ambiguous write stays open to the end: give each its own row
			// below the clients so the visualization stays readable.
			row := clients
			for i := range ops {
				if ops[i].Output.(kvOutput).Ambiguous {
					ops[i].ClientId = row
					row++
				}
			}
			out = append(out, ops)
		}
		return out
	}
}

// kvStep is the model's step on one key: a put sets the value, a delete makes it absent,
// and a get is legal only if it saw the current state.
func kvStep(state, input, output any) (bool, any) {
	s, in, out := state.(kvState), input.(kvInput), output.(kvOutput)
	switch in.Kind {
	case Put:
		return true, kvState{Present: true, Value: in.Value}
	case Delete:
		return true, kvState{}
	default:
		return s == kvState{Present: out.Found, Value: out.Value}, s
	}
}

// describeKVOperation describes an operation for porcupine's visualization: a write,
// marked when it is ambiguous, or a get with what it saw.
func describeKVOperation(input, output any) string {
	in, out := input.(kvInput), output.(kvOutput)
	var s string
	switch in.Kind {
	case Put:
		s = fmt.Sprintf("put(%s, %q)", in.Key, in.Value)
	case Delete:
		s = fmt.Sprintf("delete(%s)", in.Key)
	default:
		if out.Found {
			return fmt.Sprintf("get(%s) → %q", in.Key, out.Value)
		}
		return fmt.Sprintf("get(%s) → absent", in.Key)
	}
	if out.Ambiguous {
		s += " → ? (may or may not have taken effect)"
	}
	return s
}

// describeKVState describes a key's state: its value, quoted, or absent.
func describeKVState(state any) string {
	if s := state.(kvState); s.Present {
		return strconv.Quote(s.Value)
	}
	return "absent"
}

// describeOpMetadata describes the recorded request (an Op) behind an operation: its
// client, endpoint, outcome, HTTP status and detail.
func describeOpMetadata(info any) string {
	op, ok := info.(Op)
	if !ok {
		return ""
	}
	s := fmt.Sprintf("client %d via %s: %s", op.Client, op.Endpoint, op.Outcome)
	if op.Status != 0 {
		s += fmt.Sprintf(", HTTP %d", op.Status)
	}
	if op.Detail != "" {
		s += ": " + op.Detail
	}
	return s
}

// Result is the verdict of Check.
type Result struct {
	Linearizable bool
	Unknown      bool // the checker timed out; Linearizable is then false
	Ops          int  // recorded requests
	Acked        int  // with a definite answer
	Ambiguous    int  // writes that may or may not have taken effect
	NotApplied   int  // writes that definitely had no effect (left out)
	FailedReads  int  // reads without an answer (left out)
	ReadPath     int  // acked reads served by the read path, without a log entry
	Elided       int  // ambiguous writes left out because no read could have seen them
	Checked      int  // operations given to porcupine
	Seed         uint64
	Info         porcupine.LinearizationInfo
}

func (r Result) String() string {
	verdict := "linearizable"
	switch {
	case r.Unknown:
		verdict = "UNKNOWN (checker timed out)"
	case !r.Linearizable:
		verdict = "NOT LINEARIZABLE"
	}
	return fmt.Sprintf("%s: seed %d, %d requests, %d acked (%d reads by the read path), %d ambiguous writes (%d elided), %d writes not applied, %d failed reads, %d checked",
		verdict, r.Seed, r.Ops, r.Acked, r.ReadPath, r.Ambiguous, r.Elided, r.NotApplied, r.FailedReads, r.Checked)
}

// Check checks the history for linearizability against the kv model, partitioned by
// key, with porcupine.CheckOperationsVerbose bounded by timeout.
func (h *History) Check(timeout time.Duration) (Result, error) {
	if h == nil {
		return Result{}, errors.New("chaos: Check on a nil history")
	}
	if timeout <= 0 {
		return Result{}, fmt.Errorf("chaos: check timeout %v must be positive", timeout)
	}
	ops, res := h.operations()
	cr, info := porcupine.CheckOperationsVerbose(h.model(), ops, timeout)
	res.Linearizable = cr == porcupine.Ok
	res.Unknown = cr == porcupine.Unknown
	res.Info = info
	return res, nil
}

// operations turns the recorded requests into porcupine operations.
//
//   - A definite answer becomes an operation from call to return.
//   - A write that was definitely not applied, and a read without an answer, are left out:
//     they had no effect.
//   - An ambiguous write becomes an operation from its call to the end of the history:
//     it may take effect at any point after it was sent, or never (linearized last).
//     Two exact reductions keep the search small; each removes only a write whose
//     effect no read could have seen, so the verdict is the same with or without it:
//     an ambiguous put whose (unique) value no get returned, and an ambiguous delete
//     after whose call no get of that key returned absent.
func (h *History) operations() ([]porcupine.Operation, Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	res := Result{Ops: len(h.ops), Seed: h.cfg.Seed}
	end := h.endNs
	seen := map[string]bool{}        // values returned by a get
	lastAbsent := map[string]int64{} // latest return of a get that saw the key absent
	for _, op := range h.ops {
		end = max(end, op.ReturnNs)
		switch {
		case op.Kind == Get && op.Outcome == OK:
			seen[op.Value] = true
		case op.Kind == Get && op.Outcome == Absent:
			if r, ok := lastAbsent[op.Key]; !ok || op.ReturnNs > r {
				lastAbsent[op.Key] = op.ReturnNs
			}
		}
	}
	out := make([]porcupine.Operation, 0, len(h.ops))
	for _, op := range h.ops {
		in := kvInput{Kind: op.Kind, Key: op.Key}
		if op.Kind == Put {
			in.Value = op.Value
		}
		var o kvOutput
		ret := op.ReturnNs
		if op.ReadPath && (op.Outcome == OK || op.Outcome == Absent) {
			res.ReadPath++
		}
		switch op.Outcome {
		case OK:
			res.Acked++
			o = kvOutput{Found: op.Kind == Get, Value: op.Value}
			if op.Kind != Get {
				o.Value = ""
			}
		case Absent:
			res.Acked++
		case NotApplied:
			res.NotApplied++
			continue
		case Failed:
			res.FailedReads++
			continue
		case Ambiguous:
			res.Ambiguous++
			if op.Kind == Put && !seen[op.Value] {
				res.Elided++
				continue
			}
			if r, ok := lastAbsent[op.Key]; op.Kind == Delete && (!ok || r < op.CallNs) {
				res.Elided++
				continue
			}
			o.Ambiguous = true
			ret = end + 1
		}
		out = append(out, porcupine.Operation{
			ClientId: op.Client, Input: in, Call: op.CallNs, Output: o, Return: ret, Metadata: op,
		})
	}
	res.Checked = len(out)
	return out, res
}

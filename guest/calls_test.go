package guest

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

// register sets the callbacks for one test and restores them afterwards.
func register(t *testing.T, h http.Handler, tick func(time.Time), export func() ([]byte, error), load func([]byte) error) {
	oldH, oldT, oldE, oldI := handler, tickFunc, exportFunc, importFunc
	t.Cleanup(func() { handler, tickFunc, exportFunc, importFunc = oldH, oldT, oldE, oldI })
	Handle(h)
	HandleTick(tick)
	HandleState(export, load)
}

func TestAlloc(t *testing.T) {
	for _, size := range []int{0, 1, smallInputBytes, smallInputBytes + 1, 1 << 20} {
		b := alloc(size)
		if len(b) != size || cap(b) != size {
			t.Errorf("alloc(%d): len %d cap %d", size, len(b), cap(b))
		}
		if len(input) != size {
			t.Errorf("alloc(%d): input not kept (len %d)", size, len(input))
		}
	}
}

func TestHandleKeepsOutput(t *testing.T) {
	register(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil, nil, nil)
	in := alloc(len("GET / HTTP/1.1\r\n\r\n"))
	copy(in, "GET / HTTP/1.1\r\n\r\n")
	out, aborted := handle(in)
	if aborted {
		t.Error("aborted without a panic")
	}
	if &out[0] != &output[0] {
		t.Error("response is not the package-level output buffer")
	}
	if !bytes.HasPrefix(out, []byte("HTTP/1.1 200 OK\r\n")) {
		t.Errorf("response %q", out)
	}
}

func TestTick(t *testing.T) {
	register(t, nil, nil, nil, nil)
	tick() // no tick function: nothing happens

	var got []time.Time
	register(t, nil, func(now time.Time) { got = append(got, now) }, nil, nil)
	before := time.Now()
	tick()
	if len(got) != 1 || got[0].Before(before) {
		t.Errorf("tick calls %v, want one at or after %v", got, before)
	}

	register(t, nil, func(time.Time) { panic("tick panic") }, nil, nil)
	tick() // recovered
}

func TestStateFrames(t *testing.T) {
	tests := []struct {
		name   string
		export func() ([]byte, error)
		load   func([]byte) error
		input  string
		wantEx string
		wantIm string
	}{
		{"not supported", nil, nil, "s", "\x02", "\x02"},
		{"ok", func() ([]byte, error) { return []byte("state"), nil }, func([]byte) error { return nil },
			"state", "\x00state", "\x00"},
		{"empty state", func() ([]byte, error) { return nil, nil }, func([]byte) error { return nil },
			"", "\x00", "\x00"},
		{"errors", func() ([]byte, error) { return nil, errors.New("cannot export") },
			func([]byte) error { return errors.New("cannot import") }, "x", "\x01cannot export", "\x01cannot import"},
		{"panics", func() ([]byte, error) { panic("pe") }, func([]byte) error { panic("pi") },
			"x", "\x01panic exporting state: pe", "\x01panic importing state: pi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			register(t, nil, nil, tt.export, tt.load)
			if got := exportState(); string(got) != tt.wantEx {
				t.Errorf("export frame %q, want %q", got, tt.wantEx)
			}
			if got := importState([]byte(tt.input)); string(got) != tt.wantIm {
				t.Errorf("import frame %q, want %q", got, tt.wantIm)
			}
		})
	}
}

func TestImportGetsACopy(t *testing.T) {
	var kept []byte
	register(t, nil, nil, nil, func(b []byte) error { kept = b; return nil })
	in := []byte("state")
	importState(in)
	in[0] = 'X'
	if string(kept) != "state" {
		t.Errorf("import function's bytes changed with the input buffer: %q", kept)
	}
}

func TestHandlePanicAborts(t *testing.T) {
	register(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("x") }), nil, nil, nil)
	out, aborted := handle([]byte("GET / HTTP/1.1\r\n\r\n"))
	if !aborted || !bytes.HasPrefix(out, []byte("HTTP/1.1 500 ")) {
		t.Errorf("aborted %v, response %q", aborted, out)
	}
	if _, aborted := handle([]byte("garbage")); aborted {
		t.Error("a bad request aborted the entry")
	}
}

// HandleStateAppend's export writes the state once, into the result frame the host
// reads: no copy behind it. An export that does not append to its dst is an error.
func TestExportAppendWritesOnce(t *testing.T) {
	register(t, nil, nil, nil, nil)
	var wrote []byte
	HandleStateAppend(func(dst []byte) ([]byte, error) {
		dst = slices.Grow(dst, 5)
		wrote = append(dst, "state"...)
		return wrote, nil
	}, nil)
	got := exportState()
	if string(got) != "\x00state" || &got[0] != &wrote[0] || &got[0] != &output[0] {
		t.Errorf("export frame %q at %p, want \"\\x00state\" at the exporter's own %p", got, &got[0], &wrote[0])
	}
	HandleStateAppend(func([]byte) ([]byte, error) { return []byte("fresh"), nil }, nil)
	if got := string(exportState()); got != "\x01exporting state: the export function did not append to the slice it was given" {
		t.Errorf("an export that ignores dst: frame %q, want an error frame", got)
	}
}

// A large state written to the guest's input buffer is handed to the import function
// as it is, not copied, and the SDK lets go of the buffer.
func TestImportTakesTheInputBuffer(t *testing.T) {
	var kept []byte
	register(t, nil, nil, nil, func(b []byte) error { kept = b; return nil })
	in := alloc(smallInputBytes + 1)
	in[0] = 's'
	if got := string(importState(in)); got != "\x00" {
		t.Fatalf("import frame %q", got)
	}
	if &kept[0] != &in[0] || len(kept) != len(in) {
		t.Error("the import function got a copy of a large input, want the buffer itself")
	}
	if next := alloc(smallInputBytes + 1); &next[0] == &in[0] {
		t.Error("the next alloc reused the buffer the import function may keep")
	}
}

package guest

import (
	"bytes"
	"time"
	"unsafe"
)

// Result frame status bytes (see ABI.md).
const (
	frameOK          = 0
	frameError       = 1
	frameUnsupported = 2
)

// abortFlag, set in ftvs_handle's packed result, asks the host to undo the
// entry while still sending the response (see ABI.md).
const abortFlag = 1 << 31

// smallInputBytes is the size of the input buffer kept between calls;
// larger inputs get a buffer of their own that is dropped afterwards.
const smallInputBytes = 64 << 10

// The buffers shared with the host. Package-level so that the garbage
// collector keeps them while the host reads or writes them.
var (
	smallInput = make([]byte, smallInputBytes)
	input      []byte // the buffer returned by the last ftvs_alloc
	output     []byte // the last response or result frame
)

// alloc returns a buffer of size bytes for the host to write the next input
// to. It stays reachable until the next alloc.
func alloc(size int) []byte {
	if size <= smallInputBytes {
		input = smallInput[:size:size]
	} else {
		input = make([]byte, size)
	}
	return input
}

// handle serves one request message and keeps the response reachable.
// aborted reports a handler panic: the host must undo the entry.
func handle(request []byte) (resp []byte, aborted bool) {
	output, aborted = serve(handler, request)
	return output, aborted
}

// tick runs the tick function, if any, at the current virtual time.
func tick() {
	f := tickFunc
	if f == nil {
		return
	}
	now := time.Now()
	run("in tick", nil, func() { f(now) })
}

// exportState returns a result frame holding the exported state: the export
// function appends the state right after the frame's status byte.
func exportState() []byte {
	f := exportFunc
	if f == nil {
		return setOutput(frameUnsupported, nil)
	}
	frame := []byte{frameOK}
	var err error
	if msg, ok := run("exporting state", nil, func() { frame, err = f(frame) }); !ok {
		return setOutput(frameError, []byte("panic exporting state: "+msg))
	}
	if err != nil {
		return setOutput(frameError, []byte(err.Error()))
	}
	if len(frame) == 0 || frame[0] != frameOK {
		return setOutput(frameError, []byte("exporting state: the export function did not append to the slice it was given"))
	}
	output = frame
	return output
}

// importState loads state and returns a result frame. The import function
// gets its own copy of state, so it may keep it: the input buffer itself when
// state is all of it (the SDK lets go of it), a clone otherwise.
func importState(state []byte) []byte {
	f := importFunc
	if f == nil {
		return setOutput(frameUnsupported, nil)
	}
	if len(state) > smallInputBytes && len(input) > 0 && unsafe.SliceData(state) == unsafe.SliceData(input) {
		input = nil // handed over: the next alloc makes a new buffer
	} else {
		state = bytes.Clone(state)
	}
	var err error
	if msg, ok := run("importing state", nil, func() { err = f(state) }); !ok {
		return setOutput(frameError, []byte("panic importing state: "+msg))
	}
	if err != nil {
		return setOutput(frameError, []byte(err.Error()))
	}
	return setOutput(frameOK, nil)
}

func setOutput(status byte, data []byte) []byte {
	output = append(make([]byte, 0, 1+len(data)), status)
	output = append(output, data...)
	return output
}

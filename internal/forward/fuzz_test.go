package forward

import (
	"bytes"
	"testing"
)

// FuzzReadReply: any bytes from a peer give a reply or an error, never a panic or an
// allocation past the limit; a reply read back writes the same frame.
func FuzzReadReply(f *testing.F) {
	f.Add(appendReply(nil, Reply{Status: Applied, Index: 1, Fuel: 2, Body: []byte("HTTP/1.1 204 No Content\r\n\r\n")}))
	f.Add(appendReply(nil, Reply{Status: NotLeader, Body: []byte("not the leader")}))
	f.Add([]byte{0xff, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := readReply(bytes.NewReader(b), 1<<16)
		if err != nil {
			return
		}
		if len(rep.Body) > 1<<16 {
			t.Fatalf("body of %d bytes past the limit", len(rep.Body))
		}
		if out := appendReply(nil, rep); !bytes.Equal(out, b[:len(out)]) {
			t.Fatalf("reply %+v writes %x, read from %x", rep, out, b)
		}
	})
}

// FuzzReadRequest: any bytes from a peer give an entry within the limit or an error.
func FuzzReadRequest(f *testing.F) {
	f.Add(appendRequest(nil, []byte("entry")))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		data, err := readRequest(bytes.NewReader(b), 1<<16)
		if err != nil {
			return
		}
		if out := appendRequest(nil, data); !bytes.Equal(out, b[:len(out)]) {
			t.Fatalf("entry %x writes %x, read from %x", data, out, b)
		}
	})
}

package backup

import (
	"bytes"
	"testing"
)

// FuzzRead: any file is read without a panic, and is either a backup whose description
// matches its snapshot or refused.
func FuzzRead(f *testing.F) {
	snap := kvSnapshot(f, 2)
	var buf bytes.Buffer
	if _, err := Write(&buf, Meta{Cluster: "c"}, snap); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:200])
	f.Add([]byte(magic + "{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, s, err := Read(bytes.NewReader(b), 64<<20)
		if err == nil && (s == nil || s.Index != m.Index) {
			t.Fatalf("accepted a backup whose description does not match: %+v", m)
		}
	})
}

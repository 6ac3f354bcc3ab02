package snapstore

import (
	"reflect"
	"testing"

	"github.com/ftvs/ftvs/third_party/raft"
)

// FuzzMeta: meta.json with arbitrary contents never panics the parser; what it
// accepts is a supported version with a size and an 8-byte CRC, and encodes back to
// meta that parses to the same.
func FuzzMeta(f *testing.F) {
	m := fileMeta{SnapshotMeta: raft.SnapshotMeta{Version: 1, ID: "2-77-1700000000000", Index: 77, Term: 2,
		Configuration: testConf, ConfigurationIndex: 3, Size: 5000, Peers: []byte{0x93, 1, 2}},
		CRC: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
	ours, err := encodeMeta(m)
	if err != nil {
		f.Fatal(err)
	}
	legacy, _ := jsonEncode(&m)
	f.Add(ours)
	f.Add(legacy)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"Version":1,"CRC":"AAAAAAAAAAA=","Size":-1}`))
	f.Add([]byte(`{"Version":1,"CRC":"AAAAAAAAAAA="} {}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeMeta(data)
		if err != nil {
			return
		}
		if got.Version < raft.SnapshotVersionMin || got.Version > raft.SnapshotVersionMax || got.Size < 0 || len(got.CRC) != 8 {
			t.Fatalf("accepted %+v", got)
		}
		checkName(got.ID, got)
		again, err := encodeMeta(*got)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeMeta(again)
		if err != nil {
			t.Fatalf("re-encoded meta does not parse: %v\n%s", err, again)
		}
		back.MetaCRC, got.MetaCRC = nil, nil
		if !reflect.DeepEqual(back, got) {
			t.Fatalf("re-encoded meta differs:\n%+v\n%+v", back, got)
		}
	})
}

// FuzzName: parseName never panics, and names it accepts come back from snapshotName
// when they are in canonical form.
func FuzzName(f *testing.F) {
	f.Add("2-77-1700000000000")
	f.Add("1-2")
	f.Add("-1-2-3")
	f.Fuzz(func(t *testing.T, name string) {
		term, index, ms, ok := parseName(name)
		if ok && ms >= 0 {
			if canon := snapshotName(term, index, ms); canon != name {
				if _, _, _, ok := parseName(canon); !ok {
					t.Fatalf("%q parses but %q does not", name, canon)
				}
			}
		}
	})
}

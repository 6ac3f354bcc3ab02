package wasm

import "testing"

// Instructions whose effect a memory+globals snapshot would miss are reported.
func TestUnsnapshottedOps(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []byte
		want []string
	}{
		{"none", []byte{0x0b}, nil},
		{"data.drop", []byte{0xFC, 9, 0, 0x0b}, []string{"data.drop"}},
		{"elem.drop", []byte{0xFC, 13, 0, 0x0b}, []string{"elem.drop"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReader(tc.code)
			var ops stateOps
			if err := decodeExpr(r, 0, nil, nil, &ops); err != nil {
				t.Fatal(err)
			}
			if len(ops.names) != len(tc.want) || len(tc.want) > 0 && ops.names[0] != tc.want[0] {
				t.Fatalf("ops = %v, want %v", ops.names, tc.want)
			}
		})
	}
}

package modmeta

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/wasm"
)

var kvMeta = Meta{Name: "kv", Version: "1.0.0", RequiresFTVS: ">=0.1.0-0, <1", ABI: 1}

// emptyModule is the smallest valid module: the header alone.
var emptyModule = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// custom returns a custom section with the given name and payload.
func custom(name string, payload []byte) []byte {
	return wasm.AppendCustomSection(nil, name, payload)
}

// module is the header followed by the given sections.
func module(sections ...[]byte) []byte {
	b := bytes.Clone(emptyModule)
	for _, s := range sections {
		b = append(b, s...)
	}
	return b
}

// typeSection declares one func type () -> ().
var typeSection = []byte{0x01, 0x04, 0x01, 0x60, 0x00, 0x00}

func TestValidate(t *testing.T) {
	ok := []Meta{
		kvMeta,
		{Name: "orders-api.v2_x", Version: "6.1.2.2147-rc1", RequiresFTVS: "*", ABI: 1},
		{Name: "kv", Version: "0.0.0", RequiresFTVS: ">=0.2", ABI: 7},
		Defaults("kv"),
	}
	for _, m := range ok {
		if err := m.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", m, err)
		}
	}
	bad := []struct {
		m    Meta
		want string
	}{
		{Meta{Version: "1", RequiresFTVS: "*", ABI: 1}, "name is empty"},
		{Meta{Name: "KV", Version: "1", RequiresFTVS: "*", ABI: 1}, `name "KV": use only lower-case`},
		{Meta{Name: "k v", Version: "1", RequiresFTVS: "*", ABI: 1}, "use only lower-case"},
		{Meta{Name: "k/v", Version: "1", RequiresFTVS: "*", ABI: 1}, "use only lower-case"},
		{Meta{Name: strings.Repeat("a", MaxNameBytes+1), Version: "1", RequiresFTVS: "*", ABI: 1}, "at most 64"},
		{Meta{Name: "kv", RequiresFTVS: "*", ABI: 1}, "version: version \"\": empty"},
		{Meta{Name: "kv", Version: "1.x", RequiresFTVS: "*", ABI: 1}, "version: version \"1.x\""},
		{Meta{Name: "kv", Version: "1", RequiresFTVS: "", ABI: 1}, "requires_ftvs is empty"},
		{Meta{Name: "kv", Version: "1", RequiresFTVS: ">=", ABI: 1}, "requires_ftvs: bad version range"},
		{Meta{Name: "kv", Version: "1", RequiresFTVS: ">=1, <x", ABI: 1}, "requires_ftvs: bad version range"},
		{Meta{Name: "kv", Version: "1", RequiresFTVS: "*", ABI: 0}, "abi 0"},
		{Meta{Name: "kv", Version: "1", RequiresFTVS: "*", ABI: -3}, "abi -3"},
	}
	for _, tc := range bad {
		err := tc.m.Validate()
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalid mentioning %q", tc.m, err, tc.want)
		}
	}
}

func TestStampRoundTrip(t *testing.T) {
	inputs := map[string][]byte{
		"empty":           emptyModule,
		"sections":        module(typeSection, custom("name", []byte{1, 2, 3})),
		"custom first":    module(custom("producers", nil), typeSection),
		"long name field": module(typeSection),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			m := kvMeta
			if name == "long name field" {
				m.Name = strings.Repeat("n", MaxNameBytes)
			}
			out, err := Stamp(in, m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, in) {
				t.Fatalf("Stamp changed the module's bytes instead of appending")
			}
			got, found, err := Read(out)
			if err != nil || !found || !got.Equal(m) {
				t.Fatalf("Read(Stamp(m)) = %+v, %v, %v; want %+v", got, found, err, m)
			}
			if _, err := wasm.Parse(out); err != nil {
				t.Fatalf("stamped module does not parse: %v", err)
			}
			again, err := Stamp(out, m)
			if err != nil || !bytes.Equal(again, out) {
				t.Fatalf("stamping twice with the same metadata changed the bytes (err %v)", err)
			}
		})
	}
	// The payload is readable JSON, '<' and '>' unescaped.
	out, _ := Stamp(emptyModule, kvMeta)
	want := `{"name":"kv","version":"1.0.0","requires_ftvs":">=0.1.0-0, <1","abi":1}`
	if !bytes.HasSuffix(out, []byte(want)) {
		t.Fatalf("payload: %q, want it to end the module as %s", out[len(emptyModule):], want)
	}
}

func TestStampReplaces(t *testing.T) {
	old := custom(SectionName, []byte(`{"name":"old","version":"0.9","requires_ftvs":"*","abi":1}`))
	in := module(custom("a", nil), old, typeSection, custom("b", []byte("x")))
	m := kvMeta
	m.Version = "2.0.0"
	out, err := Stamp(in, m)
	if err != nil {
		t.Fatal(err)
	}
	got, found, err := Read(out)
	if err != nil || !found || !got.Equal(m) {
		t.Fatalf("Read = %+v, %v, %v; want %+v", got, found, err, m)
	}
	secs, _ := wasm.CustomSections(out, SectionName)
	if len(secs) != 1 {
		t.Fatalf("%d %s sections after Stamp, want 1", len(secs), SectionName)
	}
	rest := module(custom("a", nil), typeSection, custom("b", []byte("x")))
	if !bytes.HasPrefix(out, rest) {
		t.Fatalf("the other sections were not kept in order")
	}
	// Stamp also repairs a module with two sections.
	two := module(old, old)
	if _, _, err := Read(two); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Read of two sections: %v", err)
	}
	out, err = Stamp(two, kvMeta)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := Read(out); err != nil || !got.Equal(kvMeta) {
		t.Fatalf("after restamping two sections: %+v %v", got, err)
	}
	// Stamp refuses invalid metadata and non-modules.
	if _, err := Stamp(emptyModule, Meta{Name: "kv"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Stamp of invalid metadata: %v", err)
	}
	if _, err := Stamp([]byte("not wasm"), kvMeta); !errors.Is(err, wasm.ErrNotWasm) {
		t.Fatalf("Stamp of a non-module: %v", err)
	}
}

func TestReadMalformedPayload(t *testing.T) {
	tests := []struct {
		name, payload, want string
	}{
		{"bad JSON", `{"name":"kv",`, "not a JSON object"},
		{"not an object", `[1,2]`, "not a JSON object"},
		{"trailing data", `{"name":"kv","version":"1","requires_ftvs":"*","abi":1} x`, "not a JSON object"},
		{"empty", ``, "not a JSON object"},
		{"null", `null`, "name is empty"},
		{"name not a string", `{"name":1,"version":"1","requires_ftvs":"*","abi":1}`, `field "name" is a JSON number, want a string`},
		{"abi a string", `{"name":"kv","version":"1","requires_ftvs":"*","abi":"1"}`, `field "abi" is a JSON string, want a whole number`},
		{"abi a fraction", `{"name":"kv","version":"1","requires_ftvs":"*","abi":1.5}`, `field "abi"`},
		{"bad version", `{"name":"kv","version":"one","requires_ftvs":"*","abi":1}`, "version: version \"one\""},
		{"bad range", `{"name":"kv","version":"1","requires_ftvs":">=","abi":1}`, "requires_ftvs: bad version range"},
		{"missing range", `{"name":"kv","version":"1","abi":1}`, "requires_ftvs is empty"},
		{"abi 0", `{"name":"kv","version":"1","requires_ftvs":"*","abi":0}`, "abi 0"},
		{"abi missing", `{"name":"kv","version":"1","requires_ftvs":"*"}`, "abi 0"},
		{"too large", `{"name":"kv","pad":"` + strings.Repeat("x", MaxPayloadBytes) + `"}`, "at most 65536"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bin := module(typeSection, custom(SectionName, []byte(tc.payload)))
			_, found, err := Read(bin)
			if !found || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), SectionName) {
				t.Fatalf("Read: found %v, err %v; want ErrInvalid naming the section and %q", found, err, tc.want)
			}
			if _, _, err := Describe(bin, "x"); err == nil {
				t.Fatal("Describe accepted a malformed section")
			}
		})
	}
	// Unknown fields are ignored: a later ftvs may add some.
	bin := module(custom(SectionName, []byte(`{"name":"kv","version":"1.0.0","requires_ftvs":">=0.1.0-0, <1","abi":1,"x_future":{"a":[1]}}`)))
	if m, found, err := Read(bin); err != nil || !found || !m.Equal(kvMeta) {
		t.Fatalf("unknown field: %+v %v %v", m, found, err)
	}
}

func TestReadBadBinary(t *testing.T) {
	tests := []struct {
		name     string
		bin      []byte
		sentinel error
	}{
		{"nil", nil, wasm.ErrNotWasm},
		{"text", []byte("hello, world"), wasm.ErrNotWasm},
		{"magic only", []byte("\x00asm"), wasm.ErrTruncated},
		{"version 2", []byte("\x00asm\x02\x00\x00\x00"), wasm.ErrVersion},
		{"component", []byte("\x00asm\x0d\x00\x01\x00"), wasm.ErrVersion},
		{"no size", module([]byte{0x01}), wasm.ErrTruncated},
		{"size too large", module([]byte{0x01, 0x05, 0x00}), wasm.ErrTruncated},
		{"size LEB too long", module([]byte{0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}), wasm.ErrMalformed},
		{"size overflows", module([]byte{0x01, 0xff, 0xff, 0xff, 0xff, 0x7f}), wasm.ErrMalformed},
		{"custom without name", module([]byte{0x00, 0x00}), wasm.ErrTruncated},
		{"custom name too long", module([]byte{0x00, 0x02, 0x05, 'a'}), wasm.ErrMalformed},
		{"second section truncated", module(custom("a", nil), []byte{0x00, 0x09, 0x01}), wasm.ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, found, err := Read(tc.bin)
			var we *wasm.Error
			if found || !errors.Is(err, tc.sentinel) || !errors.As(err, &we) {
				t.Fatalf("Read = found %v, %v; want a *wasm.Error wrapping %v", found, err, tc.sentinel)
			}
			if _, err := Stamp(tc.bin, kvMeta); !errors.Is(err, tc.sentinel) {
				t.Fatalf("Stamp = %v, want %v", err, tc.sentinel)
			}
		})
	}
	// Every prefix of a stamped module is refused or read without a section, never a panic.
	full, _ := Stamp(module(typeSection, custom("name", []byte("abc"))), kvMeta)
	for n := range len(full) {
		m, found, err := Read(full[:n])
		if found && err == nil && !m.Equal(kvMeta) {
			t.Fatalf("prefix %d read as %+v", n, m)
		}
	}
}

func TestDescribe(t *testing.T) {
	m, warning, err := Describe(module(typeSection), "kv")
	if err != nil || !m.Equal(Defaults("kv")) || warning != NoSectionWarning {
		t.Fatalf("Describe without a section = %+v, %q, %v", m, warning, err)
	}
	if m.Version != "0.0.0" || m.RequiresFTVS != "*" || m.ABI != 1 {
		t.Fatalf("Defaults = %+v", m)
	}
	stamped, _ := Stamp(emptyModule, kvMeta)
	if m, warning, err := Describe(stamped, "other"); err != nil || !m.Equal(kvMeta) || warning != "" {
		t.Fatalf("Describe of a stamped module = %+v, %q, %v", m, warning, err)
	}
	if _, _, err := Describe([]byte("junk"), "kv"); !errors.Is(err, wasm.ErrNotWasm) {
		t.Fatalf("Describe of junk: %v", err)
	}
}

func TestSupports(t *testing.T) {
	m := func(requires string, abi int) Meta {
		return Meta{Name: "kv", Version: "2.0.0", RequiresFTVS: requires, ABI: abi}
	}
	tests := []struct {
		m       Meta
		runtime string
		abi     int
		want    string // "" for supported
	}{
		{m(">=0.1.0-0, <1", 1), "0.1.0-dev", 1, ""},
		{m(">=0.1.0-0, <1", 1), "0.9.3", 1, ""},
		{m("*", 1), "7.0", 3, ""},
		{m("*", 1), "0.1.0-dev", 2, ""},
		{m(">=0.2", 1), "0.1.0-dev", 1, "module kv 2.0.0 requires ftvs >=0.2; this member runs 0.1.0-dev: upgrade the members first"},
		{m(">=0.1, <1", 1), "1.0.0", 1, "rebuild the module"},
		{m("=0.3", 1), "0.4", 1, "run it on members whose version is in that range"},
		{m("*", 2), "0.1.0-dev", 1, "module kv 2.0.0 needs guest ABI 2, this member implements ABI 1: upgrade the members first"},
		{m("*", 1), "devel", 1, "this member's own version"},
	}
	for _, tc := range tests {
		err := tc.m.Supports(tc.runtime, tc.abi)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v on %s ABI %d: %v", tc.m, tc.runtime, tc.abi, err)
			}
			continue
		}
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v on %s ABI %d: %v, want ErrUnsupported mentioning %q", tc.m, tc.runtime, tc.abi, err, tc.want)
		}
	}
	if err := (Meta{Name: "kv"}).Supports("0.1.0", 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("Supports of invalid metadata: %v", err)
	}
}

func TestDefaultRequires(t *testing.T) {
	for _, tc := range []struct{ runtime, want string }{
		{"0.1.0-dev", ">=0.1.0-0, <1"},
		{"0.1.0", ">=0.1.0-0, <1"},
		{"1.4.2", ">=1.4.0-0, <2"},
		{"v2", ">=2.0.0-0, <3"},
	} {
		got, err := DefaultRequires(tc.runtime)
		if err != nil || got != tc.want {
			t.Errorf("DefaultRequires(%q) = %q, %v; want %q", tc.runtime, got, err, tc.want)
		}
		// The runtime it was made from is always in the range.
		m := Meta{Name: "kv", Version: "1", RequiresFTVS: got, ABI: 1}
		if err := m.Supports(tc.runtime, 1); err != nil {
			t.Errorf("DefaultRequires(%q) excludes the runtime itself: %v", tc.runtime, err)
		}
	}
	if _, err := DefaultRequires("devel"); err == nil {
		t.Error("DefaultRequires of a non-version succeeded")
	}
}

package modmeta

import (
	"strings"
	"testing"
)

func TestReadsValidate(t *testing.T) {
	m := kvMeta
	m.Reads = []string{"GET /kv/", "GET /stats", "POST /query", "GET /"}
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate(%q) = %v", m.Reads, err)
	}
	for _, tc := range []struct{ read, want string }{
		{"GET", `give "METHOD /path"`},
		{" /kv/", `give "METHOD /path"`},
		{"get /kv/", "upper-case letters"},
		{"GET kv/", "absolute and clean"},
		{"GET /kv//", "absolute and clean"},
		{"GET /kv/../admin/", "absolute and clean"},
		{"GET /./kv", "absolute and clean"},
		{"GET /kv x", "absolute and clean"},
		{"GET /" + strings.Repeat("a", MaxReadBytes), "at most 256"},
	} {
		m.Reads = []string{tc.read}
		if err := m.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(reads %q) = %v, want an error containing %q", tc.read, err, tc.want)
		}
	}
	m.Reads = make([]string, MaxReads+1)
	for i := range m.Reads {
		m.Reads[i] = "GET /"
	}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("Validate(%d reads) = %v, want at most 64", len(m.Reads), err)
	}
}

func TestReadOnly(t *testing.T) {
	m := kvMeta
	m.Reads = []string{"GET /kv/", "GET /stats", "POST /query"}
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/kv/a", true},
		{"HEAD", "/kv/a", true},
		{"GET", "/kv/", true},
		{"GET", "/kv/a/b", true},
		{"GET", "/stats", true},
		{"POST", "/query", true},
		{"PUT", "/kv/a", false},
		{"DELETE", "/kv/a", false},
		{"GET", "/kv", false},
		{"GET", "/stats/x", false},
		{"GET", "/statsx", false},
		{"POST", "/exec", false},
		{"GET", "/query", false},
		{"GET", "/kv/../admin", false},
		{"GET", "/kv//a", false},
		{"GET", "/kv/./a", false},
		{"GET", "", false},
	} {
		if got := m.ReadOnly(tc.method, tc.path); got != tc.want {
			t.Errorf("ReadOnly(%s %q) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
	if kvMeta.ReadOnly("GET", "/kv/a") {
		t.Error("a module without reads declares GET /kv/a read-only")
	}
}

func TestReadsRoundTrip(t *testing.T) {
	m := kvMeta
	m.Reads = []string{"GET /kv/", "POST /query"}
	out, err := Stamp(module(typeSection), m)
	if err != nil {
		t.Fatal(err)
	}
	got, found, err := Read(out)
	if err != nil || !found || !got.Equal(m) {
		t.Fatalf("Read = %+v, %v, %v; want %+v", got, found, err, m)
	}
	bad := module(custom(SectionName, []byte(`{"name":"kv","version":"1","requires_ftvs":"*","abi":1,"reads":"GET /kv/"}`)))
	if _, _, err := Read(bad); err == nil || !strings.Contains(err.Error(), `field "reads" is a JSON string, want a list of strings`) {
		t.Errorf("Read(reads as a string) = %v", err)
	}
}

package cluster

import "testing"

func TestMemberURL(t *testing.T) {
	for _, tt := range []struct {
		addr string
		tls  bool
		path string
		want string
	}{
		{"127.0.0.1:8080", false, "", "http://127.0.0.1:8080"},
		{"127.0.0.1:8080", true, "", "https://127.0.0.1:8080"},
		{"10.0.0.1:443", true, "/ftvs/cluster?hash=1", "https://10.0.0.1:443/ftvs/cluster?hash=1"},
		{"[::1]:80", false, "/kv/a", "http://[::1]:80/kv/a"},
	} {
		if got := MemberURL(tt.addr, tt.tls, tt.path); got != tt.want {
			t.Errorf("MemberURL(%q, %v, %q) = %q, want %q", tt.addr, tt.tls, tt.path, got, tt.want)
		}
	}
}

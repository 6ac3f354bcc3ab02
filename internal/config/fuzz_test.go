package config

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, and whatever it accepts, Marshal writes back exactly.
func FuzzParse(f *testing.F) {
	for _, name := range MemberNames {
		f.Add(testConfig(name).Marshal())
	}
	valid := string(testConfig(CoServer1).Marshal())
	f.Add([]byte(strings.Replace(valid, `data_dir = "coserver1"`, `data_dir = 'C:\dir' # x`, 1)))
	f.Add([]byte(strings.Replace(valid, `data_dir = "coserver1"`, `data_dir = """a\u00e9\nb"""`, 1)))
	f.Add([]byte(strings.Replace(valid, "fuel = 200000000", "fuel = 0x10", 1)))
	f.Add([]byte(strings.Replace(valid, `"127.0.0.1:7101"`, `"[::1]:7101"`, 1)))
	f.Add([]byte(strings.Replace(valid, "heartbeat_timeout =", "heartbeat =", 1)))
	f.Add([]byte(strings.Replace(valid, `mode = "mutual"`, `mode = "off"`, 1)))
	f.Add([]byte(strings.Replace(valid, `tls_cert = ""`, `tls_cert = "gw.crt"`, 1)))
	f.Add([]byte(strings.Replace(valid, `down_after = "60ms"`, `down_after = "1m"`, 1)))
	f.Add([]byte(strings.Replace(valid, "link_a =", "raft =", 1)))
	f.Add([]byte("[links]\nprobe_interval = \"1h\"\n[tls]\ndir = \"\"\n[manager]\ntoken_file = 5\n"))
	f.Add([]byte("members = [{name = \"witness\"}]\n[raft]\nsnapshot_threshold = -1\n"))
	f.Add([]byte("x = = 1\n[[members]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "f.toml")
		if err != nil {
			return
		}
		out := c.Marshal()
		c2, err := Parse(out, "f.toml")
		if err != nil {
			t.Fatalf("Parse(Marshal(c)): %v\ninput:\n%s\nmarshaled:\n%s", err, data, out)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip differs:\n got %+v\nwant %+v\nmarshaled:\n%s", c2, c, out)
		}
	})
}

package advisory

import (
	"testing"
)

// FuzzParse: Parse never panics; whatever it accepts evaluates without panic and,
// marshalled to JSON, parses back to the same advisories.
func FuzzParse(f *testing.F) {
	for _, s := range []string{goodTOML, goodJSON, when("warn", `module = "*"`), adv("A", `kernel = "6.x"`),
		"[[advisory]]\nid = 7\n", "[advisory]\n", `{"advisories": [{"id": "A", "id": "B"}]}`, "{\n  \"advisories\": [\n", ""} {
		f.Add("advisories.toml", []byte(s))
		f.Add("advisories.json", []byte(s))
		f.Add("advisories", []byte(s))
	}
	facts := []Facts{
		{Member: "coserver1", ModuleName: "kv", ModuleVersion: "1.1.0", RuntimeVersion: "0.1.0-dev", ABI: 1, OS: "linux", Arch: "amd64", Kernel: "6.1.0-18-amd64"},
		{Member: "witness", RuntimeVersion: "devel", OS: "linux", Arch: "arm64", Kernel: "generic"},
		{Member: "unreachable"},
		LocalFacts(),
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		advs, err := Parse(name, data)
		if err != nil {
			if advs != nil {
				t.Fatalf("advisories and an error: %v", err)
			}
			return
		}
		for _, m := range Evaluate(advs, facts) {
			_ = m.String()
		}
		for _, g := range Gaps(advs, facts) {
			_ = g.String()
		}
		if advs == nil {
			advs = []Advisory{}
		}
		roundTrip(t, advs)
	})
}

package advisory_test

import (
	"fmt"

	"github.com/ftvs/ftvs/internal/advisory"
)

func ExampleEvaluate() {
	advs, err := advisory.Parse("advisories.toml", []byte(`
[[advisory]]
id = "FTVS-2026-001"
action = "block"
text = "kv 1.1 with ftvs runtime < 0.2 on kernels 6.1.x before 6.1.2.2147 corrupts its state at import"
remedy = "update the runtime to 0.2 first, or install kv 1.1.1"
[advisory.when]
module = "kv"
module_version = ">=1.1, <1.1.1"
runtime_version = "<0.2"
kernel = ">=6.1, <6.1.2.2147"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	members := []advisory.Facts{
		{Member: "coserver1", ModuleName: "kv", ModuleVersion: "1.1.0", RuntimeVersion: "0.1.0-dev", OS: "linux", Arch: "amd64", Kernel: "6.1.2.2147"},
		{Member: "coserver2", ModuleName: "kv", ModuleVersion: "1.1.0", RuntimeVersion: "0.1.0-dev", OS: "linux", Arch: "amd64", Kernel: "6.1.0-18-amd64"},
	}
	for _, m := range advisory.Evaluate(advs, members) {
		fmt.Println(m)
	}
	// Output:
	// BLOCK FTVS-2026-001 on coserver2 (kv 1.1.0, ftvs 0.1.0-dev, linux/amd64 kernel 6.1.0-18-amd64): kv 1.1 with ftvs runtime < 0.2 on kernels 6.1.x before 6.1.2.2147 corrupts its state at import. Remedy: update the runtime to 0.2 first, or install kv 1.1.1.
}

// Package defaultguest embeds the kv example, the guest a CoServer runs when none is given.
package defaultguest

import _ "embed"

//go:generate sh ../../scripts/build-guests.sh

// KV is the WebAssembly module built from examples/kv by
// scripts/build-guests.sh. scripts/check-guests.sh verifies that it matches
// the sources.
//
//go:embed kv.wasm
var KV []byte

// Package sqlite embeds the SQLite example guest: the real SQLite library and the C shim
// in ftvs_sqlite.c that serves it through the ftvs guest ABI, compiled to
// WebAssembly by scripts/build-sqlite.sh. scripts/check-guests.sh verifies that
// sqlite.wasm matches the sources.
package sqlite

import _ "embed"

// Module is sqlite.wasm, stamped with its ftvs.module metadata (name sqlite).
//
//go:embed sqlite.wasm
var Module []byte

package node

import (
	"context"
	"sync"
	"testing"

	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/vm"
)

var (
	sharedEngineOnce sync.Once
	sharedEngine     *vm.Engine
	sharedEngineErr  error
)

// testEngine is the engine every test member of this process runs its guest on
// (Config.Engine), with the default settings: each module is validated, instrumented
// and compiled once per process rather than at every member start (under -race, about
// half a second for the kv module each time). The members still make their own
// instances from it, as they would in their own processes. Guest output is not
// logged. It stays open until the process ends. Tests of other engine settings give
// Config.VM instead.
func testEngine(t testing.TB) *vm.Engine {
	t.Helper()
	sharedEngineOnce.Do(func() {
		sharedEngine, sharedEngineErr = vm.NewEngine(context.Background(), vm.Config{CacheDir: guesttest.CacheDir()})
	})
	if sharedEngineErr != nil {
		t.Fatalf("test engine: %v", sharedEngineErr)
	}
	return sharedEngine
}

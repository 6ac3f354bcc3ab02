// Command warmcache compiles guest modules into a wazero compilation cache the way
// vm.Engine.Load does. guesttest.Build runs it (without the race detector) for every
// guest it builds, so that race-instrumented tests find the guest compiled: a
// compilation in a -race binary takes minutes on a busy 2-core machine, about ten
// times longer than without it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/wasm"
)

func main() {
	cache := flag.String("cache", "", "wazero compilation cache directory")
	flag.Parse()
	if *cache == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: warmcache -cache DIR MODULE.wasm...")
		os.Exit(2)
	}
	if err := warm(*cache, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "warmcache:", err)
		os.Exit(1)
	}
}

func warm(cache string, paths []string) error {
	ctx := context.Background()
	e, err := vm.NewEngine(ctx, vm.Config{CacheDir: cache})
	if err != nil {
		return err
	}
	defer e.Close(ctx)
	for _, p := range paths {
		bin, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := e.Load(ctx, "warm", bin, wasm.NewestMetering); err != nil {
			return fmt.Errorf("compile %s: %w", p, err)
		}
	}
	return nil
}

package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ftvs/ftvs/internal/vm"
)

// vmFlags are the guest limits of `ftvs inspect` (which replays a log with them).
type vmFlags struct {
	memoryMiB       uint64
	maxRequestBytes int
	fuel            int64
	interpreter     bool
	cacheDir        string
}

func (v *vmFlags) register(fs *flag.FlagSet) {
	fs.Uint64Var(&v.memoryMiB, "memory-limit", vm.DefaultMemoryLimitBytes>>20, "guest memory limit in MiB")
	fs.IntVar(&v.maxRequestBytes, "max-request-bytes", vm.DefaultMaxRequestBytes, "largest request (headers and body) the virtual server accepts")
	fs.Int64Var(&v.fuel, "fuel", vm.DefaultFuelPerEntry, "per-entry budget in fuel units (one per guest function call or loop iteration, and per 64 bytes of memory.copy/fill)")
	fs.BoolVar(&v.interpreter, "interpreter", false, "run the guest in wazero's interpreter instead of its compiler")
	fs.StringVar(&v.cacheDir, "cache-dir", defaultCacheDir(), "compiled-guest cache shared by every CoServer of this user (empty: in memory)")
}

// defaultCacheDir is $XDG_CACHE_HOME/ftvs/wazero (or ~/.cache/ftvs/wazero).
func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "ftvs", "wazero")
}

func (v *vmFlags) config() (vm.Config, error) {
	if v.memoryMiB == 0 || v.memoryMiB > vm.MaxMemoryLimitBytes>>20 {
		return vm.Config{}, fmt.Errorf("--memory-limit %d: give 1 to %d (MiB)", v.memoryMiB, vm.MaxMemoryLimitBytes>>20)
	}
	if v.maxRequestBytes <= 0 {
		return vm.Config{}, fmt.Errorf("--max-request-bytes %d: must be positive", v.maxRequestBytes)
	}
	if v.fuel <= 0 {
		return vm.Config{}, fmt.Errorf("--fuel %d: must be positive", v.fuel)
	}
	return vm.Config{MemoryLimitBytes: v.memoryMiB << 20, MaxRequestBytes: v.maxRequestBytes, FuelPerEntry: v.fuel, Interpreter: v.interpreter, CacheDir: v.cacheDir}, nil
}

package vserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/wasm"
)

// Settings are the engine settings that change what the guest computes: the same log
// gives another state under another fuel budget (an entry runs out of fuel on one
// CoServer only), memory limit (memory.grow fails on one only), largest request (one
// refuses what the other runs) or execution engine. They are part of the replicated
// state (a settings entry, and every snapshot after it): the cluster's settings are
// the ones in the log, and a CoServer whose own differ refuses to apply past them.
type Settings struct {
	FuelPerEntry     int64  `json:"fuel"`
	MemoryLimitBytes uint64 `json:"memory_limit_bytes"`
	MaxRequestBytes  int    `json:"max_request_bytes"`
	Interpreter      bool   `json:"interpreter"`
	// TickInterval is how often the leader appends a tick entry (0: never). Left out of
	// the payload when 0, so that a cluster without ticks records what builds from
	// before ticks read.
	TickInterval time.Duration `json:"tick_interval_ns,omitempty"`
	// Metering is what the fuel meter charges (wasm.Metering). Unlike the others it is
	// no member's own setting: the leader records the newest metering every CoServer's
	// build runs (internal/node, clusterMetering), and every replica runs what is recorded. Left out
	// of the payload for wasm.MeterCalls, the metering of builds of protocol level 2,
	// which refuse a payload that has it ("a setting this build does not know").
	Metering wasm.Metering `json:"metering,omitempty"`
}

// metering is the fuel metering recorded settings call for; with none recorded (a
// cluster from before settings), the first one, wasm.MeterCalls.
func (s *Settings) metering() wasm.Metering {
	if s == nil {
		return wasm.MeterCalls
	}
	return s.Metering
}

// Matches reports whether a CoServer whose own settings are local can run a cluster
// recorded with s: every setting equal but the metering, which follows the cluster's.
func (s Settings) Matches(local Settings) bool {
	local.Metering = s.Metering
	return s == local
}

// SettingsOf returns the settings an engine runs with (defaults filled in), and the
// tick interval its member is configured with.
func SettingsOf(c vm.Config, tick time.Duration) Settings {
	return Settings{FuelPerEntry: c.FuelPerEntry, MemoryLimitBytes: c.MemoryLimitBytes, MaxRequestBytes: c.MaxRequestBytes, Interpreter: c.Interpreter,
		TickInterval: tick}
}

// ErrSettingsMismatch means this CoServer's own settings differ from the cluster's
// (wrapped in a *SettingsMismatchError that names each one).
var ErrSettingsMismatch = errors.New("this CoServer's settings differ from the cluster's")

// SettingsMismatchError names every setting that differs, with both values and where
// the cluster's were recorded.
type SettingsMismatchError struct {
	Index   uint64 // the entry (or snapshot) the cluster's settings come from
	Cluster Settings
	Local   Settings
}

func (e *SettingsMismatchError) Error() string {
	var diffs, fix []string
	for _, d := range e.Cluster.diff(e.Local) {
		diffs = append(diffs, fmt.Sprintf("%s is %s here but %s in the cluster", d.name, d.local, d.cluster))
		fix = append(fix, d.fix)
	}
	return fmt.Sprintf("%v (the cluster's were recorded at log index %d): %s. The same log gives another state under other settings, so this CoServer refuses to run the virtual server: %s, then start it again",
		ErrSettingsMismatch, e.Index, strings.Join(diffs, "; "), strings.Join(fix, "; "))
}

func (e *SettingsMismatchError) Unwrap() error { return ErrSettingsMismatch }

type settingDiff struct{ name, local, cluster, fix string }

// Differences names each setting of local that differs from s, as "NAME is L here but
// S in WHERE" (a backup, say), with the fix of each: what to set in a CoServer's config
// file.
func (s Settings) Differences(local Settings, where string) (diffs, fixes []string) {
	for _, d := range s.diff(local) {
		diffs = append(diffs, fmt.Sprintf("%s is %s here but %s in %s", d.name, d.local, d.cluster, where))
		fixes = append(fixes, d.fix)
	}
	return diffs, fixes
}

// diff lists the settings of local that differ from s, named as in the config file,
// each with its fix.
func (s Settings) diff(local Settings) []settingDiff {
	var out []settingDiff
	inFile := func(key string, v any, flag string) string {
		return fmt.Sprintf("set %s = %v under [guest] in this member's config file (a flag overrides the file: give --%s %v or none)", key, v, flag, v)
	}
	if s.FuelPerEntry != local.FuelPerEntry {
		out = append(out, settingDiff{"guest.fuel", fmt.Sprint(local.FuelPerEntry), fmt.Sprint(s.FuelPerEntry),
			inFile("fuel", s.FuelPerEntry, "fuel")})
	}
	if s.MemoryLimitBytes != local.MemoryLimitBytes {
		out = append(out, settingDiff{"guest.memory_limit_mib", mib(local.MemoryLimitBytes), mib(s.MemoryLimitBytes),
			inFile("memory_limit_mib", s.MemoryLimitBytes>>20, "memory-limit")})
	}
	if s.MaxRequestBytes != local.MaxRequestBytes {
		out = append(out, settingDiff{"guest.max_request_bytes", fmt.Sprint(local.MaxRequestBytes), fmt.Sprint(s.MaxRequestBytes),
			inFile("max_request_bytes", s.MaxRequestBytes, "max-request-bytes")})
	}
	if s.Interpreter != local.Interpreter {
		engine := map[bool]string{false: "the compiler", true: "the interpreter"}
		fix := "drop --interpreter"
		if s.Interpreter {
			fix = "add --interpreter"
		}
		out = append(out, settingDiff{"the execution engine", engine[local.Interpreter], engine[s.Interpreter], fix})
	}
	if s.TickInterval != local.TickInterval {
		out = append(out, settingDiff{"guest.tick_interval", local.TickInterval.String(), s.TickInterval.String(),
			inFile("tick_interval", fmt.Sprintf("%q", s.TickInterval.String()), "tick-interval")})
	}
	return out
}

func mib(b uint64) string {
	if b%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", b>>20)
	}
	return fmt.Sprintf("%d bytes", b)
}

// EncodeSettingsPayload is the payload of a settings entry.
func EncodeSettingsPayload(s Settings) []byte {
	b, _ := json.Marshal(s) // a struct of numbers and a bool always encodes
	return b
}

// maxSettingsPayload bounds a settings payload: the four settings take under 200 bytes.
const maxSettingsPayload = 4 << 10

// DecodeSettingsPayload parses a settings entry's payload. It refuses unknown fields: a
// setting this build does not know may change results in a way it cannot reproduce.
func DecodeSettingsPayload(b []byte) (Settings, error) {
	var s Settings
	if len(b) > maxSettingsPayload {
		return s, fmt.Errorf("settings payload of %d bytes (at most %d)", len(b), maxSettingsPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Settings{}, fmt.Errorf("settings payload: %w (a setting this build does not know needs a newer ftvs on every member)", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Settings{}, errors.New("settings payload: data after the settings object")
	}
	if err := s.validate(); err != nil {
		return Settings{}, fmt.Errorf("settings payload: %w", err)
	}
	return s, nil
}

func (s Settings) validate() error {
	switch {
	case s.FuelPerEntry <= 0:
		return fmt.Errorf("fuel %d: must be positive", s.FuelPerEntry)
	case s.MemoryLimitBytes == 0 || s.MemoryLimitBytes%65536 != 0 || s.MemoryLimitBytes > vm.MaxMemoryLimitBytes:
		return fmt.Errorf("memory limit %d bytes: must be a positive multiple of 64 KiB, at most 4 GiB", s.MemoryLimitBytes)
	case s.MaxRequestBytes <= 0:
		return fmt.Errorf("max request bytes %d: must be positive", s.MaxRequestBytes)
	case s.TickInterval < 0:
		return fmt.Errorf("tick interval %s: must not be negative", s.TickInterval)
	case s.Metering > wasm.NewestMetering:
		return fmt.Errorf("metering %d: this build runs metering %d (%v) at most: upgrade every CoServer to the cluster's release", s.Metering, wasm.NewestMetering, wasm.NewestMetering)
	}
	return nil
}

// Settings returns the cluster's settings as this replica's state records them (ok is
// false before a settings entry was applied).
func (s *Server) Settings() (Settings, bool) {
	if s.settings == nil {
		return Settings{}, false
	}
	return *s.settings, true
}

// LocalSettings are this replica's own settings: its engine's, and its member's tick
// interval.
func (s *Server) LocalSettings() Settings {
	return SettingsOf(s.cfg.Engine.Config(), s.cfg.TickInterval)
}

// Metering is the fuel metering the virtual server runs (the recorded settings',
// wasm.MeterCalls before any were recorded).
func (s *Server) Metering() wasm.Metering { return s.settings.metering() }

// applySettings records the cluster's settings from a settings entry (or a snapshot)
// and checks this replica's own against them: on a difference, the replica fails, with
// an error that names each setting and the fix. A new metering applies at once
// (remeter).
func (s *Server) applySettings(ctx context.Context, index uint64, cs Settings) error {
	if err := s.remeter(ctx, cs.Metering); err != nil {
		err = fmt.Errorf("settings entry %d: %w", index, err)
		s.fail(err)
		return err
	}
	s.settings, s.settingsIndex = &cs, index
	local := s.LocalSettings()
	if cs.Matches(local) {
		return nil
	}
	err := &SettingsMismatchError{Index: index, Cluster: cs, Local: local}
	s.fail(err)
	return err
}

// remeter switches the running module and the earlier ones kept for rollback to the
// metering m: each is instrumented again, and the running one's state (memory and
// globals: instrumentation adds only the fuel global) moves to the new instance
// through a checkpoint taken here, so that a later reset replays no entry that ran
// under the old metering. Every replica does it at the same entry.
func (s *Server) remeter(ctx context.Context, m wasm.Metering) error {
	if s.mod == nil || s.mod.Metering == m {
		return nil
	}
	from, began := s.mod.Metering, time.Now()
	mod, err := s.cfg.Engine.Load(ctx, s.mod.Name, s.mod.Binary, m)
	if err != nil {
		return fmt.Errorf("instrument module %s for metering %v: %w", s.mod.Name, m, err)
	}
	history := make([]HistoryModule, len(s.history))
	for i, h := range s.history {
		hm, err := s.cfg.Engine.Load(ctx, h.Module.Name, h.Module.Binary, m)
		if err != nil {
			return fmt.Errorf("instrument earlier module %s %s for metering %v: %w", h.Module.Name, h.Version, m, err)
		}
		history[i] = HistoryModule{Module: hm, Version: h.Version}
	}
	if err := s.takeCheckpoint(); err != nil {
		return fmt.Errorf("checkpoint before metering %v: %w", m, err)
	}
	inst, err := mod.Restore(ctx, s.checkpoint)
	if err != nil {
		return fmt.Errorf("move the state to module %s under metering %v: %w", mod.Name, m, err)
	}
	s.inst.Close(ctx)
	s.mod, s.inst, s.history = mod, inst, history
	s.log.Info("virtual server metering changed", "event", "vs.metering_changed", "index", s.applied,
		"from", from.String(), "to", m.String(), "module", mod.Name, "took_ms", time.Since(began).Milliseconds())
	return nil
}

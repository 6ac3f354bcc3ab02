package vserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/wasm"
)

// Snapshot is the virtual server at one applied index: the module and its full state.
// State is nil when no module had been installed at Index.
type Snapshot struct {
	Index      uint64
	ModuleName string
	Module     []byte
	State      *vm.State
	// Version 2: the running module's version, the earlier modules kept for rollback,
	// and the probation of a recent update (all replicated state: they decide what
	// later entries do).
	ModuleVersion string
	History       []SnapshotModule
	Probation     probation
	// Version 3: the cluster's settings (settings.go) and the index they were recorded
	// at; nil before a settings entry was applied.
	Settings      *Settings
	SettingsIndex uint64
	// Version 5: the requests remembered for idempotent retries (idempotency.go).
	Idempotency []*IdempotencyRecord
	// (Version 6 adds the settings' metering; see the format below.)
}

// SnapshotModule is an earlier module in a snapshot.
type SnapshotModule struct {
	Name, Version string
	Wasm          []byte
}

// ErrCorrupt means a snapshot file failed its checks. Nothing was restored from it.
var ErrCorrupt = errors.New("snapshot is corrupted")

// The file format (version 6), all integers big endian:
//
//	"FTVSSNAP" | u32 version | u64 index
//	version 3 to 6: u8 has-settings; if 1: u64 settings index | u64 fuel | u64 memory limit
//	  | u32 max request bytes | u8 interpreter | versions 5 and 6: u64 tick interval (ns)
//	  | version 6: u8 metering (wasm.Metering)
//	u8 name length | name | u32 module length | module
//	u8 has-state; if 1:
//	  [32]module sha256 | i64 clock | u32 global count | per global: u32 index, u8 type, u8 mutable, u64 value
//	  u64 memory bytes | page bitmap (1 bit per 64 KiB page, set = stored) | stored pages | [32]state hash
//	version 2 only: u8 version length | module version | u8 history count | per earlier
//	  module: u8 name length | name | u8 version length | version | u32 length | module
//	  | u8 on probation | u32 threshold | u32 consecutive traps | u32 probation left
//	versions 5 and 6: the idempotency section (encodeIdempotency)
//	[32] sha256 of everything before it
//
// Version 4 is version 3 with the state hash of vm.State.Hash (sha256 over the hashes of
// the 4 KiB pages, which a CoServer keeps from one State to the next); versions 1 to 3
// have vm.State.HashV1's (over the memory bytes). Version 5 adds the tick interval to
// the settings and, at the end, the idempotency section (encodeIdempotency); it is
// written only when ticks are on or a request is remembered (otherwise the file is
// version 4, which builds from before read). Version 6 adds the metering to the
// settings; it is written only when the metering is not wasm.MeterCalls, which builds
// of protocol level 2 cannot run (they refuse the file as they refuse the settings
// entry). Version 1 files (no update section), version 2 files (no settings) and
// versions 3 to 5 are still read.
// The settings come first so that a CoServer whose memory limit is below the cluster's
// learns that from the file (ErrSettingsMismatch), instead of taking it for corrupt.
//
// All-zero pages are not stored. The trailing checksum covers the whole file; the state
// hash is recomputed on read, so a file that decodes is exactly what was written.
const (
	snapMagic         = "FTVSSNAP"
	snapVersion       = 6
	maxSnapModule     = 64 << 20
	maxSnapGlobals    = 1 << 16
	snapPageSize      = 65536
	maxSnapshotMemory = 4 << 30
)

// WriteTo writes the snapshot in the file format above.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	h := sha256.New()
	out := io.MultiWriter(bw, h)
	e := &encoder{w: out}
	e.bytes([]byte(snapMagic))
	version := uint32(4)
	switch {
	case s.Settings != nil && s.Settings.Metering != wasm.MeterCalls:
		version = 6
	case s.Settings != nil && s.Settings.TickInterval != 0 || len(s.Idempotency) > 0:
		version = 5
	}
	e.u32(version)
	e.u64(s.Index)
	encodeSettings(e, s.Settings, s.SettingsIndex, version)
	if len(s.ModuleName) > maxModuleNameBytes {
		return 0, fmt.Errorf("snapshot: module name of %d bytes", len(s.ModuleName))
	}
	e.u8(uint8(len(s.ModuleName)))
	e.bytes([]byte(s.ModuleName))
	e.u32(uint32(len(s.Module)))
	e.bytes(s.Module)
	encodeState(e, s.State)
	if err := s.encodeUpdates(e); err != nil {
		return 0, err
	}
	if version >= 5 {
		if err := s.encodeIdempotency(e); err != nil {
			return 0, err
		}
	}
	if e.err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", e.err)
	}
	if _, err := bw.Write(h.Sum(nil)); err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	return cw.n, nil
}

// encodeSettings writes the settings section (version 3, the tick interval from
// version 5, the metering from version 6): a flag, then the cluster's settings cs and
// the index they were recorded at, if cs is not nil.
func encodeSettings(e *encoder, cs *Settings, at uint64, version uint32) {
	if cs == nil {
		e.u8(0)
		return
	}
	e.u8(1)
	e.u64(at)
	e.u64(uint64(cs.FuelPerEntry))
	e.u64(cs.MemoryLimitBytes)
	e.u32(uint32(cs.MaxRequestBytes))
	e.bool(cs.Interpreter)
	if version >= 5 {
		e.u64(uint64(cs.TickInterval))
	}
	if version >= 6 {
		e.u8(uint8(cs.Metering))
	}
}

// encodeState writes the state section: a flag, then, if st is not nil, the guest
// state: module identity, clock, globals, memory (a bitmap of the pages that are not
// all zeros, then those pages) and the state hash.
func encodeState(e *encoder, st *vm.State) {
	if st == nil {
		e.u8(0)
		return
	}
	e.u8(1)
	e.bytes(st.ModuleSHA[:])
	e.u64(uint64(st.ClockNanos))
	e.u32(uint32(len(st.Globals)))
	for _, g := range st.Globals {
		e.u32(g.Index)
		e.u8(uint8(g.Type))
		e.bool(g.Mutable)
		e.u64(g.Value)
	}
	e.u64(uint64(st.MemoryBytes()))
	pages := st.MemoryBytes() / snapPageSize
	bitmap := make([]byte, (pages+7)/8)
	for p := range pages {
		if !st.MemoryZero(p*snapPageSize, snapPageSize) {
			bitmap[p/8] |= 1 << (p % 8)
		}
	}
	e.bytes(bitmap)
	page := make([]byte, snapPageSize)
	for p := range pages {
		if bitmap[p/8]&(1<<(p%8)) != 0 {
			st.ReadMemoryAt(page, int64(p*snapPageSize))
			e.bytes(page)
		}
	}
	sum := st.Hash()
	e.bytes(sum[:])
}

// encodeUpdates writes the update section (version 2): the module's version, the earlier
// modules kept for rollback, and the probation. A version, name or history too long for
// the format is an error, returned when it is met: what came before is written already.
func (s *Snapshot) encodeUpdates(e *encoder) error {
	if len(s.ModuleVersion) > maxModuleNameBytes || len(s.History) > 255 {
		return fmt.Errorf("snapshot: module version of %d bytes or %d earlier modules", len(s.ModuleVersion), len(s.History))
	}
	e.u8(uint8(len(s.ModuleVersion)))
	e.bytes([]byte(s.ModuleVersion))
	e.u8(uint8(len(s.History)))
	for _, h := range s.History {
		if len(h.Name) > maxModuleNameBytes || len(h.Version) > maxModuleNameBytes {
			return fmt.Errorf("snapshot: earlier module %q %q: name or version too long", h.Name, h.Version)
		}
		e.u8(uint8(len(h.Name)))
		e.bytes([]byte(h.Name))
		e.u8(uint8(len(h.Version)))
		e.bytes([]byte(h.Version))
		e.u32(uint32(len(h.Wasm)))
		e.bytes(h.Wasm)
	}
	e.bool(s.Probation.Active)
	e.u32(s.Probation.Threshold)
	e.u32(s.Probation.Consecutive)
	e.u32(s.Probation.Left)
	return nil
}

// ReadSnapshot decodes and verifies a snapshot. maxMemory bounds the guest memory it
// accepts (the engine's memory limit). Every failure wraps ErrCorrupt.
func ReadSnapshot(r io.Reader, maxMemory uint64) (*Snapshot, error) {
	return ReadSnapshotAhead(r, maxMemory, nil)
}

// ReadSnapshotAhead is ReadSnapshot that also starts loading the snapshot's module on
// engine (if not nil), under the snapshot's metering, as soon as the module's bytes are
// read: the load (instrumentation, compilation or the compiled-code cache: 0.44 s for
// the kv example here) then runs beside the decode of the state instead of after it,
// and Server.Restore's Load of the same module waits for it (Engine.Load). The module
// is not verified yet then: a damaged one is loaded under its own identity, never taken
// for the snapshot's (the state names its module's sha256, checked at the end).
func ReadSnapshotAhead(r io.Reader, maxMemory uint64, engine *vm.Engine) (*Snapshot, error) {
	d := &decoder{r: bufio.NewReaderSize(r, 1<<20), h: sha256.New()}
	if engine != nil {
		d.onModule = func(name string, bin []byte, cs *Settings) {
			go engine.Load(context.Background(), name, bin, cs.metering())
		}
	}
	s, err := readSnapshot(d, maxMemory)
	if err != nil && errors.Is(err, ErrCorrupt) {
		return nil, fmt.Errorf("%w (delete it; the CoServer then replays its log or syncs from its peer)", err)
	}
	return s, err
}

// DecodeSnapshot is ReadSnapshot of a snapshot that is not a member's own file (a
// backup, ftvs snapshot): its errors say what is wrong, not what a CoServer does about
// it. Every failure but a memory limit below the snapshot's wraps ErrCorrupt.
func DecodeSnapshot(r io.Reader, maxMemory uint64) (*Snapshot, error) {
	return readSnapshot(&decoder{r: bufio.NewReaderSize(r, 1<<20), h: sha256.New()}, maxMemory)
}

func readSnapshot(d *decoder, maxMemory uint64) (*Snapshot, error) {
	s, err := decodeSnapshot(d, maxMemory)
	if err == nil {
		want := d.h.Sum(nil)
		var got [32]byte
		if _, err = io.ReadFull(d.r, got[:]); err != nil {
			err = fmt.Errorf("file checksum missing (truncated file): %w", err)
		} else if !bytes.Equal(got[:], want) {
			err = errors.New("file checksum mismatch: the file was changed after it was written")
		} else if _, perr := d.r.ReadByte(); perr != io.EOF {
			err = errors.New("trailing bytes after the checksum")
		}
	}
	var mem *memoryLimitError
	if errors.As(err, &mem) {
		return nil, err // the file is fine: this CoServer's limit is not the cluster's
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return s, nil
}

// ReadSnapshotSettings reads only the settings at the start of a snapshot file (and the
// index they were recorded at); nil for a file written before settings were recorded,
// or by a version that has none. It verifies nothing else: ReadSnapshot does.
func ReadSnapshotSettings(r io.Reader) (*Settings, uint64, error) {
	d := &decoder{r: bufio.NewReader(r), h: sha256.New()}
	if magic := d.bytes(len(snapMagic)); d.err == nil && string(magic) != snapMagic {
		return nil, 0, errors.New("not an ftvs snapshot (bad magic)")
	}
	v := d.u32()
	d.u64()
	if d.err != nil || v < 3 || v > snapVersion {
		return nil, 0, d.err
	}
	return decodeSettings(d, v)
}

// decodeSettings reads the settings section of a snapshot of version 3 or later: nil
// when the file records none.
func decodeSettings(d *decoder, version uint32) (*Settings, uint64, error) {
	switch has := d.u8(); {
	case d.err != nil:
		return nil, 0, d.err
	case has == 0:
		return nil, 0, nil
	case has != 1:
		return nil, 0, fmt.Errorf("bad settings flag %d", has)
	}
	at := d.u64()
	cs := Settings{FuelPerEntry: int64(d.u64()), MemoryLimitBytes: d.u64(), MaxRequestBytes: int(d.u32())}
	switch b := d.u8(); {
	case d.err != nil:
		return nil, 0, d.err
	case b > 1:
		return nil, 0, fmt.Errorf("bad interpreter flag %d", b)
	default:
		cs.Interpreter = b == 1
	}
	if version >= 5 {
		cs.TickInterval = time.Duration(d.u64())
	}
	if version >= 6 {
		cs.Metering = wasm.Metering(d.u8())
	}
	if d.err != nil {
		return nil, 0, d.err
	}
	if err := cs.validate(); err != nil {
		return nil, 0, fmt.Errorf("settings: %w", err)
	}
	return &cs, at, nil
}

// memoryLimitError: a snapshot's guest memory exceeds this CoServer's memory limit but
// not the cluster's (recorded in the same file): the settings differ, the file is fine.
type memoryLimitError struct {
	memBytes, local, cluster uint64
	index                    uint64
}

func (e *memoryLimitError) Error() string {
	return fmt.Sprintf("%v: the snapshot holds %d bytes of guest memory, over this CoServer's memory limit of %s; the cluster's limit is %s (recorded at log index %d): set memory_limit_mib = %d under [guest] in this member's config file (a flag overrides the file: give --memory-limit %d or none), then start it again",
		ErrSettingsMismatch, e.memBytes, mib(e.local), mib(e.cluster), e.index, e.cluster>>20, e.cluster>>20)
}

func (e *memoryLimitError) Unwrap() error { return ErrSettingsMismatch }

func decodeSnapshot(d *decoder, maxMemory uint64) (*Snapshot, error) {
	if magic := d.bytes(len(snapMagic)); d.err == nil && string(magic) != snapMagic {
		return nil, errors.New("not an ftvs snapshot (bad magic)")
	}
	v := d.u32()
	if d.err == nil && (v < 1 || v > snapVersion) {
		return nil, fmt.Errorf("snapshot format version %d, this build reads versions 1 to %d", v, snapVersion)
	}
	s := &Snapshot{Index: d.u64()}
	if v >= 3 {
		var err error
		if s.Settings, s.SettingsIndex, err = decodeSettings(d, v); err != nil {
			return nil, err
		}
	}
	s, err := decodeSnapshotV1(d, s, v, maxMemory)
	if err != nil || v == 1 {
		return s, err
	}
	s.ModuleVersion = string(d.bytes(int(d.u8())))
	nh := int(d.u8())
	for i := 0; i < nh && d.err == nil; i++ {
		var h SnapshotModule
		h.Name = string(d.bytes(int(d.u8())))
		h.Version = string(d.bytes(int(d.u8())))
		n := d.u32()
		if d.err == nil && n > maxSnapModule {
			return nil, fmt.Errorf("earlier module of %d bytes exceeds %d", n, maxSnapModule)
		}
		h.Wasm = d.bytes(int(n))
		s.History = append(s.History, h)
	}
	switch b := d.u8(); {
	case d.err != nil:
	case b > 1:
		return nil, fmt.Errorf("bad probation flag %d", b)
	default:
		s.Probation.Active = b == 1
	}
	s.Probation.Threshold, s.Probation.Consecutive, s.Probation.Left = d.u32(), d.u32(), d.u32()
	if v >= 5 && d.err == nil {
		if err := s.decodeIdempotency(d); err != nil {
			return nil, err
		}
	}
	return s, d.err
}

// maxSnapResponse bounds a remembered response in a snapshot.
const maxSnapResponse = 64 << 20

// encodeIdempotency writes the idempotency section (version 5): u32 count, then per
// record u64 index | u8 key length | key | [32] request sha256 | u32 response length |
// response, oldest first.
func (s *Snapshot) encodeIdempotency(e *encoder) error {
	e.u32(uint32(len(s.Idempotency)))
	for _, r := range s.Idempotency {
		if len(r.Key) > maxIdempotencyKey || len(r.Response) > maxSnapResponse {
			return fmt.Errorf("snapshot: idempotency record of entry %d: key of %d bytes, response of %d", r.Index, len(r.Key), len(r.Response))
		}
		e.u64(r.Index)
		e.u8(uint8(len(r.Key)))
		e.bytes([]byte(r.Key))
		e.bytes(r.Request[:])
		e.u32(uint32(len(r.Response)))
		e.bytes(r.Response)
	}
	return nil
}

func (s *Snapshot) decodeIdempotency(d *decoder) error {
	n := d.u32()
	if d.err == nil && n > IdempotencyWindow {
		return fmt.Errorf("%d idempotency records, more than the %d a window holds", n, IdempotencyWindow)
	}
	var last uint64
	for i := uint32(0); i < n && d.err == nil; i++ {
		r := &IdempotencyRecord{Index: d.u64()}
		r.Key = string(d.bytes(int(d.u8())))
		copy(r.Request[:], d.bytes(32))
		size := d.u32()
		if d.err == nil && size > maxSnapResponse {
			return fmt.Errorf("idempotency record of entry %d: response of %d bytes", r.Index, size)
		}
		r.Response = d.bytes(int(size))
		if d.err == nil && (r.Index <= last || r.Index > s.Index || r.Key == "") {
			return fmt.Errorf("idempotency record %d: entry %d after %d (snapshot at %d), key %q", i, r.Index, last, s.Index, r.Key)
		}
		last = r.Index
		s.Idempotency = append(s.Idempotency, r)
	}
	return d.err
}

// decodeSnapshotV1 reads what every version has after the index (and the settings):
// module and state.
func decodeSnapshotV1(d *decoder, s *Snapshot, version uint32, maxMemory uint64) (*Snapshot, error) {
	s.ModuleName = string(d.bytes(int(d.u8())))
	n := d.u32()
	if d.err == nil && n > maxSnapModule {
		return nil, fmt.Errorf("module of %d bytes exceeds %d", n, maxSnapModule)
	}
	s.Module = d.bytes(int(n))
	if d.err == nil && d.onModule != nil {
		d.onModule(s.ModuleName, s.Module, s.Settings)
	}
	switch has := d.u8(); {
	case d.err != nil:
		return nil, d.err
	case has == 0:
		return s, d.err
	case has != 1:
		return nil, fmt.Errorf("bad state flag %d", has)
	}
	var moduleSHA [32]byte
	var globals []vm.Global
	copy(moduleSHA[:], d.bytes(32))
	clockNanos := int64(d.u64())
	ng := d.u32()
	if d.err == nil && ng > maxSnapGlobals {
		return nil, fmt.Errorf("%d globals exceeds %d", ng, maxSnapGlobals)
	}
	for i := uint32(0); i < ng && d.err == nil; i++ {
		g := vm.Global{Index: d.u32(), Type: wasm.ValType(d.u8())}
		switch m := d.u8(); m {
		case 0, 1:
			g.Mutable = m == 1
		default:
			return nil, fmt.Errorf("global %d: bad mutability flag %d", g.Index, m)
		}
		g.Value = d.u64()
		globals = append(globals, g)
	}
	memBytes := d.u64()
	if d.err != nil {
		return nil, d.err
	}
	if cs := s.Settings; cs != nil && memBytes <= cs.MemoryLimitBytes && memBytes%snapPageSize == 0 && memBytes > maxMemory {
		return nil, &memoryLimitError{memBytes: memBytes, local: maxMemory, cluster: cs.MemoryLimitBytes, index: s.SettingsIndex}
	}
	if memBytes%snapPageSize != 0 || memBytes > maxSnapshotMemory || memBytes > maxMemory {
		return nil, fmt.Errorf("guest memory of %d bytes: must be whole 64 KiB pages and at most the memory limit (%d bytes)", memBytes, maxMemory)
	}
	sb, err := vm.NewStateBuilder(moduleSHA, clockNanos, globals, int(memBytes))
	if err != nil {
		return nil, err
	}
	if err := decodeMemory(d, sb, int(memBytes/snapPageSize)); err != nil {
		return nil, err
	}
	st := sb.State()
	var sum [32]byte
	copy(sum[:], d.bytes(32))
	if d.err != nil {
		return nil, d.err
	}
	stateHash := st.Hash
	if version < 4 {
		stateHash = st.HashV1
	}
	if stateHash() != sum {
		return nil, errors.New("state hash mismatch: the guest state in the file is not the state that was saved")
	}
	if st.ModuleSHA != sha256.Sum256(s.Module) {
		return nil, errors.New("module in the file does not match the state's module identity")
	}
	s.State = st
	return s, nil
}

// decodeMemory reads the page bitmap and the stored pages of a memory of pages 64 KiB
// pages into sb.
func decodeMemory(d *decoder, sb *vm.StateBuilder, pages int) error {
	bitmap := d.bytes((pages + 7) / 8)
	if d.err != nil {
		return d.err
	}
	page := make([]byte, snapPageSize)
	for p := range pages {
		if bitmap[p/8]&(1<<(p%8)) != 0 {
			d.read(page)
			if d.err == nil && !allZero(page) { // a zero page written anyway needs no memory
				sb.WriteAt(page, int64(p*snapPageSize))
			}
		}
	}
	return d.err
}

var zeroPage [snapPageSize]byte

func allZero(b []byte) bool { return bytes.Equal(b, zeroPage[:len(b)]) }

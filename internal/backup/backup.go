// Package backup is the file of `ftvs snapshot save`: the virtual server's whole state at
// one log index, taken from a running cluster, to keep off the cluster and to start a
// new cluster from (`ftvs snapshot restore`).
//
// The file is a line that names the format, a line of JSON that says what the backup
// holds (Meta), and the virtual server's snapshot in the members' own format
// (internal/vserver, which ends in a sha256 of itself):
//
//	FTVS-BACKUP 1\n
//	{"index":1234,"module":"kv",...}\n
//	FTVSSNAP ... [32]sha256
//
// Read checks all of it: the snapshot's checksum and state hash, and that the JSON line
// says what the snapshot holds, so a damaged header is found as surely as a damaged
// state.
package backup

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ftvs/ftvs/internal/vserver"
)

// magic is the file's first line.
const magic = "FTVS-BACKUP 1\n"

// maxMetaBytes bounds the JSON line.
const maxMetaBytes = 64 << 10

// ErrDamaged means a file is not a whole, unchanged backup. Nothing was restored from it.
var ErrDamaged = errors.New("backup file is damaged or not a backup")

// Meta says what a backup holds; Write fills the fields taken from the snapshot.
type Meta struct {
	Cluster       string    `json:"cluster"`        // the cluster id it was taken from
	Member        string    `json:"member"`         // the CoServer that wrote it
	Created       time.Time `json:"created"`        // when, by that member's clock
	FTVSVersion   string    `json:"ftvs_version"`   // the version of ftvs that wrote it
	Index         uint64    `json:"index"`          // the log index of the state
	Module        string    `json:"module"`         // the running module's name
	ModuleVersion string    `json:"module_version"` // its version, if it was updated to it
	ModuleSHA256  string    `json:"module_sha256"`  // its sha256
	StateHash     string    `json:"state_hash"`     // the state hash at Index (as ftvs status shows it)
	MemoryBytes   uint64    `json:"memory_bytes"`   // the guest memory's size
	EarlierModule int       `json:"earlier_modules"`
}

// Write writes a backup of snap to w with meta; the fields that describe the snapshot
// are set from it. snap must hold a module and its state.
func Write(w io.Writer, meta Meta, snap *vserver.Snapshot) (Meta, error) {
	if snap == nil || snap.State == nil {
		return Meta{}, errors.New("backup: the virtual server has no module and no state yet: nothing to back up")
	}
	describe(&meta, snap)
	line, err := json.Marshal(meta)
	if err != nil {
		return Meta{}, fmt.Errorf("backup: encode its description: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString(magic)
	bw.Write(line)
	bw.WriteByte('\n')
	if _, err := snap.WriteTo(bw); err != nil {
		return Meta{}, fmt.Errorf("backup: write the snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return Meta{}, fmt.Errorf("backup: write: %w", err)
	}
	return meta, nil
}

// describe sets the fields of m that the snapshot decides.
func describe(m *Meta, snap *vserver.Snapshot) {
	m.Index = snap.Index
	m.Module, m.ModuleVersion = snap.ModuleName, snap.ModuleVersion
	m.ModuleSHA256 = hex.EncodeToString(snap.State.ModuleSHA[:])
	m.StateHash = vserver.HashHex(snap.State.Hash())
	m.MemoryBytes = uint64(snap.State.MemoryBytes())
	m.EarlierModule = len(snap.History)
}

// ReadMeta reads only the description at the start of a backup. It verifies nothing
// else: Read does.
func ReadMeta(r io.Reader) (Meta, error) {
	m, _, err := readHead(bufio.NewReader(r))
	return m, err
}

// Read reads and verifies a whole backup: its format, its snapshot (checksum, state
// hash) and that its description matches the snapshot. maxMemory bounds the guest
// memory accepted (a CoServer's memory limit). Every failure but a memory limit below
// the backup's wraps ErrDamaged and says what is wrong.
func Read(r io.Reader, maxMemory uint64) (Meta, *vserver.Snapshot, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	m, line, err := readHead(br)
	if err != nil {
		return Meta{}, nil, err
	}
	snap, err := vserver.DecodeSnapshot(br, maxMemory)
	switch {
	case errors.Is(err, vserver.ErrCorrupt):
		return Meta{}, nil, fmt.Errorf("%w: its snapshot: %w", ErrDamaged, err)
	case err != nil:
		return Meta{}, nil, err // the file is fine; the limit is too small for it
	case snap.State == nil:
		return Meta{}, nil, fmt.Errorf("%w: its snapshot holds no module and no state", ErrDamaged)
	}
	want := m
	describe(&want, snap)
	if got, _ := json.Marshal(want); !bytes.Equal(got, line) {
		return Meta{}, nil, fmt.Errorf("%w: its description says index %d, module %s %s, state hash %.16s…, but its snapshot holds index %d, module %s %s, state hash %.16s…",
			ErrDamaged, m.Index, m.Module, m.ModuleVersion, m.StateHash, want.Index, want.Module, want.ModuleVersion, want.StateHash)
	}
	return m, snap, nil
}

// readHead reads the format line and the description; line is the JSON as read.
func readHead(br *bufio.Reader) (Meta, []byte, error) {
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != magic {
		return Meta{}, nil, fmt.Errorf("%w: it does not start with %q (a file written by `ftvs snapshot save` does)", ErrDamaged, magic[:len(magic)-1])
	}
	line, err := readLine(br)
	if err != nil {
		return Meta{}, nil, err
	}
	var m Meta
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Meta{}, nil, fmt.Errorf("%w: its description: %v", ErrDamaged, err)
	}
	return m, line, nil
}

// readLine reads the description line, without its newline, at most maxMetaBytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		b, err := br.ReadByte()
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: its description ends early: %v", ErrDamaged, err)
		case b == '\n':
			return line, nil
		case len(line) >= maxMetaBytes:
			return nil, fmt.Errorf("%w: its description is longer than %d bytes", ErrDamaged, maxMetaBytes)
		}
		line = append(line, b)
	}
}

// Verify is Read of a backup held in a file (size bytes of r), which also returns its
// snapshot's bytes alone: what a member restores.
func Verify(r io.ReaderAt, size int64, maxMemory uint64) (Meta, *vserver.Snapshot, *io.SectionReader, error) {
	m, snap, err := Read(io.NewSectionReader(r, 0, size), maxMemory)
	if err != nil {
		return Meta{}, nil, nil, err
	}
	_, line, err := readHead(bufio.NewReader(io.NewSectionReader(r, 0, size)))
	if err != nil {
		return Meta{}, nil, nil, err
	}
	head := int64(len(magic) + len(line) + 1)
	return m, snap, io.NewSectionReader(r, head, size-head), nil
}

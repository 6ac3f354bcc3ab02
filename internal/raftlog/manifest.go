package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"

	"github.com/ftvs/ftvs/internal/fsx"
)

// manifestName is the file that says which parts of the segment files are live. It is
// only ever replaced atomically (fsx.WriteFileAtomic), before the segment files it
// describes change: a crash leaves either the old or the new one, and both describe
// the files correctly.
const manifestName = "MANIFEST"

const manifestMagic = "FTVSMAN1"

// maxCuts bounds the cuts a manifest may hold: one per segment file that still exists.
const maxCuts = 1 << 16

// manifest is the log's small durable state outside the segments.
type manifest struct {
	head   uint64            // first live index; entries below it are compacted (0: none)
	minGen uint64            // segments of a lower generation are void (the whole log was deleted)
	cuts   map[uint64]uint64 // segment generation -> the last live index in it
}

func (m manifest) encode() []byte {
	b := []byte(manifestMagic)
	b = binary.LittleEndian.AppendUint64(b, m.head)
	b = binary.LittleEndian.AppendUint64(b, m.minGen)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.cuts)))
	for _, gen := range slices.Sorted(maps.Keys(m.cuts)) {
		b = binary.LittleEndian.AppendUint64(b, gen)
		b = binary.LittleEndian.AppendUint64(b, m.cuts[gen])
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

func decodeManifest(b []byte) (manifest, error) {
	const fixed = len(manifestMagic) + 8 + 8 + 4
	if len(b) < fixed+4 || string(b[:len(manifestMagic)]) != manifestMagic {
		return manifest{}, errors.New("not a raft log manifest")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return manifest{}, errors.New("manifest checksum mismatch")
	}
	m := manifest{
		head:   binary.LittleEndian.Uint64(b[8:]),
		minGen: binary.LittleEndian.Uint64(b[16:]),
		cuts:   map[uint64]uint64{},
	}
	n := binary.LittleEndian.Uint32(b[24:])
	if n > maxCuts || len(body) != fixed+16*int(n) {
		return manifest{}, fmt.Errorf("manifest holds %d cuts in %d bytes", n, len(body))
	}
	for i := range int(n) {
		p := body[fixed+16*i:]
		m.cuts[binary.LittleEndian.Uint64(p)] = binary.LittleEndian.Uint64(p[8:])
	}
	return m, nil
}

// readManifest reads the manifest of dir; ok is false when there is none.
func readManifest(fsys fsx.FS, dir string) (m manifest, ok bool, err error) {
	path := filepath.Join(dir, manifestName)
	b, err := fsx.ReadFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return manifest{cuts: map[uint64]uint64{}}, false, nil
	}
	if err != nil {
		return manifest{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	if m, err = decodeManifest(b); err != nil {
		return manifest{}, false, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return m, true, nil
}

// writeManifest replaces the manifest durably.
func writeManifest(fsys fsx.FS, dir string, m manifest) error {
	if err := fsx.WriteFileAtomic(fsys, filepath.Join(dir, manifestName), m.encode(), 0o600); err != nil {
		return fmt.Errorf("write raft log manifest: %w", err)
	}
	return nil
}

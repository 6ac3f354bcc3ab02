package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ftvs/ftvs/third_party/raft"
)

// Recovery (Open) reads every segment in generation order and follows the chain of
// batches. The chain ends early only where a crash explains it:
//
//   - a batch whose header is intact but whose body is not, with an all-zero sector in
//     it: the disk got part of the write (a crash leaves each sector either as it was,
//     zeros in never-written space, or as written: never garbage);
//   - a segment whose header says it follows an index the log before it does not reach:
//     its predecessor lost its tail;
//   - intact batches after a lost one (unsynced writes reach the disk in any order).
//
// Everything after the end of the chain was written after the lost batch. If any of it
// is intact and its durable watermark reaches past the end of the chain, the lost
// entries had been reported durable: that is corruption, not a crash. Otherwise the
// damage is cut off (a cut in the manifest, the orphaned segments removed) and the log
// ends where the chain ends. A damaged batch without a zero sector, a damaged header, or
// a batch holding the wrong index is corruption wherever it is.
//
// A crash cannot leave a sector half written, so a damaged batch that fits in one
// sector is corruption too. The residual risk is the newest durable batch, which no
// later batch vouches for: if it rots, and the rot happens to zero a whole sector, it is
// taken for a torn write. Scrambled contents make a natural all-zero sector in a batch
// practically impossible, so that needs a sector-sized failure in exactly that batch.

// corruptAt is ErrCorrupt at a place in a file.
func corruptAt(path string, off int64, why string) error {
	return fmt.Errorf("%w: %s at offset %d: %s", ErrCorrupt, path, off, why)
}

// recovery is the state of one Open's scan.
type recovery struct {
	s         *Store
	chain     []*segment // the live log
	chainLast uint64     // the last index the chain reaches (its first segment's prev while empty)
	broken    string     // why the chain ended early; "" while it has not
	evidence  uint64     // the highest durable watermark of intact batches after the break
	seenAt    string     // where that watermark was found
	orphans   []*segment // segments wholly after the break
	cutAt     *segment   // the chain segment where the break happened (it gets a cut)
	compacted []*segment // segments wholly before the head whose removal did not reach the disk
	void      []string   // files of segments the manifest voids, or never completed
}

func (s *Store) recover() error {
	man, ok, err := readManifest(s.fs, s.dir)
	if err != nil {
		return err
	}
	ents, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("read raft log dir %s: %w", s.dir, err)
	}
	var gens []uint64
	for _, e := range ents {
		name := e.Name()
		if name == manifestName+".tmp" {
			s.fs.Remove(filepath.Join(s.dir, name)) // a manifest write that never completed
			continue
		}
		if !strings.HasPrefix(name, "seg-") || !strings.HasSuffix(name, ".wal") {
			continue
		}
		gen, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "seg-"), ".wal"), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: unexpected file name %s", ErrCorrupt, filepath.Join(s.dir, name))
		}
		gens = append(gens, gen)
	}
	slices.Sort(gens)
	if !ok {
		if len(gens) > 0 {
			return fmt.Errorf("%w: %s holds segment files but no %s", ErrCorrupt, s.dir, manifestName)
		}
		man = manifest{cuts: map[uint64]uint64{}}
		if err := writeManifest(s.fs, s.dir, man); err != nil {
			return err
		}
	}
	s.man = man
	// A generation is never used twice while anything refers to it: a file, or a cut
	// the manifest still holds for a removed segment.
	s.nextGen = man.minGen
	if len(gens) > 0 {
		s.nextGen = max(s.nextGen, gens[len(gens)-1]+1)
	}
	for g := range man.cuts {
		s.nextGen = max(s.nextGen, g+1)
	}
	r := &recovery{s: s}
	for _, gen := range gens {
		if err := r.segment(gen); err != nil {
			for _, seg := range slices.Concat(r.chain, r.orphans, r.compacted) {
				seg.close()
			}
			return err
		}
	}
	return r.finish()
}

// segment reads one segment file into the chain, or as an orphan after a break.
func (r *recovery) segment(gen uint64) error {
	cut, hasCut := r.s.man.cuts[gen]
	seg, err := r.openSegment(gen, cut, hasCut)
	if err != nil || seg == nil {
		return err
	}
	if r.broken != "" {
		r.orphans = append(r.orphans, seg)
		_, err := r.scanOrphans(seg, sectorSize)
		return err
	}
	if ok, err := r.continues(seg); !ok {
		return err
	}
	r.chain = append(r.chain, seg)
	return r.readChained(seg, cut, hasCut)
}

// openSegment opens segment gen and checks its header. A segment the manifest voids
// (below its first live generation, or cut before its first index) or whose header never
// became durable goes to r.void, and the result is nil. cut and hasCut are the
// manifest's cut of gen.
func (r *recovery) openSegment(gen, cut uint64, hasCut bool) (*segment, error) {
	s := r.s
	path := filepath.Join(s.dir, segName(gen))
	if gen < s.man.minGen {
		r.void = append(r.void, path)
		return nil, nil
	}
	f, err := s.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open raft log segment: %w", err)
	}
	hdr := make([]byte, sectorSize)
	if _, err := f.ReadAt(hdr, 0); err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, fmt.Errorf("read raft log segment %s: %w", path, err)
	}
	h, err := decodeSegHeader(hdr)
	switch {
	case errors.Is(err, errZeroHeader):
		// Created, but its header never became durable (a crash during the creation, or a
		// failed creation whose removal did not reach the disk): nothing was written to
		// it, since a segment's header is durable before its first batch is written.
		// If something was, the chain check after it finds the entries missing.
		defer f.Close()
		if !allZero(readZeroFilled(f, sectorSize, sectorSize)) {
			return nil, corruptAt(path, 0, "the segment header is zeros but batches follow it")
		}
		r.void = append(r.void, path)
		return nil, nil
	case err != nil:
		f.Close()
		return nil, corruptAt(path, 0, err.Error())
	case h.gen != gen:
		f.Close()
		return nil, corruptAt(path, 0, fmt.Sprintf("header says generation %d", h.gen))
	case hasCut && cut < h.first:
		f.Close()
		r.void = append(r.void, path)
		return nil, nil
	}
	return &segment{segHeader: h, path: path, f: f, pad: padFor(h.salt), size: sectorSize}, nil
}

// continues tells whether seg, the next segment of an unbroken chain, continues it. What
// lies between seg and a chain it does not follow, below the head, was compacted: the
// chain so far is set aside as such and seg starts it anew. Otherwise the segment before
// seg lost its tail: the chain breaks there, both are searched for evidence, seg becomes
// an orphan, and the result is false.
func (r *recovery) continues(seg *segment) (bool, error) {
	if len(r.chain) > 0 && seg.prev != r.chainLast && seg.prev < r.s.man.head {
		// What lies between is compacted: a compaction removes segments oldest first,
		// and a crash kept some of their removals and not others.
		r.compacted = append(r.compacted, r.chain...)
		r.chain = nil
	}
	if len(r.chain) == 0 {
		r.chainLast = seg.prev
		return true, nil
	}
	if seg.prev == r.chainLast {
		return true, nil
	}
	// The segment before it lost its tail: look there, then here, for evidence.
	prev := r.chain[len(r.chain)-1]
	r.breakAt(prev, fmt.Sprintf("%s follows index %d, but the log before it ends at %d", seg.path, seg.prev, r.chainLast))
	if _, cut := r.s.man.cuts[prev.gen]; !cut { // after a cut lies only what it voided
		if _, err := r.scanOrphans(prev, prev.size); err != nil {
			return false, err
		}
	}
	r.orphans = append(r.orphans, seg)
	_, err := r.scanOrphans(seg, sectorSize)
	return false, err
}

// readChained reads the batches of seg, the chain's newest segment, up to its cut (cut,
// if hasCut). A batch the disk got only part of breaks the chain there; without a cut,
// what follows it in seg is searched for evidence. A cut segment is sealed.
func (r *recovery) readChained(seg *segment, cut uint64, hasCut bool) error {
	torn, err := r.readBatches(seg, cut, hasCut)
	if err != nil {
		return err
	}
	if !seg.empty() {
		r.chainLast = seg.last()
	}
	switch {
	case torn != "" && hasCut:
		r.breakAt(seg, torn)
	case torn != "":
		r.breakAt(seg, torn)
		_, err := r.scanOrphans(seg, seg.size+sectorSize)
		return err
	case hasCut:
		seg.sealed = true
	}
	return nil
}

func (r *recovery) breakAt(seg *segment, why string) {
	r.broken, r.cutAt = why, seg
	seg.sealed = true
}

// readBatches reads a segment's batches into seg (offsets, sizes, size). It stops at
// the end (an all-zero sector), at the cut, or at a batch the disk got only part of:
// then torn says which. Damage no crash explains is an error.
func (r *recovery) readBatches(seg *segment, cut uint64, hasCut bool) (torn string, err error) {
	st, err := seg.f.Stat()
	if err != nil {
		return "", fmt.Errorf("stat raft log segment %s: %w", seg.path, err)
	}
	size := st.Size()
	expect := seg.first
	off := int64(sectorSize)
	var l raft.Log
	for off < size && !(hasCut && expect > cut) {
		hdr := readZeroFilled(seg.f, off, sectorSize)
		if allZero(hdr) {
			break
		}
		h, ok := parseBatchHeader(hdr)
		if !ok {
			return "", corruptAt(seg.path, off, "damaged batch header (a crash leaves a sector whole or untouched)")
		}
		if h.first != expect || h.count == 0 || int64(h.bodyLen) > maxRecord+int64(h.count)*recordHeader {
			return "", corruptAt(seg.path, off, fmt.Sprintf("batch of %d entries from index %d (%d bytes) where index %d was expected",
				h.count, h.first, h.bodyLen, expect))
		}
		span := batchSpan(int64(h.bodyLen))
		body := readZeroFilled(seg.f, off+batchHeaderSize, int(h.bodyLen))
		if crcChecksum(body) != h.bodyCRC {
			if zeroSectorIn(seg.f, off+sectorSize, off+span, size) {
				seg.size = off
				return fmt.Sprintf("%s at offset %d: the batch of entries %d-%d is incomplete", seg.path, off, h.first, h.first+uint64(h.count)-1), nil
			}
			return "", corruptAt(seg.path, off, fmt.Sprintf("checksum mismatch in the batch of entries %d-%d", h.first, h.first+uint64(h.count)-1))
		}
		scramble(body, off+batchHeaderSize, seg.pad)
		p := 0
		for k := range int(h.count) {
			if p+recordHeader > len(body) {
				return "", corruptAt(seg.path, off, "records run past their batch")
			}
			n := int(binary.LittleEndian.Uint32(body[p:]))
			end := p + recordHeader + n
			if n > maxRecord || end > len(body) {
				return "", corruptAt(seg.path, off, "records run past their batch")
			}
			if err := readRecord(body[p:end], &l); err != nil || l.Index != expect {
				return "", corruptAt(seg.path, off+batchHeaderSize+int64(p), fmt.Sprintf("record %d of the batch: index %d, want %d (%v)", k, l.Index, expect, err))
			}
			if !hasCut || expect <= cut {
				seg.offsets = append(seg.offsets, off+batchHeaderSize+int64(p))
				seg.sizes = append(seg.sizes, uint32(end-p))
			}
			expect++
			p = end
		}
		if p != len(body) {
			return "", corruptAt(seg.path, off, "bytes after the last record of the batch")
		}
		off += span
	}
	seg.size = off
	return "", nil
}

// scanOrphans looks through seg from off on for intact batches written after the break
// (raising the evidence) and for anything else left there (then seg, if it is in the
// chain, is never appended to again).
func (r *recovery) scanOrphans(seg *segment, off int64) (found bool, err error) {
	st, err := seg.f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat raft log segment %s: %w", seg.path, err)
	}
	size := st.Size()
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	for base := off; base < size; base += chunk {
		n := min(int64(chunk), size-base)
		b := readZeroFilledInto(seg.f, base, buf[:n])
		for i := int64(0); i+sectorSize <= n; i += sectorSize {
			sec := b[i : i+sectorSize]
			if allZero(sec) {
				continue
			}
			seg.sealed = true // debris of a write that never completed, at least
			h, ok := parseBatchHeader(sec)
			if !ok {
				continue
			}
			at := base + i
			body := readZeroFilled(seg.f, at+batchHeaderSize, int(min(int64(h.bodyLen), size)))
			if crcChecksum(body) != h.bodyCRC {
				continue
			}
			found = true
			if h.durable > r.evidence {
				r.evidence, r.seenAt = h.durable, fmt.Sprintf("%s at offset %d", seg.path, at)
			}
		}
	}
	return found, nil
}

// finish decides between crash damage and corruption, records the cut, removes what is
// void, and makes the surviving log durable before it is reported so.
func (r *recovery) finish() error {
	if err := r.checkTail(); err != nil {
		return err
	}
	if err := r.judgeBreak(); err != nil {
		return err
	}
	if err := r.recordCuts(); err != nil {
		return err
	}
	if err := r.removeLeftovers(); err != nil {
		return err
	}
	s := r.s
	s.dropStaleSegments()
	return s.syncRecovered()
}

// checkTail looks past the end of an unbroken chain's newest segment (unless it is cut)
// for what writes that never completed left: intact batches there break the chain at
// its end.
func (r *recovery) checkTail() error {
	n := len(r.chain)
	if r.broken != "" || n == 0 {
		return nil
	}
	// The end of the newest segment: zeros, or what writes that never completed left.
	tail := r.chain[n-1]
	if _, cut := r.s.man.cuts[tail.gen]; cut {
		return nil
	}
	found, err := r.scanOrphans(tail, tail.size)
	if err != nil {
		return err
	}
	if found {
		r.breakAt(tail, fmt.Sprintf("%s: intact batches after offset %d, written after one that was lost", tail.path, tail.size))
	}
	return nil
}

// judgeBreak decides what a broken chain is: corruption (ErrCorrupt) if an intact batch
// after the break says that entries past the chain's end were durable, else the damage
// of a crash, which is logged and cut off.
func (r *recovery) judgeBreak() error {
	if r.broken == "" {
		return nil
	}
	if r.evidence > r.chainLast {
		return fmt.Errorf("%w: %s; but the batch %s says every index up to %d was durable: entries %d-%d were reported durable and are lost",
			ErrCorrupt, r.broken, r.seenAt, r.evidence, r.chainLast+1, r.evidence)
	}
	r.s.log.Warn("raft log: cutting off what a crash left incomplete (none of it was ever reported durable)",
		"where", r.broken, "last_index", r.chainLast, "orphaned_segments", len(r.orphans))
	return nil
}

// recordCuts makes the chain the store's log and writes the manifest, if it changes: a
// cut where the chain broke, one for each sealed segment without one, and orphans void.
func (r *recovery) recordCuts() error {
	s := r.s
	s.segs = r.chain
	m := s.copyManifest()
	changed := false
	if r.broken != "" {
		m.cuts[r.cutAt.gen] = r.chainLast
		changed = true
	}
	for _, seg := range r.chain {
		if seg.sealed {
			if _, ok := m.cuts[seg.gen]; !ok {
				m.cuts[seg.gen] = seg.lastOr(seg.first - 1)
				changed = true
			}
		}
	}
	for _, seg := range r.orphans {
		m.cuts[seg.gen] = 0 // void; removed below
		changed = true
	}
	if changed {
		// Only the chain's generations are kept; orphans' cuts must reach the disk too.
		for _, seg := range r.orphans {
			s.segs = append(s.segs, seg)
		}
		if err := s.setManifest(m); err != nil {
			return err
		}
		s.segs = r.chain
	}
	return nil
}

// removeLeftovers closes and removes the orphaned and the compacted segments, then
// removes the void files (the caller syncs the directory).
func (r *recovery) removeLeftovers() error {
	s := r.s
	for _, seg := range r.orphans {
		seg.close()
		if err := s.fs.Remove(seg.path); err != nil {
			return fmt.Errorf("remove orphaned raft log segment %s: %w", seg.path, err)
		}
	}
	for _, seg := range r.compacted {
		seg.close()
		if err := s.fs.Remove(seg.path); err != nil {
			return fmt.Errorf("remove compacted raft log segment %s: %w", seg.path, err)
		}
	}
	for _, path := range r.void {
		if err := s.fs.Remove(path); err != nil {
			return fmt.Errorf("remove void raft log segment %s: %w", path, err)
		}
	}
	return nil
}

// dropStaleSegments removes the segments wholly before the head, and the empty ones that
// are not the tail (the caller syncs the directory).
func (s *Store) dropStaleSegments() {
	for i := 0; i < len(s.segs); {
		seg := s.segs[i]
		if !seg.empty() && seg.last() < s.man.head || seg.empty() && i < len(s.segs)-1 {
			s.removeSegment(i)
			continue
		}
		i++
	}
}

// syncRecovered makes the recovered log durable, its segments and then the directory,
// and only then sets the durable watermark to its end.
func (s *Store) syncRecovered() error {
	// What this scan read may still be only in the page cache (a process that crashed
	// while its machine ran on): make it durable before it counts as such.
	for _, seg := range s.segs {
		if err := seg.f.Datasync(); err != nil {
			return fmt.Errorf("sync raft log segment %s: %w", seg.path, err)
		}
	}
	if err := s.syncDir(); err != nil {
		return err
	}
	s.durable = s.lastIndex()
	return nil
}

// readZeroFilled reads n bytes at off; what lies past the end of the file reads as zeros.
func readZeroFilled(f interface {
	ReadAt([]byte, int64) (int, error)
}, off int64, n int) []byte {
	return readZeroFilledInto(f, off, make([]byte, n))
}

func readZeroFilledInto(f interface {
	ReadAt([]byte, int64) (int, error)
}, off int64, b []byte) []byte {
	got, _ := f.ReadAt(b, off)
	clear(b[got:])
	return b
}

// zeroSectorIn reports whether a sector in [from, to) is all zeros (or past size).
func zeroSectorIn(f interface {
	ReadAt([]byte, int64) (int, error)
}, from, to, size int64) bool {
	buf := make([]byte, sectorSize)
	for off := from; off < to; off += sectorSize {
		if off >= size {
			return true
		}
		if allZero(readZeroFilledInto(f, off, buf)) {
			return true
		}
	}
	return false
}

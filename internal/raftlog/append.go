package raftlog

// Appending: a batch of entries encoded, written to the tail segment in one write,
// and made durable (at once, or by the syncer for StoreLogsAsync).

import (
	"errors"
	"fmt"
	"time"

	"github.com/ftvs/ftvs/third_party/raft"
)

// storeLogs writes logs; with durable nil it syncs before it returns, else it queues the
// sync for the syncer.
func (s *Store) storeLogs(logs []*raft.Log, durable func()) error {
	if len(logs) == 0 {
		if durable != nil {
			durable()
		}
		return nil
	}
	if err := checkConsecutive(logs); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := logs[0].Index
	if err := s.checkAppend(first); err != nil {
		return err
	}
	b, err := s.encodeBatch(logs)
	if err != nil {
		return err
	}
	seg, err := s.segmentFor(first, len(b.buf))
	if err != nil {
		return err
	}
	off := seg.size
	b.seal(seg, off, first, uint32(len(logs)), s.durable)
	if cap(b.buf) <= 4<<20 {
		s.writeBuf = b.buf
	}
	if _, err := seg.f.WriteAt(b.buf, off); err != nil {
		return s.undoWrite(seg, off, len(b.buf), fmt.Errorf("append to raft log %s: %w", seg.path, err))
	}
	if durable == nil {
		if err := s.syncThrough(seg); err != nil {
			return err
		}
	}
	b.index(seg, off)
	if durable == nil {
		s.durable = logs[len(logs)-1].Index
		return nil
	}
	seg.unsynced++
	s.syncq <- pendingSync{seg: seg, last: logs[len(logs)-1].Index, truncs: s.truncs, durable: durable}
	return nil
}

// checkConsecutive checks that the indexes of logs follow one another.
func checkConsecutive(logs []*raft.Log) error {
	for i := 1; i < len(logs); i++ {
		if logs[i].Index != logs[i-1].Index+1 {
			return fmt.Errorf("store raft logs: indexes %d and %d are not consecutive", logs[i-1].Index, logs[i].Index)
		}
	}
	return nil
}

// checkAppend checks that the store takes writes (open, not failed) and that a batch
// starting at first can be appended: after the last index, and not below the first live
// one. s.mu is held.
func (s *Store) checkAppend(first uint64) error {
	if s.closed {
		return errors.New("store raft logs: the log is closed")
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("store raft logs: %w", err)
	}
	last := s.lastIndex()
	if first == 0 {
		return errors.New("store raft logs: index 0 is not a valid log index")
	}
	if last != 0 && first <= last {
		return fmt.Errorf("store raft logs: index %d is not after the last stored index %d (delete the suffix first)", first, last)
	}
	if first < s.man.head {
		return fmt.Errorf("store raft logs: index %d is below the first live index %d", first, s.man.head)
	}
	return nil
}

// encodedBatch is a batch being appended: its bytes (header, records, padding to a
// sector), where each record starts in them, and the length of the body (the records).
type encodedBatch struct {
	buf     []byte
	starts  []int
	bodyLen int
}

// encodeBatch lays out logs as a batch in s.writeBuf's memory: room for the header, the
// records, and the padding. The header is left zero and nothing is scrambled yet (seal).
// An entry over maxRecord is refused. s.mu is held.
func (s *Store) encodeBatch(logs []*raft.Log) (encodedBatch, error) {
	buf := append(s.writeBuf[:0], make([]byte, batchHeaderSize)...)
	starts := make([]int, len(logs))
	for i, l := range logs {
		starts[i] = len(buf)
		buf = appendRecord(buf, l)
		if len(buf)-starts[i]-recordHeader > maxRecord {
			return encodedBatch{}, fmt.Errorf("store raft logs: entry %d is %d bytes, more than %d", l.Index, len(buf)-starts[i], maxRecord)
		}
	}
	bodyLen := len(buf) - batchHeaderSize
	buf = append(buf, make([]byte, batchSpan(int64(bodyLen))-int64(len(buf)))...)
	return encodedBatch{buf: buf, starts: starts, bodyLen: bodyLen}, nil
}

// segmentFor is the segment a batch of n bytes starting at index first goes to: the tail,
// unless it is sealed, does not end right before first, or is too full (a segment always
// takes its first batch); else a new segment. s.mu is held.
func (s *Store) segmentFor(first uint64, n int) (*segment, error) {
	seg := s.tail()
	if seg == nil || seg.sealed || (!seg.empty() && first != seg.last()+1) || (seg.empty() && seg.first != first) ||
		(seg.size+int64(n) > s.segBytes && seg.size > sectorSize) {
		return s.newSegment(first)
	}
	return seg, nil
}

// seal readies b to be written at offset off of seg: everything after the header
// scrambled with seg's pad, then the header, with the checksum of the scrambled body, the
// batch's count entries from first, and the durable watermark.
func (b encodedBatch) seal(seg *segment, off int64, first uint64, count uint32, durable uint64) {
	scramble(b.buf[batchHeaderSize:], off+batchHeaderSize, seg.pad)
	body := b.buf[batchHeaderSize : batchHeaderSize+b.bodyLen]
	batchHeader{first: first, count: count, bodyLen: uint32(b.bodyLen), durable: durable,
		bodyCRC: crcChecksum(body)}.put(b.buf)
}

// syncThrough makes the whole log durable up to the end of seg, as a follower's answer
// says it is: first the other segments with asynchronous batches (written as leader) not
// yet synced, then seg. A failed sync fails the store. s.mu is held.
func (s *Store) syncThrough(seg *segment) error {
	for _, sg := range s.segs {
		if sg != seg && sg.unsynced > 0 {
			if err := sg.sync(); err != nil {
				err = fmt.Errorf("sync raft log %s: %w", sg.path, err)
				s.fail(err)
				return err
			}
		}
	}
	start := time.Now()
	if err := seg.f.Datasync(); err != nil {
		err = fmt.Errorf("sync raft log %s: %w", seg.path, err)
		s.fail(err)
		return err
	}
	if s.onSync != nil {
		s.onSync(time.Since(start))
	}
	return nil
}

// index records in seg where each of b's records, written at offset off, lies, and moves
// seg's end past b. s.mu is held.
func (b encodedBatch) index(seg *segment, off int64) {
	for i := range b.starts {
		seg.offsets = append(seg.offsets, off+int64(b.starts[i]))
		end := batchHeaderSize + b.bodyLen
		if i+1 < len(b.starts) {
			end = b.starts[i+1]
		}
		seg.sizes = append(seg.sizes, uint32(end-b.starts[i]))
	}
	seg.size = off + int64(len(b.buf))
}

// undoWrite clears what a failed write may have left after the segment's end, so that
// the next batch is not followed by debris. If that fails too, the store fails.
func (s *Store) undoWrite(seg *segment, off int64, n int, err error) error {
	if _, zerr := seg.f.WriteAt(make([]byte, n), off); zerr != nil {
		s.fail(errors.Join(err, fmt.Errorf("clear the failed write: %w", zerr)))
		return err
	}
	if serr := seg.f.Datasync(); serr != nil {
		s.fail(errors.Join(err, fmt.Errorf("sync raft log %s: %w", seg.path, serr)))
	}
	return err
}

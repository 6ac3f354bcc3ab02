package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/internal/raftlog"
	"github.com/ftvs/ftvs/third_party/raft"
)

// A disk that fails is fail-stop, and a full disk is survivable.
//
// When the raft log, the stable store or a snapshot cannot be written (the disk is
// full, a write or an fsync fails), the member stops: it refuses clients at once (507
// Insufficient Storage when the disk is full, 503 otherwise, with the reason), hands
// leadership to another member, and takes no part in elections (noVote). raft itself
// acknowledges nothing it could not make durable. A probe then retries every second;
// once the disk takes writes again, a raft log that failed is reopened (its recovery
// checks what reached the disk) and the member serves again, without a restart.

// storageFault is a failing disk under this member.
type storageFault struct {
	Full   bool // no space left; else an I/O error
	Reason string
	Since  time.Time
}

// storageFailed records a failure of this member's storage (the first one counts).
func (m *Member) storageFailed(err error) {
	f := &storageFault{Full: errors.Is(err, syscall.ENOSPC), Reason: err.Error(), Since: time.Now()}
	if !m.fault.CompareAndSwap(nil, f) {
		return
	}
	if f.Full {
		m.log.Error("the disk under this member is full: it stops serving and hands leadership away until space returns",
			"event", "storage.full", "err", err)
	} else {
		m.log.Error("this member's storage fails: it stops serving and hands leadership away until the disk works again",
			"event", "storage.failed", "err", err)
	}
	m.goBackground(m.handLeadershipAway)
	m.goBackground(func() { m.recoverStorage(f, m.stop) })
}

// handLeadershipAway transfers leadership to another member if this one leads. raft
// may have stepped down already (a leader whose log store fails does): then, if it led
// until now, the other CoServer is told to stand at once (TimeoutNow, as a transfer
// does), rather than wait for its heartbeat timeout.
func (m *Member) handLeadershipAway() {
	r := m.r()
	if r == nil {
		return
	}
	if r.State() == raft.Leader {
		if err := r.LeadershipTransfer().Error(); err == nil {
			return
		} else {
			m.log.Warn("handing leadership away from a member with failing storage failed", "err", err)
		}
	}
	if _, leader := r.LeaderWithID(); leader != "" && string(leader) != m.cfg.Name || m.cfg.Simplex {
		return // another member leads
	}
	other := m.otherCoServer()
	if other.Name == "" || other.Name == m.cfg.Name {
		return
	}
	req := &raft.TimeoutNowRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: m.rc.ProtocolVersion,
		ID: []byte(m.cfg.Name), Addr: []byte(m.cfg.Name)}}
	if err := m.trans.TimeoutNow(raft.ServerID(other.Name), raft.ServerAddress(other.Name), req, &raft.TimeoutNowResponse{}); err != nil {
		m.log.Warn("asking the other CoServer to stand for election failed; the election timers will", "to", other.Name, "err", err)
	}
}

// storageProbeBytes is what the probe must be able to allocate: a raft log segment.
const storageProbeBytes = raftlog.SegmentBytes

// recoverStorage probes the disk every second until it takes writes again, then
// clears the fault.
func (m *Member) recoverStorage(f *storageFault, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if err := m.probeStorage(); err != nil {
			continue
		}
		if err := m.reopenFailedLog(); err != nil {
			m.log.Warn("reopening the raft log after a storage failure failed; retrying", "err", err)
			continue
		}
		m.fault.CompareAndSwap(f, nil)
		m.log.Info("this member's storage works again: it serves and takes part in elections again",
			"event", "storage.recovered", "down_for", time.Since(f.Since).Round(time.Millisecond).String())
		return
	}
}

// probeStorage allocates, writes and syncs a file as large as a raft log segment in
// the raft directory, and removes it.
func (m *Member) probeStorage() (err error) {
	path := filepath.Join(m.dir.raftDir(), "probe.tmp")
	f, err := m.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		f.Close()
		if rerr := m.fs.Remove(path); err == nil && rerr != nil {
			err = rerr
		}
	}()
	if err := f.Allocate(storageProbeBytes); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	if _, err := f.WriteAt([]byte("ftvs storage probe\n"), 0); err != nil {
		return err
	}
	return f.Sync()
}

// reopenFailedLog reopens the raft log if it failed (an fsync error: what is on the
// disk is not what it wrote). raft is restarted on it.
func (m *Member) reopenFailedLog() error {
	old := m.wal.log()
	if old.Err() == nil {
		return nil
	}
	m.replicaMu.Lock()
	defer m.replicaMu.Unlock()
	return m.restartRaft(func() error {
		// The failed store writes nothing more; its successor's recovery reads the disk.
		l, err := m.openLog()
		if err != nil {
			return fmt.Errorf("reopen the raft log: %w", err)
		}
		m.wal.logp.Store(l)
		old.Close()
		return nil
	})
}

// openLog opens this member's raft log.
func (m *Member) openLog() (*raftlog.Store, error) {
	return raftlog.Open(m.dir.walDir(), raftlog.Options{FS: m.fs, Logger: m.log.With("component", "raftlog"), OnFail: m.storageFailed, OnSync: m.observeLogSync})
}

// FlipGuestMemory is POST /ftvs/v1/faults/vs?mode=memory: fault injection for tests
// and drills (enabled by config, guarded by the manager token). It flips the byte of
// guest memory at offset (modulo the memory size) outside any entry.
func (m *Member) FlipGuestMemory(offset uint64) (flipped, applied uint64, err error) {
	if m.fsm == nil {
		return 0, 0, fmt.Errorf("%s runs no virtual server", m.cfg.Name)
	}
	flipped, applied, err = m.fsm.injectMemoryFault(offset)
	if err != nil {
		return 0, 0, err
	}
	m.log.Warn("fault injected: a byte of this CoServer's guest memory was flipped", "event", "vs.fault_injected", "mode", "memory", "offset", flipped, "applied", applied)
	return flipped, applied, nil
}

// ShiftNextRequestClock is POST /ftvs/v1/faults/vs?mode=clock: the next request this
// CoServer applies sees its time moved by by.
func (m *Member) ShiftNextRequestClock(by time.Duration) {
	if m.fsm == nil {
		return
	}
	m.fsm.clockFault.Store(int64(by))
	m.log.Warn("fault injected: the next request this CoServer applies sees another time", "event", "vs.fault_injected", "mode", "clock", "by", by.String())
}

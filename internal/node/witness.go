package node

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/third_party/raft"
)

// witnessMagic starts every witness snapshot, so a CoServer can recognise and refuse one.
const witnessMagic = "FTVSWITN"

// witnessFSM is the witness's state machine: it stores nothing but the log position.
// The witness votes and stores the log; it never runs the guest, so it has no state a
// CoServer could use, and its snapshots say exactly that.
type witnessFSM struct {
	log *slog.Logger
}

var _ raft.BatchingFSM = (*witnessFSM)(nil)

func (w *witnessFSM) Apply(*raft.Log) any { return nil }

func (w *witnessFSM) ApplyBatch(logs []*raft.Log) []any { return make([]any, len(logs)) }

func (w *witnessFSM) Snapshot() (raft.FSMSnapshot, error) { return witnessSnapshot{}, nil }

// Restore accepts whatever a CoServer leader sends (its full state) and drops it: the
// witness only needs the log position, which raft keeps itself.
func (w *witnessFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	w.log.Info("witness skipped a snapshot's guest state", "bytes", n)
	return err
}

type witnessSnapshot struct{}

func (witnessSnapshot) Persist(sink raft.SnapshotSink) error {
	var b [len(witnessMagic) + 8]byte
	copy(b[:], witnessMagic)
	binary.BigEndian.PutUint64(b[len(witnessMagic):], uint64(time.Now().UnixNano()))
	if _, err := sink.Write(b[:]); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (witnessSnapshot) Release() {}

// handBackLeadership runs on the witness: whenever it finds itself leader it transfers
// leadership to a CoServer that answers (see bestCoServer). It retries while it stays
// leader, e.g. while no CoServer is reachable.
func (m *Member) handBackLeadership(stop <-chan struct{}) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case isLeader := <-m.r().LeaderCh():
			if !isLeader {
				continue
			}
		case <-tick.C:
		}
		if m.r().State() != raft.Leader {
			continue
		}
		to, ok := m.bestCoServer()
		if !ok {
			m.log.Warn("witness is leader but no CoServer answers; it keeps the log and waits", "event", "witness.waiting")
			continue
		}
		m.log.Info("witness is leader: handing leadership to a CoServer", "event", "witness.transfer", "to", to.Name)
		if err := m.r().LeadershipTransferToServer(raft.ServerID(to.Name), raft.ServerAddress(to.Name)).Error(); err != nil {
			m.log.Warn("leadership transfer from the witness failed; retrying", "to", to.Name, "err", err)
		}
	}
}

// bestCoServer picks the CoServer to hand leadership to: one that answers now, with the
// highest applied index. (raft's own choice, the highest match index, may be a CoServer
// that just died.) Both are asked at once; between equals, the one that answered first
// wins: a CoServer whose machine is starved of CPU answers late, and handing leadership
// to it made it step down again at its next stall (leaders churned on a busy machine).
func (m *Member) bestCoServer() (Peer, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	var peers []Peer
	for _, p := range m.cfg.Peers {
		// A CoServer with no link up cannot be asked nor handed leadership: asking it
		// anyway waited out the whole timeout when the old leader was cut off or stopped.
		if p.Name != m.cfg.Name && m.linkUp(p.Name) {
			peers = append(peers, p)
		}
	}
	answers := make([]coServerAnswer, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			st := m.fetchStatus(ctx, p, cluster.HashNone)
			answers[i] = coServerAnswer{peer: p, st: st, took: time.Since(start)}
		}()
	}
	wg.Wait()
	return pickCoServer(answers)
}

// coServerAnswer is a peer's status as the witness got it, and how long it took.
type coServerAnswer struct {
	peer Peer
	st   cluster.Status
	took time.Duration
}

// pickCoServer is bestCoServer's choice among the answers.
func pickCoServer(answers []coServerAnswer) (Peer, bool) {
	var best *coServerAnswer
	for i := range answers {
		a := &answers[i]
		if a.st.Role == cluster.RoleUnreachable || a.st.Kind != cluster.KindCoServer || a.st.VirtualServer == vserver.StatusFailed || a.st.VirtualServer == vserver.StatusDisabled ||
			a.st.Rejoin != "" || a.st.Storage != "" || a.st.Unconfirmed != "" {
			continue
		}
		if best == nil || a.st.AppliedIndex > best.st.AppliedIndex ||
			a.st.AppliedIndex == best.st.AppliedIndex && a.took < best.took {
			best = a
		}
	}
	if best == nil {
		return Peer{}, false
	}
	return best.peer, true
}

package link

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Impairment slows a link as seen from this member, for drills and tests: every byte
// this member sends on it arrives Delay later, and with probability Loss a write is
// held back a retransmission timeout more, with everything sent after it, as a lost TCP
// segment holds back its stream. Bytes are never dropped or reordered: a lost segment on
// TCP costs time, not data. Impair both ends for a link slow in both directions.
type Impairment struct {
	Delay time.Duration
	Loss  float64
}

// lossRTO is what a lost segment costs: Linux's minimum retransmission timeout.
const lossRTO = 200 * time.Millisecond

// Limits of an impairment.
const maxImpairDelay = 10 * time.Second

func (imp Impairment) check() error {
	if imp.Delay < 0 || imp.Delay > maxImpairDelay {
		return fmt.Errorf("delay %v: want 0 to %v", imp.Delay, maxImpairDelay)
	}
	if !(imp.Loss >= 0 && imp.Loss <= 1) {
		return fmt.Errorf("loss %v: want a fraction from 0 to 1", imp.Loss)
	}
	return nil
}

// Impair sets (peer, link)'s impairment; the zero Impairment removes it. It applies to
// connections already open as well.
func (l *Layer) Impair(peer, link string, imp Impairment) error {
	if err := imp.check(); err != nil {
		return fmt.Errorf("impair: %w", err)
	}
	p, err := l.path(peer, link)
	if err != nil {
		return fmt.Errorf("impair: %w", err)
	}
	if imp == (Impairment{}) {
		if p.impair.Swap(nil) != nil {
			l.log.Info("link impairment removed (fault injection)", "peer", peer, "link", link)
		}
		return nil
	}
	p.impair.Store(&imp)
	l.log.Info("link impaired (fault injection)", "peer", peer, "link", link, "delay", imp.Delay.String(), "loss", imp.Loss)
	return nil
}

// delayQueue holds a connection's writes until they are due, once its path was impaired:
// a goroutine (pump) writes them in order. Write returns as soon as its bytes are queued,
// as a kernel's send buffer would; a write error is returned by the writes after it.
type delayQueue struct {
	mu    sync.Mutex
	items []delayed
	last  time.Time // when the last queued write is due: none overtakes it
	err   error
	wake  chan struct{}
}

type delayed struct {
	due  time.Time
	data []byte
}

// enqueue queues b to be written after imp (nil: as soon as the writes before it).
func (q *delayQueue) enqueue(b []byte, imp *Impairment) (int, error) {
	due := time.Now()
	if imp != nil {
		due = due.Add(imp.Delay)
		if imp.Loss > 0 && rand.Float64() < imp.Loss {
			due = due.Add(lossRTO)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return 0, q.err
	}
	if due.Before(q.last) {
		due = q.last
	}
	q.last = due
	q.items = append(q.items, delayed{due: due, data: append([]byte(nil), b...)})
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

// pump writes c's queued writes when they are due, until c closes.
func (c *rawConn) pump(q *delayQueue) {
	for {
		q.mu.Lock()
		var next *delayed
		if len(q.items) > 0 {
			next = &q.items[0]
		}
		q.mu.Unlock()
		if next == nil {
			select {
			case <-q.wake:
				continue
			case <-c.done:
				return
			}
		}
		if d := time.Until(next.due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-c.done:
				t.Stop()
				return
			}
		}
		_, err := c.writeNow(next.data)
		q.mu.Lock()
		q.items = q.items[1:]
		if err != nil {
			q.err, q.items = err, nil
		}
		q.mu.Unlock()
		if err != nil {
			return
		}
	}
}

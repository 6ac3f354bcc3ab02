package link

import (
	"context"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

const protoEcho byte = 42

// failover keeps one connection busy with round trips, cuts its link at a random moment
// and returns the time from the cut to the first successful round trip over the other link.
func failover(t testing.TB, from, to *member) time.Duration {
	t.Helper()
	conn := dial(t, from.layer, to.name, protoEcho)
	link := conn.(*Conn).Link()
	msg := []byte("ping")
	for range 10 {
		if err := roundTrip(conn, msg, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	cutAt := make(chan time.Time, 1)
	go func() {
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond) // any phase of the probes
		now := time.Now()
		from.layer.Cut(to.name, link)
		cutAt <- now
	}()
	var cut time.Time
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if err := roundTrip(conn, msg, time.Second); err != nil {
			conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			c, err := from.layer.DialContext(ctx, to.name, protoEcho)
			cancel()
			if err != nil {
				continue
			}
			conn = c
			continue
		}
		if cut.IsZero() {
			select {
			case cut = <-cutAt:
			default:
				continue
			}
		}
		if conn.(*Conn).Link() != link {
			took := time.Since(cut)
			conn.Close()
			from.layer.Restore(to.name, link)
			waitUp(t, from.layer, 2*time.Second)
			waitUp(t, to.layer, 2*time.Second)
			return took
		}
	}
	t.Fatal("no failover within 2s")
	return 0
}

// TestFailoverTime measures failovers (the figure is BenchmarkFailover's). It fails only
// when a failover takes seconds, i.e. waits for a TCP timeout instead of the probes.
func TestFailoverTime(t *testing.T) {
	ms, _ := newCluster(t, clusterOpts{product: true}, "coserver1", "coserver2")
	echo(t, ms["coserver2"].layer.Listener(protoEcho))
	var took []time.Duration
	for range 8 {
		took = append(took, failover(t, ms["coserver1"], ms["coserver2"]))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("failover (cut -> first round trip on the other link), sorted: %v", took)
	if worst := took[len(took)-1]; worst > 2*time.Second {
		t.Errorf("slowest failover %s: the other link was not used when this one went down", worst)
	}
}

// BenchmarkFailover reports the time from a cut of the active link to the first successful
// round trip over the other link (ms/failover), with and without TLS.
func BenchmarkFailover(b *testing.B) {
	for _, secure := range []bool{false, true} {
		name := "plain"
		if secure {
			name = "tls"
		}
		b.Run(name, func(b *testing.B) {
			ms, _ := newCluster(b, clusterOpts{tls: secure, product: true}, "coserver1", "coserver2")
			echo(b, ms["coserver2"].layer.Listener(protoEcho))
			var total, worst time.Duration
			for b.Loop() {
				d := failover(b, ms["coserver1"], ms["coserver2"])
				total += d
				worst = max(worst, d)
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/failover")
			b.ReportMetric(float64(worst.Microseconds())/1000, "ms-worst")
		})
	}
}

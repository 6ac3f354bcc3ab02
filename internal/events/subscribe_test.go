package events

import (
	"testing"
	"time"
)

func recv(t *testing.T, ch <-chan Event) (Event, bool) {
	t.Helper()
	select {
	case e, ok := <-ch:
		return e, ok
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return Event{}, false
	}
}

func TestSubscribe(t *testing.T) {
	l := open(t, t.TempDir(), Options{})
	mustAppend(t, l, Event{Code: "before.subscribe"})
	ch, cancel := l.Subscribe()
	go func() {
		l.Append(Event{Code: "a.b"})
		l.Append(Event{Code: "c.d"})
	}()
	for i, want := range []string{"a.b", "c.d"} {
		e, ok := recv(t, ch)
		if !ok || e.Code != want || e.Seq != uint64(i+2) || e.Member != "coserver1" {
			t.Fatalf("event %d = %+v, %v; want %s", i, e, ok, want)
		}
	}
	cancel()
	cancel() // idempotent
	if _, ok := recv(t, ch); ok {
		t.Error("channel open after cancel")
	}
	mustAppend(t, l, Event{Code: "after.cancel"}) // no panic on a closed channel

	ch2, _ := l.Subscribe()
	l.Close()
	if _, ok := recv(t, ch2); ok {
		t.Error("channel open after Close")
	}
	ch3, cancel3 := l.Subscribe()
	if _, ok := recv(t, ch3); ok {
		t.Error("Subscribe on a closed log returned an open channel")
	}
	cancel3()
}

// TestSlowSubscriber: a subscriber that does not read does not block Append; it is cut
// off after SubscriberBuffer events and can resume from the log without loss. A
// subscriber that keeps up is not cut off: the appender waits for it to take each event
// before the next (otherwise "keeps up" would depend on the scheduler: on a busy
// machine a reading goroutine can wait hundreds of milliseconds for a CPU while the
// appender fills its buffer).
func TestSlowSubscriber(t *testing.T) {
	l := open(t, t.TempDir(), Options{})
	slow, cancelSlow := l.Subscribe()
	defer cancelSlow()
	fast, cancelFast := l.Subscribe()
	defer cancelFast()
	const n = SubscriberBuffer + 10
	took := make(chan uint64) // the fast subscriber took the event with this seq
	go func() {
		defer close(took)
		for e := range fast {
			took <- e.Seq
		}
	}()
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		for i := range n {
			e, err := l.Append(Event{Code: "a.b"})
			if err != nil {
				t.Error(err)
				return
			}
			seq, ok := <-took
			if !ok {
				t.Errorf("fast subscriber cut off after %d events, want %d", i, n)
				return
			}
			if seq != e.Seq {
				t.Errorf("fast subscriber took seq %d, want %d", seq, e.Seq)
				return
			}
		}
	}()
	select {
	case <-appended:
	case <-time.After(60 * time.Second):
		t.Fatal("Append blocked by a slow subscriber")
	}
	if t.Failed() {
		return
	}
	var last uint64
	count := 0
	for e := range slow { // buffered events, then closed
		last = e.Seq
		count++
	}
	if count != SubscriberBuffer {
		t.Errorf("slow subscriber got %d events before being cut off, want %d", count, SubscriberBuffer)
	}
	rest, err := l.Query(Query{AfterSeq: last})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != n-count || rest[0].Seq != last+1 {
		t.Errorf("resume from seq %d: %d events", last, len(rest))
	}
}

func TestMaxSubscribers(t *testing.T) {
	l := open(t, t.TempDir(), Options{})
	var cancels []func()
	for range MaxSubscribers {
		_, c := l.Subscribe()
		cancels = append(cancels, c)
	}
	ch, _ := l.Subscribe()
	if _, ok := recv(t, ch); ok {
		t.Error("subscription beyond MaxSubscribers is open")
	}
	cancels[0]()
	ch, c := l.Subscribe()
	defer c()
	mustAppend(t, l, Event{Code: "a.b"})
	if e, ok := recv(t, ch); !ok || e.Code != "a.b" {
		t.Errorf("after a cancel: %+v, %v", e, ok)
	}
}

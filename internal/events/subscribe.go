package events

// Subscription bounds.
const (
	// SubscriberBuffer is how many events a subscriber may fall behind before it is cut off.
	SubscriberBuffer = 256
	// MaxSubscribers is how many subscriptions a Log holds at once.
	MaxSubscribers = 64
)

type subscriber struct{ ch chan Event }

// Subscribe returns a channel that receives every event appended from now on, and a
// function that ends the subscription (idempotent; it closes the channel).
//
// Append never waits for a subscriber: one that falls more than SubscriberBuffer events
// behind is cut off — its channel is closed — rather than silently losing events in the
// middle of the stream. The channel is also closed by Log.Close, and is returned already
// closed when the Log is closed or holds MaxSubscribers subscriptions. A follower that
// sees the channel closed resumes without loss by subscribing again and then querying
// with AfterSeq set to the last Seq it saw, skipping duplicates from the channel.
//
// Events are shared between subscribers: their Details must not be modified.
func (l *Log) Subscribe() (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, SubscriberBuffer)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(l.subs) >= MaxSubscribers {
		close(s.ch)
		return s.ch, func() {}
	}
	l.subs[s] = struct{}{}
	return s.ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.subs[s]; ok {
			delete(l.subs, s)
			close(s.ch)
		}
	}
}

// publishLocked hands e to every subscriber without waiting, cutting off the full ones.
func (l *Log) publishLocked(e Event) {
	for s := range l.subs {
		select {
		case s.ch <- e:
		default:
			delete(l.subs, s)
			close(s.ch)
		}
	}
}

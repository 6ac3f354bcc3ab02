package link

import (
	"fmt"
)

// Cut makes (peer, link) a black hole in both directions as seen from this member, as if
// its cable were pulled: bytes on existing connections are held (reads see nothing, writes
// block), new dials on it hang until their timeout, and accepted connections from peer on it
// get no answer. The peer's probes go unanswered, so both ends see the link go down.
// For tests and an operator-guarded fault-injection endpoint.
func (l *Layer) Cut(peer, link string) error {
	p, err := l.path(peer, link)
	if err != nil {
		return fmt.Errorf("cut: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.gate.Load() != nil {
		return nil
	}
	p.gate.Store(&gate{open: make(chan struct{})})
	for c := range p.conns {
		c.interrupt()
	}
	l.log.Info("link cut (fault injection)", "event", "link.cut", "peer", peer, "link", link)
	return nil
}

// Restore ends a Cut: held bytes flow again on connections that are still open.
func (l *Layer) Restore(peer, link string) error {
	p, err := l.path(peer, link)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	l.mu.Lock()
	g := p.gate.Swap(nil)
	l.mu.Unlock()
	if g != nil {
		close(g.open)
		l.log.Info("link restored (fault injection)", "event", "link.uncut", "peer", peer, "link", link)
	}
	return nil
}

// CutAll cuts both links to peer.
func (l *Layer) CutAll(peer string) error {
	for _, link := range []string{LinkA, LinkB} {
		if err := l.Cut(peer, link); err != nil {
			return err
		}
	}
	return nil
}

// ImpairAll sets the impairment of both links to peer (the zero one removes it).
func (l *Layer) ImpairAll(peer string, imp Impairment) error {
	for _, link := range []string{LinkA, LinkB} {
		if err := l.Impair(peer, link, imp); err != nil {
			return err
		}
	}
	return nil
}

// RestoreAll restores both links to peer.
func (l *Layer) RestoreAll(peer string) error {
	for _, link := range []string{LinkA, LinkB} {
		if err := l.Restore(peer, link); err != nil {
			return err
		}
	}
	return nil
}

package vm

import (
	"bytes"
	"io"
	"log/slog"
)

// Bounds on what a guest can put into the host log per entry.
const (
	maxLineBytes     = 4096
	maxLinesPerEntry = 64
)

// guestOutput turns the guest's stdout and stderr into log records tagged with the
// entry index. It is bounded: long lines are cut and chatty entries are muted.
type guestOutput struct {
	log    *slog.Logger
	charge func(bytes int) // bills the guest's fuel for what it writes (Instance.chargeBytes)
	module string
	index  uint64
	lines  int
	last   string // last stderr line of the current entry
}

func newGuestOutput(log *slog.Logger, module string) *guestOutput {
	return &guestOutput{log: log, module: module}
}

func (g *guestOutput) begin(index uint64) {
	g.index, g.lines, g.last = index, 0, ""
}

func (g *guestOutput) lastStderr() string { return g.last }

func (g *guestOutput) stream(name string) io.Writer { return &lineWriter{g: g, name: name} }

type lineWriter struct {
	g    *guestOutput
	name string
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.g.charge != nil {
		w.g.charge(n)
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLineBytes - len(w.buf)
			w.buf = append(w.buf, p[:min(room, len(p))]...)
			break
		}
		room := maxLineBytes - len(w.buf)
		w.buf = append(w.buf, p[:min(room, i)]...)
		w.emit()
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) emit() {
	line := string(w.buf)
	w.buf = w.buf[:0]
	g := w.g
	if w.name == "stderr" {
		g.last = line
	}
	g.lines++
	switch {
	case g.lines < maxLinesPerEntry:
		g.log.Info("guest output", "stream", w.name, "module", g.module, "index", g.index, "line", line)
	case g.lines == maxLinesPerEntry:
		g.log.Warn("guest output muted for the rest of this entry", "module", g.module, "index", g.index, "limit", maxLinesPerEntry)
	}
}

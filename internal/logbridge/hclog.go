// Package logbridge sends hashicorp/go-hclog records (raft's logger) to log/slog.
package logbridge

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// New returns an hclog.Logger that writes to l. Raft's Info is ftvs's Info; raft's
// Debug and Trace become slog Debug.
func New(l *slog.Logger, name string) hclog.Logger {
	return &bridge{l: l.With("component", name), name: name, level: hclog.Info}
}

type bridge struct {
	l       *slog.Logger
	name    string
	implied []any
	level   hclog.Level
}

func toSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (b *bridge) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || level < b.level {
		return
	}
	b.l.Log(context.Background(), toSlog(level), msg, args...)
}

func (b *bridge) Trace(msg string, args ...any) { b.Log(hclog.Trace, msg, args...) }
func (b *bridge) Debug(msg string, args ...any) { b.Log(hclog.Debug, msg, args...) }
func (b *bridge) Info(msg string, args ...any)  { b.Log(hclog.Info, msg, args...) }
func (b *bridge) Warn(msg string, args ...any)  { b.Log(hclog.Warn, msg, args...) }
func (b *bridge) Error(msg string, args ...any) { b.Log(hclog.Error, msg, args...) }
func (b *bridge) IsTrace() bool                 { return b.level <= hclog.Trace }
func (b *bridge) IsDebug() bool                 { return b.level <= hclog.Debug }
func (b *bridge) IsInfo() bool                  { return b.level <= hclog.Info }
func (b *bridge) IsWarn() bool                  { return b.level <= hclog.Warn }
func (b *bridge) IsError() bool                 { return b.level <= hclog.Error }
func (b *bridge) ImpliedArgs() []any            { return b.implied }
func (b *bridge) Name() string                  { return b.name }
func (b *bridge) SetLevel(level hclog.Level)    { b.level = level }
func (b *bridge) GetLevel() hclog.Level         { return b.level }

func (b *bridge) With(args ...any) hclog.Logger {
	c := *b
	c.l = b.l.With(args...)
	c.implied = append(append([]any{}, b.implied...), args...)
	return &c
}

func (b *bridge) Named(name string) hclog.Logger {
	if b.name != "" {
		name = b.name + "." + name
	}
	return b.ResetNamed(name)
}

func (b *bridge) ResetNamed(name string) hclog.Logger {
	c := *b
	c.name = name
	return &c
}

func (b *bridge) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(b.StandardWriter(opts), "", 0)
}

func (b *bridge) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		b.Info(string(trimNewline(p)))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

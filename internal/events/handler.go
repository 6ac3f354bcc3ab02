package events

import (
	"context"
	"log/slog"
	"time"
)

// Handler returns a slog.Handler that passes every record to next and records those that
// carry an "event" attribute — in the record or added with WithAttrs, also under a
// WithGroup, but not inside a slog.Group attribute — as events in l:
//
//   - Code is the attribute's value, Message the record's message, Time its time;
//   - Severity comes from the catalogue for a known code, else from the level (error
//     from Error up, warning from Warn up, info below);
//   - Details are all other attributes as strings, groups flattened to "group.key",
//     times in RFC 3339, except the logger's identity: "member" and "component" added
//     with WithAttrs outside any group, and a record's "member" equal to l's member.
//     With a detail set both ways, the record's wins.
//
// Records at Info and above are recorded even when next is disabled for their level;
// next only sees the records it is enabled for. Logging never fails or waits on the
// disk beyond one write to the operating system (a few renames when rotating): an event that cannot be
// appended is counted (Log.Dropped) and the record still goes to next.
func (l *Log) Handler(next slog.Handler) slog.Handler {
	return &handler{log: l, next: next}
}

type detail struct{ key, value string }

type handler struct {
	log     *Log
	next    slog.Handler
	code    string   // "event" added with WithAttrs, if any
	details []detail // other attributes added with WithAttrs, flattened
	prefix  string   // open groups, "a.b."
}

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelInfo || h.next.Enabled(ctx, level)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.next = h.next.WithAttrs(attrs)
	h2.details = append([]detail(nil), h.details...)
	for _, a := range attrs {
		if code, ok := eventCode(a); ok {
			h2.code = code
			continue
		}
		flatten(a, h.prefix, func(key string, v slog.Value) {
			if h.prefix == "" && (key == "member" || key == "component") {
				return
			}
			h2.details = append(h2.details, detail{key, valueString(v)})
		})
	}
	return &h2
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.next = h.next.WithGroup(name)
	h2.prefix = h.prefix + name + "."
	return &h2
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.next.Enabled(ctx, r.Level) {
		err = h.next.Handle(ctx, r)
	}
	code := h.code
	var details map[string]string
	r.Attrs(func(a slog.Attr) bool {
		if c, ok := eventCode(a); ok {
			code = c
			return true
		}
		flatten(a, h.prefix, func(key string, v slog.Value) {
			s := valueString(v)
			if key == "member" && s == h.log.member {
				return
			}
			if details == nil {
				details = make(map[string]string, len(h.details)+r.NumAttrs())
			}
			details[key] = s
		})
		return true
	})
	if code == "" {
		return err
	}
	if len(h.details) > 0 && details == nil {
		details = make(map[string]string, len(h.details))
	}
	for _, d := range h.details {
		if _, ok := details[d.key]; !ok { // the record's own attribute wins
			details[d.key] = d.value
		}
	}
	sev := SeverityInfo
	if k, ok := Lookup(code); ok {
		sev = k.Severity
	} else if r.Level >= slog.LevelError {
		sev = SeverityError
	} else if r.Level >= slog.LevelWarn {
		sev = SeverityWarning
	}
	e := Event{Time: r.Time, Code: code, Severity: sev, Message: r.Message, Details: details}
	if _, aerr := h.log.Append(e); aerr != nil {
		h.log.dropped.Add(1)
	}
	return err
}

// eventCode returns the code if a is the "event" attribute. It is recognised as given
// to the logging call or to With, whatever groups the logger has open (WithGroup), so
// that `"event", code` always works; inside a slog.Group attribute it is a detail.
func eventCode(a slog.Attr) (string, bool) {
	if a.Key != "event" {
		return "", false
	}
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		return "", false
	}
	return v.String(), true
}

// flatten calls fn for each non-group attribute in a, resolved, with its group path.
// Empty attributes and empty groups are ignored and groups without a key are inlined,
// as slog handlers do.
func flatten(a slog.Attr, prefix string, fn func(key string, v slog.Value)) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() != slog.KindGroup {
		fn(prefix+a.Key, a.Value)
		return
	}
	if a.Key != "" {
		prefix += a.Key + "."
	}
	for _, ga := range a.Value.Group() {
		flatten(ga, prefix, fn)
	}
}

func valueString(v slog.Value) string {
	if v.Kind() == slog.KindTime {
		return v.Time().UTC().Format(time.RFC3339Nano)
	}
	return v.String()
}

// Package metrics writes a member's metrics in the Prometheus text exposition format
// (version 0.0.4): counters and histograms kept here, gauges read when scraped.
//
// It is small on purpose: the handful of metric kinds a member needs, no registry
// magic, no dependency. Names and labels are fixed by the caller at construction.
package metrics

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Set is the metrics of one member, written in registration order.
type Set struct {
	mu      sync.Mutex
	metrics []metric
}

type metric interface {
	write(w io.Writer) error
}

func (s *Set) add(m metric) {
	s.mu.Lock()
	s.metrics = append(s.metrics, m)
	s.mu.Unlock()
}

// Write writes every metric in the text exposition format.
func (s *Set) Write(w io.Writer) error {
	s.mu.Lock()
	ms := slices.Clone(s.metrics)
	s.mu.Unlock()
	for _, m := range ms {
		if err := m.write(w); err != nil {
			return err
		}
	}
	return nil
}

// ContentType is the exposition format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

func header(w io.Writer, name, help, kind string) error {
	_, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, kind)
	return err
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}

// labels renders {k="v",...}; names and values are paired.
func labels(names, values []string, extra ...string) string {
	if len(names) == 0 && len(extra) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `%s="%s"`, n, escapeLabel(values[i]))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `%s="%s"`, extra[i], escapeLabel(extra[i+1]))
	}
	b.WriteByte('}')
	return b.String()
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// CounterVec is a counter per combination of label values.
type CounterVec struct {
	name, help string
	labels     []string
	mu         sync.Mutex
	values     map[string]*atomic.Uint64 // key: values joined by \xff
	keys       map[string][]string
}

// NewCounterVec registers a counter with the given label names.
func (s *Set) NewCounterVec(name, help string, labelNames ...string) *CounterVec {
	c := &CounterVec{name: name, help: help, labels: labelNames, values: map[string]*atomic.Uint64{}, keys: map[string][]string{}}
	s.add(c)
	return c
}

// Add adds n to the counter with these label values (one per label name).
func (c *CounterVec) Add(n uint64, values ...string) {
	if len(values) != len(c.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", c.name, len(c.labels), len(values)))
	}
	key := strings.Join(values, "\xff")
	c.mu.Lock()
	v, ok := c.values[key]
	if !ok {
		v = new(atomic.Uint64)
		c.values[key] = v
		c.keys[key] = slices.Clone(values)
	}
	c.mu.Unlock()
	v.Add(n)
}

// Inc adds one.
func (c *CounterVec) Inc(values ...string) { c.Add(1, values...) }

func (c *CounterVec) write(w io.Writer) error {
	if err := header(w, c.name, c.help, "counter"); err != nil {
		return err
	}
	c.mu.Lock()
	keys := make([]string, 0, len(c.values))
	for k := range c.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf("%s%s %d\n", c.name, labels(c.labels, c.keys[k]), c.values[k].Load()))
	}
	c.mu.Unlock()
	for _, l := range lines {
		if _, err := io.WriteString(w, l); err != nil {
			return err
		}
	}
	return nil
}

// Histogram counts observations in cumulative buckets.
type Histogram struct {
	name, help string
	bounds     []float64
	mu         sync.Mutex
	counts     []uint64 // per bucket, not cumulative; the last is +Inf
	sum        float64
	count      uint64
}

// NewHistogram registers a histogram with the given upper bounds (ascending).
func (s *Set) NewHistogram(name, help string, bounds []float64) *Histogram {
	if !slices.IsSorted(bounds) {
		panic("metrics: histogram bounds must ascend")
	}
	h := &Histogram{name: name, help: help, bounds: slices.Clone(bounds), counts: make([]uint64, len(bounds)+1)}
	s.add(h)
	return h
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.count++
	h.mu.Unlock()
}

func (h *Histogram) write(w io.Writer) error {
	if err := header(w, h.name, h.help, "histogram"); err != nil {
		return err
	}
	h.mu.Lock()
	counts, sum, count := slices.Clone(h.counts), h.sum, h.count
	h.mu.Unlock()
	var cum uint64
	for i, b := range h.bounds {
		cum += counts[i]
		if _, err := fmt.Fprintf(w, "%s_bucket{le=\"%s\"} %d\n", h.name, formatFloat(b), cum); err != nil {
			return err
		}
	}
	cum += counts[len(h.bounds)]
	_, err := fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", h.name, cum, h.name, formatFloat(sum), h.name, count)
	return err
}

// Sample is one gauge value with its label values.
type Sample struct {
	Labels []string
	Value  float64
}

// GaugeFunc is a gauge read when scraped.
type GaugeFunc struct {
	name, help string
	labels     []string
	read       func() []Sample
}

// NewGaugeFunc registers a gauge whose samples read returns at each scrape.
func (s *Set) NewGaugeFunc(name, help string, labelNames []string, read func() []Sample) {
	s.add(&GaugeFunc{name: name, help: help, labels: labelNames, read: read})
}

// NewGauge registers a single unlabelled gauge read at each scrape.
func (s *Set) NewGauge(name, help string, read func() float64) {
	s.NewGaugeFunc(name, help, nil, func() []Sample { return []Sample{{Value: read()}} })
}

func (g *GaugeFunc) write(w io.Writer) error {
	if err := header(w, g.name, g.help, "gauge"); err != nil {
		return err
	}
	for _, s := range g.read() {
		if len(s.Labels) != len(g.labels) {
			return fmt.Errorf("metrics: %s takes %d label values, got %d", g.name, len(g.labels), len(s.Labels))
		}
		if _, err := fmt.Fprintf(w, "%s%s %s\n", g.name, labels(g.labels, s.Labels), formatFloat(s.Value)); err != nil {
			return err
		}
	}
	return nil
}

package chaos

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/anishathalye/porcupine"
)

// Names of the files WriteReport writes.
const (
	ReportHTML    = "linearizability.html" // porcupine's visualization
	ReportHistory = "history.jsonl"        // one Op per line, in recording order, then the final reads
	ReportSummary = "summary.txt"          // the verdict, the seed and the configuration
)

// WriteReport writes the visualization HTML (porcupine.VisualizePath), a JSON lines file
// of the history and a short summary into dir, creating it if needed. res must come
// from h.Check.
func (h *History) WriteReport(dir string, res Result) error {
	if h == nil {
		return errors.New("chaos: WriteReport on a nil history")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("chaos: report: %w", err)
	}
	var errs []error
	if err := porcupine.VisualizePath(h.model(), res.Info, filepath.Join(dir, ReportHTML)); err != nil {
		errs = append(errs, fmt.Errorf("visualization: %w", err))
	}
	if err := h.writeHistory(filepath.Join(dir, ReportHistory)); err != nil {
		errs = append(errs, fmt.Errorf("history: %w", err))
	}
	summary := fmt.Sprintf("%v\nendpoints %v, %d clients, %d keys (%s-0..), duration %v, request timeout %v\nfiles: %s (open in a browser), %s\n",
		res, h.cfg.Endpoints, h.cfg.Clients, h.cfg.Keys, h.cfg.KeyPrefix, h.cfg.Duration, h.cfg.RequestTimeout, ReportHTML, ReportHistory)
	if err := os.WriteFile(filepath.Join(dir, ReportSummary), []byte(summary), 0o644); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("chaos: report in %s: %w", dir, err)
	}
	return nil
}

func (h *History) writeHistory(path string) error {
	h.mu.Lock()
	ops := append(append([]Op(nil), h.ops...), h.finals...)
	h.mu.Unlock()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, op := range ops {
		if err := enc.Encode(op); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

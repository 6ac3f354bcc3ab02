package advisory

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is matched (errors.Is) by every problem in an advisories file.
var ErrInvalid = errors.New("invalid advisories file")

// Error is one problem in an advisories file.
type Error struct {
	Source string // the file as the caller named it
	Line   int    // from 1; 0 when not known
	Field  string // "advisory[0].when.kernel" (0-based, the file's own top key); "" for syntax errors
	Msg    string // what is wrong and how to write it
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes every Error match ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// Errors is every problem found in one file (at most maxProblems), in line order.
type Errors []*Error

// maxProblems bounds the problems reported for one file.
const maxProblems = 10

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap gives each problem to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

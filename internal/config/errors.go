package config

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error about a bad configuration (file or flags), so that
// a command can tell it from an I/O error (errors.Is) and exit with its usage code.
var ErrInvalid = errors.New("invalid configuration")

// maxErrors bounds how many problems one error reports.
const maxErrors = 20

// Error is one problem in a configuration: where, which setting, what is wrong and the fix.
type Error struct {
	Source string // the file as the caller named it; "" for flags or a Config built in code
	Line   int    // position of a TOML syntax error, from 1; 0 when not known
	Column int
	Field  string // the setting as a TOML path ("members[1].raft", "raft.election_timeout"), or the flag ("--fuel"); "" for syntax errors
	Msg    string // the whole explanation, naming Field and the fix
}

func (e *Error) Error() string {
	switch {
	case e.Source == "":
		return e.Msg
	case e.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.Source, e.Line, e.Column, e.Msg)
	default:
		return e.Source + ": " + e.Msg
	}
}

// Unwrap makes every Error match ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// problems collects the Errors of one file.
type problems struct {
	source string
	errs   []error
}

func (p *problems) add(field, format string, args ...any) {
	p.errs = append(p.errs, &Error{Source: p.source, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// err is nil, the only problem, or the first maxErrors problems joined (one per line).
func (p *problems) err() error {
	switch n := len(p.errs); {
	case n == 0:
		return nil
	case n == 1:
		return p.errs[0]
	case n > maxErrors:
		more := &Error{Source: p.source, Msg: fmt.Sprintf("and %d more problems", n-maxErrors)}
		return errors.Join(append(p.errs[:maxErrors:maxErrors], more)...)
	default:
		return errors.Join(p.errs...)
	}
}

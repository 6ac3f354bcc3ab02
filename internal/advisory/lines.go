package advisory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Neither decoder reports where a key is, so each format has its own way to find the
// line of every advisory and key. Both fill a map from the field paths errors name
// ("advisory[0]", "advisory[0].when", "advisory[0].when.kernel") to lines from 1; a
// field without an entry takes the line of the nearest enclosing one (parser.line).

// tomlLines scans TOML text for table headers and key lines. It follows what a person
// writes — [[advisory]] and [advisory.when] headers, key = value lines, dotted keys,
// quoted keys — and skips multi-line strings. A key inside an inline table or an array
// has no line of its own: it takes the line of the key that holds it.
func tomlLines(data []byte) map[string]int {
	lines := map[string]int{}
	counts := map[string]int{} // arrays of tables by path -> how many so far
	set := func(path string, n int) {
		if _, ok := lines[path]; !ok {
			lines[path] = n
		}
	}
	// resolve turns header parts into a path, indexing arrays of tables.
	n := 0 // the line being scanned
	resolve := func(parts []string, array bool) string {
		p := ""
		for i, part := range parts {
			p = join(p, part)
			set(p, n)
			if array && i == len(parts)-1 {
				counts[p]++
			}
			if c, ok := counts[p]; ok {
				p = fmt.Sprintf("%s[%d]", p, c-1)
				set(p, n)
			}
		}
		return p
	}
	prefix, open := "", "" // the current table; the delimiter of an open multi-line string
	for i, line := range strings.Split(string(data), "\n") {
		n = i + 1
		if open != "" {
			if strings.Count(line, open)%2 == 1 {
				open = ""
			}
			continue
		}
		t := strings.TrimSpace(line)
		switch {
		case t == "" || t[0] == '#':
		case strings.HasPrefix(t, "[["):
			if parts, rest, ok := dottedKey(t[2:], ']'); ok && strings.HasPrefix(rest, "]") {
				prefix = resolve(parts, true)
			}
		case t[0] == '[':
			if parts, _, ok := dottedKey(t[1:], ']'); ok {
				prefix = resolve(parts, false)
			}
		default:
			parts, rest, ok := dottedKey(t, '=')
			if !ok {
				continue
			}
			p := prefix
			for _, part := range parts {
				p = join(p, part)
				set(p, n)
			}
			for _, d := range []string{`"""`, `'''`} {
				if strings.Count(rest, d)%2 == 1 {
					open = d
				}
			}
		}
	}
	return lines
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// dottedKey reads a TOML key (bare or quoted parts joined by dots) at the start of s,
// up to stop; it returns the parts and what follows stop.
func dottedKey(s string, stop byte) (parts []string, rest string, ok bool) {
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, "", false
		}
		switch q := s[0]; q {
		case '"', '\'':
			end := strings.IndexByte(s[1:], q)
			if end < 0 {
				return nil, "", false
			}
			parts = append(parts, s[1:1+end])
			s = s[2+end:]
		default:
			i := 0
			for i < len(s) && (isDigit(s[i]) || s[i] == '_' || s[i] == '-' || 'a' <= s[i]|0x20 && s[i]|0x20 <= 'z') {
				i++
			}
			if i == 0 {
				return nil, "", false
			}
			parts = append(parts, s[:i])
			s = s[i:]
		}
		s = strings.TrimLeft(s, " \t")
		switch {
		case s == "":
			return nil, "", false
		case s[0] == '.':
			s = s[1:]
		case s[0] == stop:
			return parts, s[1:], true
		default:
			return nil, "", false
		}
	}
}

// maxJSONDepth bounds nesting in a JSON file; the format needs four levels.
const maxJSONDepth = 32

// jsonDoc decodes JSON into the shapes encoding/json gives an any (numbers as
// json.Number) while recording the line of every key and array element, and refusing
// duplicate keys, which encoding/json would let the last one win.
type jsonDoc struct {
	data     []byte
	dec      *json.Decoder
	lines    map[string]int
	counted  int // lineAt has counted the newlines in data[:counted]
	newlines int
}

func decodeJSON(data []byte) (any, map[string]int, *Error) {
	d := &jsonDoc{data: data, dec: json.NewDecoder(bytes.NewReader(data)), lines: map[string]int{}}
	d.dec.UseNumber()
	v, err := d.value("", 0)
	if err != nil {
		return nil, nil, err
	}
	if _, e := d.dec.Token(); e != io.EOF {
		return nil, nil, &Error{Line: d.lineAt(d.dec.InputOffset()), Msg: "not valid JSON: more after the closing }: remove it"}
	}
	return v, d.lines, nil
}

// lineAt is the line of the byte just before offset. Offsets only grow while the file
// is read, so it counts on from the last one (an earlier offset counts from the start).
func (d *jsonDoc) lineAt(offset int64) int {
	end := int(min(max(offset-1, 0), int64(len(d.data))))
	if end < d.counted {
		d.counted, d.newlines = 0, 0
	}
	d.newlines += bytes.Count(d.data[d.counted:end], []byte("\n"))
	d.counted = end
	return 1 + d.newlines
}

func (d *jsonDoc) syntax(err error) *Error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &Error{Line: d.lineAt(se.Offset), Msg: "not valid JSON: " + se.Error()}
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Line: d.lineAt(int64(len(d.data))), Msg: "not valid JSON: unexpected end of file"}
	}
	return &Error{Line: d.lineAt(d.dec.InputOffset()), Msg: "not valid JSON: " + err.Error()}
}

// value reads one value at path; it records the line where the value starts.
func (d *jsonDoc) value(path string, depth int) (any, *Error) {
	if depth > maxJSONDepth {
		return nil, &Error{Line: d.lineAt(d.dec.InputOffset()), Msg: fmt.Sprintf("nested more than %d deep", maxJSONDepth)}
	}
	tok, err := d.dec.Token()
	if err != nil {
		return nil, d.syntax(err)
	}
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = d.lineAt(d.dec.InputOffset())
	}
	switch tok {
	case json.Delim('{'):
		obj := map[string]any{}
		for d.dec.More() {
			kt, err := d.dec.Token()
			if err != nil {
				return nil, d.syntax(err)
			}
			key, _ := kt.(string)
			kp := join(path, key)
			line := d.lineAt(d.dec.InputOffset())
			if _, dup := obj[key]; dup {
				return nil, &Error{Line: line, Field: kp, Msg: fmt.Sprintf("key %q given twice (line %d): keep one", key, d.lines[kp])}
			}
			d.lines[kp] = line
			v, e := d.value(kp, depth+1)
			if e != nil {
				return nil, e
			}
			obj[key] = v
		}
		if _, err := d.dec.Token(); err != nil {
			return nil, d.syntax(err)
		}
		return obj, nil
	case json.Delim('['):
		var arr []any
		for i := 0; d.dec.More(); i++ {
			v, e := d.value(fmt.Sprintf("%s[%d]", path, i), depth+1)
			if e != nil {
				return nil, e
			}
			arr = append(arr, v)
		}
		if _, err := d.dec.Token(); err != nil {
			return nil, d.syntax(err)
		}
		if arr == nil {
			arr = []any{}
		}
		return arr, nil
	}
	return tok, nil
}

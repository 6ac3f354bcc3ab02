package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// Parse decodes a member's file, fills in the defaults and validates it. source names
// the file in errors. Relative paths are left as written (Load resolves them).
func Parse(data []byte, source string) (*Config, error) {
	p := &problems{source: source}
	// First as plain tables: syntax errors with their position, then unknown keys,
	// wrong types and explicit zeros with their TOML path.
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, syntaxError(source, err)
	}
	checkTable(p, "", raw, fileSettings)
	if err := p.err(); err != nil {
		return nil, err
	}
	var c Config
	md, err := toml.Decode(string(data), &c)
	if err != nil { // checkTable let through something the decoder refuses
		return nil, syntaxError(source, err)
	}
	for _, k := range md.Undecoded() { // a safety net: checkTable reports these first
		p.add(k.String(), "unknown setting %q: remove it", k.String())
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	c.SetDefaults()
	if err := c.validate(source); err != nil {
		return nil, err
	}
	return &c, nil
}

func syntaxError(source string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{Source: source, Line: pe.Position.Line, Column: pe.Position.Col, Msg: "not valid TOML: " + pe.Message}
	}
	return &Error{Source: source, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
}

// Load reads and parses the file at path. A relative path (data_dir, guest.file, tls.dir,
// gateway.tls_cert, gateway.tls_key, gateway.client_token_file, manager.token_file) is
// taken relative to the file's directory, and made absolute.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.DataDir = resolve(dir, c.DataDir)
	c.Guest.File = resolve(dir, c.Guest.File)
	c.TLS.Dir = resolve(dir, c.TLS.Dir)
	c.Gateway.TLSCert = resolve(dir, c.Gateway.TLSCert)
	c.Gateway.TLSKey = resolve(dir, c.Gateway.TLSKey)
	c.Gateway.ClientTokenFile = resolve(dir, c.Gateway.ClientTokenFile)
	c.Manager.TokenFile = resolve(dir, c.Manager.TokenFile)
	c.Manager.TokensFile = resolve(dir, c.Manager.TokensFile)
	c.Alerts.TokenFile = resolve(dir, c.Alerts.TokenFile)
	return c, nil
}

func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

package config

import (
	"fmt"
	"time"
)

// Duration is a time.Duration written as a string ("150ms", "5s") in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration ("100ms", "1m30s").
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write a number with a unit, e.g. \"100ms\" or \"5s\"", text)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as time.Duration.String does ("100ms", "1m0s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

package cluster

import (
	"crypto/subtle"
	"fmt"
	"net/http"
)

// HashMode says which state hash a status carries: the hash query parameter of the
// status and cluster endpoints.
type HashMode int

const (
	// HashNone: no state hash (hash=0).
	HashNone HashMode = iota
	// HashChecked: the hash this CoServer computed at its newest comparison point (a
	// check entry), off the apply path, with the index it describes; nothing is hashed
	// for the request (hash=1 or absent: the default, public).
	HashChecked
	// HashLive: the state now, copied under the apply lock and hashed outside it
	// (hash=live): costly, so it needs the manager token.
	HashLive
)

// String is the mode's query value.
func (h HashMode) String() string {
	switch h {
	case HashNone:
		return "0"
	case HashChecked:
		return "1"
	case HashLive:
		return "live"
	}
	return fmt.Sprintf("HashMode(%d)", int(h))
}

// HashModeError refuses a status request's hash mode; Status is the HTTP status to
// answer: 400 (an unknown value) or 401 (hash=live without the manager token).
type HashModeError struct {
	Status int
	Msg    string
}

func (e *HashModeError) Error() string { return e.Msg }

// ParseHashMode reads a hash query value: "0", "1" or "" (the default), "live".
func ParseHashMode(v string) (HashMode, error) {
	switch v {
	case "0":
		return HashNone, nil
	case "", "1":
		return HashChecked, nil
	case "live":
		return HashLive, nil
	}
	return HashNone, &HashModeError{Status: http.StatusBadRequest, Msg: fmt.Sprintf(
		"hash=%q: use 1 (the hash computed at the last comparison point, the default), 0 (none: cheaper) or live (hash the state now: costly, needs the manager token)", v)}
}

// RequestHashMode reads the hash mode of a status request. strict (the versioned API)
// refuses an unknown value; otherwise (the original /ftvs/status and /ftvs/cluster) any
// value but 0 and live means the checked hash. hash=live needs managerToken, sent as
// "Authorization: Bearer TOKEN", unless managerToken is "" (a member built without a
// Manager token: in-process tests; every ftvs process holds one). Errors are
// *HashModeError.
func RequestHashMode(r *http.Request, strict bool, managerToken string) (HashMode, error) {
	mode, err := ParseHashMode(r.URL.Query().Get("hash"))
	if err != nil {
		if strict {
			return HashNone, err
		}
		mode = HashChecked
	}
	if mode != HashLive || managerToken == "" {
		return mode, nil
	}
	got := r.Header.Get("Authorization")
	if subtle.ConstantTimeCompare([]byte(got), []byte("Bearer "+managerToken)) == 1 {
		return mode, nil
	}
	msg := "missing credentials"
	if got != "" {
		msg = "wrong token"
	}
	return HashNone, &HashModeError{Status: http.StatusUnauthorized, Msg: fmt.Sprintf(
		"%s: %s %s?hash=live hashes the live state (costly) and requires the manager token (manager.token in the cluster dir), "+
			"sent as \"Authorization: Bearer TOKEN\"; without it use hash=1, the hash computed at the last comparison point", msg, r.Method, r.URL.Path)}
}

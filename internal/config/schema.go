package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/suggest"
)

// kind is the TOML type a setting takes.
type kind int

const (
	kString   kind = iota
	kInt           // a positive integer
	kDuration      // a string parsed by time.ParseDuration
	kTable         // [name]
	kTables        // [[name]]
)

// setting describes one key of the file, for checking a decoded file before it is
// mapped onto Config: unknown keys, wrong types and explicit zeros are reported with
// their TOML path, which the struct decoder cannot do.
type setting struct {
	name    string
	kind    kind
	example string    // a valid value, as TOML
	def     string    // the default, "" if the setting is required or may be empty
	sub     []setting // keys of a table
	zeroOK  bool      // 0 is a meaningful value (it turns the feature off), not a slip
}

var memberSettings = []setting{
	{name: "name", kind: kString, example: `"coserver1"`},
	{name: "link_a", kind: kString, example: `"10.0.0.1:7101"`},
	{name: "link_b", kind: kString, example: `"10.0.1.1:7101"`},
	{name: "http", kind: kString, example: `"10.0.0.1:8080"`},
}

// renamed are settings that no longer exist, keyed by their path without array indexes
// ("members.raft"), with what took their place. They are reported instead of "unknown".
var renamed = map[string]string{
	"members.raft": "every member now has two links, link_a and link_b (host:port on two separate networks; both may be on one network, e.g. loopback, for testing)",
}

var fileSettings = []setting{
	{name: "cluster", kind: kString, example: `"` + exampleClusterID + `"`},
	{name: "name", kind: kString, example: `"coserver1"`},
	{name: "data_dir", kind: kString, example: `"coserver1"`},
	{name: "members", kind: kTables, sub: memberSettings},
	{name: "guest", kind: kTable, sub: []setting{
		{name: "file", kind: kString, example: `"app.wasm"`},
		{name: "memory_limit_mib", kind: kInt, example: "1024", def: itoa(DefaultMemoryLimitMiB)},
		{name: "max_request_bytes", kind: kInt, example: "4194304", def: itoa(DefaultMaxRequestBytes)},
		{name: "fuel", kind: kInt, example: "200000000", def: itoa(DefaultFuel)},
		{name: "check_interval", kind: kDuration, example: `"5s"`, def: dur(DefaultCheckInterval)},
		{name: "tick_interval", kind: kDuration, example: `"1s"`, def: `"0s"`, zeroOK: true},
	}},
	{name: "raft", kind: kTable, sub: []setting{
		{name: "heartbeat_timeout", kind: kDuration, example: `"100ms"`, def: dur(DefaultHeartbeatTimeout)},
		{name: "election_timeout", kind: kDuration, example: `"100ms"`, def: dur(DefaultElectionTimeout)},
		{name: "leader_lease_timeout", kind: kDuration, example: `"100ms"`, def: dur(DefaultLeaderLeaseTimeout)},
		{name: "commit_timeout", kind: kDuration, example: `"5ms"`, def: dur(DefaultCommitTimeout)},
		{name: "snapshot_threshold", kind: kInt, example: "32768", def: itoa(DefaultSnapshotThreshold)},
		{name: "snapshot_interval", kind: kDuration, example: `"5s"`, def: dur(DefaultSnapshotInterval)},
		{name: "trailing_logs", kind: kInt, example: "10240", def: itoa(DefaultTrailingLogs) + ", witness " + itoa(DefaultWitnessTrailingLogs)},
	}},
	{name: "links", kind: kTable, sub: []setting{
		{name: "probe_interval", kind: kDuration, example: `"20ms"`, def: dur(DefaultLinkProbeInterval)},
		{name: "down_after", kind: kDuration, example: `"60ms"`, def: dur(DefaultLinkDownAfter)},
	}},
	{name: "tls", kind: kTable, sub: []setting{
		{name: "mode", kind: kString, example: quote(TLSMutual), def: quote(TLSMutual)},
		{name: "dir", kind: kString, example: quote(DefaultTLSDir), def: quote(DefaultTLSDir)},
		{name: "expiry_warning", kind: kDuration, example: `"720h"`, def: dur(DefaultExpiryWarning)},
	}},
	{name: "gateway", kind: kTable, sub: []setting{
		{name: "tls_cert", kind: kString, example: `"gateway.crt"`},
		{name: "tls_key", kind: kString, example: `"gateway.key"`},
		{name: "client_token_file", kind: kString, example: `"client.token"`},
	}},
	{name: "manager", kind: kTable, sub: []setting{
		{name: "token_file", kind: kString, example: quote(DefaultManagerTokenFile), def: quote(DefaultManagerTokenFile)},
		{name: "tokens_file", kind: kString, example: `"operators.tokens"`},
		{name: "reads", kind: kString, example: quote(ReadsToken), def: quote(ReadsOpen)},
	}},
	{name: "alerts", kind: kTable, sub: []setting{
		{name: "webhook_url", kind: kString, example: `"https://alerts.example.com/ftvs"`},
		{name: "min_severity", kind: kString, example: quote(DefaultAlertSeverity), def: quote(DefaultAlertSeverity)},
		{name: "token_file", kind: kString, example: `"alerts.token"`},
	}},
	{name: "log", kind: kTable, sub: []setting{
		{name: "level", kind: kString, example: `"info"`, def: quote(DefaultLogLevel)},
		{name: "format", kind: kString, example: `"text"`, def: quote(DefaultLogFormat)},
	}},
}

// exampleClusterID appears in messages only; ftvs init makes a random one.
const exampleClusterID = "0123456789abcdef0123456789abcdef"

func itoa(n int64) string          { return strconv.FormatInt(n, 10) }
func dur(d time.Duration) string   { return strconv.Quote(d.String()) }
func join(path, key string) string { return strings.TrimPrefix(path+"."+tomlKey(key), ".") }

// tomlKey writes a key bare when TOML allows it, else quoted.
func tomlKey(k string) string {
	if k != "" && strings.Trim(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "" {
		return k
	}
	return quote(k)
}

// checkTable checks the keys of one decoded table against its settings.
func checkTable(p *problems, path string, table map[string]any, settings []setting) {
	for _, key := range sortedKeys(table) {
		full := join(path, key)
		s, ok := find(settings, key)
		if why, old := renamed[join(indexes.ReplaceAllString(path, ""), key)]; !ok && old {
			p.add(full, "%s: renamed: %s", full, why)
			continue
		}
		if !ok {
			if hint := closestSetting(path, key); hint != "" {
				p.add(full, "unknown setting %q (%s)", full, suggest.DidYouMean(hint))
			} else {
				p.add(full, "unknown setting %q: remove it (the settings are listed in CONFIG.md)", full)
			}
			continue
		}
		checkValue(p, full, table[key], s)
	}
}

func checkValue(p *problems, path string, v any, s setting) {
	wrong := func(want string) {
		p.add(path, "%s is %s: write %s, e.g. %s = %s", path, typeName(v), want, s.name, s.example)
	}
	switch s.kind {
	case kString:
		if str, ok := v.(string); !ok {
			wrong("a string")
		} else if str == "" && s.def != "" {
			p.add(path, "%s is empty: give a value, e.g. %s = %s, or remove the line for the default (%s)", path, s.name, s.example, s.def)
		}
	case kInt:
		n, ok := v.(int64)
		switch {
		case !ok:
			wrong("an integer")
		case n == 0:
			p.add(path, "%s is 0: give a positive number, e.g. %s = %s, or remove the line for the default (%s)", path, s.name, s.example, s.def)
		case n < 0:
			p.add(path, "%s is %d: give a positive number, e.g. %s = %s", path, n, s.name, s.example)
		}
	case kDuration:
		str, ok := v.(string)
		if !ok {
			wrong(`a duration as a string with a unit`)
			return
		}
		var d Duration
		if err := d.UnmarshalText([]byte(str)); err != nil {
			p.add(path, "%s: %v", path, err)
		} else if d.Duration == 0 && !s.zeroOK {
			p.add(path, "%s is 0: give a positive duration, e.g. %s = %s, or remove the line for the default (%s)", path, s.name, s.example, s.def)
		}
	case kTable:
		if t, ok := v.(map[string]any); ok {
			checkTable(p, path, t, s.sub)
		} else {
			p.add(path, "%s is %s: write it as a table, [%s], with its settings below", path, typeName(v), path)
		}
	case kTables:
		tables, ok := asTables(v)
		if !ok {
			p.add(path, "%s is %s: write one [[%s]] table per member", path, typeName(v), path)
			return
		}
		for i, t := range tables {
			checkTable(p, fmt.Sprintf("%s[%d]", path, i), t, s.sub)
		}
	}
}

// asTables accepts [[x]] tables and an inline array of inline tables.
func asTables(v any) ([]map[string]any, bool) {
	switch v := v.(type) {
	case []map[string]any:
		return v, true
	case []any:
		out := make([]map[string]any, len(v))
		for i, e := range v {
			t, ok := e.(map[string]any)
			if !ok {
				return nil, false
			}
			out[i] = t
		}
		return out, true
	}
	return nil, false
}

func find(settings []setting, key string) (setting, bool) {
	for _, s := range settings {
		if s.name == key {
			return s, true
		}
	}
	return setting{}, false
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("a %T", v)
}

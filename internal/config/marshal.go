package config

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Marshal writes c as TOML, every setting with a comment saying what it is. Parse of the
// result gives back c.
func (c *Config) Marshal() []byte {
	var b bytes.Buffer
	w := func(comment, key string, value any) {
		fmt.Fprintf(&b, "# %s\n%s = %v\n", comment, key, value)
	}
	fmt.Fprintf(&b, "# ftvs configuration of the cluster member %s.\n", quote(c.Name))
	b.WriteString("# Every setting is described in internal/config/CONFIG.md; flags override them.\n\n")
	w("Cluster id: 32 hex characters, the same in all three members' files.", "cluster", quote(c.Cluster))
	w("This member: coserver1, coserver2 or witness (one of the members below).", "name", quote(c.Name))
	w("Data directory of this member (raft log, snapshots); a relative path is relative to this file.", "data_dir", quote(c.DataDir))
	b.WriteString("\n# The three members; every member's file lists all three with the same addresses.\n")
	for _, m := range c.Members {
		b.WriteString("[[members]]\n")
		w("Member name: coserver1, coserver2 or witness.", "name", quote(m.Name))
		w("host:port of member-to-member traffic on the first network (link a); the others dial it.", "link_a", quote(m.LinkA))
		w("host:port of member-to-member traffic on the second network (link b); the others dial it.", "link_b", quote(m.LinkB))
		w("host:port of the HTTP gateway and API (CoServer) or of the API (witness).", "http", quote(m.HTTP))
		b.WriteString("\n")
	}
	b.WriteString("[guest]\n")
	if c.IsWitness() {
		b.WriteString("# The witness never runs the guest: it ignores this table, and guest.file must stay empty.\n")
	}
	w(`Guest module (.wasm) installed on a new virtual server; "" = the embedded kv example.`, "file", quote(c.Guest.File))
	w("Guest memory limit in MiB (1 to 4096).", "memory_limit_mib", c.Guest.MemoryLimitMiB)
	w("Largest request (headers and body) in bytes.", "max_request_bytes", c.Guest.MaxRequestBytes)
	w("Per-entry budget in fuel units (one per guest function call or loop iteration, and per 64 bytes of memory.copy/fill).", "fuel", c.Guest.Fuel)
	w("How often the leading CoServer appends a check entry, at which both CoServers compare their state hashes (at least 100ms).", "check_interval", quote(c.Guest.CheckInterval.String()))
	w(`How often the leading CoServer appends a tick entry, at which the guest's tick export runs on every CoServer ("0s": never; else at least 10ms).`, "tick_interval", quote(c.Guest.TickInterval.String()))
	b.WriteString("\n[raft]\n")
	r := c.Raft
	w("Time without contact from the leader before a follower stands for election.", "heartbeat_timeout", quote(r.HeartbeatTimeout.String()))
	w("Time a candidate waits without contact from a leader before it starts a new election (at least heartbeat_timeout).", "election_timeout", quote(r.ElectionTimeout.String()))
	w("Time a leader stays leader without reaching a majority (at most heartbeat_timeout).", "leader_lease_timeout", quote(r.LeaderLeaseTimeout.String()))
	w("Time without new entries before the leader sends the commit index to the followers anyway.", "commit_timeout", quote(r.CommitTimeout.String()))
	w("Take a snapshot after this many new log entries.", "snapshot_threshold", r.SnapshotThreshold)
	w("How often to check whether a snapshot is due.", "snapshot_interval", quote(r.SnapshotInterval.String()))
	w("Log entries kept after a snapshot, so a member that was away can catch up from the log.", "trailing_logs", r.TrailingLogs)
	b.WriteString("\n[links]\n")
	w("How often each link to another member is probed.", "probe_interval", quote(c.Links.ProbeInterval.String()))
	w("Time without an answer before a link is declared down and its traffic moves to the other link (longer than probe_interval, shorter than raft.heartbeat_timeout and raft.election_timeout).", "down_after", quote(c.Links.DownAfter.String()))
	b.WriteString("\n[tls]\n")
	w(`Member links: "mutual" (members authenticate each other with certificates) or "off" (plaintext, for measurements only).`, "mode", quote(c.TLS.Mode))
	w("Directory holding ca.crt and this member's <name>.crt and <name>.key; a relative path is relative to this file.", "dir", quote(c.TLS.Dir))
	w("Warn this long before this member's certificate expires.", "expiry_warning", quote(c.TLS.ExpiryWarning.String()))
	b.WriteString("\n[gateway]\n")
	w(`PEM certificate of the gateway; with tls_key the gateway serves HTTPS; "" = plain HTTP. Relative to this file.`, "tls_cert", quote(c.Gateway.TLSCert))
	w(`PEM private key of tls_cert; set both or neither. Relative to this file.`, "tls_key", quote(c.Gateway.TLSKey))
	w(`File holding the token clients must send as "Authorization: Bearer <token>"; "" = no token. Relative to this file.`, "client_token_file", quote(c.Gateway.ClientTokenFile))
	b.WriteString("\n[manager]\n")
	w("File holding the token the API requires for anything that changes state; relative to this file.", "token_file", quote(c.Manager.TokenFile))
	w(`Who may read the API (status, events, metrics): "open" to anyone who reaches the port, or "token" (a token, as actions need). /ftvs/health stays open.`, "reads", quote(c.Manager.Reads))
	w(`File of more tokens, one "NAME TOKEN" per line, each accepted as the manager token and named in the events of what its holder did; "" = none. Relative to this file.`, "tokens_file", quote(c.Manager.TokensFile))
	b.WriteString("\n[alerts]\n")
	w(`URL this member POSTs each of its events to, as JSON (Slack-style or your own receiver); "" = none.`, "webhook_url", quote(c.Alerts.WebhookURL))
	w("The least severe event sent: info, warning or error.", "min_severity", quote(c.Alerts.MinSeverity))
	w(`File holding a token sent as "Authorization: Bearer <token>"; "" = none. Relative to this file.`, "token_file", quote(c.Alerts.TokenFile))
	b.WriteString("\n[log]\n")
	w("debug, info, warn or error.", "level", quote(c.Log.Level))
	w("text or json (slog on stderr).", "format", quote(c.Log.Format))
	return b.Bytes()
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

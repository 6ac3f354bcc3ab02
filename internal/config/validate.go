package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Validate checks every setting and the settings against each other. It reports all
// problems found, each naming the setting by its TOML path and the fix.
func (c *Config) Validate() error { return c.validate("") }

func (c *Config) validate(source string) error {
	p := &problems{source: source}
	c.checkIdentity(p)
	c.checkMembers(p)
	c.checkGuest(p)
	c.checkRaft(p)
	c.checkLinks(p)
	c.checkTLS(p)
	c.checkGateway(p)
	c.checkManager(p)
	c.checkAlerts(p)
	c.checkReads(p)
	c.checkLog(p)
	return p.err()
}

func missing(p *problems, path, example, why string) {
	key := path[strings.LastIndexByte(path, '.')+1:]
	p.add(path, "missing field %s: add it, e.g. %s = %s%s", path, key, example, why)
}

func (c *Config) checkIdentity(p *problems) {
	switch {
	case c.Cluster == "":
		missing(p, "cluster", quote(NewClusterID()), " (a random id, the same in all three members' files; ftvs init makes one)")
	case !isClusterID(c.Cluster):
		p.add("cluster", "cluster %s is not a cluster id: write 32 lowercase hex characters, the same in all three members' files, e.g. cluster = %s", quote(c.Cluster), quote(NewClusterID()))
	}
	switch {
	case c.Name == "":
		missing(p, "name", `"coserver1"`, " (which member this file is for: coserver1, coserver2 or witness)")
	case !isMemberName(c.Name):
		p.add("name", "name %s is not a member: use coserver1, coserver2 or witness", quote(c.Name))
	}
	if c.DataDir == "" {
		missing(p, "data_dir", quote(c.exampleDataDir()), " (where this member keeps its log and snapshots)")
	}
}

func (c *Config) exampleDataDir() string {
	if isMemberName(c.Name) {
		return c.Name
	}
	return CoServer1
}

func isClusterID(s string) bool {
	return len(s) == 32 && strings.Trim(s, "0123456789abcdef") == ""
}

func isMemberName(s string) bool { return s == CoServer1 || s == CoServer2 || s == Witness }

func (c *Config) checkMembers(p *problems) {
	seenName := map[string]string{} // member name -> path of its name
	seenAddr := map[string]string{} // normalized address -> path of the field using it
	for i, m := range c.Members {
		path := fmt.Sprintf("members[%d]", i)
		switch first, dup := seenName[m.Name]; {
		case m.Name == "":
			missing(p, path+".name", `"coserver1"`, " (coserver1, coserver2 or witness)")
		case !isMemberName(m.Name):
			p.add(path+".name", "%s.name %s is not a member: the members are coserver1, coserver2 and witness", path, quote(m.Name))
		case dup:
			p.add(path+".name", "%s and %s.name are both %s: list each of coserver1, coserver2 and witness once", first, path, quote(m.Name))
		default:
			seenName[m.Name] = path + ".name"
		}
		for _, f := range []struct{ key, addr string }{{"link_a", m.LinkA}, {"link_b", m.LinkB}, {"http", m.HTTP}} {
			field := path + "." + f.key
			if f.addr == "" {
				missing(p, field, quote(exampleAddr(i, f.key)), "")
				continue
			}
			key, err := checkAddr(f.addr, f.key != "http")
			if err != "" {
				p.add(field, "%s %s: %s", field, quote(f.addr), err)
				continue
			}
			if first, dup := seenAddr[key]; dup {
				p.add(field, "%s and %s both use %s: give each its own port", first, field, f.addr)
				continue
			}
			seenAddr[key] = field
		}
	}
	for _, name := range MemberNames {
		if _, ok := seenName[name]; !ok {
			p.add("members", "members: %s is not listed: add a [[members]] table with name = %s, link_a = \"host:port\", link_b = \"host:port\" and http = \"host:port\" (every member's file lists all three)", name, quote(name))
		}
	}
}

// exampleAddr is an address for members[i].key in messages: link a on one network, link
// b on another.
func exampleAddr(i int, key string) string {
	switch key {
	case "http":
		return fmt.Sprintf("10.0.0.%d:%d", i+1, 8080+i)
	case "link_b":
		return fmt.Sprintf("10.0.1.%d:%d", i+1, 7101+i)
	}
	return fmt.Sprintf("10.0.0.%d:%d", i+1, 7101+i)
}

// checkAddr checks a host:port and returns the key under which duplicates collide, or
// what is wrong and the fix. A link address is dialed by the other members, so it needs
// a host they can reach; an http address may listen on every interface (":8080").
func checkAddr(addr string, dialed bool) (key, problem string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "not host:port: write it as host:port, e.g. \"10.0.0.1:7101\""
	}
	n, err := strconv.Atoi(port)
	switch {
	case err != nil || n < 0 || n > 65535:
		return "", fmt.Sprintf("port %q is not a number from 1 to 65535: give a fixed port, e.g. %q", port, net.JoinHostPort(host, "7101"))
	case n == 0:
		return "", fmt.Sprintf("port 0 is not allowed in a config file (the other members must know the port): give a fixed one, e.g. %q", net.JoinHostPort(host, "7101"))
	case strings.Trim(strings.ToLower(host), "abcdefghijklmnopqrstuvwxyz0123456789.-_:%") != "":
		return "", "the host has characters a host name or IP address cannot have: write host:port, e.g. \"10.0.0.1:7101\""
	}
	if dialed {
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			return "", fmt.Sprintf("the other members dial this address: give the host or IP they reach this member at, e.g. %q", net.JoinHostPort("10.0.0.1", port))
		}
	}
	return net.JoinHostPort(strings.ToLower(host), strconv.Itoa(n)), ""
}

func (c *Config) checkGuest(p *problems) {
	g := c.Guest
	if c.IsWitness() && g.File != "" {
		p.add("guest.file", "guest.file is %s, but the witness never runs the guest: remove guest.file", quote(g.File))
	}
	if g.MemoryLimitMiB < 1 || g.MemoryLimitMiB > MaxMemoryLimitMiB {
		p.add("guest.memory_limit_mib", "guest.memory_limit_mib %d is out of range: give 1 to %d (MiB), e.g. memory_limit_mib = %d", g.MemoryLimitMiB, MaxMemoryLimitMiB, DefaultMemoryLimitMiB)
	}
	if g.MaxRequestBytes <= 0 {
		p.add("guest.max_request_bytes", "guest.max_request_bytes %d: give a positive number of bytes, e.g. max_request_bytes = %d", g.MaxRequestBytes, DefaultMaxRequestBytes)
	}
	if g.Fuel <= 0 {
		p.add("guest.fuel", "guest.fuel %d: give a positive budget, e.g. fuel = %d", g.Fuel, DefaultFuel)
	}
	if g.CheckInterval.Duration < 100*time.Millisecond {
		p.add("guest.check_interval", "guest.check_interval %s is too short (each check hashes the whole guest memory): give at least 100ms, e.g. check_interval = %q", quote(g.CheckInterval.String()), DefaultCheckInterval.String())
	}
	if t := g.TickInterval.Duration; t < 0 || (t > 0 && t < MinTickInterval) {
		p.add("guest.tick_interval", "guest.tick_interval %s: give 0 (no tick entries) or at least %s (each tick is a log entry on every member), e.g. tick_interval = \"1s\"", quote(g.TickInterval.String()), MinTickInterval)
	}
}

// checkRaft mirrors hashicorp/raft's ValidateConfig (v1.8.0) with our names.
func (c *Config) checkRaft(p *problems) {
	r := c.Raft
	minimum := func(key string, d Duration, least, example time.Duration) bool {
		if d.Duration < least {
			p.add("raft."+key, "raft.%s %s is too short (raft needs at least %s): use e.g. %s = %q", key, quote(d.String()), least, key, example.String())
			return false
		}
		return true
	}
	hb := minimum("heartbeat_timeout", r.HeartbeatTimeout, 5*time.Millisecond, DefaultHeartbeatTimeout)
	el := minimum("election_timeout", r.ElectionTimeout, 5*time.Millisecond, DefaultElectionTimeout)
	ll := minimum("leader_lease_timeout", r.LeaderLeaseTimeout, 5*time.Millisecond, DefaultLeaderLeaseTimeout)
	minimum("commit_timeout", r.CommitTimeout, time.Millisecond, DefaultCommitTimeout)
	minimum("snapshot_interval", r.SnapshotInterval, 5*time.Millisecond, DefaultSnapshotInterval)
	if hb && el && r.ElectionTimeout.Duration < r.HeartbeatTimeout.Duration {
		p.add("raft.election_timeout", "raft.election_timeout %s is shorter than raft.heartbeat_timeout %s: make it at least %s", quote(r.ElectionTimeout.String()), quote(r.HeartbeatTimeout.String()), quote(r.HeartbeatTimeout.String()))
	}
	if hb && ll && r.LeaderLeaseTimeout.Duration > r.HeartbeatTimeout.Duration {
		p.add("raft.leader_lease_timeout", "raft.leader_lease_timeout %s is longer than raft.heartbeat_timeout %s: make it at most %s", quote(r.LeaderLeaseTimeout.String()), quote(r.HeartbeatTimeout.String()), quote(r.HeartbeatTimeout.String()))
	}
	// TOML integers are int64: a larger value could not be written back.
	if r.SnapshotThreshold == 0 || r.SnapshotThreshold > math.MaxInt64 {
		p.add("raft.snapshot_threshold", "raft.snapshot_threshold %d: give a positive number of entries, e.g. snapshot_threshold = %d", r.SnapshotThreshold, DefaultSnapshotThreshold)
	}
	if r.TrailingLogs == 0 || r.TrailingLogs > math.MaxInt64 {
		p.add("raft.trailing_logs", "raft.trailing_logs %d: give a positive number of entries, e.g. trailing_logs = %d", r.TrailingLogs, DefaultTrailingLogs)
	}
}

// minLinkProbeInterval keeps the prober from spinning.
const minLinkProbeInterval = time.Millisecond

// checkLinks: a link is declared down after down_after without an answer to its probes,
// and its traffic moves to the other link. That must happen before a follower that
// heard nothing stands for election (after raft.heartbeat_timeout, which is at most
// raft.election_timeout), or a single broken link would cost a leader election.
func (c *Config) checkLinks(p *problems) {
	l, r := c.Links, c.Raft
	if l.ProbeInterval.Duration < minLinkProbeInterval {
		p.add("links.probe_interval", "links.probe_interval %s is too short: give at least %s, e.g. probe_interval = %q", quote(l.ProbeInterval.String()), minLinkProbeInterval, DefaultLinkProbeInterval.String())
		return
	}
	if l.DownAfter.Duration <= l.ProbeInterval.Duration {
		p.add("links.down_after", "links.down_after %s is not longer than links.probe_interval %s: a link is declared down only after its probes go unanswered, so give several probe intervals, e.g. down_after = %q (3 × probe_interval)", quote(l.DownAfter.String()), quote(l.ProbeInterval.String()), (3 * l.ProbeInterval.Duration).String())
		return
	}
	why := "a link must be declared down and its traffic moved to the other link before followers start an election, or one broken link costs a leader election"
	switch {
	case r.ElectionTimeout.Duration > 0 && l.DownAfter.Duration >= r.ElectionTimeout.Duration:
		p.add("links.down_after", "links.down_after %s is not shorter than raft.election_timeout %s: %s; make links.down_after shorter (e.g. %q) or raft.election_timeout longer", quote(l.DownAfter.String()), quote(r.ElectionTimeout.String()), why, DefaultLinkDownAfter.String())
	case r.HeartbeatTimeout.Duration > 0 && l.DownAfter.Duration >= r.HeartbeatTimeout.Duration:
		p.add("links.down_after", "links.down_after %s is not shorter than raft.heartbeat_timeout %s (the time after which a follower stands for election): %s; make links.down_after shorter (e.g. %q) or raft.heartbeat_timeout longer", quote(l.DownAfter.String()), quote(r.HeartbeatTimeout.String()), why, DefaultLinkDownAfter.String())
	}
}

func (c *Config) checkTLS(p *problems) {
	t := c.TLS
	switch t.Mode {
	case TLSMutual, TLSOff:
	default:
		p.add("tls.mode", "tls.mode %s: use %q (members authenticate each other with the certificates in tls.dir) or %q (plaintext member links, for measurements only)", quote(t.Mode), TLSMutual, TLSOff)
	}
	if t.Dir == "" {
		missing(p, "tls.dir", quote(DefaultTLSDir), " (the directory holding ca.crt and this member's .crt and .key)")
	}
	if t.ExpiryWarning.Duration <= 0 {
		p.add("tls.expiry_warning", "tls.expiry_warning %s: give a positive duration, e.g. expiry_warning = \"720h\" (30 days)", quote(t.ExpiryWarning.String()))
	}
}

func (c *Config) checkGateway(p *problems) {
	g := c.Gateway
	const how = "give both (a PEM certificate and its private key) for HTTPS, or neither for plain HTTP"
	switch {
	case g.TLSCert != "" && g.TLSKey == "":
		p.add("gateway.tls_key", "gateway.tls_cert is set but gateway.tls_key is missing: %s, e.g. tls_key = %s", how, quote("gateway.key"))
	case g.TLSCert == "" && g.TLSKey != "":
		p.add("gateway.tls_cert", "gateway.tls_key is set but gateway.tls_cert is missing: %s, e.g. tls_cert = %s", how, quote("gateway.crt"))
	}
}

func (c *Config) checkManager(p *problems) {
	if c.Manager.TokenFile == "" {
		missing(p, "manager.token_file", quote(DefaultManagerTokenFile), " (the token the API requires for anything that changes state; ftvs init writes one)")
	}
}

func (c *Config) checkReads(p *problems) {
	switch c.Manager.Reads {
	case "", ReadsOpen, ReadsToken:
	default:
		p.add("manager.reads", "manager.reads %s: use %s (anyone who reaches the port reads status, events and metrics) or %s (a token is needed for them too)", quote(c.Manager.Reads), quote(ReadsOpen), quote(ReadsToken))
	}
}

func (c *Config) checkAlerts(p *problems) {
	a := c.Alerts
	if a.WebhookURL != "" {
		u, err := url.Parse(a.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("alerts.webhook_url", "alerts.webhook_url %s: give an http or https URL, e.g. webhook_url = %s", quote(a.WebhookURL), quote("https://alerts.example.com/ftvs"))
		}
	}
	switch a.MinSeverity {
	case "", "info", "warning", "error":
	default:
		p.add("alerts.min_severity", "alerts.min_severity %s: use info, warning or error (the least severe event sent)", quote(a.MinSeverity))
	}
	if a.TokenFile != "" && a.WebhookURL == "" {
		p.add("alerts.token_file", "alerts.token_file is set but alerts.webhook_url is not: give the webhook's URL, or remove token_file")
	}
}

// Warnings are settings that are valid but weaken the cluster; a member logs them when
// it starts. Call it on a valid Config.
func (c *Config) Warnings() []string {
	var w []string
	if c.TLS.Mode == TLSOff {
		w = append(w, `tls.mode = "off": member-to-member traffic is neither encrypted nor authenticated; use only for measurements`)
	}
	if c.Alerts.TokenFile != "" && strings.HasPrefix(c.Alerts.WebhookURL, "http://") {
		w = append(w, "alerts.token_file is set but alerts.webhook_url is plain http: the token crosses the network unencrypted; use an https URL")
	}
	if c.Gateway.ClientTokenFile != "" && c.Gateway.TLSCert == "" {
		w = append(w, "gateway.client_token_file is set but the gateway serves plain HTTP: clients send their token unencrypted; set gateway.tls_cert and gateway.tls_key")
	}
	for i, m := range c.Members {
		a, _, errA := net.SplitHostPort(m.LinkA)
		b, _, errB := net.SplitHostPort(m.LinkB)
		if errA != nil || errB != nil || !strings.EqualFold(a, b) || isLoopback(a) {
			continue
		}
		w = append(w, fmt.Sprintf("members[%d] (%s): link_a and link_b both use host %s, so they share one network path and one fault can take both down; put link_b on an address of a second network", i, m.Name, a))
	}
	return w
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) checkLog(p *problems) {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "log.level %s: use debug, info, warn or error", quote(c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		p.add("log.format", "log.format %s: use text or json", quote(c.Log.Format))
	}
}

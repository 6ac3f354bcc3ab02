package config

import (
	"fmt"
	"math"
	"net"
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
		for _, f := range []struct{ key, addr string }{{"raft", m.Raft}, {"http", m.HTTP}} {
			field := path + "." + f.key
			if f.addr == "" {
				missing(p, field, quote(exampleAddr(i, f.key)), "")
				continue
			}
			key, err := checkAddr(f.addr, f.key == "raft")
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
			p.add("members", "members: %s is not listed: add a [[members]] table with name = %s, raft = \"host:port\" and http = \"host:port\" (every member's file lists all three)", name, quote(name))
		}
	}
}

func exampleAddr(i int, key string) string {
	port := 7101 + i
	if key == "http" {
		port = 8080 + i
	}
	return fmt.Sprintf("10.0.0.%d:%d", i+1, port)
}

// checkAddr checks a host:port and returns the key under which duplicates collide, or
// what is wrong and the fix. A raft address is dialed by the other members, so it needs
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

package config

// A cluster of real hosts (ftvs init --member): each member's addresses given on the
// command line, and a bundle per member, what its host needs and nothing more.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The ports a member on a real host listens on where its spec gives a host alone.
const (
	DefaultLinkAPort = 7101
	DefaultLinkBPort = 7201
	DefaultHTTPPort  = 8080
)

// ParseMemberSpec reads a member of ftvs init --member: NAME=LINK_A,LINK_B[,HTTP], each
// address a host or host:port (ports default to 7101, 7201 and 8080; http defaults to
// link_a's host). Link a and link b should be on two separate networks.
func ParseMemberSpec(spec string) (Member, error) {
	const form = "NAME=LINK_A,LINK_B[,HTTP] (hosts, or host:port), e.g. coserver1=10.0.0.1,10.0.1.1"
	name, addrs, ok := strings.Cut(spec, "=")
	if !ok || !slices.Contains(MemberNames, name) {
		return Member{}, fmt.Errorf("--member %q: want %s, NAME one of %s", spec, form, strings.Join(MemberNames, ", "))
	}
	parts := strings.Split(addrs, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return Member{}, fmt.Errorf("--member %q: want %s: a member has two links", spec, form)
	}
	if len(parts) == 2 {
		host, _, err := net.SplitHostPort(parts[0])
		if err != nil {
			host = parts[0]
		}
		parts = append(parts, host)
	}
	m := Member{Name: name}
	for i, dst := range []*string{&m.LinkA, &m.LinkB, &m.HTTP} {
		a, err := withPort(parts[i], []int{DefaultLinkAPort, DefaultLinkBPort, DefaultHTTPPort}[i])
		if err != nil {
			return Member{}, fmt.Errorf("--member %q: %s: %v", spec, []string{"link_a", "link_b", "http"}[i], err)
		}
		*dst = a
	}
	return m, nil
}

// withPort is addr with port unless addr has one.
func withPort(addr string, port int) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", fmt.Errorf("empty address")
	}
	if host, p, err := net.SplitHostPort(addr); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || host == "" {
			return "", fmt.Errorf("%q: want host:port with a port from 1 to 65535", addr)
		}
		return addr, nil
	}
	if strings.Contains(addr, ":") && net.ParseIP(addr) == nil {
		return "", fmt.Errorf("%q: not a host or host:port", addr)
	}
	return net.JoinHostPort(addr, strconv.Itoa(port)), nil
}

// checkHosts checks a cluster's members given as specs: the three, once each.
func checkHosts(ms []Member) error {
	for _, name := range MemberNames {
		n := 0
		for _, m := range ms {
			if m.Name == name {
				n++
			}
		}
		if n != 1 {
			return &Error{Field: "--member", Msg: fmt.Sprintf("--member %s=... given %d times: give each of %s once", name, n, strings.Join(MemberNames, ", "))}
		}
	}
	return nil
}

// memberNamed is the member of ms called name.
func memberNamed(ms []Member, name string) (Member, bool) {
	i := slices.IndexFunc(ms, func(m Member) bool { return m.Name == name })
	if i < 0 {
		return Member{}, false
	}
	return ms[i], true
}

// writeBundle writes path, the archive of what member name's host needs: its member
// file, the cluster CA's certificate (not its key), its own key pair and the manager
// token, as `tar -xzf BUNDLE -C /etc/ftvs` lays them out for the member file. The files
// belong to the user ftvs (by name: root's tar gives them to the user the .deb's units
// run as, where it exists), the key and the token readable by it alone.
func (w *initWriter) writeBundle(res *InitResult, name, path string) error {
	files := []struct {
		name, src string
		mode      int64
	}{
		{name + ".toml", res.Files[name], 0o644},
		{"pki/ca.crt", filepath.Join(res.PKIDir, "ca.crt"), 0o644},
		{"pki/" + name + ".crt", filepath.Join(res.PKIDir, name+".crt"), 0o644},
		{"pki/" + name + ".key", filepath.Join(res.PKIDir, name+".key"), 0o600},
		{DefaultManagerTokenFile, res.TokenFile, 0o600},
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	now := time.Now().Truncate(time.Second)
	const owner = "ftvs"
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "pki/", Mode: 0o700, ModTime: now, Uname: owner, Gname: owner}); err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(f.src)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(data)), ModTime: now, Uname: owner, Gname: owner}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return w.writeNew(path, buf.Bytes(), 0o600)
}

package drill

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

// Target is the cluster a drill runs against: its members' base URLs (each serves the
// Manager's API; a CoServer's is also its gateway), the manager token, and the client
// configuration for https.
type Target struct {
	Members map[string]string // coserver1, coserver2, witness
	Token   string
	TLS     *tls.Config

	once   sync.Once
	client *http.Client
}

func (t *Target) http() *http.Client {
	t.once.Do(func() {
		t.client = &http.Client{Transport: &http.Transport{TLSClientConfig: t.TLS, MaxIdleConnsPerHost: 4}}
	})
	return t.client
}

// gateways are the CoServers' base URLs: where the workload sends its requests.
func (t *Target) gateways() []string {
	return []string{t.Members[config.CoServer1], t.Members[config.CoServer2]}
}

// view asks every member for the cluster's view, with hashes of mode, and returns the
// leader's (a member cut off from the others sees them all unreachable), else the first
// that answered.
func (t *Target) view(ctx context.Context, mode cluster.HashMode) (cluster.View, error) {
	names := []string{config.CoServer1, config.CoServer2, config.Witness}
	views := make([]cluster.View, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			c, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			errs[i] = t.do(c, http.MethodGet, name, "/ftvs/v1/cluster?hash="+mode.String(), &views[i])
		})
	}
	wg.Wait()
	for i := range names {
		if errs[i] == nil && views[i].Leader != "" && views[i].AskedVia == views[i].Leader {
			return views[i], nil
		}
	}
	for i := range names {
		if errs[i] == nil {
			return views[i], nil
		}
	}
	return cluster.View{}, fmt.Errorf("no member answers: %w", errors.Join(errs...))
}

// status asks one member for its own status, with the state hash of mode.
func (t *Target) status(ctx context.Context, name string, mode cluster.HashMode) (cluster.Status, error) {
	var st cluster.Status
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return st, t.do(c, http.MethodGet, name, "/ftvs/status?hash="+mode.String(), &st)
}

// announce tells every member that answers of the drill (its banner in the Manager, an
// event); it returns the members that did not take it.
func (t *Target) announce(ctx context.Context, d cluster.Drill) []string {
	body, _ := json.Marshal(d)
	var missed []string
	for _, name := range []string{config.CoServer1, config.CoServer2, config.Witness} {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := t.send(c, http.MethodPost, name, "/ftvs/v1/drill", body, nil); err != nil {
			missed = append(missed, name)
		}
		cancel()
	}
	return missed
}

// post sends a state-changing call (with the manager token) to member name.
func (t *Target) post(ctx context.Context, name, path string) error {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return t.do(c, http.MethodPost, name, path, nil)
}

// do sends one call without a body to member name (send).
func (t *Target) do(ctx context.Context, method, name, path string, out any) error {
	return t.send(ctx, method, name, path, nil, out)
}

// send sends one call to member name, with body as JSON if not nil, and decodes its
// JSON answer into out (if not nil); an answer other than 2xx is an error with the
// member's message.
func (t *Target) send(ctx context.Context, method, name, path string, body []byte, out any) error {
	base, ok := t.Members[name]
	if !ok {
		return fmt.Errorf("no member %s", name)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+t.Token)
	resp, err := t.http().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, path, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(answer, &e)
		return fmt.Errorf("%s %s %s: %s %s", method, name, path, resp.Status, cmp.Or(e.Error, strings.TrimSpace(string(answer))))
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("%s %s: answer is not JSON: %w", name, path, err)
		}
	}
	return nil
}

// faultsEnabled checks that every member serves the fault-injection endpoints: a GET
// of a POST-only route is a 405 where it exists, a 404 where it does not.
func (t *Target) faultsEnabled(ctx context.Context) error {
	var off []string
	for _, name := range []string{config.CoServer1, config.CoServer2, config.Witness} {
		for _, path := range []string{"/ftvs/v1/faults/process", "/ftvs/v1/faults/link", "/ftvs/v1/faults/disk"} {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			req, _ := http.NewRequestWithContext(c, http.MethodGet, t.Members[name]+path, nil)
			resp, err := t.http().Do(req)
			cancel()
			if err != nil {
				return fmt.Errorf("%s does not answer: %w", name, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				off = append(off, name)
				break
			}
		}
	}
	if len(off) > 0 {
		return fmt.Errorf("fault injection is not enabled on %s: start every member with --allow-fault-injection (ftvs demo --allow-fault-injection does), on a staging cluster only", strings.Join(off, " and "))
	}
	return nil
}

// resolve names the member that plays role in view v.
func resolve(v cluster.View, role string) (string, error) {
	switch role {
	case RoleWitness:
		return config.Witness, nil
	case RoleLeader, RoleFollower:
		if v.Leader != config.CoServer1 && v.Leader != config.CoServer2 {
			return "", fmt.Errorf("no CoServer leads (leader %q)", v.Leader)
		}
		if role == RoleLeader {
			return v.Leader, nil
		}
		return otherCoServer(v.Leader), nil
	}
	return "", fmt.Errorf("unknown role %q", role)
}

func otherCoServer(name string) string {
	if name == config.CoServer1 {
		return config.CoServer2
	}
	return config.CoServer1
}

// peersOf are the members other than name.
func peersOf(name string) []string {
	return slices.DeleteFunc([]string{config.CoServer1, config.CoServer2, config.Witness}, func(p string) bool { return p == name })
}

// linkPath is the fault-injection call that cuts or restores member's link(s) to peer.
func linkPath(peer, link, action string) string {
	return "/ftvs/v1/faults/link?" + url.Values{"peer": {peer}, "link": {link}, "action": {action}}.Encode()
}

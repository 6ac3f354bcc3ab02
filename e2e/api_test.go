package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
	"github.com/ftvs/ftvs/internal/events"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/vserver"
)

// The Manager JSON API, v1 (internal/manager/API.md), on one real cluster: every endpoint a
// member serves on its public HTTP port, its good answer and its refusals. What other
// tests cover in depth (disable and enable under load, the start without quorum, link
// faults, the event stream under link cuts, metrics) gets one request each here.
func TestManagerAPI(t *testing.T) {
	c := newCluster(t, "--allow-fault-injection", "--check-interval", "1s")
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)
	cs1, cs2, w := config.CoServer1, config.CoServer2, config.Witness
	u1, u2, uw := c.url(cs1), c.url(cs2), c.url(w)
	tok, err := os.ReadFile(filepath.Join(c.dir, "manager.token"))
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + strings.TrimSpace(string(tok))
	members := []string{cs1, cs2, w}
	coservers := "[coserver1 coserver2]" // how refusals name the CoServers

	// --- The read side: open to anyone, JSON.

	for _, tc := range []struct {
		member string
		kind   ftcluster.Kind
		vs     vserver.Status
	}{
		{cs1, ftcluster.KindCoServer, vserver.StatusRunning}, {cs2, ftcluster.KindCoServer, vserver.StatusRunning}, {w, ftcluster.KindWitness, vserver.StatusNone},
	} {
		var st ftcluster.Status
		apiCall(t, "GET", c.url(tc.member)+"/ftvs/health", "", "").ok(t, &st)
		if st.Member != tc.member || st.Kind != tc.kind || st.VirtualServer != tc.vs || st.PID == 0 || st.Version == "" {
			t.Errorf("GET /ftvs/health on %s: name %q kind %q virtual_server %q pid %d version %q", tc.member, st.Member, st.Kind, st.VirtualServer, st.PID, st.Version)
		}
	}

	// The state hash a status carries by default is the one the CoServer computed at its
	// last comparison point (a check entry, every second here), with the applied index
	// it describes: none before the first.
	apiEventually(t, func(fail func(string, ...any)) {
		for _, u := range []string{u1, u2} {
			var st ftcluster.Status
			apiCall(t, "GET", u+"/ftvs/v1/status", "", "").ok(t, &st)
			if len(st.StateHash) != 64 || st.StateHashIndex == 0 || st.StateHashIndex > st.AppliedIndex {
				fail("GET %s/ftvs/v1/status: no checked state hash yet: %q at %d, applied %d", u, st.StateHash, st.StateHashIndex, st.AppliedIndex)
			}
		}
	})

	// /ftvs/status (the original: any hash value but 0 and live means the checked hash)
	// and /ftvs/v1/status (strict: 0, 1 or live). hash=live hashes the state now, with
	// the manager token: at the applied index of the same answer.
	for _, tc := range []struct {
		path, auth string
		wantHash   bool
	}{
		{"/ftvs/status", "", true}, {"/ftvs/status?hash=0", "", false}, {"/ftvs/status?hash=2", "", true},
		{"/ftvs/v1/status", "", true}, {"/ftvs/v1/status?hash=1", "", true}, {"/ftvs/v1/status?hash=0", "", false},
		{"/ftvs/status?hash=live", auth, true}, {"/ftvs/v1/status?hash=live", auth, true},
	} {
		var st ftcluster.Status
		apiCall(t, "GET", u1+tc.path, tc.auth, "").ok(t, &st)
		if st.Member != cs1 || st.Kind != ftcluster.KindCoServer || !slices.Contains([]ftcluster.Role{ftcluster.RoleLeader, ftcluster.RoleFollower, ftcluster.RoleCandidate}, st.Role) || st.Module != "kv" ||
			(st.StateHash != "") != tc.wantHash || (st.StateHashIndex != 0) != tc.wantHash || st.StateHashIndex > st.AppliedIndex ||
			tc.auth != "" && st.StateHashIndex != st.AppliedIndex || len(st.Links) != 4 || len(st.Voters) != 3 {
			t.Errorf("GET %s: name %q role %q module %q state_hash %q at %d, applied %d (want one: %v) links %d voters %v",
				tc.path, st.Member, st.Role, st.Module, st.StateHash, st.StateHashIndex, st.AppliedIndex, tc.wantHash, len(st.Links), st.Voters)
		}
	}
	// Hashing the live state is costly (the whole guest memory): no client may make a
	// member do it without the manager token, not even on the lenient originals.
	for _, path := range []string{"/ftvs/status?hash=live", "/ftvs/v1/status?hash=live", "/ftvs/cluster?hash=live",
		"/ftvs/v1/cluster?hash=live", "/ftvs/v1/members?hash=live", "/ftvs/v1/virtual-server?hash=live"} {
		for _, tc := range []struct{ auth, want string }{{"", "missing credentials"}, {"Bearer wrong-token", "wrong token"}} {
			a := apiCall(t, "GET", uw+path, tc.auth, "")
			a.jsonErr(t, http.StatusUnauthorized, tc.want, "GET "+strings.Split(path, "?")[0]+"?hash=live", `"Authorization: Bearer TOKEN"`, "hash=1")
			if got := a.hdr.Get("WWW-Authenticate"); got != `Bearer realm="ftvs"` {
				t.Errorf("GET %s: WWW-Authenticate %q", path, got)
			}
		}
	}

	// The whole cluster, asked via any member: the original and v1 give the same view.
	// Answers that depend on the cluster's state (mode, leader, links up) are asked again
	// for a while: on a loaded machine a member can stall and cause an election.
	// With hash=live, the member gathering sends the token on to its peers.
	for _, tc := range []struct {
		via, path, auth string
		wantHash        bool
	}{
		{cs1, "/ftvs/cluster", "", true}, {cs1, "/ftvs/cluster?hash=0", "", false},
		{w, "/ftvs/v1/cluster", "", true}, {cs2, "/ftvs/v1/cluster?hash=0", "", false},
		{w, "/ftvs/v1/cluster?hash=live", auth, true}, {cs2, "/ftvs/cluster?hash=live", auth, true},
	} {
		apiEventually(t, func(fail func(string, ...any)) {
			var v ftcluster.View
			apiCall(t, "GET", c.url(tc.via)+tc.path, tc.auth, "").ok(t, &v)
			if v.Mode != ftcluster.ModeDuplex || v.AskedVia != tc.via || (v.Leader != cs1 && v.Leader != cs2) || len(v.Unreachable) != 0 ||
				!slices.Equal(memberNames(v.Members), members) || len(v.Links) != 12 {
				fail("GET %s via %s: %s; %d links", tc.path, tc.via, describeView(v), len(v.Links))
			}
			for _, m := range v.Members {
				if m.Kind == ftcluster.KindCoServer && ((m.StateHash != "") != tc.wantHash || m.StateHashIndex > m.AppliedIndex ||
					tc.auth != "" && m.StateHashIndex != m.AppliedIndex) {
					fail("GET %s via %s: %s has state_hash %q at %d, applied %d; want one: %v", tc.path, tc.via, m.Member, m.StateHash, m.StateHashIndex, m.AppliedIndex, tc.wantHash)
				}
			}
		})
	}

	// /ftvs/v1/members: the members and who could not be reached ([] when all answer).
	type membersAnswer struct {
		AskedVia    string             `json:"asked_via"`
		Unreachable []string           `json:"unreachable"`
		Members     []ftcluster.Status `json:"members"`
	}
	apiEventually(t, func(fail func(string, ...any)) {
		var ms membersAnswer
		a := apiCall(t, "GET", u2+"/ftvs/v1/members?hash=0", "", "")
		a.ok(t, &ms)
		a.wantKeys(t, "asked_via", "members", "unreachable")
		if ms.AskedVia != cs2 || a.raw(t, "unreachable") != "[]" || !slices.Equal(memberNames(ms.Members), members) {
			fail("GET /ftvs/v1/members via coserver2: %s", a)
		}
	})

	// /ftvs/v1/links: every link as each end sees it; it never computes state hashes, so it
	// ignores ?hash.
	type linksAnswer struct {
		AskedVia    string           `json:"asked_via"`
		Unreachable []string         `json:"unreachable"`
		Links       []ftcluster.Link `json:"links"`
	}
	for _, path := range []string{"/ftvs/v1/links", "/ftvs/v1/links?hash=2"} {
		apiEventually(t, func(fail func(string, ...any)) {
			var ls linksAnswer
			a := apiCall(t, "GET", u1+path, "", "")
			a.ok(t, &ls)
			a.wantKeys(t, "asked_via", "links", "unreachable")
			if ls.AskedVia != cs1 || a.raw(t, "unreachable") != "[]" || len(ls.Links) != 12 {
				fail("GET %s: %s", path, a)
			}
			seen := map[string]bool{}
			for _, l := range ls.Links {
				seen[l.From+">"+l.To+":"+l.Link] = true
				if l.From == l.To || (l.Link != "a" && l.Link != "b") || l.Addr == "" || l.State != link.Up {
					fail("GET %s: link %+v", path, l)
				}
			}
			if len(seen) != 12 {
				fail("GET %s: %d distinct links, want 12 (3 members x 2 peers x 2 links): %v", path, len(seen), seen)
			}
		})
	}

	// /ftvs/v1/virtual-server: the service, its facts from the leader's copy.
	for _, tc := range []struct {
		via, path, auth string
		wantHash        bool
	}{{cs1, "/ftvs/v1/virtual-server", "", true}, {w, "/ftvs/v1/virtual-server?hash=0", "", false}, {w, "/ftvs/v1/virtual-server?hash=live", auth, true}} {
		apiEventually(t, func(fail func(string, ...any)) {
			var vs apiVirtualServer
			a := apiCall(t, "GET", c.url(tc.via)+tc.path, tc.auth, "")
			a.ok(t, &vs)
			if vs.Mode != ftcluster.ModeDuplex || (vs.Leader != cs1 && vs.Leader != cs2) || vs.Module != "kv" || len(vs.ModuleSHA256) != 64 ||
				vs.AppliedIndex == 0 || (vs.StateHash != "") != tc.wantHash || (vs.StateHashIndex != 0) != tc.wantHash || vs.StateHashIndex > vs.AppliedIndex ||
				a.raw(t, "unreachable") != "[]" || len(vs.CoServers) != 2 {
				fail("GET %s via %s: %s", tc.path, tc.via, a)
				return
			}
			for i, cp := range vs.CoServers {
				if cp.Name != []string{cs1, cs2}[i] || cp.VirtualServer != vserver.StatusRunning || cp.AppliedIndex == 0 || cp.MemoryBytes == 0 ||
					(cp.StateHash != "") != tc.wantHash || cp.StateHashIndex > cp.AppliedIndex || tc.auth != "" && cp.StateHashIndex != cp.AppliedIndex {
					fail("GET %s via %s: copy %+v", tc.path, tc.via, cp)
				}
				if cp.Name == vs.Leader && (cp.StateHash != vs.StateHash || cp.StateHashIndex != vs.StateHashIndex || cp.AppliedIndex != vs.AppliedIndex) {
					fail("GET %s: the virtual server's facts (index %d, hash %q) are not the leader's copy's %+v", tc.path, vs.AppliedIndex, vs.StateHash, cp)
				}
			}
		})
	}

	// --- Events. Restoring an intact link is harmless and records link.fault_injected:
	// events on demand.
	const faultRestore = "/ftvs/v1/faults/link?peer=coserver2&link=b&action=restore"
	for range 2 {
		var echo map[string]string
		apiCall(t, "POST", u1+faultRestore, auth, "").ok(t, &echo)
		if echo["peer"] != cs2 || echo["link"] != "b" || echo["action"] != "restore" || len(echo) != 3 {
			t.Fatalf("POST %s: %v", faultRestore, echo)
		}
	}
	faults := apiEvents(t, u1+"/ftvs/v1/events?code=link.fault_injected", cs1)
	if len(faults) < 2 {
		t.Fatalf("%d link.fault_injected events on coserver1, want 2", len(faults))
	}
	e1, e2 := faults[len(faults)-2], faults[len(faults)-1]
	for i, e := range faults {
		if e.Code != "link.fault_injected" || e.Member != cs1 || e.Severity != events.SeverityWarning || e.Details["peer"] != cs2 ||
			(i > 0 && e.Seq <= faults[i-1].Seq) {
			t.Errorf("fault event %d: %+v", i, e)
		}
	}
	since := url.QueryEscape(e2.Time.Format(time.RFC3339Nano))
	for _, tc := range []struct {
		query string
		check func([]events.Event) bool
	}{
		{"limit=1", func(es []events.Event) bool { return len(es) == 1 && es[0].Seq >= e2.Seq }},
		{"code=link.fault_injected&after=" + strconv.FormatUint(e1.Seq, 10),
			func(es []events.Event) bool { return len(es) == 1 && es[0].Seq == e2.Seq }},
		{"code=link.fault_injected&since=" + since, func(es []events.Event) bool { return len(es) == 1 && es[0].Seq == e2.Seq }},
		{"code=member.started,link.fault_injected", func(es []events.Event) bool {
			return slices.Equal(eventCodes(es), []string{"link.fault_injected", "member.started"})
		}},
		{"code=member.started&code=link.fault_injected&limit=0", func(es []events.Event) bool { // limit=0: the default (1000)
			return slices.Equal(eventCodes(es), []string{"link.fault_injected", "member.started"})
		}},
		{"severity=warning&code=member.started", func(es []events.Event) bool { return len(es) == 0 }},
		{"severity=info&code=member.started", func(es []events.Event) bool { return len(es) >= 1 }},
		{"severity=error", func(es []events.Event) bool {
			return !slices.ContainsFunc(es, func(e events.Event) bool { return e.Severity != events.SeverityError })
		}},
		{"since=2999-01-01T00:00:00Z", func(es []events.Event) bool { return len(es) == 0 }},
	} {
		if es := apiEvents(t, u1+"/ftvs/v1/events?"+tc.query, cs1); !tc.check(es) {
			t.Errorf("GET /ftvs/v1/events?%s: unexpected %d events %v (the last two fault events are seq %d and %d)",
				tc.query, len(es), eventSeqs(es), e1.Seq, e2.Seq)
		}
	}
	// No events is [] (not null).
	if a := apiCall(t, "GET", u1+"/ftvs/v1/events?since=2999-01-01T00:00:00Z", "", ""); a.raw(t, "events") != "[]" || a.raw(t, "member") != `"coserver1"` {
		t.Errorf("no events: %s", a)
	}
	// scope=cluster: every member's, merged by time.
	apiEventually(t, func(fail func(string, ...any)) {
		var merged apiClusterEvents
		a := apiCall(t, "GET", uw+"/ftvs/v1/events?scope=cluster&code=member.started", "", "")
		a.ok(t, &merged)
		a.wantKeys(t, "asked_via", "events", "scope", "unreachable")
		if merged.AskedVia != w || merged.Scope != "cluster" || a.raw(t, "unreachable") != "[]" ||
			!slices.Equal(eventMembers(merged.Events), []string{cs1, cs2, w}) || !timeOrdered(merged.Events) {
			fail("GET /ftvs/v1/events?scope=cluster via the witness: %s", a)
		}
	})

	// The stream: past events after Last-Event-ID, then live ones; ?after wins over the header.
	stream := func(query string, header ...string) (<-chan sseFrame, func()) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", u1+"/ftvs/v1/events/stream?"+query, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
			cancel()
			t.Fatalf("GET /ftvs/v1/events/stream?%s: %s, Content-Type %q", query, resp.Status, resp.Header.Get("Content-Type"))
		}
		closeIt := func() { cancel(); resp.Body.Close() }
		t.Cleanup(closeIt) // also when a check below ends the test
		return sseFrames(ctx, resp.Body), closeIt
	}
	next := func(frames <-chan sseFrame, what string) sseFrame {
		t.Helper()
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("%s: the stream ended", what)
			}
			var e events.Event
			if err := json.Unmarshal([]byte(f.data), &e); err != nil || strconv.FormatUint(e.Seq, 10) != f.id || e.Code != f.event {
				t.Fatalf("%s: frame id %q event %q does not match its data %s (%v)", what, f.id, f.event, f.data, err)
			}
			return f
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no event within 10s", what)
		}
		return sseFrame{}
	}
	frames, closeStream := stream("code=link.fault_injected", "Last-Event-ID", strconv.FormatUint(e1.Seq, 10))
	if f := next(frames, "resumed stream"); f.id != strconv.FormatUint(e2.Seq, 10) || f.event != "link.fault_injected" {
		t.Errorf("stream with Last-Event-ID %d began with id %s (%s), want %d", e1.Seq, f.id, f.event, e2.Seq)
	}
	apiCall(t, "POST", u1+faultRestore, auth, "").ok(t, &map[string]string{})
	live := next(frames, "live event")
	if n, _ := strconv.ParseUint(live.id, 10, 64); n <= e2.Seq || live.event != "link.fault_injected" {
		t.Errorf("live event id %s (%s), want a link.fault_injected after %d", live.id, live.event, e2.Seq)
	}
	closeStream()
	frames, closeStream = stream("code=link.fault_injected&after="+strconv.FormatUint(e2.Seq, 10), "Last-Event-ID", strconv.FormatUint(e1.Seq, 10))
	if f := next(frames, "stream with ?after"); f.id != live.id {
		t.Errorf("stream with ?after=%d and Last-Event-ID %d began with id %s, want %s", e2.Seq, e1.Seq, f.id, live.id)
	}
	closeStream()

	// --- Metrics and the web UI.
	for _, m := range []struct {
		member string
		kind   ftcluster.Kind
	}{{cs1, ftcluster.KindCoServer}, {w, ftcluster.KindWitness}} {
		a := apiCall(t, "GET", c.url(m.member)+"/metrics", "", "")
		if a.code != 200 || !strings.HasPrefix(a.hdr.Get("Content-Type"), "text/plain; version=0.0.4") ||
			!contains(string(a.body), fmt.Sprintf(`ftvs_member_info{kind=%q,member=%q,`, m.kind, m.member), "\nftvs_applied_index ") {
			t.Errorf("GET /metrics on %s: %d %q\n%.300s", m.member, a.code, a.hdr.Get("Content-Type"), a.body)
		}
	}
	for _, base := range []string{u2, uw} {
		if a := apiCall(t, "GET", base+"/ftvs/ui/", "", ""); a.code != 200 || !strings.HasPrefix(a.hdr.Get("Content-Type"), "text/html") ||
			!contains(string(a.body), "<title>ftvs Manager</title>") {
			t.Errorf("GET %s/ftvs/ui/: %d %q %.200s", base, a.code, a.hdr.Get("Content-Type"), a.body)
		}
		if a := apiCall(t, "GET", base+"/ftvs/ui", "", ""); a.code != http.StatusMovedPermanently || a.hdr.Get("Location") != "/ftvs/ui/" {
			t.Errorf("GET %s/ftvs/ui: %d Location %q, want 301 to /ftvs/ui/", base, a.code, a.hdr.Get("Location"))
		}
	}

	// --- Refusals.

	// Every POST needs the manager token, exactly "Bearer TOKEN". The bodies would change
	// the cluster if the token were not checked: afterwards, no member may have recorded
	// any of that.
	beforeAuth := time.Now()
	leader := c.leaderCoServer()
	posts := []struct{ path, body string }{
		{"/ftvs/v1/coservers/coserver2/disable", ""},
		{"/ftvs/v1/coservers/coserver1/sync", ""},
		{"/ftvs/v1/coservers/coserver2/enable", ""},
		{"/ftvs/v1/leadership/transfer", `{"to": "` + otherCoServer(leader) + `"}`},
		{"/ftvs/v1/override/start-without-quorum", `{"coserver": "coserver1", "confirm": "coserver1"}`},
		{"/ftvs/v1/faults/link?peer=coserver2&link=a&action=cut", ""},
		{"/ftvs/v1/snapshot/save", ""},
		{"/ftvs/v1/snapshot/restore", "FTVS-BACKUP 1\n"},
	}
	for _, p := range posts {
		for _, tc := range []struct{ name, auth, want string }{
			{"none", "", "missing credentials"},
			{"wrong", "Bearer wrong-token", "wrong token"},
			{"no scheme", strings.TrimPrefix(auth, "Bearer "), "wrong token"},
			{"basic", "Basic " + strings.TrimPrefix(auth, "Bearer "), "wrong token"},
			{"longer", auth + "x", "wrong token"},
		} {
			t.Run("auth "+tc.name+" "+p.path, func(t *testing.T) {
				a := apiCall(t, "POST", u1+p.path, tc.auth, p.body)
				a.jsonErr(t, http.StatusUnauthorized, tc.want, "POST "+strings.Split(p.path, "?")[0], `"Authorization: Bearer TOKEN"`)
				if got := a.hdr.Get("WWW-Authenticate"); got != `Bearer realm="ftvs"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
			})
		}
	}
	// Reads need no token, and a wrong one does not hurt them.
	apiCall(t, "GET", u1+"/ftvs/v1/status?hash=0", "Bearer wrong-token", "").ok(t, &ftcluster.Status{})
	apiEventually(t, func(fail func(string, ...any)) {
		var changed apiClusterEvents
		apiCall(t, "GET", u1+"/ftvs/v1/events?scope=cluster&code=vs.disabled,vs.enabled,sync.forced,leadership.transferred,override.refused,override.started,link.fault_injected&since="+
			url.QueryEscape(beforeAuth.UTC().Format(time.RFC3339Nano)), "", "").ok(t, &changed)
		if len(changed.Events) != 0 || len(changed.Unreachable) != 0 {
			fail("requests without the right token left events (or a member did not answer %v): %+v", changed.Unreachable, changed.Events)
		}
	})

	// Bad query parameters: 400, naming the parameter and the bad value.
	for _, tc := range []struct{ path, param string }{
		{"/ftvs/v1/status?hash=2", `hash="2"`},
		{"/ftvs/v1/cluster?hash=yes", `hash="yes"`},
		{"/ftvs/v1/members?hash=2", `hash="2"`},
		{"/ftvs/v1/virtual-server?hash=2", `hash="2"`},
		{"/ftvs/v1/events?severity=loud", `severity="loud"`},
		{"/ftvs/v1/events?since=yesterday", `since="yesterday"`},
		{"/ftvs/v1/events?limit=-1", `limit="-1"`},
		{"/ftvs/v1/events?limit=99999999999999999999", `limit="99999999999999999999"`},
		{"/ftvs/v1/events?after=x", `after="x"`},
		{"/ftvs/v1/events?scope=x", `scope="x"`},
		{"/ftvs/v1/events?scope=cluster&limit=-1", `limit="-1"`},
		{"/ftvs/v1/events/stream?severity=loud", `severity="loud"`},
		{"/ftvs/v1/events/stream?since=yesterday", `since="yesterday"`},
	} {
		t.Run("query "+tc.path, func(t *testing.T) {
			apiCall(t, "GET", u1+tc.path, "", "").jsonErr(t, http.StatusBadRequest, tc.param)
		})
	}

	// Unknown paths: 404. Known paths with the wrong method: 405 naming the methods
	// (and an Allow header). Both in the API's JSON error shape.
	for _, tc := range []struct{ method, path, auth string }{
		{"GET", "/ftvs/v1/nothing", ""},
		{"GET", "/ftvs/v2/status", ""},
		{"GET", "/ftvs/v1/coservers/coserver2", ""},
		{"POST", "/ftvs/v1/coservers/coserver2/enable/now", auth},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			apiCall(t, tc.method, u1+tc.path, tc.auth, "").jsonErr(t, http.StatusNotFound, "no such ftvs endpoint "+tc.method+" "+tc.path)
		})
	}
	for _, tc := range []struct{ method, path, auth, allow string }{
		{"GET", "/ftvs/v1/coservers/coserver2/enable", "", "POST"},
		{"GET", "/ftvs/v1/leadership/transfer", "", "POST"},
		{"GET", "/ftvs/v1/override/start-without-quorum", "", "POST"},
		{"GET", "/ftvs/v1/faults/link", "", "POST"},
		{"POST", "/ftvs/v1/status", auth, "GET"},
		{"PUT", "/ftvs/v1/members", auth, "GET"},
		{"DELETE", "/ftvs/v1/events", auth, "GET"},
		{"POST", "/metrics", "", "GET"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			a := apiCall(t, tc.method, u1+tc.path, tc.auth, "")
			a.jsonErr(t, http.StatusMethodNotAllowed, tc.method+" "+tc.path+": use "+tc.allow)
			if got := a.hdr.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
	// /metrics is the member's for every method: never a request for the guest.
	apiCall(t, "POST", uw+"/metrics", "", "").jsonErr(t, http.StatusMethodNotAllowed, "use GET")

	// Bad actions, with the token: JSON errors.
	for _, tc := range []struct {
		on, path, body string
		code           int
		want           []string
	}{
		{cs1, "/ftvs/v1/coservers/coserver3/enable", "", 404, []string{`no CoServer "coserver3"`, coservers}},
		{cs1, "/ftvs/v1/coservers/witness/disable", "", 404, []string{`no CoServer "witness"`, coservers}},
		{w, "/ftvs/v1/coservers/coserver3/reboot", "", 404, []string{`no CoServer "coserver3"`, coservers}},
		{cs1, "/ftvs/v1/coservers/coserver2/reboot", "", 404, []string{`no action "reboot"`, "disable, enable or sync"}},
		{cs1, "/ftvs/v1/leadership/transfer", `{"to":`, 400, []string{`the body must be JSON like {"to": "coserver2"}`}},
		{cs1, "/ftvs/v1/leadership/transfer", ``, 400, []string{`the body must be JSON like`}},
		{cs1, "/ftvs/v1/leadership/transfer", `["coserver2"]`, 400, []string{`the body must be JSON like`}},
		{cs1, "/ftvs/v1/leadership/transfer", `{"to": "` + strings.Repeat("x", 5000) + `"}`, 400, []string{"request body too large"}},
		{cs1, "/ftvs/v1/leadership/transfer", `{}`, 400, []string{`"to": "" is not a CoServer`, coservers}},
		{w, "/ftvs/v1/leadership/transfer", `{"to": "witness"}`, 400, []string{`"to": "witness" is not a CoServer`, coservers}},
		{cs1, "/ftvs/v1/override/start-without-quorum", `nope`, 400, []string{`the body must be JSON like {"coserver": "coserver1", "confirm": "coserver1"}`}},
		{cs1, "/ftvs/v1/override/start-without-quorum", `{"coserver": "witness", "confirm": "witness"}`, 400, []string{`"coserver": "witness" is not a CoServer`, coservers}},
		{cs1, "/ftvs/v1/override/start-without-quorum", `{"coserver": "coserver1", "confirm": "yes"}`, 400, []string{`"confirm" must repeat`}},
		{cs1, "/ftvs/v1/override/start-without-quorum", `{"coserver": "coserver2", "confirm": "coserver2"}`, 409, []string{"own Manager", u2}},
		{cs1, "/ftvs/v1/override/start-without-quorum", `{"coserver": "coserver1", "confirm": "coserver1"}`, 409, []string{"refused: ", "so the cluster is not down to coserver1 alone"}},
		{w, "/ftvs/v1/override/start-without-quorum", `{"coserver": "coserver1", "confirm": "coserver1"}`, 409, []string{"only a CoServer of a pair"}},
		{cs1, "/ftvs/v1/faults/link?peer=coserver2&link=a&action=explode", "", 400, []string{`action "explode"`, "action=cut or action=restore"}},
		{cs1, "/ftvs/v1/faults/link?peer=nobody&link=a&action=cut", "", 400, []string{`"nobody": unknown member`}},
		{cs1, "/ftvs/v1/faults/link?peer=coserver2&link=c&action=cut", "", 400, []string{`link "c": unknown link`}},
		{w, "/ftvs/v1/snapshot/save", "", 409, []string{"witness, which holds no guest state", "on the leader CoServer"}},
		{otherCoServer(leader), "/ftvs/v1/snapshot/save", "", 409, []string{"is not the leader", `the leader is "` + leader + `"`}},
		{otherCoServer(leader), "/ftvs/v1/snapshot/restore", "FTVS-BACKUP 1\n", 409, []string{"is not the leader"}},
	} {
		t.Run("action "+tc.on+" "+tc.path+" "+trimTo(tc.body, 40), func(t *testing.T) {
			apiCall(t, "POST", c.url(tc.on)+tc.path, auth, tc.body).jsonErr(t, tc.code, tc.want...)
		})
	}
	// Fault injection exists only where --allow-fault-injection was given (not the witness).
	apiCall(t, "POST", uw+faultRestore, auth, "").jsonErr(t, http.StatusNotFound, "no such ftvs endpoint POST /ftvs/v1/faults/link")

	// --- The actions, one request each (actions_test.go and override_test.go go deeper).
	// A member stalled on this shared machine can make a healthy cluster refuse once
	// (409, 502, 503); apiSettled asks again for a while.
	var rep apiReply
	apiSettled(t, "POST", uw+"/ftvs/v1/coservers/coserver2/enable", auth, "").ok(t, &rep) // relayed by the witness
	if rep.Message != "coserver2 is already enabled" {
		t.Errorf("enable an enabled CoServer: %+v", rep)
	}
	apiSettled(t, "POST", uw+"/ftvs/v1/coservers/coserver2/disable", auth, "").ok(t, &rep)
	if !contains(rep.Message, "coserver2 is disabled", "coserver1 runs the virtual server alone") &&
		rep.Message != "coserver2 is already disabled" { // a retry after an answer lost in a stall
		t.Errorf("disable coserver2: %+v", rep)
	}
	// A disabled CoServer is unhealthy (503, with its status) and the cluster simplex.
	var st ftcluster.Status
	if a := apiCall(t, "GET", u2+"/ftvs/health", "", ""); a.code != http.StatusServiceUnavailable || json.Unmarshal(a.body, &st) != nil || st.VirtualServer != vserver.StatusDisabled {
		t.Errorf("GET /ftvs/health on the disabled coserver2: %s", a)
	}
	if _, err := c.waitModeVia(ftcluster.ModeSimplex, 10*time.Second, cs1); err != nil {
		t.Fatal(err)
	}
	apiCall(t, "POST", u2+"/ftvs/v1/coservers/coserver1/disable", auth, "").jsonErr(t, http.StatusConflict, "coserver1 is the only CoServer running", "disabling it would stop the service")
	apiSettled(t, "POST", u1+"/ftvs/v1/coservers/coserver2/enable", auth, "").ok(t, &rep)
	if !contains(rep.Message, "coserver2 is enabled") && rep.Message != "coserver2 is already enabled" {
		t.Errorf("enable coserver2: %+v", rep)
	}
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)

	leader = c.leaderCoServer()
	to := otherCoServer(leader)
	// Relayed to the leader. On a loaded machine raft's transfer can time out (500): ask again.
	apiSettled(t, "POST", c.url(to)+"/ftvs/v1/leadership/transfer", auth, `{"to": "`+to+`"}`,
		http.StatusConflict, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusInternalServerError).ok(t, &rep)
	if rep.Message != to+" leads now" && rep.Message != to+" already leads" { // "already": a retry after an answer lost in a stall
		t.Errorf("transfer leadership from %s to %s: %+v", leader, to, rep)
	}
	waitLeader(t, c, to)
	apiSettled(t, "POST", uw+"/ftvs/v1/leadership/transfer", auth, `{"to": "`+to+`"}`).ok(t, &rep)
	if rep.Message != to+" already leads" && rep.Message != to+" leads now" { // "leads now" if a stall moved it in between
		t.Errorf("transfer leadership to the leader %s: %+v", to, rep)
	}

	// A forced sync restarts coserver2's raft. On a loaded machine a stall can close the
	// link that carries the relayed request, and the answer is lost (502) whether or not
	// the sync went ahead. coserver2's sync.forced event says which. Ask again only
	// when there is none.
	beforeSync := time.Now()
	syncForced := func() []events.Event {
		return apiEvents(t, u2+"/ftvs/v1/events?code=sync.forced&since="+url.QueryEscape(beforeSync.UTC().Format(time.RFC3339Nano)), cs2)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		a := apiSettled(t, "POST", u1+"/ftvs/v1/coservers/coserver2/sync", auth, "", http.StatusConflict, http.StatusServiceUnavailable)
		if a.code == http.StatusOK {
			a.ok(t, &rep)
			if !contains(rep.Message, "coserver2 discarded its copy") {
				t.Errorf("sync coserver2: %+v", rep)
			}
			break
		}
		if a.code != http.StatusBadGateway || time.Now().After(deadline) {
			t.Fatalf("sync coserver2: %s", a)
		}
		t.Logf("the answer to the sync was lost: %s", a)
		time.Sleep(2 * time.Second)
		if len(syncForced()) > 0 {
			break
		}
	}
	apiEventually(t, func(fail func(string, ...any)) {
		if es := syncForced(); len(es) == 0 {
			fail("no sync.forced event on coserver2 since the sync was asked")
		}
	})
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)

	// --- coserver2 killed: asked via coserver1, every gathering endpoint names it
	// unreachable and answers with the rest.
	c.kill(cs2)
	if _, err := c.waitModeVia(ftcluster.ModeSimplex, 15*time.Second, cs1); err != nil {
		t.Fatal(err)
	}
	apiEventually(t, func(fail func(string, ...any)) {
		var ms membersAnswer
		a := apiCall(t, "GET", u1+"/ftvs/v1/members?hash=0", "", "")
		a.ok(t, &ms)
		if a.raw(t, "unreachable") != `["coserver2"]` || !slices.Equal(memberNames(ms.Members), members) {
			fail("GET /ftvs/v1/members with coserver2 dead: %s", a)
		}
		for _, m := range ms.Members {
			if unreachable := m.Role == ftcluster.RoleUnreachable; unreachable != (m.Member == cs2) || unreachable && (m.Error == "" || m.VirtualServer != vserver.StatusUnknown) {
				fail("GET /ftvs/v1/members with coserver2 dead: %s is %s (virtual_server %q, error %q)", m.Member, m.Role, m.VirtualServer, m.Error)
			}
		}
	})
	apiEventually(t, func(fail func(string, ...any)) {
		var vs apiVirtualServer
		a := apiCall(t, "GET", u1+"/ftvs/v1/virtual-server", "", "")
		a.ok(t, &vs)
		if a.raw(t, "unreachable") != `["coserver2"]` || vs.Mode != ftcluster.ModeSimplex || vs.Leader != cs1 || vs.StateHash == "" ||
			!slices.ContainsFunc(vs.CoServers, func(cp apiVirtualServerCopy) bool { return cp.Name == cs1 && cp.VirtualServer == vserver.StatusRunning }) ||
			!slices.ContainsFunc(vs.CoServers, func(cp apiVirtualServerCopy) bool { return cp.Name == cs2 && cp.VirtualServer == vserver.StatusUnknown }) {
			fail("GET /ftvs/v1/virtual-server with coserver2 dead: %s", a)
		}
	})
	apiEventually(t, func(fail func(string, ...any)) {
		var ls linksAnswer
		a := apiCall(t, "GET", u1+"/ftvs/v1/links", "", "")
		a.ok(t, &ls)
		if a.raw(t, "unreachable") != `["coserver2"]` || len(ls.Links) != 8 ||
			slices.ContainsFunc(ls.Links, func(l ftcluster.Link) bool { return l.From == cs2 }) {
			fail("GET /ftvs/v1/links with coserver2 dead: %s", a)
		}
	})
	apiEventually(t, func(fail func(string, ...any)) {
		var merged apiClusterEvents
		a := apiCall(t, "GET", u1+"/ftvs/v1/events?scope=cluster", "", "")
		a.ok(t, &merged)
		if got := eventMembers(merged.Events); a.raw(t, "unreachable") != `["coserver2"]` || !slices.Equal(got, []string{cs1, w}) || !timeOrdered(merged.Events) {
			fail("GET /ftvs/v1/events?scope=cluster with coserver2 dead: unreachable %s, events from %v, in time order: %v",
				a.raw(t, "unreachable"), got, timeOrdered(merged.Events))
		}
	})
	// An action carried out on the dead member cannot be relayed: 502; the leader refuses
	// to hand over to it: 409.
	apiCall(t, "POST", u1+"/ftvs/v1/coservers/coserver2/enable", auth, "").jsonErr(t, http.StatusBadGateway, "coserver2 did not answer over either link")
	apiSettled(t, "POST", u1+"/ftvs/v1/leadership/transfer", auth, `{"to": "coserver2"}`, http.StatusBadGateway, http.StatusServiceUnavailable).
		jsonErr(t, http.StatusConflict, "coserver2 cannot take over", "unreachable")
	var h ftcluster.Status
	apiCall(t, "GET", u1+"/ftvs/health", "", "").ok(t, &h)
}

// apiHTTP asks the members directly and never follows redirects (GET /ftvs/ui is a 301).
var apiHTTP = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// apiAnswer is one answer of a member's HTTP port.
type apiAnswer struct {
	req  string // "METHOD URL"
	code int
	hdr  http.Header
	body []byte
}

func (a apiAnswer) String() string {
	return fmt.Sprintf("%s: %d %s", a.req, a.code, trimTo(string(bytes.TrimSpace(a.body)), 2000))
}

// apiCall sends one request; auth is the whole Authorization header ("" = none).
func apiCall(t *testing.T, method, url, auth, body string) apiAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := apiHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, url, err)
	}
	return apiAnswer{req: method + " " + url, code: resp.StatusCode, hdr: resp.Header, body: b}
}

// apiSettled is apiCall, asked again while the answer is a refusal that a stalled
// member or a leader change explains (retry; default 409, 502, 503), for at most 15 s.
func apiSettled(t *testing.T, method, url, auth, body string, retry ...int) apiAnswer {
	t.Helper()
	if len(retry) == 0 {
		retry = []int{http.StatusConflict, http.StatusBadGateway, http.StatusServiceUnavailable}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		a := apiCall(t, method, url, auth, body)
		if !slices.Contains(retry, a.code) || time.Now().After(deadline) {
			return a
		}
		t.Logf("asking again: %s", a)
		time.Sleep(300 * time.Millisecond)
	}
}

// apiEventually runs check until a run reports no failure, for at most 15 s, then
// reports the last run's failures. For answers that depend on the cluster's state.
func apiEventually(t *testing.T, check func(fail func(format string, args ...any))) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var failures []string
		check(func(format string, args ...any) { failures = append(failures, fmt.Sprintf(format, args...)) })
		if len(failures) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, f := range failures {
				t.Error(f)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ok checks a 200 JSON answer and decodes it into v.
func (a apiAnswer) ok(t *testing.T, v any) {
	t.Helper()
	if a.code != http.StatusOK || a.hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("%s (Content-Type %q), want 200 application/json", a, a.hdr.Get("Content-Type"))
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
}

// jsonErr checks an error of the API proper: the status code, and a JSON body that is
// exactly {"error": MESSAGE}, with every want in the message.
func (a apiAnswer) jsonErr(t *testing.T, code int, want ...string) {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(a.body, &body); err != nil || a.code != code || a.hdr.Get("Content-Type") != "application/json" {
		t.Errorf("%s (Content-Type %q), want %d with a JSON error", a, a.hdr.Get("Content-Type"), code)
		return
	}
	msg, _ := body["error"].(string)
	if len(body) != 1 || msg == "" || !contains(msg, want...) {
		t.Errorf("%s: want exactly {\"error\": ...} containing %q", a, want)
	}
}

// raw is the JSON text of one top-level field of the answer ("" if absent).
func (a apiAnswer) raw(t *testing.T, key string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	return string(m[key])
}

// wantKeys checks the answer's top-level fields (v1 may add fields: update the list then).
func (a apiAnswer) wantKeys(t *testing.T, keys ...string) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, keys) {
		t.Errorf("%s: fields %v, want %v", a.req, got, keys)
	}
}

// apiVirtualServer is GET /ftvs/v1/virtual-server, by its wire names.
type apiVirtualServer struct {
	Mode           ftcluster.Mode         `json:"mode"`
	Leader         string                 `json:"leader"`
	Module         string                 `json:"module"`
	ModuleSHA256   string                 `json:"module_sha256"`
	AppliedIndex   uint64                 `json:"applied_index"`
	StateHash      string                 `json:"state_hash"`
	StateHashIndex uint64                 `json:"state_hash_index"`
	CoServers      []apiVirtualServerCopy `json:"coservers"`
	Unreachable    []string               `json:"unreachable"`
}

type apiVirtualServerCopy struct {
	Name           string         `json:"name"`
	VirtualServer  vserver.Status `json:"virtual_server"`
	AppliedIndex   uint64         `json:"applied_index"`
	StateHash      string         `json:"state_hash"`
	StateHashIndex uint64         `json:"state_hash_index"`
	MemoryBytes    uint64         `json:"memory_bytes"`
}

// apiReply is an action's answer.
type apiReply struct {
	Message string `json:"message"`
	Error   string `json:"error"`
}

// apiClusterEvents is GET /ftvs/v1/events?scope=cluster.
type apiClusterEvents struct {
	AskedVia    string         `json:"asked_via"`
	Scope       string         `json:"scope"`
	Unreachable []string       `json:"unreachable"`
	Events      []events.Event `json:"events"`
}

// apiEvents is GET /ftvs/v1/events (member scope) of member; it checks the envelope.
func apiEvents(t *testing.T, url, member string) []events.Event {
	t.Helper()
	var out struct {
		Member string         `json:"member"`
		Events []events.Event `json:"events"`
	}
	a := apiCall(t, "GET", url, "", "")
	a.ok(t, &out)
	a.wantKeys(t, "events", "member")
	if out.Member != member {
		t.Errorf("%s: member %q, want %s", a.req, out.Member, member)
	}
	return out.Events
}

func memberNames(ms []ftcluster.Status) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Member)
	}
	return out
}

// eventCodes and eventMembers are the distinct codes and members, sorted.
func eventCodes(es []events.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Code)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func eventMembers(es []events.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Member)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func eventSeqs(es []events.Event) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

// timeOrdered: no event is older than the one before it.
func timeOrdered(es []events.Event) bool {
	for i := 1; i < len(es); i++ {
		if es[i].Time.Before(es[i-1].Time) {
			return false
		}
	}
	return true
}

// waitLeader waits up to 10 s until the cluster view names want as its leader.
func waitLeader(t *testing.T, c *cluster, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, _, err := c.view()
		if err == nil && v.Leader == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not lead within 10s: %s %v", want, describeView(v), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sseFrame is one server-sent event.
type sseFrame struct{ id, event, data string }

// sseFrames reads server-sent events from r until it ends or ctx is done.
func sseFrames(ctx context.Context, r io.Reader) <-chan sseFrame {
	ch := make(chan sseFrame, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var f sseFrame
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				if f != (sseFrame{}) {
					select {
					case ch <- f:
					case <-ctx.Done():
						return
					}
				}
				f = sseFrame{}
				continue
			}
			field, value, _ := strings.Cut(line, ": ")
			switch field {
			case "id":
				f.id = value
			case "event":
				f.event = value
			case "data":
				f.data = value
			}
		}
	}()
	return ch
}

func trimTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func asset(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(assets, "assets/"+name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The page and its assets are served with a strict policy: no inline script or style,
// nothing from another origin.
func TestHandlerServesAssetsWithPolicy(t *testing.T) {
	for _, tc := range []struct{ path, ctype string }{
		{"/ftvs/ui/", "text/html"},
		{"/ftvs/ui/app.js", "javascript"},
		{"/ftvs/ui/app.css", "text/css"},
		{"/ftvs/ui/favicon.svg", "image/svg+xml"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, tc.path)
			if resp.StatusCode != http.StatusOK || body == "" {
				t.Fatalf("GET %s: %s, %d bytes", tc.path, resp.Status, len(body))
			}
			if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, tc.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, tc.ctype)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe") {
				t.Errorf("CSP %q allows unsafe sources", csp)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no nosniff header")
			}
		})
	}
	if resp, _ := get(t, "/ftvs/ui/missing.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET a missing asset: %s, want 404", resp.Status)
	}
}

// The page works offline and under the policy: every asset is embedded and same-origin,
// the HTML has no inline script, handler or style, and every element the script looks
// up by id exists.
func TestAssetsSelfContained(t *testing.T) {
	html := asset(t, "index.html")
	urls := regexp.MustCompile(`https?://[^\s"'<>)]+`)
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(assets, path)
		for _, u := range urls.FindAllString(string(b), -1) {
			if u != "http://www.w3.org/2000/svg" { // the SVG namespace names, it loads nothing
				t.Errorf("%s refers to %s: assets must not load anything from another origin", path, u)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(s, `src="`) {
			t.Errorf("inline script %s: the policy blocks it", s)
		}
	}
	if m := regexp.MustCompile(`\s(style|on[a-z]+)=`).FindString(html); m != "" {
		t.Errorf("index.html has an inline%s attribute: the policy blocks it", m)
	}
	for _, ref := range regexp.MustCompile(`(?:src|href)="([\w.-]+\.(?:js|css|svg))"`).FindAllStringSubmatch(html, -1) {
		if _, err := fs.Stat(assets, "assets/"+ref[1]); err != nil {
			t.Errorf("index.html refers to %s, which is not embedded", ref[1])
		}
	}
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`\sid="([\w-]+)"`).FindAllStringSubmatch(html, -1) {
		ids[m[1]] = true
	}
	js := asset(t, "app.js")
	for _, m := range regexp.MustCompile(`\$\('([\w-]+)'\)`).FindAllStringSubmatch(js, -1) {
		if !ids[m[1]] {
			t.Errorf("app.js looks up #%s, which index.html lacks", m[1])
		}
	}
	// Icons: the ones named in the script, and one per event severity.
	icons := []string{"info", "warning", "error"}
	for _, m := range regexp.MustCompile(`(?:icon: |icon\(|setIcon\([^,]+, )'([\w-]+)'`).FindAllStringSubmatch(js, -1) {
		icons = append(icons, m[1])
	}
	for _, m := range regexp.MustCompile(`href="#i-([\w-]+)"`).FindAllStringSubmatch(html, -1) {
		icons = append(icons, m[1])
	}
	for _, name := range icons {
		if !strings.Contains(html, `<symbol id="i-`+name+`"`) {
			t.Errorf("icon %q is used but index.html does not define it", name)
		}
	}
}

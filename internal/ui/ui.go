// Package ui is the Manager's web UI: one page, served by every member under /ftvs/ui/,
// its assets embedded (no CDN; it works offline). It reads the JSON API (/ftvs/cluster,
// /ftvs/v1/events and its stream) and acts through it with the manager token.
// DESIGN.md says what the page shows and why it is built this way.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is sent with every asset. Only this origin's scripts, styles,
// images and API: no inline script or style (the page sets styles through the CSSOM
// only), no plugins, no framing, no form posts, no base rewriting.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the UI under /ftvs/ui/.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/ftvs/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(w, r)
	})
}

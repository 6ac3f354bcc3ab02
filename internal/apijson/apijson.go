// Package apijson writes the JSON answers of ftvs's member and Manager APIs, so that
// every endpoint answers in one wire format: a document of its own, or a Reply
// ({"message": ...} on success, {"error": ...} naming the fix on refusal).
package apijson

import (
	"encoding/json"
	"net/http"
)

// Reply is the answer of an action or of a refused request: a message, or an error
// that names the problem and the fix. Clients decode it with encoding/json.
type Reply struct {
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Write answers code with v as one line of JSON.
func Write(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// WriteIndented answers code with v as indented JSON (the unversioned status
// documents, read by people with curl as often as by programs).
func WriteIndented(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Message answers code with {"message": msg}.
func Message(w http.ResponseWriter, code int, msg string) { Write(w, code, Reply{Message: msg}) }

// Error answers code with {"error": msg}.
func Error(w http.ResponseWriter, code int, msg string) { Write(w, code, Reply{Error: msg}) }

// Problem answers code with {"error": msg} for a request refused before any handler
// ran (no route, no token), marked so that no browser sniffs it as anything else.
func Problem(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	Error(w, code, msg)
}

package cluster

// MaxUpdateBody bounds an update request's body, from a client or relayed by another
// member (the module travels base64 in JSON).
const MaxUpdateBody = 96 << 20

// UpdateRequest is the body of POST /ftvs/v1/update.
type UpdateRequest struct {
	Name       string `json:"name,omitempty"` // default: the module's metadata name
	Module     string `json:"module"`         // the .wasm binary, base64
	Simplex    bool   `json:"simplex,omitempty"`
	DryRun     bool   `json:"dry_run,omitempty"`
	Advisories string `json:"advisories,omitempty"` // an advisories file's text
	// AdvisoriesName names that file in errors; its extension picks the format.
	AdvisoriesName string `json:"advisories_name,omitempty"`
}

// RollbackRequest is the body of POST /ftvs/v1/rollback.
type RollbackRequest struct {
	To string `json:"to,omitempty"` // sha256 (or a prefix of it) of the module; default the previous one
}

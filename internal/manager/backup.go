package manager

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/ftvs/ftvs/internal/apijson"
	"github.com/ftvs/ftvs/internal/backup"
)

// saveSnapshot is POST /ftvs/v1/snapshot/save: a backup of the virtual server
// (internal/backup), written as it is encoded. The index is known before the first
// byte (X-Ftvs-Backup-Index); a failure after it cuts the answer short, which the
// reader's checks find.
func (s *server) saveSnapshot(w http.ResponseWriter, r *http.Request) {
	snap, meta, code, err := s.m.BackupSnapshot(r.Context())
	if err != nil {
		apijson.Error(w, code, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="ftvs-backup-%d.ftvs"`, snap.Index))
	w.Header().Set("X-Ftvs-Backup-Index", strconv.FormatUint(snap.Index, 10))
	if _, err := backup.Write(w, meta, snap); err != nil {
		s.log.Warn("backup cut short", "index", snap.Index, "err", err)
		panic(http.ErrAbortHandler) // the client must not take a short answer for a whole one
	}
}

// restoreSnapshot is POST /ftvs/v1/snapshot/restore: the body is a backup file, which
// replaces the virtual server of a new cluster (node's RestoreBackup says when it may).
func (s *server) restoreSnapshot(w http.ResponseWriter, r *http.Request) {
	code, rep := s.m.RestoreBackup(r.Context(), r.Body)
	apijson.Write(w, code, rep)
}

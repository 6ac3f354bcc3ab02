package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/backup"
	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/fsx"
)

// backupMemoryLimit bounds the guest memory of a backup the CLI reads: any a member
// could have written. A member restoring one checks its own limit.
const backupMemoryLimit = 1 << 40

// snapshotTimeout bounds a save or a restore (a backup of GiBs over a slow network).
const snapshotTimeout = 30 * time.Minute

// runSnapshot is `ftvs snapshot save|inspect|restore`: backups of the virtual server.
func runSnapshot(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "ftvs snapshot: give a subcommand: save, inspect or restore")
		snapshotUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "save":
		return runSnapshotSave(args[1:], stdout, stderr)
	case "inspect":
		return runSnapshotInspect(args[1:], stdout, stderr)
	case "restore":
		return runSnapshotRestore(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		snapshotUsage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "ftvs snapshot: unknown subcommand %q\n", args[0])
	snapshotUsage(stderr)
	return exitUsage
}

func snapshotUsage(w io.Writer) {
	io.WriteString(w, `Usage:
  ftvs snapshot save --cluster DIR FILE      back up the virtual server of a running cluster:
                                             its whole state, from the leader, with every
                                             acknowledged write (--addr HOST:PORT --token-file F
                                             instead of --cluster)
  ftvs snapshot inspect FILE [--json]        verify a backup and say what it holds
  ftvs snapshot restore --cluster DIR FILE   start a new cluster from a backup: DIR is a
                                             cluster that has served no client yet (ftvs init
                                             DIR, start its members, then restore)

Examples:
  ftvs snapshot save --cluster /etc/ftvs/cluster /backup/ftvs-$(date +%F).ftvs
  ftvs snapshot inspect /backup/ftvs-2026-12-08.ftvs
  ftvs snapshot restore --cluster /etc/ftvs/new-cluster /backup/ftvs-2026-12-08.ftvs
`)
}

// runSnapshotSave is `ftvs snapshot save`: the leader streams a backup, which is
// written beside FILE, verified whole, and only then named FILE.
func runSnapshotSave(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("snapshot save", stderr)
	t := actionTarget(fs)
	pos, code := parseArgs(fs, args, 1, 1, "ftvs snapshot save (--cluster DIR | --addr HOST:PORT --token-file F) FILE", stderr)
	if code >= 0 {
		return code
	}
	path := pos[0]
	if _, err := os.Lstat(path); err == nil {
		fmt.Fprintf(stderr, "ftvs snapshot save: %s exists: give a new file name (a backup is never overwritten)\n", path)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
	defer cancel()
	lead, code := findLeader(ctx, "snapshot save", t, stderr)
	if code >= 0 {
		return code
	}
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, lead.base+"/ftvs/v1/snapshot/save", nil)
	req.Header.Set("Authorization", "Bearer "+lead.token)
	resp, err := lead.client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs snapshot save: ask the leader %s: %v\n", lead.name, err)
		return exitFailure
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "ftvs snapshot save: %s answered %s: %s\n", lead.name, resp.Status, replyError(resp.Body))
		return exitFailure
	}
	meta, size, err := receiveBackup(path, resp.Body)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs snapshot save: %v (no file was written)\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "saved %s: cluster %s at log index %d, module %s, state hash %.16s…, %.1f MB, from %s in %s\n",
		path, meta.Cluster, meta.Index, moduleWords(meta), meta.StateHash, float64(size)/1e6, lead.name, time.Since(start).Round(time.Millisecond))
	return exitOK
}

// receiveBackup writes body beside path, verifies it, and links it to path (which must
// not exist). Nothing is left at path unless the whole backup is there and sound.
func receiveBackup(path string, body io.Reader) (backup.Meta, int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return backup.Meta{}, 0, err
	}
	defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	size, err := io.Copy(tmp, body)
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		return backup.Meta{}, 0, fmt.Errorf("receive the backup: %w", err)
	}
	meta, _, _, err := backup.Verify(tmp, size, backupMemoryLimit)
	if err != nil {
		return backup.Meta{}, 0, fmt.Errorf("the backup received does not verify: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return backup.Meta{}, 0, fmt.Errorf("name the backup %s: %w", path, err)
	}
	return meta, size, fsx.OS.SyncDir(filepath.Dir(path))
}

// runSnapshotInspect is `ftvs snapshot inspect FILE`: the whole file is verified.
func runSnapshotInspect(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("snapshot inspect", stderr)
	asJSON := jsonFlag(fs, "print JSON")
	pos, code := parseArgs(fs, args, 1, 1, "ftvs snapshot inspect FILE [--json]", stderr)
	if code >= 0 {
		return code
	}
	meta, size, err := verifyBackupFile(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "ftvs snapshot inspect: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(meta)
		return exitOK
	}
	fmt.Fprintf(stdout, "backup %s (%.1f MB): verified (its checksum, its state hash, its description)\n", pos[0], float64(size)/1e6)
	fmt.Fprintf(stdout, "  cluster        %s\n  taken          %s by %s (ftvs %s)\n  log index      %d\n  module         %s, sha256 %s\n  earlier        %d module(s) kept for rollback\n  state hash     %s\n  guest memory   %.1f MiB\n",
		meta.Cluster, meta.Created.Format(time.RFC3339), meta.Member, meta.FTVSVersion, meta.Index, moduleWords(meta), meta.ModuleSHA256,
		meta.EarlierModule, meta.StateHash, float64(meta.MemoryBytes)/(1<<20))
	return exitOK
}

// verifyBackupFile reads and verifies the backup at path.
func verifyBackupFile(path string) (backup.Meta, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return backup.Meta{}, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return backup.Meta{}, 0, err
	}
	meta, _, _, err := backup.Verify(f, fi.Size(), backupMemoryLimit)
	if err != nil {
		return backup.Meta{}, 0, fmt.Errorf("%s: %w", path, err)
	}
	return meta, fi.Size(), nil
}

// runSnapshotRestore is `ftvs snapshot restore`: the file is verified here first, then
// sent to the new cluster's leader, which verifies it again and restores it.
func runSnapshotRestore(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("snapshot restore", stderr)
	t := actionTarget(fs)
	pos, code := parseArgs(fs, args, 1, 1, "ftvs snapshot restore (--cluster DIR | --addr HOST:PORT --token-file F) FILE", stderr)
	if code >= 0 {
		return code
	}
	meta, size, err := verifyBackupFile(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "ftvs snapshot restore: %v (nothing was sent)\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
	defer cancel()
	lead, code := findLeader(ctx, "snapshot restore", t, stderr)
	if code >= 0 {
		return code
	}
	f, err := os.Open(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "ftvs snapshot restore: %v\n", err)
		return exitUsage
	}
	defer f.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, lead.base+"/ftvs/v1/snapshot/restore", f)
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+lead.token)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := lead.client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs snapshot restore: send the backup to the leader %s: %v\n", lead.name, err)
		return exitFailure
	}
	defer resp.Body.Close()
	var rep struct{ Message, Error string }
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&rep)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "ftvs snapshot restore: %s answered %s: %s\n", lead.name, resp.Status, rep.Error)
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s (backup taken %s, index %d)\n", rep.Message, meta.Created.Format(time.RFC3339), meta.Index)
	return exitOK
}

// leaderTarget is where a backup is saved from or restored to: the leader CoServer.
type leaderTarget struct {
	name, base, token string
	client            *http.Client
}

// findLeader finds the leader through --cluster or --addr, with the manager token. It
// returns an exit code other than -1 when it cannot (the error is printed).
func findLeader(ctx context.Context, cmd string, t target, stderr io.Writer) (leaderTarget, int) {
	dir, addr, tokenFile := *t.dir, *t.addr, *t.tokenFile
	if (dir == "") == (addr == "") {
		fmt.Fprintf(stderr, "ftvs %s: give --cluster DIR or --addr HOST:PORT (one of them)\n", cmd)
		return leaderTarget{}, exitUsage
	}
	tok, code := actionToken(cmd, dir, tokenFile, stderr)
	if code >= 0 {
		return leaderTarget{}, code
	}
	lt := leaderTarget{token: tok, client: &http.Client{}}
	var view cluster.View
	var err error
	if dir != "" {
		h, err := loadClusterHTTP(dir)
		if err != nil {
			fmt.Fprintf(stderr, "ftvs %s: %v\n", cmd, err)
			return leaderTarget{}, exitUsage
		}
		if view, err = clusterView(ctx, dir, cluster.HashNone, ""); err == nil {
			for _, m := range h.cfg.Members {
				if m.Name == view.Leader {
					lt.name, lt.base, lt.client = m.Name, h.url(m), h.client(0)
				}
			}
		}
	} else {
		view, err = fetchView(ctx, statusClient, baseURL(addr), cluster.HashNone, "")
		for _, m := range view.Members {
			if err == nil && m.Member == view.Leader {
				lt.name, lt.base = m.Member, cmp.Or(m.Gateway, baseURL(addr))
			}
		}
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "ftvs %s: %v\n", cmd, err)
		return leaderTarget{}, exitFailure
	case lt.base == "":
		fmt.Fprintf(stderr, "ftvs %s: the cluster has no leader now (%s): try again when `ftvs status` shows one\n", cmd, view.Mode)
		return leaderTarget{}, exitFailure
	}
	return lt, -1
}

// moduleWords is a backup's module, with its version if it has one.
func moduleWords(m backup.Meta) string {
	if m.ModuleVersion != "" {
		return m.Module + " " + m.ModuleVersion
	}
	return m.Module
}

// replyError is the "error" of a member's JSON answer, or the answer itself.
func replyError(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	var rep struct{ Error string }
	if json.Unmarshal(b, &rep) == nil && rep.Error != "" {
		return rep.Error
	}
	return strings.TrimSpace(string(b))
}

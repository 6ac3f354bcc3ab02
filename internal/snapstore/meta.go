package snapstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc64"
	"strconv"
	"strings"

	"github.com/hashicorp/go-msgpack/v2/codec"

	"github.com/ftvs/ftvs/third_party/raft"
)

const (
	metaFile  = "meta.json"
	stateFile = "state.bin"
	tmpSuffix = ".tmp"
)

var crcTable = crc64.MakeTable(crc64.ECMA)

// fileMeta is meta.json: raft's FileSnapshotStore writes the same struct (its
// fileSnapshotMeta) minus MetaCRC, so the JSON of either store decodes in the other.
// encoding/json ignores unknown fields by default, so FileSnapshotStore reads MetaCRC
// as nothing.
type fileMeta struct {
	raft.SnapshotMeta

	// CRC is the CRC-64 (ECMA) of state.bin, big endian, as FileSnapshotStore writes it.
	CRC []byte

	// MetaCRC is the CRC-64 (ECMA) of this meta encoded with MetaCRC empty: it makes
	// a bit flip in the configuration, the index or the size a detected corruption
	// rather than a wrong answer. Absent in meta written by FileSnapshotStore.
	MetaCRC []byte `json:",omitempty"`
}

// encodeMeta is meta.json's content: FileSnapshotStore's encoding (json.Encoder, with
// its trailing newline) with MetaCRC set.
func encodeMeta(m fileMeta) ([]byte, error) {
	m.MetaCRC = nil
	plain, err := jsonEncode(&m)
	if err != nil {
		return nil, err
	}
	m.MetaCRC = binary.BigEndian.AppendUint64(nil, crc64.Checksum(plain, crcTable))
	return jsonEncode(&m)
}

func jsonEncode(m *fileMeta) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeMeta parses meta.json strictly: one JSON object with the known fields only
// (a bit flip in a field name is corruption, not a field silently left zero), nothing
// after it but white space, and a MetaCRC, when present, that matches.
func decodeMeta(data []byte) (*fileMeta, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m fileMeta
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	rest := data[dec.InputOffset():]
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the JSON object")
	}
	if m.MetaCRC != nil {
		want := m.MetaCRC
		m.MetaCRC = nil
		plain, err := jsonEncode(&m)
		if err != nil {
			return nil, fmt.Errorf("re-encode: %w", err)
		}
		got := binary.BigEndian.AppendUint64(nil, crc64.Checksum(plain, crcTable))
		if !bytes.Equal(got, want) {
			return nil, fmt.Errorf("meta CRC mismatch (stored %x, computed %x)", want, got)
		}
		m.MetaCRC = want
	}
	if m.Version < raft.SnapshotVersionMin || m.Version > raft.SnapshotVersionMax {
		return nil, fmt.Errorf("snapshot version %d not supported", m.Version)
	}
	if m.Size < 0 {
		return nil, fmt.Errorf("negative size %d", m.Size)
	}
	if len(m.CRC) != crc64.Size {
		return nil, fmt.Errorf("CRC of %d bytes, want %d", len(m.CRC), crc64.Size)
	}
	return &m, nil
}

// checkName checks that meta belongs in directory name: raft opens a snapshot by the
// ID in its meta, and the name carries the term and index.
func checkName(name string, m *fileMeta) error {
	term, index, _, ok := parseName(name)
	if !ok {
		return fmt.Errorf("%q is not a snapshot name (term-index-milliseconds)", name)
	}
	if m.ID != name {
		return fmt.Errorf("meta.json names snapshot %q", m.ID)
	}
	if m.Term != term || m.Index != index {
		return fmt.Errorf("meta.json says term %d index %d, the name term %d index %d", m.Term, m.Index, term, index)
	}
	return nil
}

// snapshotName is FileSnapshotStore's: term, index and the creation time in Unix
// milliseconds.
func snapshotName(term, index uint64, ms int64) string {
	return fmt.Sprintf("%d-%d-%d", term, index, ms)
}

// parseName reverses snapshotName.
func parseName(name string) (term, index uint64, ms int64, ok bool) {
	parts := strings.Split(name, "-")
	if len(parts) != 3 {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	term, err1 = strconv.ParseUint(parts[0], 10, 64)
	index, err2 = strconv.ParseUint(parts[1], 10, 64)
	ms, err3 = strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, false
	}
	return term, index, ms, true
}

// newer orders snapshots as FileSnapshotStore does: term, then index, then ID.
func newer(a, b *raft.SnapshotMeta) bool {
	if a.Term != b.Term {
		return a.Term > b.Term
	}
	if a.Index != b.Index {
		return a.Index > b.Index
	}
	return a.ID > b.ID
}

// encodePeers is raft's encodePeers (version 0 peers, kept in version 1 meta "to help
// with upgrades"): the voters' addresses encoded by the transport, as msgpack.
func encodePeers(c raft.Configuration, trans raft.Transport) ([]byte, error) {
	if trans == nil {
		return nil, nil
	}
	var peers [][]byte
	for _, s := range c.Servers {
		if s.Suffrage == raft.Voter {
			peers = append(peers, trans.EncodePeer(s.ID, s.Address))
		}
	}
	var buf bytes.Buffer
	h := codec.MsgpackHandle{BasicHandle: codec.BasicHandle{TimeNotBuiltin: true}}
	if err := codec.NewEncoder(&buf, &h).Encode(peers); err != nil {
		return nil, fmt.Errorf("encode peers: %w", err)
	}
	return buf.Bytes(), nil
}

package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/plexus-cni/plexus/pkg/atomicfile"
	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// RecordVersion is the on-disk format version of a Record.
const RecordVersion = 1

// ErrNotFound means there is no record for the container.
var ErrNotFound = errors.New("attachment record not found")

// ErrCorrupt means a record exists but cannot be decoded.
var ErrCorrupt = errors.New("attachment record corrupt")

// Record is everything Plexus attached (or is about to attach) to one sandbox.
type Record struct {
	Version     int             `json:"version"`
	ContainerID string          `json:"containerID"`
	Netns       string          `json:"netns"`
	IfName      string          `json:"ifName"`
	Pod         podref.Ref      `json:"pod"`
	Attachments []delegate.Spec `json:"attachments"`
	// Complete is set once every delegate ADD and the status write succeeded.
	Complete bool `json:"complete,omitempty"`
	// Status is the network-status written for this sandbox (manifest mode
	// removes it on DEL only if it is still this sandbox's).
	Status json.RawMessage `json:"status,omitempty"`
	// CNIPath is the runtime's CNI_PATH at ADD, for delegates run later
	// (hot-plug).
	CNIPath string `json:"cniPath,omitempty"`
	// StatusStale: attachments changed (hot-plug) since Status was written.
	StatusStale bool `json:"statusStale,omitempty"`
	// StatusPending: Status is yet to be written to the pod (statusWrite
	// async); plexusd writes it, after a restart too.
	StatusPending bool `json:"statusPending,omitempty"`
	// StatusUID is the UID of the API object the status goes to when it
	// is not Pod's (a static pod's mirror).
	StatusUID string `json:"statusUID,omitempty"`
	// Recovered marks a record rebuilt from libcni's cache because the
	// stored one was unreadable (never written).
	Recovered bool `json:"-"`
}

// StatusObject is the pod whose network-status this record's is: Pod, with
// the API object's UID.
func (r *Record) StatusObject() podref.Ref {
	obj := r.Pod
	if r.StatusUID != "" {
		obj.UID = r.StatusUID
	}
	return obj
}

// Store persists records by container ID.
type Store interface {
	// Save writes r durably (fsync of file and directory): the plan must
	// survive a crash, or a DEL after a reboot could not release what the
	// delegates allocated. A first record (ADD's plan) is created in place
	// (one file-system commit); an existing one is replaced atomically.
	Save(r *Record) error
	// Commit rewrites r (now complete) atomically but without forcing it
	// to disk: if a crash loses it, the record only looks unfinished, which
	// the next ADD or DEL handles the same way.
	Commit(r *Record) error
	Load(containerID string) (*Record, error)
	Delete(containerID string) error
	List() ([]string, error)
	// Updated is when the record was last written.
	Updated(containerID string) (time.Time, error)
}

var _ Store = (*FileStore)(nil)

// FileStore keeps one JSON file per container under Dir, written with
// temp file + fsync + rename + directory fsync.
type FileStore struct {
	Dir string
}

// NewFileStore returns a store rooted at dir (created 0700 on first save).
func NewFileStore(dir string) *FileStore { return &FileStore{Dir: dir} }

// RecordsDir is where records live under the CNI cache dir.
func RecordsDir(cniDir string) string { return filepath.Join(cniDir, "attachments") }

// maxContainerID leaves room for the ".json" suffix and the temp-file
// decoration within the 255-byte file name limit (runtimes use 64 hex).
const maxContainerID = 200

var containerIDRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

// ValidContainerID reports whether id is safe to use as a file name (CNI
// spec container ID rule).
func ValidContainerID(id string) error {
	if len(id) > maxContainerID || !containerIDRe.MatchString(id) {
		return fmt.Errorf("invalid container ID %q", id)
	}
	return nil
}

func (s *FileStore) path(id string) (string, error) {
	if err := ValidContainerID(id); err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, id+".json"), nil
}

// Save writes r durably: created in place when there is no record yet
// (ADD's plan, written before any delegate runs: a crash that leaves it
// empty or torn leaves nothing to undo, and an unreadable record is
// handled as such), else replaced atomically.
func (s *FileStore) Save(r *Record) error {
	p, data, err := s.encode(r)
	if err != nil {
		return err
	}
	err = atomicfile.Create(p, data, 0o600)
	if errors.Is(err, os.ErrExist) {
		return atomicfile.Write(p, data, 0o600)
	}
	return err
}

// Commit writes r atomically, without forcing it to disk.
func (s *FileStore) Commit(r *Record) error {
	p, data, err := s.encode(r)
	if err != nil {
		return err
	}
	return atomicfile.WriteNoSync(p, data, 0o600)
}

// encode gives r's path and content, its directory made.
func (s *FileStore) encode(r *Record) (string, []byte, error) {
	p, err := s.path(r.ContainerID)
	if err != nil {
		return "", nil, err
	}
	r.Version = RecordVersion
	data, err := json.Marshal(r)
	if err != nil {
		return "", nil, fmt.Errorf("encode record %s: %w", r.ContainerID, err)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("create record dir: %w", err)
	}
	return p, data, nil
}

// Load reads the record of id. Missing → ErrNotFound; undecodable → ErrCorrupt.
func (s *FileStore) Load(id string) (*Record, error) {
	p, err := s.path(id)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read record %s: %w", id, err)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // capability args keep big integers exact
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", p, ErrCorrupt, err)
	}
	if r.Version != RecordVersion || r.ContainerID != id {
		return nil, fmt.Errorf("%s: %w: version %d container %q", p, ErrCorrupt, r.Version, r.ContainerID)
	}
	return &r, nil
}

// Delete removes the record of id; a missing record is not an error. It
// does not fsync: a deletion lost in a crash brings back a record whose
// delegates were already deleted, and DEL is idempotent.
func (s *FileStore) Delete(id string) error {
	p, err := s.path(id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete record %s: %w", id, err)
	}
	return nil
}

// Updated returns the record file's modification time.
func (s *FileStore) Updated(id string) (time.Time, error) {
	p, err := s.path(id)
	if err != nil {
		return time.Time{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// List returns the container IDs that have a record, sorted.
func (s *FileStore) List() ([]string, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	var ids []string
	for _, e := range entries {
		name := e.Name()
		id, ok := strings.CutSuffix(name, ".json")
		if e.Type().IsRegular() && ok && ValidContainerID(id) == nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// ReplayedDir holds the trail of DELs the shim replayed from a record
// while plexusd was unreachable: one empty file per container ID, counted
// and removed by plexusd when it next starts (its replay metric).
func ReplayedDir(cniDir string) string { return filepath.Join(cniDir, "replayed") }

// MarkReplayed leaves the trail of a replayed DEL.
func MarkReplayed(cniDir, containerID string) error {
	if err := ValidContainerID(containerID); err != nil {
		return err
	}
	dir := ReplayedDir(cniDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, containerID), nil, 0o600)
}

// TakeReplayed counts the trail and removes it.
func TakeReplayed(cniDir string) (int, error) {
	ents, err := os.ReadDir(ReplayedDir(cniDir))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if !e.Type().IsRegular() || ValidContainerID(e.Name()) != nil {
			continue
		}
		if err := os.Remove(filepath.Join(ReplayedDir(cniDir), e.Name())); err == nil {
			n++
		}
	}
	return n, nil
}

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
	// Recovered marks a record rebuilt from libcni's cache because the
	// stored one was unreadable (never written).
	Recovered bool `json:"-"`
}

// Store persists records by container ID.
type Store interface {
	// Save writes r durably (fsync of file and directory): the plan must
	// survive a crash, or a DEL after a reboot could not release what the
	// delegates allocated.
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

// Save writes r atomically and durably.
func (s *FileStore) Save(r *Record) error { return s.write(r, true) }

// Commit writes r atomically.
func (s *FileStore) Commit(r *Record) error { return s.write(r, false) }

func (s *FileStore) write(r *Record, durable bool) error {
	p, err := s.path(r.ContainerID)
	if err != nil {
		return err
	}
	r.Version = RecordVersion
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record %s: %w", r.ContainerID, err)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("create record dir: %w", err)
	}
	if durable {
		return WriteFileAtomic(p, data, 0o600)
	}
	return WriteFileAtomicNoSync(p, data, 0o600)
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

// WriteFileAtomic writes data to path via a temp file in the same directory,
// fsyncs it, renames it over path and fsyncs the directory, so a reader (or
// a reboot) sees either the old or the new content, never a torn file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, data, perm, true)
}

// WriteFileAtomicNoSync is WriteFileAtomic without the fsyncs: readers
// still never see a torn file, but a crash may lose the new content.
func WriteFileAtomicNoSync(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, data, perm, false)
}

func writeAtomic(path string, data []byte, perm os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+tempMarker+"*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			_ = f.Close()      // best effort: already failing
			_ = os.Remove(tmp) // best effort: already failing
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if durable {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	committed = true
	if !durable {
		return nil
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// tempMarker is in the name of every temp file writeAtomic creates.
const tempMarker = ".tmp-"

// SweepTemp removes the temp files a crash left under dir (its
// subdirectories included): the hidden ".<name>.tmp-*" files writeAtomic
// renames into place within milliseconds. Only files older than minAge are
// taken, so a write in progress is never touched. It returns how many it
// removed.
func SweepTemp(dir string, minAge time.Duration) (int, error) {
	n := 0
	var errs []error
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			errs = append(errs, err)
			return nil
		}
		name := d.Name()
		if !d.Type().IsRegular() || !strings.HasPrefix(name, ".") || !strings.Contains(name, tempMarker) {
			return nil
		}
		if fi, err := d.Info(); err != nil || time.Since(fi.ModTime()) < minAge {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			return nil
		}
		n++
		return nil
	})
	return n, errors.Join(append(errs, err)...)
}

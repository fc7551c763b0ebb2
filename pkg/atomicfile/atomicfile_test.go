package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/internal/testutil"
)

func TestWrite(t *testing.T) {
	t.Parallel()

	t.Run("replaces existing file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := filepath.Join(dir, "status.json")
		if err := os.WriteFile(p, []byte("old content that is longer than the new one"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Write(p, []byte("new"), 0o640); err != nil {
			t.Fatalf("Write: %v", err)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "new" {
			t.Fatalf("content = %q, want %q", got, "new")
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o640 {
			t.Fatalf("mode = %o, want 640", fi.Mode().Perm())
		}
		if m := testutil.TempFiles(t, dir); len(m) > 0 {
			t.Fatalf("temp files left: %q", m)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			t.Fatalf("dir holds %d entries, want 1", len(entries))
		}
	})

	t.Run("creates new file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := filepath.Join(dir, "f")
		if err := Write(p, nil, 0o600); err != nil {
			t.Fatalf("Write: %v", err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("size %d mode %o, want 0 and 600", fi.Size(), fi.Mode().Perm())
		}
	})

	t.Run("missing dir", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		p := filepath.Join(root, "missing", "f.json")
		err := Write(p, []byte("x"), 0o600)
		if err == nil {
			t.Fatal("Write into a missing dir = nil")
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want fs.ErrNotExist", err)
		}
		if _, err := os.Stat(filepath.Join(root, "missing")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("missing dir was created: %v", err)
		}
	})

	t.Run("target is a directory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := filepath.Join(dir, "d")
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := Write(p, []byte("x"), 0o600); err == nil {
			t.Fatal("Write over a directory = nil")
		}
		if m := testutil.TempFiles(t, dir); len(m) > 0 {
			t.Fatalf("temp files left after failure: %q", m)
		}
	})
}

// SweepTemp takes crash leftovers older than minAge, in subdirectories
// too, and leaves fresh temp files and ordinary files alone.
func TestSweepTemp(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	files := map[string]bool{ // path → swept
		"a/.x.json.tmp-1": true, ".y.tmp-2": true, "fresh/.z.tmp-3": false, "keep.json": false, ".hidden": false,
	}
	for rel, swept := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if swept || !strings.HasPrefix(filepath.Base(rel), ".z") {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := SweepTemp(dir, time.Minute)
	if err != nil || n != 2 {
		t.Fatalf("SweepTemp = %d, %v; want 2", n, err)
	}
	for rel, swept := range files {
		if _, err := os.Stat(filepath.Join(dir, rel)); (err != nil) != swept {
			t.Errorf("%s: stat %v, want swept=%v", rel, err, swept)
		}
	}
	if n, err := SweepTemp(filepath.Join(dir, "missing"), time.Minute); n != 0 || err != nil {
		t.Errorf("missing dir: %d, %v", n, err)
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "rec.json")
	if err := Create(p, []byte("first"), 0o600); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := Create(p, []byte("second"), 0o600); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create over an existing file: %v; want ErrExist", err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "first" {
		t.Fatalf("content = %q, %v; want the first write kept", got, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v, %v", fi, err)
	}
	if m := testutil.TempFiles(t, dir); len(m) > 0 {
		t.Fatalf("temp files left: %q", m)
	}
}

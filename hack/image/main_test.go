package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"plexus:dev":                 "docker.io/library/plexus:dev",
		"plexus":                     "docker.io/library/plexus:latest",
		"org/plexus:v1":              "docker.io/org/plexus:v1",
		"plexus.local/pause:e2e":     "plexus.local/pause:e2e",
		"localhost/plexus:dev":       "localhost/plexus:dev",
		"registry:5000/plexus":       "registry:5000/plexus:latest",
		"registry.example/a/b:1.2.3": "registry.example/a/b:1.2.3",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

// untar extracts the archive into a new dir.
func untar(t *testing.T, archive string) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			_ = os.MkdirAll(p, 0o755)
			continue
		}
		data, _ := io.ReadAll(tr)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Two platforms from per-architecture files: an OCI layout whose index
// names an image index with one image per platform (each with its own
// file, the entrypoint, labels and the symlink), a docker-archive
// manifest.json, and the same bytes on a second build.
func TestBuildMultiArch(t *testing.T) {
	dir := t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		if err := os.MkdirAll(filepath.Join(dir, arch), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, arch, "x"), []byte("binary for "+arch), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := spec{name: "plexus:dev", entrypoint: "/usr/bin/x --flag", platforms: []string{"linux/amd64", "linux/arm64"},
		adds: []string{filepath.Join(dir, "{arch}", "x") + ":/usr/bin/x"}, links: []string{"/usr/src/y=/usr/bin/x"},
		labels: []string{"org.opencontainers.image.version=v9"}}
	out1, out2 := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	for _, out := range []string{out1, out2} {
		if err := build(out, s); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(out1)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same input differ")
	}
	root := untar(t, out1)
	var docker []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	raw, err := os.ReadFile(filepath.Join(root, "manifest.json"))
	if err != nil || json.Unmarshal(raw, &docker) != nil || len(docker) != 1 || docker[0].RepoTags[0] != "plexus:dev" {
		t.Fatalf("manifest.json %s: %v", raw, err)
	}
	lp, err := layout.ImageIndexFromPath(root)
	if err != nil {
		t.Fatal(err)
	}
	im, err := lp.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Annotations["io.containerd.image.name"] != "docker.io/library/plexus:dev" {
		t.Fatalf("index.json %+v %v", im, err)
	}
	idx, err := lp.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 2 {
		t.Fatalf("image index %+v %v", m, err)
	}
	for i, arch := range []string{"amd64", "arm64"} {
		d := m.Manifests[i]
		if d.Platform == nil || d.Platform.Architecture != arch || d.Platform.OS != "linux" {
			t.Errorf("manifest %d platform %+v", i, d.Platform)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		if cf.Architecture != arch || len(cf.Config.Entrypoint) != 2 || cf.Config.Labels["org.opencontainers.image.version"] != "v9" {
			t.Errorf("%s config %+v", arch, cf.Config)
		}
		layers, _ := img.Layers()
		rc, _ := layers[0].Uncompressed()
		tr := tar.NewReader(rc)
		found := map[string]string{}
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			data, _ := io.ReadAll(tr)
			found[h.Name] = string(data) + h.Linkname
		}
		rc.Close()
		if found["usr/bin/x"] != "binary for "+arch || found["usr/src/y"] != "/usr/bin/x" {
			t.Errorf("%s layer %v", arch, found)
		}
	}
}

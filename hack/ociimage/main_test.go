package main

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
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

// The archive is an OCI layout (index.json names the image for containerd)
// and a docker-archive (manifest.json with RepoTags), and is reproducible.
func TestBuild(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out1, out2 := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	for _, out := range []string{out1, out2} {
		if err := build(out, "plexus:dev", "/usr/bin/x", "", "amd64", []string{bin + ":/usr/bin/x"}, []string{"k=v"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(out1)
	b, _ := os.ReadFile(out2)
	if string(a) != string(b) {
		t.Error("two builds of the same input differ")
	}
	f, err := os.Open(out1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[h.Name] = data
	}
	var index struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, files["index.json"])
	}
	if got := index.Manifests[0].Annotations["io.containerd.image.name"]; got != "docker.io/library/plexus:dev" {
		t.Errorf("image name %q", got)
	}
	var docker []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &docker); err != nil || len(docker) != 1 || docker[0].RepoTags[0] != "plexus:dev" {
		t.Fatalf("manifest.json: %v %s", err, files["manifest.json"])
	}
	for _, p := range append([]string{docker[0].Config, "oci-layout"}, docker[0].Layers...) {
		if _, ok := files[p]; !ok {
			t.Errorf("%s missing from the archive", p)
		}
	}
}

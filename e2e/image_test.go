package e2e

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// The image `make image` builds holds every entry point a Multus thick
// deployment calls, so that changing the image is the whole switch: the
// upstream manifest's (/usr/src/multus-cni/bin/{multus-daemon,
// install_multus}), RKE2's and Multus's own images' /install_multus at the
// root, and what install_multus copies to the host (multus-shim,
// passthru, and plexus-replay beside them), each resolving to the Plexus
// binary that serves it.
func TestImageHasMultusEntryPoints(t *testing.T) {
	tarPath := filepath.Join(root, "bin", "plexus-image.tar")
	files := imageFiles(t, tarPath, "amd64")
	want := map[string]string{
		"/usr/bin/plexusd":                       "/usr/bin/plexusd",
		"/usr/bin/plexus":                        "/usr/bin/plexus",
		"/usr/bin/plexus-replay":                 "/usr/bin/plexus-replay",
		"/usr/src/multus-cni/bin/multus-daemon":  "/usr/bin/plexusd",
		"/usr/src/multus-cni/bin/install_multus": "/usr/bin/plexusd",
		"/install_multus":                        "/usr/bin/plexusd",
		"/usr/src/multus-cni/bin/multus-shim":    "/usr/bin/plexus",
		"/usr/src/multus-cni/bin/passthru":       "/usr/bin/plexus",
	}
	for p, target := range want {
		got, err := resolve(files, p)
		if err != nil || got != target {
			t.Errorf("%s in the image resolves to %q (%v), want %s", p, got, err, target)
		}
	}
	for _, sh := range []string{"/bin/sh", "/bin/bash"} {
		if _, ok := files[sh]; ok {
			t.Errorf("the image has %s; it is meant to hold no shell", sh)
		}
	}
}

// imageFiles reads the OCI layout tar and returns the arch's flattened
// file system: each path with its symlink target ("" for a regular file).
func imageFiles(t *testing.T, tarPath, arch string) map[string]string {
	t.Helper()
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatalf("%v: run `make image` first", err)
	}
	defer f.Close()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Clean("/"+h.Name))
		if h.Typeflag == tar.TypeDir {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(dst)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			t.Fatal(err)
		}
		out.Close()
	}
	lp, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.IndexManifest()
	if err != nil || len(top.Manifests) != 1 {
		t.Fatalf("index.json: %+v %v", top, err)
	}
	idx, err := lp.ImageIndex(top.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform == nil || d.Platform.Architecture != arch {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rc := mutate.Extract(img)
		defer rc.Close()
		out := map[string]string{}
		fs := tar.NewReader(rc)
		for {
			h, err := fs.Next()
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag != tar.TypeDir {
				out[path.Clean("/"+h.Name)] = h.Linkname
			}
		}
	}
	t.Fatalf("%s has no linux/%s image", tarPath, arch)
	return nil
}

// resolve follows symlinks in the image's file system to a regular file.
func resolve(files map[string]string, p string) (string, error) {
	for range 8 {
		link, ok := files[p]
		if !ok {
			return "", errors.New("not in the image")
		}
		if link == "" {
			return p, nil
		}
		if !strings.HasPrefix(link, "/") {
			link = path.Join(path.Dir(p), link)
		}
		p = link
	}
	return "", errors.New("too many links")
}

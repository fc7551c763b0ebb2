// Command image builds a one-layer container image from local files with
// github.com/google/go-containerregistry, without a Docker engine or a
// registry, for one or more platforms. The output archive is an OCI image
// layout whose index.json names an OCI image index (one manifest per
// platform), plus a docker-archive manifest.json for the build machine's
// platform, so `ctr -n k8s.io images import`, `docker load` and `podman
// load` accept it.
//
//	go run ./hack/image -o bin/plexus-image.tar -name plexus:dev \
//	    -platforms linux/amd64,linux/arm64 -entrypoint /usr/bin/plexusd \
//	    -add 'bin/linux_{arch}/plexus:/usr/bin/plexus' -add 'bin/linux_{arch}/plexusd:/usr/bin/plexusd'
//
// {arch} in a source path is each platform's architecture. The output is
// reproducible: every timestamp is SOURCE_DATE_EPOCH (0 when unset) and
// files are owned by 0:0.
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

// spec is what to build.
type spec struct {
	name, entrypoint, user string
	platforms              []string // "linux/amd64"
	adds, links            []string
	labels, envs           []string
}

func main() {
	var s spec
	var adds, labels, envs, links multi
	out := flag.String("o", "", "output archive (required)")
	flag.StringVar(&s.name, "name", "", "image reference, e.g. plexus:dev or registry.example/plexus:v1 (required)")
	flag.StringVar(&s.entrypoint, "entrypoint", "", "entrypoint, words separated by spaces")
	flag.StringVar(&s.user, "user", "", "config User (e.g. 65535:65535)")
	platforms := flag.String("platforms", "linux/"+runtime.GOARCH, "comma-separated platforms (linux/amd64,linux/arm64)")
	flag.Var(&adds, "add", "SRC:DST[:MODE] file to put in the layer ({arch} in SRC is the platform's; MODE octal, default 0755); repeatable")
	flag.Var(&links, "link", "DST=TARGET symbolic link to put in the layer; repeatable")
	flag.Var(&labels, "label", "KEY=VALUE config label; repeatable")
	flag.Var(&envs, "env", "KEY=VALUE config env (PATH is always set); repeatable")
	flag.Parse()
	if *out == "" || s.name == "" {
		flag.Usage()
		os.Exit(2)
	}
	s.platforms = strings.Split(*platforms, ",")
	s.adds, s.links, s.labels, s.envs = adds, links, labels, envs
	if err := build(*out, s); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

// Normalize returns the fully qualified reference the way containerd's CRI
// and Docker resolve a short name: plexus:dev is docker.io/library/plexus:dev.
func Normalize(ref string) string {
	name, tag := ref, "latest"
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		name, tag = ref[:i], ref[i+1:]
	}
	first, _, hasSlash := strings.Cut(name, "/")
	switch {
	case !hasSlash:
		name = "docker.io/library/" + name
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		name = "docker.io/" + name
	}
	return name + ":" + tag
}

func epoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
	}
	return time.Unix(n, 0).UTC(), nil
}

type file struct {
	src, dst string
	mode     int64
	link     string // a symbolic link to link, not a file
}

func parseFiles(adds, links []string, arch string) ([]file, error) {
	var fs []file
	for _, a := range adds {
		parts := strings.Split(a, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
			return nil, fmt.Errorf("-add %q: want SRC:/ABS/DST[:MODE]", a)
		}
		f := file{src: strings.ReplaceAll(parts[0], "{arch}", arch), dst: path.Clean(parts[1]), mode: 0o755}
		if len(parts) == 3 {
			m, err := strconv.ParseInt(parts[2], 8, 32)
			if err != nil {
				return nil, fmt.Errorf("-add %q: mode: %w", a, err)
			}
			f.mode = m
		}
		fs = append(fs, f)
	}
	for _, l := range links {
		dst, target, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(dst, "/") || target == "" {
			return nil, fmt.Errorf("-link %q: want /ABS/DST=TARGET", l)
		}
		fs = append(fs, file{dst: path.Clean(dst), link: target})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].dst < fs[j].dst })
	return fs, nil
}

// layerTar returns the uncompressed layer: the parent directories (0755)
// and the files, in a stable order.
func layerTar(fs []file, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range fs {
		var parents []string
		for d := path.Dir(f.dst); d != "/"; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
		}
		if f.link != "" {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(f.dst, "/"), Linkname: f.link, Mode: 0o777, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
			continue
		}
		data, err := os.ReadFile(f.src)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.dst, "/"), Mode: f.mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func kv(list []string, what string) (map[string]string, error) {
	m := map[string]string{}
	for _, s := range list {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want KEY=VALUE", what, s)
		}
		m[k] = v
	}
	return m, nil
}

// image builds one platform's image.
func image(s spec, platform string, mtime time.Time) (v1.Image, *v1.Platform, error) {
	osName, arch, ok := strings.Cut(platform, "/")
	if !ok || osName != "linux" || arch == "" {
		return nil, nil, fmt.Errorf("platform %q: want linux/ARCH", platform)
	}
	files, err := parseFiles(s.adds, s.links, arch)
	if err != nil {
		return nil, nil, err
	}
	raw, err := layerTar(files, mtime)
	if err != nil {
		return nil, nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, nil, err
	}
	labels, err := kv(s.labels, "-label")
	if err != nil {
		return nil, nil, err
	}
	extra, err := kv(s.envs, "-env")
	if err != nil {
		return nil, nil, err
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: mtime}, CreatedBy: "hack/image"}})
	if err != nil {
		return nil, nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = osName, arch, v1.Time{Time: mtime}
	cf.Config = v1.Config{Env: env, User: s.user, Labels: labels}
	if s.entrypoint != "" {
		cf.Config.Entrypoint = strings.Fields(s.entrypoint)
	}
	if len(labels) == 0 {
		cf.Config.Labels = nil
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, nil, err
	}
	return img, &v1.Platform{OS: osName, Architecture: arch}, nil
}

func build(out string, s spec) error {
	mtime, err := epoch()
	if err != nil {
		return err
	}
	full := Normalize(s.name)
	tag := full[strings.LastIndex(full, ":")+1:]
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var native v1.Image
	for _, p := range s.platforms {
		img, plat, err := image(s, p, mtime)
		if err != nil {
			return err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
		if plat.Architecture == runtime.GOARCH || native == nil {
			native = img
		}
	}
	dir, err := os.MkdirTemp(filepath.Dir(out), ".image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name": full, "org.opencontainers.image.ref.name": tag})); err != nil {
		return err
	}
	// docker-archive's manifest.json for the native image, pointing at the
	// layout's blobs (docker load reads compressed layers).
	cfgName, err := native.ConfigName()
	if err != nil {
		return err
	}
	layers, err := native.Layers()
	if err != nil {
		return err
	}
	var layerPaths []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		layerPaths = append(layerPaths, "blobs/sha256/"+d.Hex)
	}
	docker, err := json.Marshal([]map[string]any{{"Config": "blobs/sha256/" + cfgName.Hex, "RepoTags": []string{s.name}, "Layers": layerPaths}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), docker, 0o644); err != nil {
		return err
	}
	if err := tarDir(dir, out, mtime); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s (index %s, %s)\n", out, full, d, strings.Join(s.platforms, ", "))
	return nil
}

// tarDir writes dir's files, sorted, as the archive out (atomically).
func tarDir(dir, out string, mtime time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			rel += "/"
		}
		names = append(names, rel)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if strings.HasSuffix(n, "/") {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: n, Mode: 0o755, ModTime: mtime}); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return nil
}

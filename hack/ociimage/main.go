// Command ociimage writes a one-layer container image archive from local
// files, without a Docker engine or a registry. The archive is both an OCI
// image layout (oci-layout, index.json, blobs/sha256/...) and a
// docker-archive (manifest.json with RepoTags), so `ctr -n k8s.io images
// import`, `docker load` and `podman load` all accept it.
//
//	go run ./hack/ociimage -o bin/plexus-image.tar -name plexus:dev \
//	    -entrypoint /usr/bin/plexusd \
//	    -add bin/plexus:/usr/bin/plexus -add bin/plexusd:/usr/bin/plexusd
//
// The output is reproducible: every timestamp is SOURCE_DATE_EPOCH (0 when
// unset) and files are owned by 0:0.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	var adds, labels, envs, links multi
	out := flag.String("o", "", "output archive (required)")
	name := flag.String("name", "", "image reference, e.g. plexus:dev or registry.example/plexus:v1 (required)")
	entrypoint := flag.String("entrypoint", "", "entrypoint, words separated by spaces")
	user := flag.String("user", "", "config User (e.g. 65535:65535)")
	arch := flag.String("arch", runtime.GOARCH, "image architecture")
	flag.Var(&adds, "add", "SRC:DST[:MODE] file to put in the layer (MODE octal, default 0755); repeatable")
	flag.Var(&links, "link", "DST=TARGET symbolic link to put in the layer; repeatable")
	flag.Var(&labels, "label", "KEY=VALUE config label; repeatable")
	flag.Var(&envs, "env", "KEY=VALUE config env (PATH is always set); repeatable")
	flag.Parse()
	if *out == "" || *name == "" || len(adds) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	for _, l := range links {
		dst, target, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(dst, "/") || target == "" {
			fmt.Fprintf(os.Stderr, "ociimage: -link %q: want /ABS/DST=TARGET\n", l)
			os.Exit(2)
		}
		adds = append(adds, "symlink:"+dst+":"+target)
	}
	if err := build(*out, *name, *entrypoint, *user, *arch, adds, labels, envs); err != nil {
		fmt.Fprintf(os.Stderr, "ociimage: %v\n", err)
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

func parseAdds(adds []string) ([]file, error) {
	var fs []file
	for _, a := range adds {
		if rest, ok := strings.CutPrefix(a, "symlink:"); ok {
			dst, target, _ := strings.Cut(rest, ":")
			fs = append(fs, file{dst: path.Clean(dst), link: target})
			continue
		}
		parts := strings.Split(a, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
			return nil, fmt.Errorf("-add %q: want SRC:/ABS/DST[:MODE]", a)
		}
		f := file{src: parts[0], dst: path.Clean(parts[1]), mode: 0o755}
		if len(parts) == 3 {
			m, err := strconv.ParseInt(parts[2], 8, 32)
			if err != nil {
				return nil, fmt.Errorf("-add %q: mode: %w", a, err)
			}
			f.mode = m
		}
		fs = append(fs, f)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].dst < fs[j].dst })
	return fs, nil
}

// layer returns the uncompressed layer tar: the parent directories (0755)
// and the files, in a stable order.
func layer(fs []file, mtime time.Time) ([]byte, error) {
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
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.dst, "/"), Mode: f.mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
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

func digest(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

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

func build(out, name, entrypoint, user, arch string, adds, labels, envs []string) error {
	mtime, err := epoch()
	if err != nil {
		return err
	}
	fs, err := parseAdds(adds)
	if err != nil {
		return err
	}
	raw, err := layer(fs, mtime)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.ModTime = mtime
	if _, err := zw.Write(raw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	lbl, err := kv(labels, "-label")
	if err != nil {
		return err
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	extra, err := kv(envs, "-env")
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	cfg := map[string]any{"Env": env}
	if entrypoint != "" {
		cfg["Entrypoint"] = strings.Fields(entrypoint)
	}
	if user != "" {
		cfg["User"] = user
	}
	if len(lbl) > 0 {
		cfg["Labels"] = lbl
	}
	created := mtime.Format(time.RFC3339)
	config, err := json.Marshal(map[string]any{
		"architecture": arch, "os": "linux", "created": created, "config": cfg,
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{digest(raw)}},
		"history": []map[string]any{{"created": created, "created_by": "hack/ociimage"}},
	})
	if err != nil {
		return err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
		"layers":        []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(gz.Bytes()), "size": gz.Len()}},
	})
	if err != nil {
		return err
	}
	full := Normalize(name)
	tag := full[strings.LastIndex(full, ":")+1:]
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []map[string]any{{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest), "size": len(manifest),
			"platform":    map[string]string{"architecture": arch, "os": "linux"},
			"annotations": map[string]string{"io.containerd.image.name": full, "org.opencontainers.image.ref.name": tag},
		}},
	})
	if err != nil {
		return err
	}
	blob := func(b []byte) string { return "blobs/sha256/" + strings.TrimPrefix(digest(b), "sha256:") }
	docker, err := json.Marshal([]map[string]any{{"Config": blob(config), "RepoTags": []string{name}, "Layers": []string{blob(gz.Bytes())}}})
	if err != nil {
		return err
	}
	entries := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{"manifest.json", docker},
		{blob(config), config},
		{blob(gz.Bytes()), gz.Bytes()},
		{blob(manifest), manifest},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: mtime}); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: mtime}); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
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
	fmt.Printf("%s: %s (%s, layer %d bytes)\n", out, full, digest(manifest), gz.Len())
	return nil
}

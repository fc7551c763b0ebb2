package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/testutil"
	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// confListOdd has odd whitespace and an integer beyond float64 precision;
// its value bytes (in particular the digits of the big integer) must survive
// a Save/Load round trip. encoding/json compacts a RawMessage on Marshal, so
// the insignificant whitespace between tokens does not.
const confListOdd = "{ \"cniVersion\" : \"1.0.0\",\n\t\"name\":\"macvlan-conf\" ,  \"plugins\" : [\r\n" +
	"  { \"type\":\"macvlan\", \"master\" : \"eth0\",\t\"vlan\": 12345678901234567890123 ,\n" +
	"    \"ipam\": {\"type\":\"static\",\"note\":\"a  b\\n\\u00e9\"} } ] }"

const confListPlain = `{"cniVersion":"0.4.0","name":"default","plugins":[{"type":"bridge","mtu":1450}]}`

func sampleRecord(id string) *Record {
	return &Record{
		ContainerID: id,
		Netns:       "/var/run/netns/cni-1234",
		IfName:      "eth0",
		Pod:         podref.Ref{Namespace: "ns1", Name: "pod-a", UID: "0b0c8f8e-1111-2222-3333-444455556666"},
		Attachments: []delegate.Spec{
			{
				Network:      "default",
				IfName:       "eth0",
				ConfList:     json.RawMessage(confListPlain),
				Args:         [][2]string{{"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_NAME", "pod-a"}},
				Default:      true,
				DefaultRoute: []string{"10.0.0.1"},
			},
			{
				Network:        "ns1/macvlan-conf",
				IfName:         "net1",
				ConfList:       json.RawMessage(confListOdd),
				Args:           [][2]string{{"IP", "10.1.1.5/24"}},
				CapabilityArgs: map[string]interface{}{"mac": "02:00:00:00:00:01", "ips": []interface{}{"10.1.1.5/24"}},
			},
		},
		Complete: true,
		Status:   json.RawMessage(`[{"name":"default","interface":"eth0","ips":["10.0.0.5"],"default":true}]`),
	}
}

func compact(t *testing.T, raw string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(raw)); err != nil {
		t.Fatalf("compact %q: %v", raw, err)
	}
	return buf.Bytes()
}

func TestFileStoreRoundTrip(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cache", "attachments")
	s := NewFileStore(dir)

	ids := []string{"c0ffee", "abc.def_1-2", strings.Repeat("f", 64)}
	for _, id := range ids {
		if err := s.Save(sampleRecord(id)); err != nil {
			t.Fatalf("Save(%q): %v", id, err)
		}
	}

	t.Run("load", func(t *testing.T) {
		for _, id := range ids {
			got, err := s.Load(id)
			if err != nil {
				t.Fatalf("Load(%q): %v", id, err)
			}
			want := sampleRecord(id)
			want.Version = RecordVersion
			if got.Version != RecordVersion || got.ContainerID != id || got.Netns != want.Netns ||
				got.IfName != want.IfName || got.Pod != want.Pod || got.Complete != want.Complete {
				t.Fatalf("Load(%q) header = %+v, want %+v", id, got, want)
			}
			if len(got.Attachments) != 2 {
				t.Fatalf("Load(%q): %d attachments, want 2", id, len(got.Attachments))
			}
			for i, a := range got.Attachments {
				w := want.Attachments[i]
				if !bytes.Equal(a.ConfList, compact(t, string(w.ConfList))) {
					t.Errorf("attachment %d ConfList = %s, want %s", i, a.ConfList, compact(t, string(w.ConfList)))
				}
				if a.Network != w.Network || a.IfName != w.IfName || a.Default != w.Default ||
					!reflect.DeepEqual(a.Args, w.Args) || !reflect.DeepEqual(a.DefaultRoute, w.DefaultRoute) ||
					!reflect.DeepEqual(a.CapabilityArgs, w.CapabilityArgs) {
					t.Errorf("attachment %d = %+v, want %+v", i, a, w)
				}
			}
			if !bytes.Contains(got.Attachments[1].ConfList, []byte("12345678901234567890123")) {
				t.Errorf("big integer lost: %s", got.Attachments[1].ConfList)
			}
			if !bytes.Contains(got.Attachments[1].ConfList, []byte(`"a  b\n\u00e9"`)) {
				t.Errorf("string value bytes changed: %s", got.Attachments[1].ConfList)
			}
			if !bytes.Equal(got.Status, want.Status) {
				t.Errorf("Status = %s, want %s", got.Status, want.Status)
			}
		}
	})

	t.Run("list", func(t *testing.T) {
		got, err := s.List()
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		want := append([]string(nil), ids...)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("List = %q, want %q", got, want)
		}
	})

	t.Run("overwrite", func(t *testing.T) {
		r := sampleRecord(ids[0])
		r.Complete = false
		r.Attachments = r.Attachments[:1]
		if err := s.Save(r); err != nil {
			t.Fatalf("Save: %v", err)
		}
		got, err := s.Load(ids[0])
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if got.Complete || len(got.Attachments) != 1 {
			t.Fatalf("overwrite not visible: %+v", got)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := s.Delete(ids[0]); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Load(ids[0]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Load after Delete: err = %v, want ErrNotFound", err)
		}
		got, err := s.List()
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, id := range got {
			if id == ids[0] {
				t.Fatalf("List still has deleted %q: %q", id, got)
			}
		}
		if err := s.Delete(ids[0]); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
	})
}

func TestFileStoreLoadMissing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{name: "dir missing", setup: func(*testing.T, string) {}},
		{name: "dir empty", setup: func(t *testing.T, dir string) {
			t.Helper()
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "other record present", setup: func(t *testing.T, dir string) {
			t.Helper()
			if err := NewFileStore(dir).Save(sampleRecord("other")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "records")
			tt.setup(t, dir)
			_, err := NewFileStore(dir).Load("missing")
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			if errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v is also ErrCorrupt", err)
			}
		})
	}
}

func TestFileStoreLoadCorrupt(t *testing.T) {
	t.Parallel()
	const id = "abc123"
	valid, err := json.Marshal(func() *Record { r := sampleRecord(id); r.Version = RecordVersion; return r }())
	if err != nil {
		t.Fatal(err)
	}
	withField := func(key string, value interface{}) []byte {
		var m map[string]interface{}
		if err := json.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		m[key] = value
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
	}{
		{name: "empty file", data: nil},
		{name: "cut mid-JSON", data: valid[:len(valid)/2]},
		{name: "cut one byte short", data: valid[:len(valid)-1]},
		{name: "not an object", data: []byte(`[1,2,3]`)},
		{name: "null", data: []byte(`null`)},
		{name: "wrong field type", data: withField("attachments", "nope")},
		{name: "version 0", data: withField("version", 0)},
		{name: "version 2", data: withField("version", RecordVersion+1)},
		{name: "version missing", data: func() []byte {
			var m map[string]interface{}
			if err := json.Unmarshal(valid, &m); err != nil {
				t.Fatal(err)
			}
			delete(m, "version")
			b, _ := json.Marshal(m)
			return b
		}()},
		{name: "containerID differs", data: withField("containerID", "other")},
		{name: "containerID empty", data: withField("containerID", "")},
		{name: "containerID case differs", data: withField("containerID", "ABC123")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, id+".json"), tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := NewFileStore(dir).Load(id)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load = %+v, %v; want ErrCorrupt", r, err)
			}
			if errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v is also ErrNotFound", err)
			}
		})
	}

	t.Run("control: valid data loads", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, id+".json"), valid, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := NewFileStore(dir).Load(id); err != nil {
			t.Fatalf("Load: %v", err)
		}
	})
}

// snapshot lists every path under root with its content (files) so a test
// can prove nothing changed.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[p] = "<dir>"
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[p] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFileStoreInvalidContainerID(t *testing.T) {
	t.Parallel()
	invalid := []struct {
		name string
		id   string
	}{
		{name: "parent traversal", id: "../x"},
		{name: "deep traversal", id: "../../../../etc/passwd"},
		{name: "slash", id: "a/b"},
		{name: "absolute", id: "/tmp/x"},
		{name: "empty", id: ""},
		{name: "hidden", id: ".hidden"},
		{name: "dot", id: "."},
		{name: "dotdot", id: ".."},
		{name: "leading dash", id: "-x"},
		{name: "space", id: "a b"},
		{name: "nul", id: "a\x00b"},
		{name: "newline", id: "abc\n"},
		{name: "backslash", id: `a\b`},
		{name: "300 chars", id: strings.Repeat("a", 300)},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			// Sentinels where a traversal would land.
			for _, p := range []string{filepath.Join(root, "x.json"), filepath.Join(root, "sub", "a", "b.json")} {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(`{"version":1,"containerID":"../x"}`), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			dir := filepath.Join(root, "sub", "records")
			s := NewFileStore(dir)
			before := snapshot(t, root)

			if err := ValidContainerID(tt.id); err == nil {
				t.Fatalf("ValidContainerID(%q) = nil", tt.id)
			}
			r := sampleRecord(tt.id)
			if err := s.Save(r); err == nil {
				t.Errorf("Save(%q) = nil, want error", tt.id)
			}
			if got, err := s.Load(tt.id); err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
				t.Errorf("Load(%q) = %+v, %v; want an invalid-ID error", tt.id, got, err)
			}
			if err := s.Delete(tt.id); err == nil {
				t.Errorf("Delete(%q) = nil, want error", tt.id)
			}
			if after := snapshot(t, root); !reflect.DeepEqual(before, after) {
				t.Errorf("file system changed:\nbefore %q\nafter  %q", before, after)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Dir was created by a rejected call: %v", err)
			}
		})
	}

	t.Run("traversal sentinel survives Delete with existing Dir", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		dir := filepath.Join(root, "records")
		s := NewFileStore(dir)
		if err := s.Save(sampleRecord("keep")); err != nil {
			t.Fatal(err)
		}
		sentinel := filepath.Join(root, "x.json")
		if err := os.WriteFile(sentinel, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete("../x"); err == nil {
			t.Fatal("Delete(../x) = nil")
		}
		if _, err := os.Stat(sentinel); err != nil {
			t.Fatalf("sentinel outside Dir: %v", err)
		}
	})
}

func TestFileStoreDeleteMissing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		createDir bool
	}{
		{name: "dir missing", createDir: false},
		{name: "dir exists", createDir: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "records")
			if tt.createDir {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if err := NewFileStore(dir).Delete("nope"); err != nil {
				t.Fatalf("Delete of missing record = %v, want nil", err)
			}
		})
	}
}

func TestFileStoreSaveLeavesNoTempAndSetsModes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "records")
	s := NewFileStore(dir)
	for i := 0; i < 3; i++ { // repeated saves overwrite the same file
		if err := s.Save(sampleRecord("abc")); err != nil {
			t.Fatalf("Save #%d: %v", i, err)
		}
	}
	if err := s.Save(sampleRecord("def")); err != nil {
		t.Fatal(err)
	}

	t.Run("no temp files", func(t *testing.T) {
		if m := testutil.TempFiles(t, dir); len(m) > 0 {
			t.Fatalf("temp files left: %q", m)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if want := []string{"abc.json", "def.json"}; !reflect.DeepEqual(names, want) {
			t.Fatalf("Dir holds %q, want %q", names, want)
		}
	})

	t.Run("file mode 0600", func(t *testing.T) {
		fi, err := os.Stat(filepath.Join(dir, "abc.json"))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Fatalf("record mode = %o, want 600", got)
		}
	})

	t.Run("dir mode 0700", func(t *testing.T) {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o700 {
			t.Fatalf("dir mode = %o, want 700", got)
		}
	})
}

func TestFileStoreSaveSetsVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := sampleRecord("v")
	r.Version = 42
	if err := NewFileStore(dir).Save(r); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "v.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.Version != RecordVersion {
		t.Fatalf("stored version = %d, want %d", m.Version, RecordVersion)
	}
}

func TestFileStoreList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		records []string
		extra   map[string]string // file name → content, written raw
		dirs    []string
		want    []string
	}{
		{name: "missing dir", want: nil},
		{name: "empty dir", dirs: []string{"."}, want: nil},
		{
			name:    "ignores non-json and dirs",
			records: []string{"b", "a", "c.d"},
			extra: map[string]string{
				"notes.txt":           "x",
				"a.json.bak":          "x",
				"json":                "x",
				"b.JSON":              "x",
				".a.json.tmp-1234567": "{",
			},
			dirs: []string{"sub.json", "other"},
			want: []string{"a", "b", "c.d"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "records")
			s := NewFileStore(dir)
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range tt.records {
				if err := s.Save(sampleRecord(id)); err != nil {
					t.Fatal(err)
				}
			}
			for name, content := range tt.extra {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.List()
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("List = %q, want %q", got, tt.want)
			}
		})
	}
}

package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/plexus-cni/plexus/pkg/netselect"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// fileConfs implements netselect.ConfLoader on the local file system.
type fileConfs struct{}

var _ netselect.ConfLoader = fileConfs{}

func (fileConfs) ByName(dir, name string) ([]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("conf %q in %s: %w", name, dir, podref.ErrNotFound)
	}
	var files []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".conf", ".conflist", ".json":
			if e.Type().IsRegular() {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var probe struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(data, &probe) == nil && probe.Name == name {
			return data, nil
		}
	}
	return nil, fmt.Errorf("conf %q in %s: %w", name, dir, podref.ErrNotFound)
}

func (fileConfs) File(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("conf file %s: %w", path, podref.ErrNotFound)
	}
	return data, err
}

// Chain reads dir/*.conf in file-name order, as libcni reads a network's
// plugin drop-in directory; a missing dir holds no plugins.
func (fileConfs) Chain(dir string) ([][]byte, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, e := range entries { // sorted by name
		if strings.ToLower(filepath.Ext(e.Name())) != ".conf" || !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, data)
	}
	return out, nil
}

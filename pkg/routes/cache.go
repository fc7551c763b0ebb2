package routes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/atomicfile"
)

// cachePath is where libcni caches an attachment's result
// (libcni/api.go getCacheFilePath).
func cachePath(cacheDir, networkName, containerID, ifName string) string {
	return filepath.Join(cacheDir, "results", fmt.Sprintf("%s-%s-%s", networkName, containerID, ifName))
}

// rewriteCachedResult replaces the value of the top-level "result" key of
// libcni's cache file at path with res, atomically. Every other byte of the
// file (other keys, their order and formatting) is kept, so fields this
// package does not know survive.
func rewriteCachedResult(path string, res types.Result) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w: %w", path, ErrNoCachedResult, err)
	}
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	enc, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	out, err := spliceKey(data, "result", enc)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.Write(path, out, fi.Mode().Perm())
}

// spliceKey returns obj (a JSON object) with the value of its top-level
// key replaced by value; all other bytes are copied unchanged. The key
// must occur exactly once.
func spliceKey(obj []byte, key string, value []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	start, end := -1, -1
	for dec.More() {
		var k json.Token
		if k, err = dec.Token(); err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err = dec.Decode(&raw); err != nil {
			return nil, err
		}
		if k != key {
			continue
		}
		if start >= 0 {
			return nil, fmt.Errorf("key %q occurs twice", key)
		}
		end = int(dec.InputOffset())
		start = end - len(raw)
	}
	if _, err = dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if start < 0 {
		return nil, fmt.Errorf("%w: no %q key", ErrNoCachedResult, key)
	}
	out := make([]byte, 0, len(obj)-(end-start)+len(value))
	out = append(out, obj[:start]...)
	out = append(out, value...)
	return append(out, obj[end:]...), nil
}

package routes

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/atomicfile"
	"github.com/plexus-cni/plexus/pkg/rawjson"
)

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
	out, err := rawjson.ReplaceMember(data, "result", enc)
	if errors.Is(err, rawjson.ErrNoMember) {
		return fmt.Errorf("%s: %w: %w", path, ErrNoCachedResult, err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.Write(path, out, fi.Mode().Perm())
}

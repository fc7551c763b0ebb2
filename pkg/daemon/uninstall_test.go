package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/plexus-cni/plexus/pkg/config"
)

type dsSource struct {
	*fakeSource
	gone bool
	err  error
	asks int
}

func (s *dsSource) DaemonSetGone(_ context.Context, ns, name string) (bool, error) {
	s.asks++
	if ns != "kube-system" || name != "plexus" {
		return false, errors.New("asked for the wrong DaemonSet")
	}
	return s.gone, s.err
}

// The generated config goes when plexusd stops because its DaemonSet is
// deleted, and stays on a roll, when the API cannot say, and without
// PLEXUS_DAEMONSET.
func TestUninstallOnlyWhenTheDaemonSetIsDeleted(t *testing.T) {
	for _, c := range []struct {
		name     string
		ds       string
		gone     bool
		err      error
		wantKept bool
	}{
		{"deleted", "kube-system/plexus", true, nil, false},
		{"rolled", "kube-system/plexus", false, nil, true},
		{"API unreachable", "kube-system/plexus", false, errors.New("connection refused"), true},
		{"not told its DaemonSet", "", true, nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "00-plexus.conflist")
			if err := os.WriteFile(conf, []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
			src := &dsSource{fakeSource: newFakeSource(), gone: c.gone, err: c.err}
			cfg := config.Default()
			cfg.CNIConfigDir = dir
			uninstallIfDeleted(context.Background(), cfg, Flags{DaemonSet: c.ds}, src, quiet)
			if _, err := os.Stat(conf); (err == nil) != c.wantKept {
				t.Errorf("generated config kept = %v, want %v", err == nil, c.wantKept)
			}
		})
	}
}

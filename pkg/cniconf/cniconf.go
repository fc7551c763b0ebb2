// Package cniconf keeps Plexus's CNI config in the runtime's config
// directory: it finds the primary CNI config, waits for it (and for an
// optional readiness indicator file), writes 00-plexus.conflist atomically
// (temp file + rename in the same directory), and watches the directory:
// a changed primary regenerates the file; a removed, renamed or edited file
// is restored and reported. Stopping the manager never removes the file
// (pods created while the daemon restarts get "try again later" rather than
// only the primary network); Uninstall does.
package cniconf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/plexus-cni/plexus/pkg/api"
	"github.com/plexus-cni/plexus/pkg/atomicfile"
)

// FileName is the generated file. "00-" sorts it before every other
// config, so the runtime picks it.
const FileName = "00-plexus.conflist"

// NetworkName is the generated network's name.
const NetworkName = "plexus-cni-network"

// podAnnotationsCapability makes containerd pass the pod's annotations.
const podAnnotationsCapability = "io.kubernetes.cri.pod-annotations"

// Options say where to look and what to write.
type Options struct {
	ConfDir       string // where FileName is written
	AutoconfigDir string // where the primary is looked for; default ConfDir
	Primary       string // pinned primary file name; default: first by name
	CNIVersion    string // default: the primary's
	ReadinessFile string // must exist before the first write
	SocketPath    string // the daemon's socket, for the shim
	CNIDir        string // the daemon's cniDir, for the shim's DEL replay
	// FileName is the generated file's name; default FileName. One
	// ending in ".conf" holds a single plugin config: MultusFileName,
	// which plexusd run as multus-daemon writes, so that Multus and Plexus
	// replace each other's file when the node is switched either way.
	FileName string
}

// MultusFileName is the file Multus thick writes.
const MultusFileName = "00-multus.conf"

func (o Options) fileName() string {
	if o.FileName == "" {
		return FileName
	}
	return o.FileName
}

// Reporter receives what the manager did that an operator should see.
type Reporter interface {
	NodeEvent(warning bool, reason, msg string)
}

// Manager owns FileName.
type Manager struct {
	opts Options
	log  *slog.Logger
	rep  Reporter

	mu      sync.Mutex
	primary string // path of the primary config in use
	written []byte // what we last wrote
	err     error  // why the file is not in place, if it is not
}

// New returns a manager; Run does the work.
func New(opts Options, rep Reporter, log *slog.Logger) *Manager {
	if opts.AutoconfigDir == "" {
		opts.AutoconfigDir = opts.ConfDir
	}
	return &Manager{opts: opts, rep: rep, log: log, err: errors.New("CNI config not written yet")}
}

// Path is the generated file's path.
func (m *Manager) Path() string { return filepath.Join(m.opts.ConfDir, m.opts.fileName()) }

// Ready is nil once the file is in place for the current primary.
func (m *Manager) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// PrimaryPath is the primary config in use ("" before it is found).
func (m *Manager) PrimaryPath() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.primary
}

// Run reconciles at start and on every change in the watched directories
// until ctx ends. It never removes the file.
func (m *Manager) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	dirs := []string{m.opts.ConfDir, m.opts.AutoconfigDir}
	if m.opts.ReadinessFile != "" {
		dirs = append(dirs, filepath.Dir(m.opts.ReadinessFile))
	}
	for _, d := range uniq(dirs) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := w.Add(d); err != nil {
			return fmt.Errorf("watch %s: %w", d, err)
		}
	}
	m.reconcile()
	// A periodic pass covers events fsnotify cannot see (e.g. a directory
	// replaced under a bind mount).
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.Events:
			if strings.HasPrefix(filepath.Base(ev.Name), ".") {
				continue // temp files, ours or others'
			}
			debounce = time.After(50 * time.Millisecond)
		case err := <-w.Errors:
			m.log.Warn("CNI config watch", "err", err)
		case <-debounce:
			m.reconcile()
		case <-tick.C:
			m.reconcile()
		}
	}
}

// reconcile makes the file what it should be.
func (m *Manager) reconcile() {
	err := m.reconcileOnce()
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
	if err != nil {
		m.log.Warn("CNI config not in place", "err", err)
	}
}

func (m *Manager) reconcileOnce() error {
	if f := m.opts.ReadinessFile; f != "" {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("waiting for readiness indicator file %s", f)
		}
	}
	primary, primaryConf, err := m.findPrimary()
	if err != nil {
		return err
	}
	want, err := Generate(primaryConf, m.opts)
	if err != nil {
		return fmt.Errorf("primary %s: %w", primary, err)
	}
	have, readErr := os.ReadFile(m.Path())
	m.mu.Lock()
	prevPrimary, prevWritten := m.primary, m.written
	m.mu.Unlock()
	if readErr == nil && bytes.Equal(have, want) {
		m.remember(primary, want)
		m.replaceMultus()
		return nil
	}
	if err := atomicfile.Write(m.Path(), want, 0o644); err != nil {
		return err
	}
	m.remember(primary, want)
	m.replaceMultus()
	switch {
	case prevWritten == nil:
		m.log.Info("CNI config written", "file", m.Path(), "primary", primary)
	case !bytes.Equal(prevWritten, want) || prevPrimary != primary:
		m.log.Info("CNI config regenerated: the primary changed", "file", m.Path(), "primary", primary)
		m.rep.NodeEvent(false, "CNIConfigRegenerated", fmt.Sprintf("%s regenerated for primary %s", m.Path(), primary))
	default:
		what := "edited"
		if readErr != nil {
			what = "removed or renamed"
		}
		msg := fmt.Sprintf("%s was %s by someone else; restored", m.Path(), what)
		m.log.Warn(msg)
		m.rep.NodeEvent(true, "CNIConfigRestored", msg)
	}
	return nil
}

// replaceMultus removes the config Multus thick left (00-multus.conf,
// "type": "multus-shim"), once Plexus's own is in place: it sorts first,
// so the runtime would keep calling Multus's shim. Multus removes it
// when it stops; one killed, or still there after a switch, is taken
// away here. The shim Plexus installed as multus-shim serves it
// meanwhile, so no pod is sent to a half-switched node.
func (m *Manager) replaceMultus() {
	entries, err := os.ReadDir(m.opts.ConfDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		path := filepath.Join(m.opts.ConfDir, e.Name())
		if e.IsDir() || e.Name() >= m.opts.fileName() || !isConfFile(e.Name()) {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil || !isMultusConf(data) {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("cannot remove Multus's CNI config", "file", path, "err", err)
			continue
		}
		msg := fmt.Sprintf("%s (Multus's) removed: %s replaces it", path, m.Path())
		m.log.Info(msg)
		m.rep.NodeEvent(false, "MultusConfigReplaced", msg)
	}
}

// isConfFile: a name the runtime loads as a CNI config (a dot file is a
// temp file being written).
func isConfFile(name string) bool {
	switch filepath.Ext(name) {
	case ".conf", ".conflist", ".json":
		return !strings.HasPrefix(name, ".")
	}
	return false
}

// isMultusConf: a config whose (first) plugin is Multus.
func isMultusConf(data []byte) bool {
	var c struct {
		Type    string `json:"type"`
		Plugins []struct {
			Type string `json:"type"`
		} `json:"plugins"`
	}
	if json.Unmarshal(data, &c) != nil {
		return false
	}
	t := c.Type
	if len(c.Plugins) > 0 {
		t = c.Plugins[0].Type
	}
	return t == "multus" || t == "multus-shim"
}

func (m *Manager) remember(primary string, written []byte) {
	m.mu.Lock()
	m.primary, m.written = primary, written
	m.mu.Unlock()
}

// findPrimary returns the primary config's path and bytes.
func (m *Manager) findPrimary() (string, []byte, error) {
	dir := m.opts.AutoconfigDir
	if p := m.opts.Primary; p != "" {
		path := filepath.Join(dir, p)
		data, err := os.ReadFile(path)
		if err != nil {
			return "", nil, fmt.Errorf("waiting for the pinned primary CNI config %s", path)
		}
		return path, data, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !isConfFile(n) || strings.HasPrefix(n, "00-plexus") || n == m.opts.fileName() {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var skipped []string
	for _, n := range names {
		path := filepath.Join(dir, n)
		data, err := os.ReadFile(path)
		if err != nil || len(bytes.TrimSpace(data)) == 0 || !json.Valid(data) {
			skipped = append(skipped, n) // half-written or foreign: not a primary
			continue
		}
		if isMultusConf(data) {
			continue // a meta-plugin, never the primary
		}
		return path, data, nil
	}
	if len(skipped) > 0 {
		return "", nil, fmt.Errorf("waiting for a primary CNI config in %s (not valid JSON: %s)", dir, strings.Join(skipped, ", "))
	}
	return "", nil, fmt.Errorf("waiting for a primary CNI config in %s", dir)
}

// Generate returns the Plexus conflist for a primary config: its
// cniVersion (unless opts.CNIVersion), the union of its enabled
// capabilities plus the pod-annotations one, and the shim's settings.
func Generate(primary []byte, opts Options) ([]byte, error) {
	var p struct {
		CNIVersion   string          `json:"cniVersion"`
		Plugins      []capsHolder    `json:"plugins"`
		Capabilities map[string]bool `json:"capabilities"`
	}
	if err := json.Unmarshal(primary, &p); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if p.CNIVersion == "" {
		return nil, errors.New("no cniVersion")
	}
	// Plexus delegates to the primary at the primary's own version.
	if !api.SupportsCNIVersion(p.CNIVersion) {
		return nil, fmt.Errorf("cniVersion %q is not one Plexus speaks (%s)", p.CNIVersion, strings.Join(api.CNIVersions, ", "))
	}
	version := opts.CNIVersion
	if version == "" {
		version = p.CNIVersion
	}
	caps := map[string]bool{podAnnotationsCapability: true}
	for k, v := range p.Capabilities {
		if v {
			caps[k] = true
		}
	}
	for _, pl := range p.Plugins {
		for k, v := range pl.Capabilities {
			if v {
				caps[k] = true
			}
		}
	}
	plugin := map[string]interface{}{"type": "plexus", "capabilities": caps}
	if opts.SocketPath != "" {
		plugin["socketPath"] = opts.SocketPath
	}
	if opts.CNIDir != "" {
		plugin["cniDir"] = opts.CNIDir
	}
	doc := map[string]interface{}{"cniVersion": version, "name": NetworkName, "plugins": []interface{}{plugin}}
	if strings.HasSuffix(opts.fileName(), ".conf") {
		doc = plugin
		plugin["cniVersion"], plugin["name"] = version, NetworkName
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

type capsHolder struct {
	Capabilities map[string]bool `json:"capabilities"`
}

// Uninstall removes the generated file (plexusd --uninstall); fileName ""
// is FileName.
func Uninstall(confDir, fileName string) error {
	if fileName == "" {
		fileName = FileName
	}
	if err := os.Remove(filepath.Join(confDir, fileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

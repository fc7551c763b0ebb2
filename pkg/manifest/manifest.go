package manifest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/plexus-cni/plexus/pkg/atomicfile"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// ErrPodNotFound means no manifest declares the pod.
var ErrPodNotFound = errors.New("pod not found in manifests")

type key struct{ ns, name string }

type snapshot struct {
	nads map[key]*nadv1.NetworkAttachmentDefinition
	pods map[key]*podref.Pod
}

// Source serves NADs and pods from a manifest directory.
type Source struct {
	dir       string
	statusDir string
	log       *slog.Logger

	mu   sync.RWMutex
	snap snapshot
}

// New loads dir once. Files that fail to parse are logged and skipped so
// one bad file does not hide the others.
func New(dir, statusDir string, log *slog.Logger) (*Source, error) {
	s := &Source{dir: dir, statusDir: statusDir, log: log}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("manifestsDir: %w", err)
	}
	s.Reload()
	return s, nil
}

// Reload re-reads the directory and swaps the snapshot in.
func (s *Source) Reload() {
	snap := snapshot{nads: map[key]*nadv1.NetworkAttachmentDefinition{}, pods: map[key]*podref.Pod{}}
	files, err := filepath.Glob(filepath.Join(s.dir, "*"))
	if err != nil {
		s.log.Error("list manifests", "dir", s.dir, "err", err)
		return
	}
	sort.Strings(files)
	for _, f := range files {
		switch strings.ToLower(filepath.Ext(f)) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		if err := loadFile(f, &snap); err != nil {
			s.log.Warn("skipping manifest file", "file", f, "err", err)
		}
	}
	s.mu.Lock()
	s.snap = snap
	s.mu.Unlock()
	s.log.Debug("manifests loaded", "dir", s.dir, "nads", len(snap.nads), "pods", len(snap.pods))
}

type object struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
}

func loadFile(path string, snap *snapshot) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for i := 0; ; i++ {
		var raw map[string]interface{}
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
		if raw == nil {
			continue
		}
		doc, err := yaml.Marshal(raw)
		if err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
		if err := addObject(doc, snap); err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
	}
}

func addObject(doc []byte, snap *snapshot) error {
	var obj object
	if err := yaml.Unmarshal(doc, &obj); err != nil {
		return err
	}
	ns := obj.Namespace
	if ns == "" {
		ns = "default"
	}
	switch obj.Kind {
	case "NetworkAttachmentDefinition":
		var nad nadv1.NetworkAttachmentDefinition
		if err := yaml.Unmarshal(doc, &nad); err != nil {
			return err
		}
		nad.Namespace = ns
		snap.nads[key{ns, nad.Name}] = &nad
	case "Pod":
		snap.pods[key{ns, obj.Name}] = &podref.Pod{Namespace: ns, Name: obj.Name, UID: string(obj.UID), Annotations: obj.Annotations}
	}
	return nil
}

// Watch reloads on every change in the directory until ctx ends.
func (s *Source) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch manifests: %w", err)
	}
	defer w.Close()
	if err := w.Add(s.dir); err != nil {
		return fmt.Errorf("watch %s: %w", s.dir, err)
	}
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.Events:
			s.log.Debug("manifest change", "file", ev.Name, "op", ev.Op.String())
			debounce = time.After(50 * time.Millisecond)
		case err := <-w.Errors:
			s.log.Warn("manifest watch", "err", err)
		case <-debounce:
			s.Reload()
		}
	}
}

func (s *Source) lookup(f func(snapshot) bool) {
	s.mu.RLock()
	found := f(s.snap)
	s.mu.RUnlock()
	if !found {
		// The watcher may not have caught up with a file just written.
		s.Reload()
		s.mu.RLock()
		f(s.snap)
		s.mu.RUnlock()
	}
}

// GetNAD implements netselect.NADGetter.
func (s *Source) GetNAD(namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	var nad *nadv1.NetworkAttachmentDefinition
	s.lookup(func(sn snapshot) bool { nad = sn.nads[key{namespace, name}]; return nad != nil })
	if nad == nil {
		return nil, fmt.Errorf("NetworkAttachmentDefinition %s/%s: %w", namespace, name, podref.ErrNotFound)
	}
	return nad, nil
}

// Pod returns the pod declared for ref. A UID in the manifest must match
// ref.UID when both are set. The manifest is the source of truth for
// annotations here; the runtime's copy is ignored.
func (s *Source) Pod(_ context.Context, ref podref.Ref, _ map[string]string) (*podref.Pod, error) {
	var pod *podref.Pod
	s.lookup(func(sn snapshot) bool { pod = sn.pods[key{ref.Namespace, ref.Name}]; return pod != nil })
	if pod == nil {
		return nil, fmt.Errorf("pod %s: %w", ref, ErrPodNotFound)
	}
	if pod.UID != "" && ref.UID != "" && pod.UID != ref.UID {
		return nil, fmt.Errorf("pod %s: manifest UID %s does not match K8S_POD_UID %s", ref, pod.UID, ref.UID)
	}
	return pod, nil
}

// PodExists reports whether the manifests define the pod (UID checked
// when both sides have one), from the current snapshot: the orphan sweep
// asks about many pods and must not re-read the directory for each.
func (s *Source) PodExists(ref podref.Ref) (exists, known bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	pod := s.snap.pods[key{ref.Namespace, ref.Name}]
	return pod != nil && (pod.UID == "" || ref.UID == "" || pod.UID == ref.UID), true
}

// StatusPath is where the status of a pod is written.
func (s *Source) StatusPath(ref podref.Ref) string {
	return filepath.Join(s.statusDir, ref.Namespace, ref.Name+".json")
}

// WriteStatus writes the network-status JSON atomically.
func (s *Source) WriteStatus(_ context.Context, ref podref.Ref, status []byte) error {
	p := s.StatusPath(ref)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("status dir: %w", err)
	}
	return atomicfile.WriteNoSync(p, status, 0o644) // runtime state, like /run
}

// ClearStatus removes the status file if it still holds status (it may
// have been replaced by a newer sandbox of a pod with the same name). A nil
// status removes it whatever it holds (the caller knows no other sandbox
// of the pod is left).
func (s *Source) ClearStatus(ref podref.Ref, status []byte) error {
	p := s.StatusPath(ref)
	cur, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if status != nil && !bytes.Equal(cur, status) {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Ready is always nil once New succeeded.
func (s *Source) Ready() error { return nil }

// SweepStatus removes status files of pods that have no sandbox left
// (keep lists the pods that do). It runs at daemon start: a DEL the shim
// replayed while the daemon was down could not remove the status file.
func (s *Source) SweepStatus(keep map[podref.Ref]bool) error {
	nsDirs, err := os.ReadDir(s.statusDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range nsDirs {
		if !d.IsDir() {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(s.statusDir, d.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range entries {
			name, ok := strings.CutSuffix(f.Name(), ".json")
			if !ok || keep[podref.Ref{Namespace: d.Name(), Name: name}] {
				continue
			}
			if err := os.Remove(filepath.Join(s.statusDir, d.Name(), f.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

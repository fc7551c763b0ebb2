package e2e

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/plexus-cni/plexus/internal/chart"
	"github.com/plexus-cni/plexus/pkg/config"
)

// objects decodes a multi-document YAML stream into objects by kind/name.
func objects(t *testing.T, what, data string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(data), 4096)
	for {
		var obj map[string]any
		if err := d.Decode(&obj); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if obj == nil {
			continue
		}
		md, _ := obj["metadata"].(map[string]any)
		out[obj["kind"].(string)+"/"+md["name"].(string)] = obj
	}
}

// daemonConfig parses the plexusd.json of a ConfigMap object.
func daemonConfig(t *testing.T, obj map[string]any) config.Config {
	t.Helper()
	raw, _ := yaml.Marshal(obj)
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse([]byte(cm.Data["plexusd.json"]))
	if err != nil {
		t.Fatalf("plexusd.json: %v", err)
	}
	c.Warnings = nil
	return c
}

// The chart (rendered with Helm's library, as `helm template plexus -n
// kube-system`) passes helm lint's rules, and its default render is the
// plain manifests in deployments/: the same objects, the same daemon
// config, the same CRD. Its config values name every daemon key.
func TestHelmChartRendersThePlainManifests(t *testing.T) {
	dir := filepath.Join(root, chart.Dir)
	findings, err := chart.Lint(dir, "kube-system")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("helm lint: %s", f)
	}
	files, err := chart.Render(dir, "kube-system", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rendered, plain bytes.Buffer
	for _, f := range []string{"rbac.yaml", "configmap.yaml", "daemonset.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, "deployments", f))
		if err != nil {
			t.Fatal(err)
		}
		plain.WriteString(string(data) + "\n---\n")
		if files[f] == "" {
			t.Errorf("the chart renders no %s", f)
		}
		rendered.WriteString(files[f] + "\n---\n")
	}
	got, want := objects(t, "render", rendered.String()), objects(t, "deployments", plain.String())
	gotKeys, wantKeys := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))
	if !reflect.DeepEqual(gotKeys, wantKeys) {
		t.Fatalf("render has %v, deployments/ has %v", gotKeys, wantKeys)
	}
	for k, w := range want {
		if k == "ConfigMap/plexusd-config" {
			if g, w := daemonConfig(t, got[k]), daemonConfig(t, w); !reflect.DeepEqual(g, w) {
				t.Errorf("the chart's daemon config differs from configmap.yaml's:\n chart %+v\n plain %+v", g, w)
			}
			continue
		}
		if !reflect.DeepEqual(got[k], w) {
			g, _ := yaml.Marshal(got[k])
			wy, _ := yaml.Marshal(w)
			t.Errorf("%s differs:\n--- chart\n%s\n--- deployments/\n%s", k, g, wy)
		}
	}
	crd, err := os.ReadFile(filepath.Join(root, "deployments", "crd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if files["crd.yaml"] != string(crd) {
		t.Error("the chart's crds/crd.yaml differs from deployments/crd.yaml")
	}

	// Every daemon key is a value (null: unset), and nothing else.
	raw, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config map[string]any `json:"config"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k, v := range values.Config {
		if k == "logOptions" {
			keys = append(keys, k)
			for sub := range v.(map[string]any) {
				keys = append(keys, "logOptions."+sub)
			}
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, config.Keys()) {
		t.Errorf("values.yaml config keys\n %v\nwant every daemon key\n %v", keys, config.Keys())
	}

	// The toggles: a PodMonitor on request, metrics off drops the port.
	files, err = chart.Render(dir, "monitoring-test", map[string]any{
		"metrics": map[string]any{"podMonitor": map[string]any{"enabled": true}},
		"config":  map[string]any{"metricsPort": 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(files["podmonitor.yaml"], "kind: PodMonitor") || strings.Contains(files["daemonset.yaml"], "containerPort") ||
		!strings.Contains(files["daemonset.yaml"], "value: monitoring-test/plexus") {
		t.Errorf("toggles not rendered:\n%s\n%s", files["podmonitor.yaml"], files["daemonset.yaml"])
	}
}

// Package chart renders and lints the Plexus Helm chart
// (deployments/helm/plexus) with Helm's own Go library, for the tests: the
// chart's default render is checked against the plain manifests, and the
// real-node e2e installs Plexus from it.
package chart

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// Dir is the chart's directory below the repository root.
const Dir = "deployments/helm/plexus"

// Render renders the chart at dir as `helm template plexus -n namespace`
// with values over the chart's defaults. It returns each template's
// output by its file name (configmap.yaml, daemonset.yaml, …) and the CRDs
// (crds/) as "crd.yaml"; templates that render empty are left out.
func Render(dir, namespace string, values map[string]any) (map[string]string, error) {
	ch, err := loader.Load(dir)
	if err != nil {
		return nil, err
	}
	if err := chartutil.ProcessDependencies(ch, values); err != nil {
		return nil, err
	}
	vals, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{Name: "plexus", Namespace: namespace, IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for name, body := range out {
		base := filepath.Base(name)
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" || strings.TrimSpace(body) == "" {
			continue
		}
		files[base] = body
	}
	var crds []string
	for _, c := range ch.CRDObjects() {
		crds = append(crds, string(c.File.Data))
	}
	if len(crds) > 0 {
		files["crd.yaml"] = strings.Join(crds, "\n---\n")
	}
	return files, nil
}

// WriteRender renders the chart into outDir, one file per template.
func WriteRender(dir, namespace string, values map[string]any, outDir string) error {
	files, err := Render(dir, namespace, values)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(outDir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Lint runs `helm lint`'s rules on the chart and returns every finding at
// warning level or above.
func Lint(dir, namespace string) ([]string, error) {
	res := lint.All(dir, map[string]any{}, namespace, false)
	var out []string
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			out = append(out, fmt.Sprintf("%s: %s", m.Path, m.Err))
		}
	}
	sort.Strings(out)
	return out, nil
}

package daemon

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/plexus-cni/plexus/pkg/podref"
)

// cniArgs is the runtime's CNI_ARGS, split, order kept.
type cniArgs [][2]string

func parseCNIArgs(s string) (cniArgs, error) {
	var out cniArgs
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("CNI_ARGS: malformed pair %q", kv)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func (a cniArgs) get(k string) string {
	for _, kv := range a {
		if kv[0] == k {
			return kv[1]
		}
	}
	return ""
}

// podRef is the pod named by the K8S_* args; ok is false when the runtime
// sent none (plain CNI use: only the cluster and default networks apply).
func (a cniArgs) podRef() (podref.Ref, bool) {
	ref := podref.Ref{Namespace: a.get("K8S_POD_NAMESPACE"), Name: a.get("K8S_POD_NAME"), UID: a.get("K8S_POD_UID")}
	return ref, ref.Namespace != "" && ref.Name != ""
}

// delegateArgs are the CNI_ARGS every delegate gets: IgnoreUnknown and the
// runtime's pairs (K8S_POD_* among them), then the attachment's own extras.
func (a cniArgs) delegateArgs(extra [][2]string) [][2]string {
	out := [][2]string{{"IgnoreUnknown", "true"}}
	for _, kv := range a {
		if kv[0] != "IgnoreUnknown" {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// netConf is the part of the runtime's config for plexus the daemon reads.
type netConf struct {
	CNIVersion    string                 `json:"cniVersion"`
	Name          string                 `json:"name"`
	RuntimeConfig map[string]interface{} `json:"runtimeConfig,omitempty"`
	// GC (CNI 1.1): the attachments the runtime still considers valid.
	ValidAttachments []gcAttachment `json:"cni.dev/valid-attachments,omitempty"`
	// The spec-v1.1.0 name of the same key; libcni sends both.
	Attachments []gcAttachment `json:"cni.dev/attachments,omitempty"`
}

type gcAttachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

func parseNetConf(raw []byte) (*netConf, error) {
	var c netConf
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode plexus config: %w", err)
	}
	if c.CNIVersion == "" {
		return nil, fmt.Errorf("plexus config: cniVersion is required")
	}
	return &c, nil
}

// podAnnotationsKey is the runtimeConfig capability containerd fills with
// the pod's annotations.
const podAnnotationsKey = "io.kubernetes.cri.pod-annotations"

// runtimeCapabilities returns the runtime's runtimeConfig for the default
// network (NPWG spec 7.5: runtime-provided values go to it only).
func (c *netConf) runtimeCapabilities() map[string]interface{} {
	if len(c.RuntimeConfig) == 0 {
		return nil
	}
	out := make(map[string]interface{}, len(c.RuntimeConfig))
	for k, v := range c.RuntimeConfig {
		out[k] = v
	}
	return out
}

// podAnnotations returns the pod's annotations as the runtime passed them in
// runtimeConfig, or nil when it did not.
func (c *netConf) podAnnotations() map[string]string {
	raw, ok := c.RuntimeConfig[podAnnotationsKey].(map[string]interface{})
	if !ok {
		return nil
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

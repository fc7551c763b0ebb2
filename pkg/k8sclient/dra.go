package k8sclient

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// DRA (resource.k8s.io/v1, Kubernetes 1.34+): plexusd watches the
// ResourceSlices of its node, for the attributes of the devices the
// kubelet prepared for a pod's claims, and writes each configured
// device's network data into its ResourceClaim's status (KEP-4817).

// fieldManager owns the status.devices entries plexusd applies.
const fieldManager = "plexus"

// draProbeTimeout bounds the one list that tells at start whether DRA
// can be used.
const draProbeTimeout = 5 * time.Second

// draState is what the start-up probe found.
type draState int

const (
	draOn draState = iota
	draNotServed
	draForbidden
)

// probeDRA lists one ResourceSlice of the node: 404 means the API server
// does not serve resource.k8s.io/v1 (Kubernetes < 1.34), 403 that the RBAC
// does not let plexusd read ResourceSlices (Multus's ClusterRole, after a
// switch). Any other failure (the API server unreachable) counts as on:
// the informer retries.
func probeDRA(ctx context.Context, resource rest.Interface, node string) (draState, error) {
	ctx, cancel := context.WithTimeout(ctx, draProbeTimeout)
	defer cancel()
	err := resource.Get().Resource("resourceslices").
		VersionedParams(&metav1.ListOptions{Limit: 1, FieldSelector: sliceSelector(node)}, metav1.ParameterCodec).
		Do(ctx).Error()
	switch {
	case apierrors.IsNotFound(err):
		return draNotServed, nil
	case apierrors.IsForbidden(err):
		return draForbidden, err
	}
	return draOn, err
}

func sliceSelector(node string) string {
	return fields.OneTermEqualSelector(resourcev1.ResourceSliceSelectorNodeName, node).String()
}

func sliceSource(resource rest.Interface, node string) cache.ListerWatcher {
	return cache.NewFilteredListWatchFromClient(resource, "resourceslices", metav1.NamespaceAll, func(o *metav1.ListOptions) {
		o.FieldSelector = sliceSelector(node)
	})
}

// trimSlice keeps what Plexus reads of a ResourceSlice: its driver, pool
// and each device's name and attributes.
func trimSlice(obj interface{}) (interface{}, error) {
	s, ok := obj.(*resourcev1.ResourceSlice)
	if !ok {
		return obj, nil
	}
	out := &resourcev1.ResourceSlice{TypeMeta: s.TypeMeta, ObjectMeta: trimMeta(s.ObjectMeta)}
	out.Spec.Driver, out.Spec.Pool.Name = s.Spec.Driver, s.Spec.Pool.Name
	out.Spec.Devices = make([]resourcev1.Device, len(s.Spec.Devices))
	for i, d := range s.Spec.Devices {
		out.Spec.Devices[i] = resourcev1.Device{Name: d.Name, Attributes: d.Attributes}
	}
	return out, nil
}

// DeviceAttributes implements devices.DeviceAttributes over the node's
// ResourceSlices: the device's string attributes, each by its qualified
// name (an unqualified name is in the driver's domain).
func (c *Client) DeviceAttributes(driver, pool, device string) (map[string]string, bool) {
	if c.slices == nil {
		return nil, false
	}
	for _, o := range c.slices.List() {
		s, ok := o.(*resourcev1.ResourceSlice)
		if !ok || s.Spec.Driver != driver || s.Spec.Pool.Name != pool {
			continue
		}
		for _, d := range s.Spec.Devices {
			if d.Name != device {
				continue
			}
			out := make(map[string]string, len(d.Attributes))
			for k, v := range d.Attributes {
				if v.StringValue == nil {
					continue
				}
				name := string(k)
				if !strings.Contains(name, "/") {
					name = driver + "/" + name
				}
				out[name] = *v.StringValue
			}
			return out, true
		}
	}
	return nil, false
}

// DRA reports whether DRA devices can be looked up (resource.k8s.io/v1
// served and readable).
func (c *Client) DRA() bool { return c.slices != nil }

// ClaimNetworkData is one configured device's network data (KEP-4817).
type ClaimNetworkData struct {
	Driver, Pool, Device string
	InterfaceName        string
	// IPs in CIDR form, as the API requires.
	IPs []string
	MAC string
}

// WriteClaimNetworkData applies, as field manager "plexus", the network
// data of every device of the claim that plexusd configured; an empty
// list removes what plexusd wrote before (the driver's own entries and
// fields are left alone: server-side apply merges the list by driver,
// pool and device). A NotFound or Conflict error is returned as it is:
// the claim is gone.
func (c *Client) WriteClaimNetworkData(ctx context.Context, namespace, name string, devs []ClaimNetworkData) error {
	type networkData struct {
		InterfaceName   string   `json:"interfaceName,omitempty"`
		IPs             []string `json:"ips,omitempty"`
		HardwareAddress string   `json:"hardwareAddress,omitempty"`
	}
	type entry struct {
		Driver      string      `json:"driver"`
		Pool        string      `json:"pool"`
		Device      string      `json:"device"`
		NetworkData networkData `json:"networkData"`
	}
	body := struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   map[string]string `json:"metadata"`
		Status     struct {
			Devices []entry `json:"devices"`
		} `json:"status"`
	}{APIVersion: resourcev1.SchemeGroupVersion.String(), Kind: "ResourceClaim", Metadata: map[string]string{"name": name, "namespace": namespace}}
	body.Status.Devices = make([]entry, 0, len(devs))
	for _, d := range devs {
		body.Status.Devices = append(body.Status.Devices, entry{Driver: d.Driver, Pool: d.Pool, Device: d.Device,
			NetworkData: networkData{InterfaceName: d.InterfaceName, IPs: d.IPs, HardwareAddress: d.MAC}})
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, liveGetTimeout)
	defer cancel()
	if err := c.api.applyClaimStatus(ctx, namespace, name, raw); err != nil {
		return fmt.Errorf("ResourceClaim %s/%s: write status.devices[].networkData: %w", namespace, name, err)
	}
	return nil
}

func (r *restClients) applyClaimStatus(ctx context.Context, namespace, name string, body []byte) error {
	if r.resource == nil {
		return fmt.Errorf("resource.k8s.io/v1 is not served")
	}
	return r.resource.Patch(k8stypes.ApplyPatchType).Namespace(namespace).Resource("resourceclaims").Name(name).SubResource("status").
		Param("fieldManager", fieldManager).Param("force", "true").Body(body).Do(ctx).Error()
}

package devices

import (
	"fmt"
	"slices"

	"github.com/containernetworking/cni/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// Attributes of a DRA device that Plexus reads, Multus's DRA convention
// (dra-driver-sriov publishes them in its Multus mode): the resource name
// a NAD's k8s.v1.cni.cncf.io/resourceName matches, and the device ID given
// to the CNI plugin. Without a deviceID, the standard PCI bus ID serves.
const (
	AttrResourceName = "k8s.cni.cncf.io/resourceName"
	AttrDeviceID     = "k8s.cni.cncf.io/deviceID"
	AttrPCIBusID     = "resource.kubernetes.io/pciBusID"
)

// DeviceAttributes looks a DRA device up in the ResourceSlices of this
// node: its string attributes, and false if no slice of the node has it.
type DeviceAttributes interface {
	DeviceAttributes(driver, pool, device string) (map[string]string, bool)
}

// Allocation is what the kubelet allocated to a pod: device-plugin IDs by
// resource name, and the devices prepared for its ResourceClaims.
type Allocation struct {
	Devices Devices
	Claims  []delegate.ClaimDevice
}

// claimKey is the Devices key of the devices of a pod resource claim.
func claimKey(podClaim string) string { return "claim " + podClaim }

// resourceKey is the Devices key an attachment takes its device from.
func resourceKey(s delegate.Spec) string {
	if s.ResourceClaim != "" {
		return claimKey(s.ResourceClaim)
	}
	return s.ResourceName
}

// draDevices adds the pod's DRA devices to a copy of alloc.Devices: each
// under the resource name its driver published (k8s.cni.cncf.io/
// resourceName), and under the pod resource claim it was allocated for.
// origin maps each added device ID to its claim device. A device that
// cannot be looked up (no ResourceSlice of this node lists it, or DRA is
// off) is left out and said in unresolved: it fails the ADD only if an
// attachment then lacks a device (a pod's GPU claim must not fail an ADD
// that needs none of it).
func draDevices(pod *podref.Pod, alloc Allocation, attrs DeviceAttributes) (devs Devices, origin map[string]delegate.ClaimDevice, unresolved []string) {
	devs = make(Devices, len(alloc.Devices)+len(alloc.Claims))
	for r, ids := range alloc.Devices {
		devs[r] = slices.Clone(ids)
	}
	if len(alloc.Claims) == 0 {
		return devs, nil, nil
	}
	byClaim := map[string]string{} // ResourceClaim name → pod claim name
	for podClaim, claim := range pod.ResourceClaims {
		if claim != "" {
			byClaim[claim] = podClaim
		}
	}
	origin = map[string]delegate.ClaimDevice{}
	for _, cd := range alloc.Claims {
		if attrs == nil {
			unresolved = append(unresolved, fmt.Sprintf("device %q of ResourceClaim %s/%s: the ResourceSlices are not watched (resource.k8s.io/v1 is not served, or the RBAC does not allow it)", cd.Device, cd.Namespace, cd.Name))
			continue
		}
		a, ok := attrs.DeviceAttributes(cd.Driver, cd.Pool, cd.Device)
		if !ok {
			unresolved = append(unresolved, fmt.Sprintf("device %q (driver %s, pool %s) of ResourceClaim %s/%s is in no ResourceSlice of this node", cd.Device, cd.Driver, cd.Pool, cd.Namespace, cd.Name))
			continue
		}
		id := a[AttrDeviceID]
		if id == "" {
			id = a[AttrPCIBusID]
		}
		if id == "" {
			continue // not a network device (a GPU in the same claim, say)
		}
		if r := a[AttrResourceName]; r != "" {
			devs[r] = append(devs[r], id)
		}
		if pc, ok := byClaim[cd.Name]; ok {
			devs[claimKey(pc)] = append(devs[claimKey(pc)], id)
		}
		origin[id] = cd
	}
	return devs, origin, unresolved
}

// checkClaims fails an attachment whose NAD names a resource claim the
// pod does not have, or one with no device prepared on this node.
func checkClaims(podRef string, pod *podref.Pod, specs []delegate.Spec, devs Devices) error {
	for _, s := range specs {
		c := s.ResourceClaim
		if c == "" {
			continue
		}
		fail := func(reason string) error {
			return &Error{Pod: podRef, Network: s.Network, IfName: s.IfName, Resource: "claim " + c, Code: types.ErrInvalidNetworkConfig, Reason: reason}
		}
		if errs := validation.IsDNS1123Label(c); len(errs) > 0 {
			return fail(fmt.Sprintf("the NAD's %s annotation is not a resource claim name: %s", "plexus-cni.io/resource-claim", errs[0]))
		}
		claim, ok := pod.ResourceClaims[c]
		if !ok {
			return fail(fmt.Sprintf("the pod has no resource claim %q (spec.resourceClaims)", c))
		}
		if len(devs[claimKey(c)]) == 0 {
			return fail(fmt.Sprintf("no network device of ResourceClaim %q was prepared for the pod on this node: the claim is not allocated, no container uses it (resources.claims), or its devices have no %s attribute", claim, AttrDeviceID))
		}
	}
	return nil
}

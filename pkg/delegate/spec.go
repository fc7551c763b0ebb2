package delegate

import "encoding/json"

// Spec is one resolved attachment: everything needed to run ADD, CHECK and
// DEL for one delegate network in one pod sandbox. A Spec is stored verbatim
// in the attachment record before the delegate runs, so DEL never needs to
// re-resolve it (the NAD or the pod may be gone by then).
type Spec struct {
	// Network is the display name: "<namespace>/<nad>" for a NAD, or the CNI
	// network name for a conf file. It is the network-status "name".
	Network string `json:"network"`
	// IfName is the interface name inside the sandbox.
	IfName string `json:"ifName"`
	// ConfList is the delegate's CNI configuration as a conflist. A single
	// plugin conf is wrapped into a one-element list; the plugin object's
	// bytes are kept verbatim so unknown fields survive.
	ConfList json.RawMessage `json:"confList"`
	// Args are the CNI_ARGS pairs for this delegate (K8S_* plus, for a
	// static request, the legacy IP= and MAC=).
	Args [][2]string `json:"args,omitempty"`
	// CapabilityArgs are the runtimeConfig values offered to the delegate;
	// libcni passes each only to plugins that declare the capability.
	CapabilityArgs map[string]interface{} `json:"capabilityArgs,omitempty"`
	// Default marks the pod's default (cluster) network attachment.
	Default bool `json:"default,omitempty"`
	// DefaultRoute lists the gateways the selection asked to become the
	// pod's default route(s) through this interface (spec §4.1.2.1.9).
	DefaultRoute []string `json:"defaultRoute,omitempty"`
	// ResourceName is the device-plugin resource the NAD names in its
	// k8s.v1.cni.cncf.io/resourceName annotation; "" if none.
	ResourceName string `json:"resourceName,omitempty"`
	// ResourceClaim is the pod's resource claim (its spec.resourceClaims
	// name) the NAD takes its device from (DRA, annotation
	// plexus-cni.io/resource-claim); "" if none.
	ResourceClaim string `json:"resourceClaim,omitempty"`
	// DeviceID is the device of ResourceName (or ResourceClaim) allocated
	// to this attachment (injected as "deviceID"/"pciBusID" into ConfList).
	DeviceID string `json:"deviceID,omitempty"`
	// Claim is set when DeviceID is a DRA device: the ResourceClaim and
	// device it came from, where the attachment's network data is written
	// (status.devices[].networkData) and cleared at DEL.
	Claim *ClaimDevice `json:"claim,omitempty"`
	// DeviceInfoFile is the device-info spec's CNI file for this
	// attachment (capability CNIDeviceInfoFile); removed on DEL.
	DeviceInfoFile string `json:"deviceInfoFile,omitempty"`
	// Selection is the networks-annotation element this attachment was
	// made for, in canonical form (netselect.SelectionKey); "" for the
	// default network and defaultNetworks. Hot-plug matches on it.
	Selection string `json:"selection,omitempty"`
	// Hotplug is the record's state of an attachment a hot-plug change is
	// working on: HotplugAdding before its ADD, HotplugRemoving before its
	// DEL; "" once done. A crash leaves it set, and the next pass undoes
	// (adding) or finishes (removing) it.
	Hotplug string `json:"hotplug,omitempty"`
	// Auxiliary marks the auxiliary chain (auxiliaryCNIChainName): the
	// last attachment, on every pod, made for no network of its own.
	Auxiliary bool `json:"auxiliary,omitempty"`
}

// ClaimDevice is one device the kubelet prepared for a pod's ResourceClaim
// (DRA), as its PodResources API reports it.
type ClaimDevice struct {
	Namespace string `json:"namespace"`
	// Name is the ResourceClaim object's name.
	Name   string `json:"name"`
	Driver string `json:"driver"`
	Pool   string `json:"pool"`
	Device string `json:"device"`
	// The attachment's network data once its ADD succeeded, written into
	// the claim's status.devices[].networkData: IPs in CIDR form.
	InterfaceName string   `json:"interfaceName,omitempty"`
	IPs           []string `json:"ips,omitempty"`
	MAC           string   `json:"mac,omitempty"`
}

// Hot-plug states of an attachment in the record.
const (
	HotplugAdding   = "adding"
	HotplugRemoving = "removing"
)

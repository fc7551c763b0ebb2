// Package netselect turns a pod, the daemon's network options and the
// NetworkAttachmentDefinitions it references into the ordered list of
// attachments ([]delegate.Spec) that the delegate chain executes.
//
// Single responsibility: network selection. That covers parsing the pod
// annotations k8s.v1.cni.cncf.io/networks and v1.multus-cni.io/default-network
// (both the comma form "[ns/]name[@ifname]" and the JSON list form of the
// NPWG multi-net spec §4.1), resolving the cluster network and the default
// networks, turning a NAD's spec.config (or the on-disk conf it names) into a
// validated, normalized conflist, naming interfaces (net1, net2, …) and
// checking the per-attachment requests (ips, mac, portMappings, …) against
// the capabilities the delegate's plugins declare (spec §4.1.2.1.3.2).
//
// The package is pure. It must not import client-go or netlink and must not
// do I/O of its own: NADs come through the NADGetter interface and files
// through the ConfLoader interface, so every rule here is table-tested
// without a cluster or a disk.
//
// Delegate configs are handled as bytes, never round-tripped through
// interface{}: fields this package does not know about (and large integers
// that float64 would corrupt) reach the plugin byte for byte.
package netselect

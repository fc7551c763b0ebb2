// Package devices gives attachments whose NAD names a device-plugin
// resource (annotation k8s.v1.cni.cncf.io/resourceName) the device the
// kubelet allocated to the pod, and handles the device-info files of the
// device-info spec v1.1.0
// (https://github.com/k8snetworkplumbingwg/device-info-spec/blob/master/SPEC.md).
//
// Manager is the daemon's devices step. Before the delegates run, Stage
//
//  1. returns at once when no attachment names a resource (the common
//     case costs no kubelet call);
//  2. asks the kubelet PodResources v1 gRPC API for the pod's devices: the
//     pod-scoped Get first, List as the fallback when Get is unimplemented
//     or disabled (feature gate KubeletPodResourcesGet), bounded by a
//     deadline and cached for a couple of seconds per pod, so a retried ADD
//     costs no second call;
//  3. hands the device IDs of each resource out in sorted order (as Multus
//     does since PR #1481), one per attachment naming the resource; more
//     attachments than devices is a CNI error 7 naming pod, network and
//     resource (Assign, pure);
//  4. injects the ID as top-level "deviceID" and "pciBusID" into every
//     plugin of the attachment's conflist (what sriov-cni and host-device
//     read), and offers the runtimeConfig capabilities "deviceID" and
//     "CNIDeviceInfoFile";
//  5. copies the device plugin's device-info file, if there is one, to the
//     attachment's CNI device-info path (atomically, read-only 0444 as the
//     NAD client's helpers write it).
//
// After ADD the daemon reads that file (copied, or written by the plugin)
// into network-status "device-info" with ReadDeviceInfo; DEL removes it.
//
// DRA (ResourceClaims) and the kubelet checkpoint-file fallback Multus has
// are not implemented. The package imports no client-go; the kubelet is
// reached through the small PodResources interface.
package devices

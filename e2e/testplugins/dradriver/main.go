// Command dradriver is a DRA driver for tests, standing in for a NIC DRA
// driver such as dra-driver-sriov in its Multus mode. Through
// k8s.io/dynamic-resource-allocation/kubeletplugin it registers with the
// kubelet and publishes, for its node, one ResourceSlice of the "VFs"
// named by -devices (device name = PCI address), each with the attributes
// Multus's DRA convention reads (k8s.cni.cncf.io/resourceName and
// k8s.cni.cncf.io/deviceID) and the standard
// resource.kubernetes.io/pciBusID. It prepares a claim by naming its
// devices (no CDI device: the CNI moves the link, nothing is injected into
// a container) and has nothing to undo at unprepare.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/dynamic-resource-allocation/resourceslice"
)

type driver struct {
	name string
}

func (d *driver) PrepareResourceClaims(_ context.Context, claims []*resourceapi.ResourceClaim) (map[types.UID]kubeletplugin.PrepareResult, error) {
	out := make(map[types.UID]kubeletplugin.PrepareResult, len(claims))
	for _, c := range claims {
		var res kubeletplugin.PrepareResult
		if c.Status.Allocation == nil {
			res.Err = fmt.Errorf("claim %s/%s is not allocated", c.Namespace, c.Name)
		} else {
			for _, r := range c.Status.Allocation.Devices.Results {
				if r.Driver == d.name {
					res.Devices = append(res.Devices, kubeletplugin.Device{Requests: []string{r.Request}, PoolName: r.Pool, DeviceName: r.Device})
				}
			}
		}
		log.Printf("prepare %s/%s: %d device(s) %v", c.Namespace, c.Name, len(res.Devices), res.Err)
		out[c.UID] = res
	}
	return out, nil
}

func (d *driver) UnprepareResourceClaims(_ context.Context, claims []kubeletplugin.NamespacedObject) (map[types.UID]error, error) {
	out := make(map[types.UID]error, len(claims))
	for _, c := range claims {
		log.Printf("unprepare %s", c.NamespacedName)
		out[c.UID] = nil
	}
	return out, nil
}

func (d *driver) HandleError(_ context.Context, err error, msg string) {
	log.Printf("%s: %v", msg, err)
}

func main() {
	name := flag.String("driver", "vf.plexus.test", "driver name (a DNS subdomain)")
	node := flag.String("node", "", "node name")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file")
	kubeletDir := flag.String("kubelet-dir", "/var/lib/kubelet", "the kubelet's --root-dir")
	resource := flag.String("resource", "plexus.test/vf-dra", "value of the k8s.cni.cncf.io/resourceName attribute")
	devices := flag.String("devices", "", "comma-separated PCI addresses, one device each")
	flag.Parse()
	log.SetPrefix("dradriver: ")
	if *node == "" || *devices == "" {
		log.Fatal("-node and -devices are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d := &driver{name: *name}
	registrar, data := filepath.Join(*kubeletDir, "plugins_registry"), filepath.Join(*kubeletDir, "plugins", *name)
	for _, dir := range []string{registrar, data} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			log.Fatal(err)
		}
	}
	helper, err := kubeletplugin.Start(ctx, d,
		kubeletplugin.DriverName(*name),
		kubeletplugin.NodeName(*node),
		kubeletplugin.KubeClient(cs),
		kubeletplugin.RegistrarDirectoryPath(registrar),
		kubeletplugin.PluginDataDirectoryPath(data),
	)
	if err != nil {
		log.Fatal(err)
	}
	var devs []resourceapi.Device
	for _, pci := range strings.Split(*devices, ",") {
		pci := pci
		devs = append(devs, resourceapi.Device{
			Name: deviceName(pci),
			Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
				"k8s.cni.cncf.io/resourceName":    {StringValue: resource},
				"k8s.cni.cncf.io/deviceID":        {StringValue: &pci},
				"resource.kubernetes.io/pciBusID": {StringValue: &pci},
			},
		})
	}
	if err := helper.PublishResources(ctx, resourceslice.DriverResources{
		Pools: map[string]resourceslice.Pool{*node: {Slices: []resourceslice.Slice{{Devices: devs}}}},
	}); err != nil {
		log.Fatal(err)
	}
	log.Printf("serving %d device(s) of %s on node %s", len(devs), *name, *node)
	<-ctx.Done()
	helper.Stop()
	os.Exit(0)
}

// deviceName is a DNS label for a PCI address: 0000:00:0b.1 → pci-0000-00-0b-1.
func deviceName(pci string) string {
	return "pci-" + strings.NewReplacer(":", "-", ".", "-").Replace(pci)
}

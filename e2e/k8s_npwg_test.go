package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// default-route with the pod and NADs from the API server: the default
// route moves to net1, eth0 keeps none, the API object's network-status
// shows net1's gateway and none for eth0, CHECK passes.
func TestK8sDefaultRoute(t *testing.T) {
	e := newEnv(t, withKube(t))
	k := e.kube
	k.createNAD(t, k.ns, "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir))
	p := e.createPod(k.ns, "gw", map[string]string{nadv1.NetworkAttachmentAnnot: `[{"name":"mv1","default-route":["192.168.10.254"]}]`})
	e.mustAdd(p)
	out, err := exec.Command("ip", "-n", filepath.Base(p.netns.Path()), "-j", "-4", "route", "show", "default").Output()
	if err != nil {
		t.Fatal(err)
	}
	var routes []struct{ Gateway, Dev string }
	if err := json.Unmarshal(out, &routes); err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 || routes[0].Dev != "net1" || routes[0].Gateway != "192.168.10.254" {
		t.Errorf("default routes %+v, want exactly one via 192.168.10.254 on net1", routes)
	}
	st := e.apiStatus(p)
	if len(st) != 2 || len(st[0].Gateway) != 0 || len(st[1].Gateway) != 1 || st[1].Gateway[0] != "192.168.10.254" {
		t.Errorf("network-status gateways: %+v", st)
	}
	if r := e.chk(p); r.err != nil {
		t.Errorf("CHECK: %s", r)
	}
	e.mustDel(p)
	e.assertClean()
}

// Devices with the pod from the API server: the kubelet's allocation
// reaches the plugin and network-status on the API object carries the
// device-info.
func TestK8sDevices(t *testing.T) {
	requireRoot(t)
	devInfoDir := t.TempDir()
	ns := "plexus-dev-" + rand.String(6)
	pr := vfPod("vf", []string{"vf-k1"})
	pr.Namespace = ns
	kubelet := &testutil.FakeKubelet{Pods: []*podresourcesv1.PodResources{pr}}
	sock := kubelet.Serve(t)
	e := newEnv(t, withKube(t, func(k *kubeEnv) { k.ns = ns }), withConfig("podResourcesSocket", sock), withConfig("deviceInfoDir", devInfoDir))
	k := e.kube
	e.hostIP("link", "add", "vf-k1", "link", "plexus-demo0", "type", "macvlan", "mode", "bridge")
	mac := e.linkMAC("vf-k1")
	dpFile := filepath.Join(devInfoDir, "dp", "example.com-vf-vf-k1-device.json")
	if err := os.MkdirAll(filepath.Dir(dpFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dpFile, []byte(vfDPInfo), 0o644); err != nil {
		t.Fatal(err)
	}
	nad := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "vf-net", Namespace: k.ns, Annotations: map[string]string{"k8s.v1.cni.cncf.io/resourceName": vfResource}},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","name":"vf-net","type":"vfplugin","capabilities":{"deviceID":true}}`},
	}
	if _, err := k.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(k.ns).Create(context.Background(), nad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := e.createPod(k.ns, "vf", map[string]string{nadv1.NetworkAttachmentAnnot: "vf-net"})
	e.mustAdd(p)
	if l := e.links(p)["net1"]; l.Address != mac {
		t.Errorf("net1 is not the allocated device vf-k1 (mac %s, want %s)", l.Address, mac)
	}
	st := e.apiStatus(p)
	if len(st) != 2 || st[1].DeviceInfo == nil || st[1].DeviceInfo.Type != "pci" || st[1].DeviceInfo.Pci == nil || st[1].DeviceInfo.Pci.PciAddress != "0000:03:02.1" {
		t.Errorf("network-status device-info: %+v", st)
	}
	e.mustDel(p)
	if !strings.Contains(e.hostIP("-br", "link"), "vf-k1") {
		t.Error("vf-k1 not returned to the host on DEL")
	}
	e.hostIP("link", "del", "vf-k1")
	e.assertClean()
}

package k8sclient

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// The node's ResourceSlices answer a device's attributes: string values,
// by qualified name (an unqualified one in the driver's domain); a device
// no slice lists is not found.
func TestDeviceAttributes(t *testing.T) {
	c, kube := source(t, time.Second)
	id, res, model := "0000:00:0b.0", "example.com/vf", "x710"
	n := int64(3)
	slice := &resourcev1.ResourceSlice{ObjectMeta: metav1.ObjectMeta{Name: "n1-vf"}, Spec: resourcev1.ResourceSliceSpec{
		Driver: "vf.example.com", NodeName: &[]string{node}[0], Pool: resourcev1.ResourcePool{Name: node, ResourceSliceCount: 1},
		Devices: []resourcev1.Device{{Name: "pci-0", Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{
			"k8s.cni.cncf.io/deviceID": {StringValue: &id}, "k8s.cni.cncf.io/resourceName": {StringValue: &res},
			"model": {StringValue: &model}, "queues": {IntValue: &n},
		}}}}}
	if _, err := kube.ResourceV1().ResourceSlices().Create(context.Background(), slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	testutil.Eventually(t, 5*time.Second, "slice cached", func() bool {
		var ok bool
		got, ok = c.DeviceAttributes("vf.example.com", node, "pci-0")
		return ok
	})
	want := map[string]string{"k8s.cni.cncf.io/deviceID": id, "k8s.cni.cncf.io/resourceName": res, "vf.example.com/model": model}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("attributes %v, want %v", got, want)
	}
	for _, q := range [][3]string{{"vf.example.com", node, "pci-9"}, {"other", node, "pci-0"}, {"vf.example.com", "n2", "pci-0"}} {
		if _, ok := c.DeviceAttributes(q[0], q[1], q[2]); ok {
			t.Errorf("%v found", q)
		}
	}
}

// A pod's resource claims map to their ResourceClaims: named directly, or
// generated from a template (once the status says which).
func TestClaimsOf(t *testing.T) {
	direct, gen, tpl := "shared-vf", "p-vfs-x7", "two-vfs"
	p := &corev1.Pod{Spec: corev1.PodSpec{ResourceClaims: []corev1.PodResourceClaim{
		{Name: "shared", ResourceClaimName: &direct}, {Name: "vfs", ResourceClaimTemplateName: &tpl}, {Name: "pending", ResourceClaimTemplateName: &tpl},
	}}, Status: corev1.PodStatus{ResourceClaimStatuses: []corev1.PodResourceClaimStatus{{Name: "vfs", ResourceClaimName: &gen}, {Name: "stranger", ResourceClaimName: &gen}}}}
	want := map[string]string{"shared": direct, "vfs": gen, "pending": ""}
	if got := claimsOf(p); !reflect.DeepEqual(got, want) {
		t.Errorf("claimsOf = %v, want %v", got, want)
	}
	if claimsOf(&corev1.Pod{}) != nil {
		t.Error("a pod without claims has claims")
	}
}

// The network data goes as one server-side apply of the claim's status,
// in CIDR form, as field manager "plexus".
func TestWriteClaimNetworkDataBody(t *testing.T) {
	var got []byte
	c := &Client{api: recordingAPI{fakeAPI: fakeAPI{}, body: &got}}
	err := c.WriteClaimNetworkData(context.Background(), "ns", "claim-1", []ClaimNetworkData{{Driver: "vf", Pool: "n1", Device: "d0", InterfaceName: "net1", IPs: []string{"10.0.0.5/24"}, MAC: "02:00:00:00:00:01"}})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"resource.k8s.io/v1","kind":"ResourceClaim","metadata":{"name":"claim-1","namespace":"ns"},"status":{"devices":[{"device":"d0","driver":"vf","networkData":{"hardwareAddress":"02:00:00:00:00:01","interfaceName":"net1","ips":["10.0.0.5/24"]},"pool":"n1"}]}}`
	if b, _ := json.Marshal(doc); string(b) != want {
		t.Errorf("body %s\nwant %s", b, want)
	}
	if err := c.WriteClaimNetworkData(context.Background(), "ns", "claim-1", nil); err != nil || string(got) == "" || !json.Valid(got) {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &doc); err != nil || len(doc["status"].(map[string]any)["devices"].([]any)) != 0 {
		t.Errorf("clearing body %s: want an empty devices list", got)
	}
}

type recordingAPI struct {
	fakeAPI
	body *[]byte
}

func (r recordingAPI) applyClaimStatus(_ context.Context, _, _ string, body []byte) error {
	*r.body = body
	return nil
}

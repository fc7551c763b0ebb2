package devices

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/pkg/delegate"
)

func vfSpec(network, ifName, resource string) delegate.Spec {
	return delegate.Spec{Network: network, IfName: ifName, ResourceName: resource}
}

func TestAssign(t *testing.T) {
	t.Parallel()
	const vf, gpu = "example.com/vf", "example.com/other"
	tests := []struct {
		name  string
		specs []delegate.Spec
		devs  Devices
		want  []string
		// wantErr, if set, is the *Error expected (Reason checked by
		// substring).
		wantErr *Error
	}{
		{
			name:  "no resources",
			specs: []delegate.Spec{vfSpec("default", "eth0", ""), vfSpec("ns/mv", "net1", "")},
			want:  []string{"", ""},
		},
		{
			name:  "IDs handed out in sorted order, not the kubelet's",
			specs: []delegate.Spec{vfSpec("default", "eth0", ""), vfSpec("ns/vf-net", "net1", vf), vfSpec("ns/vf-net", "net2", vf)},
			devs:  Devices{vf: {"vf-a2", "vf-a1"}},
			want:  []string{"", "vf-a1", "vf-a2"},
		},
		{
			name:  "PCI addresses sort as strings",
			specs: []delegate.Spec{vfSpec("ns/a", "net1", vf), vfSpec("ns/b", "net2", vf), vfSpec("ns/a", "net3", vf)},
			devs:  Devices{vf: {"0000:3b:02.3", "0000:3b:02.1", "0000:3b:0a.0"}},
			want:  []string{"0000:3b:02.1", "0000:3b:02.3", "0000:3b:0a.0"},
		},
		{
			name:  "two resources interleaved, each its own pool",
			specs: []delegate.Spec{vfSpec("ns/vf", "net1", vf), vfSpec("ns/o", "net2", gpu), vfSpec("ns/vf", "net3", vf), vfSpec("ns/mv", "net4", "")},
			devs:  Devices{vf: {"v2", "v1", "v3"}, gpu: {"o1"}},
			want:  []string{"v1", "o1", "v2", ""},
		},
		{
			name:  "a device reported twice is one device",
			specs: []delegate.Spec{vfSpec("ns/vf", "net1", vf), vfSpec("ns/vf", "net2", vf)},
			devs:  Devices{vf: {"v1", "v1", "v2"}},
			want:  []string{"v1", "v2"},
		},
		{
			name:    "more attachments than devices",
			specs:   []delegate.Spec{vfSpec("ns/vf-net", "net1", vf), vfSpec("ns/vf-net", "net2", vf), vfSpec("ns/vf-net", "net3", vf)},
			devs:    Devices{vf: {"vf-a2", "vf-a1"}},
			wantErr: &Error{Pod: "ns/a", Network: "ns/vf-net", IfName: "net3", Resource: vf, Code: 7, Reason: "more attachments than devices: 3 attachments use the resource, the kubelet allocated 2 device(s) of it to the pod [vf-a1 vf-a2]"},
		},
		{
			name:    "resource not allocated at all",
			specs:   []delegate.Spec{vfSpec("ns/mv", "net1", ""), vfSpec("ns/o", "net2", gpu)},
			devs:    Devices{vf: {"v1"}},
			wantErr: &Error{Pod: "ns/a", Network: "ns/o", IfName: "net2", Resource: gpu, Code: 7, Reason: "the kubelet allocated no device of the resource to the pod: request it"},
		},
		{
			name:    "nil devices",
			specs:   []delegate.Spec{vfSpec("ns/vf", "net1", vf)},
			wantErr: &Error{Pod: "ns/a", Network: "ns/vf", IfName: "net1", Resource: vf, Code: 7, Reason: "allocated no device of the resource"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			devsBefore := map[string][]string{}
			for k, v := range tt.devs {
				devsBefore[k] = append([]string(nil), v...)
			}
			got, err := Assign("ns/a", tt.specs, tt.devs)
			if tt.wantErr != nil {
				var de *Error
				if !errors.As(err, &de) {
					t.Fatalf("Assign = %v, %v; want *Error", got, err)
				}
				w := *tt.wantErr
				if de.Pod != w.Pod || de.Network != w.Network || de.IfName != w.IfName || de.Resource != w.Resource || de.CNICode() != w.Code || !strings.Contains(de.Reason, w.Reason) {
					t.Fatalf("error %+v, want %+v", de, w)
				}
				for _, part := range []string{`pod "ns/a"`, `network "` + w.Network + `" (` + w.IfName + `)`, `resource "` + w.Resource + `"`} {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("error %q lacks %q", err, part)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Assign: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Assign = %q, want %q", got, tt.want)
			}
			seen := map[string]bool{}
			for _, id := range got {
				if id != "" && seen[id] {
					t.Fatalf("device %s assigned twice: %q", id, got)
				}
				seen[id] = true
			}
			for k, v := range tt.devs {
				if !reflect.DeepEqual(v, devsBefore[k]) {
					t.Errorf("Assign reordered the caller's %s list: %q, was %q", k, v, devsBefore[k])
				}
			}
		})
	}
}

func TestNeedsDevices(t *testing.T) {
	t.Parallel()
	if NeedsDevices(nil) || NeedsDevices([]delegate.Spec{vfSpec("default", "eth0", "")}) {
		t.Error("NeedsDevices true without a resource")
	}
	if !NeedsDevices([]delegate.Spec{vfSpec("default", "eth0", ""), vfSpec("ns/vf", "net1", "example.com/vf")}) {
		t.Error("NeedsDevices false with a resource")
	}
}

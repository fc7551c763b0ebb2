package netstatus

import (
	"encoding/json"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/plexus-cni/plexus/pkg/delegate"
)

// BenchmarkBuildAndMarshal is the network-status of a pod with four
// attachments (a bridge-like result with host and sandbox interfaces for
// eth0, macvlan-like results for the others).
func BenchmarkBuildAndMarshal(b *testing.B) {
	results := []string{
		`{"cniVersion":"1.0.0","interfaces":[{"name":"br0","mac":"aa:bb:cc:dd:ee:01"},{"name":"veth1","mac":"aa:bb:cc:dd:ee:02"},{"name":"eth0","mac":"aa:bb:cc:dd:ee:03","sandbox":"/run/netns/x"}],"ips":[{"address":"10.88.0.5/24","gateway":"10.88.0.1","interface":2}],"routes":[{"dst":"0.0.0.0/0"}]}`,
		`{"cniVersion":"1.0.0","interfaces":[{"name":"net1","mac":"aa:bb:cc:dd:ee:04","sandbox":"/run/netns/x"}],"ips":[{"address":"10.101.0.5/16","interface":0}]}`,
		`{"cniVersion":"1.0.0","interfaces":[{"name":"net2","mac":"aa:bb:cc:dd:ee:05","sandbox":"/run/netns/x"}],"ips":[{"address":"10.102.0.5/16","interface":0}]}`,
		`{"cniVersion":"1.0.0","interfaces":[{"name":"net3","mac":"aa:bb:cc:dd:ee:06","sandbox":"/run/netns/x"}],"ips":[{"address":"10.103.0.5/16","interface":0}]}`,
	}
	var outcomes []delegate.Outcome
	for i, r := range results {
		var res current.Result
		if err := json.Unmarshal([]byte(r), &res); err != nil {
			b.Fatal(err)
		}
		outcomes = append(outcomes, delegate.Outcome{Spec: delegate.Spec{Network: "ns/net", IfName: res.Interfaces[len(res.Interfaces)-1].Name, Default: i == 0}, Result: &res})
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		st, err := Build(outcomes, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Marshal(st); err != nil {
			b.Fatal(err)
		}
	}
}

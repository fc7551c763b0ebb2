package netselect

import "testing"

func BenchmarkParseNetworksComma(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseNetworks("macvlan-conf, pods/plain@data0, caps", "pods"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseNetworksJSON(b *testing.B) {
	v := `[{"name":"macvlan-conf","ips":["10.1.1.5/24"],"mac":"02:00:00:00:00:01"},{"name":"plain","interface":"data0"},{"name":"caps","namespace":"pods"}]`
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseNetworks(v, "pods"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolve is one pod with the cluster network and three
// attachments, the work resolution adds to every ADD.
func BenchmarkResolve(b *testing.B) {
	nads, confs := world()
	p := pod("pods", map[string]string{NetworksAnnotation: "macvlan-conf, plain@data0, default/shared"})
	opts := baseOpts()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Resolve(opts, Request{Pod: p, RuntimeIfName: "eth0"}, nads, confs); err != nil {
			b.Fatal(err)
		}
	}
}

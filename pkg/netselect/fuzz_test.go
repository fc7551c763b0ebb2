package netselect

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/plexus-cni/plexus/pkg/api"
)

func FuzzParseNetworks(f *testing.F) {
	for _, seed := range []string{
		"",
		"a,b,",
		"a, ns/b@net1 ,c",
		"ns/a@",
		`[{"name":"x","interface":"net1"}]`,
		`[{"name":"x","interfaceRequest":"legacy0","namespace":"n"}]`,
		`[{"name":"sriov","ips":["10.1.1.5/24","2001:db8::5"],"mac":"02:00:00:00:00:01",` +
			`"infiniband-guid":"c2:11:22:33:44:55:66:77","portMappings":[{"hostPort":80,"containerPort":80,"protocol":"TCP"}],` +
			`"bandwidth":{"ingressRate":1},"cni-args":{"n":12345678901234567890,"s":"<&>"},"default-route":["::ffff:10.0.0.1"]}]`,
		`[{"name":5}]`,
		`{"name":"x"}`,
		"\x00\xff[{",
		"garbage !!",
	} {
		f.Add(seed, "pods")
	}
	f.Fuzz(func(t *testing.T, value, ns string) {
		els, err := ParseNetworks(value, ns)
		if err != nil {
			var se *SelectionError
			if !errors.As(err, &se) {
				t.Fatalf("error is %T, not *SelectionError: %v", err, err)
			}
			return
		}
		for i, el := range els {
			if errs := validation.IsDNS1123Subdomain(el.Name); len(errs) > 0 {
				t.Fatalf("element %d: invalid name %q accepted", i, el.Name)
			}
			if errs := validation.IsDNS1123Subdomain(el.Namespace); len(errs) > 0 {
				t.Fatalf("element %d: invalid namespace %q accepted", i, el.Namespace)
			}
			if el.InterfaceRequest != "" && ValidateIfName(el.InterfaceRequest) != nil {
				t.Fatalf("element %d: invalid interface %q accepted", i, el.InterfaceRequest)
			}
		}
		formatted := FormatNetworks(els)
		again, err := ParseNetworks(formatted, "other-namespace")
		if err != nil {
			t.Fatalf("re-parse of %s failed: %v", formatted, err)
		}
		if !reflect.DeepEqual(again, els) {
			t.Fatalf("round trip changed the value:\n%s\n%s", formatted, FormatNetworks(again))
		}
	})
}

func FuzzNormalizeConfList(f *testing.F) {
	for _, seed := range []string{
		`{"cniVersion":"1.0.0","type":"macvlan","big":12345678901234567890}`,
		`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"ptp"},{"type":"portmap","capabilities":{"portMappings":true}}]}`,
		`{"cniVersion":"1.0.0","type":"../evil"}`,
		`{"cniVersion":"1.0.0","type":"ok","Type":"/bin/sh"}`,
		`{"cniVersion":"1.0.0","type":"ok","ipam":{"type":"a\\b"}}`,
		`{"cniVersion":"0.4.0", "plugins": [ { "type" : "x" , "args":{} } ] }`,
		`[1,2]`,
		"garbage",
	} {
		f.Add([]byte(seed), "dflt")
	}
	f.Fuzz(func(t *testing.T, raw []byte, defaultName string) {
		out, err := NormalizeConfList(raw, defaultName)
		if err != nil {
			return
		}
		var list struct {
			CNIVersion string            `json:"cniVersion"`
			Name       string            `json:"name"`
			Plugins    []json.RawMessage `json:"plugins"`
		}
		if err := json.Unmarshal(out, &list); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		if len(list.Plugins) == 0 {
			t.Fatalf("no plugins in %s", out)
		}
		if !networkNameRE.MatchString(list.Name) || !api.SupportsCNIVersion(list.CNIVersion) {
			t.Fatalf("bad name or version in %s", out)
		}
		for i, p := range list.Plugins {
			// Decode the way a Go plugin would (case-insensitive keys).
			var conf struct {
				Type string `json:"type"`
				IPAM struct {
					Type string `json:"type"`
				} `json:"ipam"`
			}
			if err := json.Unmarshal(p, &conf); err != nil {
				t.Fatalf("plugins[%d] does not decode: %v", i, err)
			}
			if conf.Type == "" || strings.ContainsAny(conf.Type, `/\`) || strings.ContainsAny(conf.IPAM.Type, `/\`) {
				t.Fatalf("plugins[%d] has unsafe type %q / ipam %q", i, conf.Type, conf.IPAM.Type)
			}
		}
		// Normalizing is idempotent.
		again, err := NormalizeConfList(out, defaultName)
		if err != nil {
			t.Fatalf("re-normalize failed: %v\n%s", err, out)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n%s\n%s", out, again)
		}
	})
}

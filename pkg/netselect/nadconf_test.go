package netselect

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// oddConf has unusual whitespace, key order, a big integer and HTML
// characters; all of it must reach the delegate unchanged.
const oddConf = `{ "type" :"macvlan",  "big": 12345678901234567890,
	"cniVersion":"1.0.0", "master":"eth0", "note":"<a&b>", "ipam": {"type":"static"} }`

func TestNormalizeConfList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{
			name: "single conf wrapped verbatim with name injected",
			raw:  "\n" + oddConf + "\n",
			want: `{"cniVersion":"1.0.0","name":"dflt","plugins":[` +
				`{ "type" :"macvlan",  "big": 12345678901234567890,
	"cniVersion":"1.0.0", "master":"eth0", "note":"<a&b>", "ipam": {"type":"static"},"name":"dflt" }` + `]}`,
		},
		{
			name: "single conf with name kept byte for byte",
			raw:  `{"name":"mine", "cniVersion":"0.3.1","type":"bridge","x":1.50}`,
			want: `{"cniVersion":"0.3.1","name":"mine","plugins":[{"name":"mine", "cniVersion":"0.3.1","type":"bridge","x":1.50}]}`,
		},
		{
			name: "single conf with null name gets default",
			raw:  `{"name":null,"cniVersion":"0.4.0","type":"bridge"}`,
			want: `{"cniVersion":"0.4.0","name":"dflt","plugins":[{"name":"dflt","cniVersion":"0.4.0","type":"bridge"}]}`,
		},
		{
			name: "conflist kept",
			raw:  `{"cniVersion":"1.1.0","name":"l","plugins":[{"type":"ptp","big":99999999999999999999},{"type":"portmap","capabilities":{"portMappings":true}}]}`,
			want: `{"cniVersion":"1.1.0","name":"l","plugins":[{"type":"ptp","big":99999999999999999999},{"type":"portmap","capabilities":{"portMappings":true}}]}`,
		},
		{
			name: "conflist name injected",
			raw:  `{"cniVersion":"1.0.0", "plugins":[ {"type":"ptp"} ]}`,
			want: `{"cniVersion":"1.0.0", "plugins":[ {"type":"ptp"} ],"name":"dflt"}`,
		},
		{
			name: "empty ipam allowed",
			raw:  `{"cniVersion":"1.0.0","type":"macvlan","ipam":{}}`,
			want: `{"cniVersion":"1.0.0","name":"dflt","plugins":[{"cniVersion":"1.0.0","type":"macvlan","ipam":{},"name":"dflt"}]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeConfList([]byte(tc.raw), "dflt")
			if err != nil {
				t.Fatalf("NormalizeConfList: %v", err)
			}
			if string(got) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Fatalf("output is not valid JSON")
			}
		})
	}
}

func TestNormalizeConfListErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		raw       string
		defName   string
		field     string
		fragments []string
	}{
		{"empty", "  ", "d", "", []string{"empty"}},
		{"not JSON", `{"type":`, "d", "", []string{"invalid JSON"}},
		{"array", `[{"type":"x"}]`, "d", "", []string{"JSON object"}},
		{"missing cniVersion", `{"type":"bridge"}`, "d", "cniVersion", []string{"missing"}},
		{"bad cniVersion", `{"cniVersion":"0.2.0","type":"bridge"}`, "d", "cniVersion", []string{`"0.2.0"`}},
		{"numeric cniVersion", `{"cniVersion":1,"type":"bridge"}`, "d", "cniVersion", nil},
		{"list missing cniVersion", `{"name":"n","plugins":[{"type":"x"}]}`, "d", "cniVersion", nil},
		{"missing type", `{"cniVersion":"1.0.0"}`, "d", "type", []string{"missing type"}},
		{"empty type", `{"cniVersion":"1.0.0","type":""}`, "d", "type", nil},
		{"type not string", `{"cniVersion":"1.0.0","type":["x"]}`, "d", "type", nil},
		{"type with slash", `{"cniVersion":"1.0.0","type":"/usr/bin/evil"}`, "d", "type", []string{"plain binary name"}},
		{"type with backslash", `{"cniVersion":"1.0.0","type":"a\\b"}`, "d", "type", nil},
		{"type with NUL", `{"cniVersion":"1.0.0","type":"a\u0000"}`, "d", "type", nil},
		{"type dotdot", `{"cniVersion":"1.0.0","type":".."}`, "d", "type", nil},
		{"list plugin type dotdot", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"ok"},{"type":".."}]}`, "d", "plugins[1].type", nil},
		{"ipam type with slash", `{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"../host-local"}}`, "d", "ipam.type", nil},
		{"list ipam type with slash", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"x","ipam":{"type":"a/b"}}]}`, "d", "plugins[0].ipam.type", nil},
		{"ipam not object", `{"cniVersion":"1.0.0","type":"macvlan","ipam":"host-local"}`, "d", "ipam", nil},
		{"duplicate type", `{"cniVersion":"1.0.0","type":"ok","type":"../x"}`, "d", "type", []string{"duplicate"}},
		{"escaped duplicate type", `{"cniVersion":"1.0.0","type":"ok","typ\u0065":"../x"}`, "d", "type", []string{"duplicate"}},
		{"case-variant type", `{"cniVersion":"1.0.0","type":"ok","Type":"../x"}`, "d", "Type", []string{`spelled "type"`}},
		{"case-variant ipam type", `{"cniVersion":"1.0.0","type":"ok","ipam":{"type":"a","TYPE":"../x"}}`, "d", "ipam.TYPE", nil},
		{"reserved runtimeConfig", `{"cniVersion":"1.0.0","type":"x","runtimeConfig":{}}`, "d", "runtimeConfig", []string{"reserved"}},
		{"reserved args", `{"cniVersion":"1.0.0","type":"x","args":{"cni":{}}}`, "d", "args", nil},
		{"reserved prevResult", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"x"},{"type":"y","prevResult":{}}]}`, "d", "plugins[1].prevResult", nil},
		{"reserved cni.dev prefix", `{"cniVersion":"1.0.0","type":"x","cni.dev/attachments":[]}`, "d", "cni.dev/attachments", nil},
		{"reserved cni.dev prefix any case", `{"cniVersion":"1.0.0","type":"x","CNI.dev/x":1}`, "d", "CNI.dev/x", nil},
		{"plugins not array", `{"cniVersion":"1.0.0","name":"n","plugins":{"type":"x"}}`, "d", "plugins", nil},
		{"plugins null", `{"cniVersion":"1.0.0","name":"n","plugins":null}`, "d", "plugins", nil},
		{"plugins empty", `{"cniVersion":"1.0.0","name":"n","plugins":[]}`, "d", "plugins", []string{"empty"}},
		{"plugin not object", `{"cniVersion":"1.0.0","name":"n","plugins":["x"]}`, "d", "plugins[0]", nil},
		{"bad name", `{"cniVersion":"1.0.0","name":"-bad","type":"x"}`, "d", "name", nil},
		{"empty name", `{"cniVersion":"1.0.0","name":"","type":"x"}`, "d", "name", nil},
		{"bad default name", `{"cniVersion":"1.0.0","type":"x"}`, "bad/name", "name", []string{"default name"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeConfList([]byte(tc.raw), tc.defName)
			if err == nil {
				t.Fatalf("NormalizeConfList = %s, want error", got)
			}
			_ = wantSelErr(t, err, tc.field, tc.fragments...)
		})
	}
}

func TestLoadNADConfig(t *testing.T) {
	t.Parallel()
	confs := &fakeConfs{byName: map[string]string{
		"/etc/cni/net.d|on-disk": `{"cniVersion":"1.0.0","name":"on-disk","type":"bridge"}`,
		"/etc/cni/net.d|broken":  `{"cniVersion":"1.0.0","name":"broken","type":"../x"}`,
	}}
	tests := []struct {
		name      string
		config    string
		nadName   string
		loader    ConfLoader
		want      string
		field     string
		fragments []string
	}{
		{name: "spec config", nadName: "mv", config: `{"cniVersion":"1.0.0","type":"macvlan"}`, loader: confs,
			want: `{"cniVersion":"1.0.0","name":"mv","plugins":[{"cniVersion":"1.0.0","type":"macvlan","name":"mv"}]}`},
		{name: "empty spec uses loader", nadName: "on-disk", config: " \n ", loader: confs,
			want: `{"cniVersion":"1.0.0","name":"on-disk","plugins":[{"cniVersion":"1.0.0","name":"on-disk","type":"bridge"}]}`},
		{name: "empty spec not on disk", nadName: "missing", loader: confs,
			field: "spec.config", fragments: []string{`NetworkAttachmentDefinition "ns/missing"`, `"/etc/cni/net.d"`}},
		{name: "empty spec no loader", nadName: "x", loader: nil, field: "spec.config"},
		{name: "spec config not an object", nadName: "x", config: `"str"`, loader: confs, field: "spec.config"},
		{name: "spec config bad plugin type", nadName: "x", loader: confs,
			config: `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"a"},{"type":"b/c"}]}`,
			field:  "spec.config: plugins[1].type", fragments: []string{`NetworkAttachmentDefinition "ns/x"`}},
		{name: "on-disk conf bad type", nadName: "broken", loader: confs, field: "confDir: type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := LoadNADConfig(makeNAD("ns", tc.nadName, tc.config), "/etc/cni/net.d", tc.loader)
			if tc.field != "" {
				_ = wantSelErr(t, err, tc.field, tc.fragments...)
				return
			}
			if err != nil {
				t.Fatalf("LoadNADConfig: %v", err)
			}
			if string(got) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	t.Run("loader error is wrapped", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("permission denied")
		_, err := LoadNADConfig(makeNAD("ns", "x", ""), "/d", &fakeConfs{err: boom})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want it to wrap %v", err, boom)
		}
	})
	t.Run("nil NAD", func(t *testing.T) {
		t.Parallel()
		if _, err := LoadNADConfig(nil, "/d", confs); err == nil {
			t.Fatal("want error")
		}
	})
}

func TestMergeCNIArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		list string
		args map[string]interface{}
		want string
	}{
		{
			name: "creates args.cni in every plugin",
			list: `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"},{"type":"b", "x": 1}]}`,
			args: map[string]interface{}{"foo": "bar"},
			want: `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","args":{"cni":{"foo":"bar"}}},{"type":"b", "x": 1,"args":{"cni":{"foo":"bar"}}}]}`,
		},
		{
			name: "annotation overrides existing keys and keeps others",
			list: `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","args":{"other":1,"cni":{"foo":"nad","keep":true}}}]}`,
			args: map[string]interface{}{"foo": "pod", "n": json.Number("12345678901234567890"), "html": "<&>"},
			want: `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","args":{"other":1,"cni":{"foo":"pod","keep":true,"html":"<&>","n":12345678901234567890}}}]}`,
		},
		{
			name: "adds cni next to other args",
			list: `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","args":{"k8s":{}}}]}`,
			args: map[string]interface{}{"nested": map[string]interface{}{"a": []interface{}{"b"}}},
			want: `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","args":{"k8s":{},"cni":{"nested":{"a":["b"]}}}}]}`,
		},
		{
			name: "no args is a no-op",
			list: ` {"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"}]} `,
			args: nil,
			want: `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"}]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := MergeCNIArgs([]byte(tc.list), tc.args)
			if err != nil {
				t.Fatalf("MergeCNIArgs: %v", err)
			}
			if string(got) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	errTests := []struct {
		name string
		list string
	}{
		{"args not object", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","args":"x"}]}`},
		{"args.cni not object", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","args":{"cni":[1]}}]}`},
		{"not a conflist", `{"cniVersion":"1.0.0","type":"a"}`},
		{"not JSON", `{`},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, err := MergeCNIArgs([]byte(tc.list), map[string]interface{}{"a": 1}); err == nil {
				t.Fatalf("MergeCNIArgs = %s, want error", got)
			}
		})
	}
}

func TestInjectPluginFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		list    string
		fields  map[string]json.RawMessage
		want    string
		wantErr bool
	}{
		{
			name:   "sets on every plugin, replacing existing",
			list:   `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"sriov","deviceID":"old"}, {"type":"tuning"}]}`,
			fields: map[string]json.RawMessage{"deviceID": json.RawMessage(`"0000:03:00.1"`), "pciBusID": json.RawMessage(` "0000:03:00.1" `)},
			want:   `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"sriov","deviceID":"0000:03:00.1","pciBusID":"0000:03:00.1"}, {"type":"tuning","deviceID":"0000:03:00.1","pciBusID":"0000:03:00.1"}]}`,
		},
		{
			name:   "empty plugin object",
			list:   `{"cniVersion":"1.0.0","name":"n","plugins":[{ }]}`,
			fields: map[string]json.RawMessage{"k": json.RawMessage(`1`)},
			want:   `{"cniVersion":"1.0.0","name":"n","plugins":[{"k":1 }]}`,
		},
		{
			name:    "invalid value",
			list:    `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"}]}`,
			fields:  map[string]json.RawMessage{"k": json.RawMessage(`{`)},
			wantErr: true,
		},
		{
			name:    "plugins missing",
			list:    `{"cniVersion":"1.0.0","type":"a"}`,
			fields:  map[string]json.RawMessage{"k": json.RawMessage(`1`)},
			wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := InjectPluginFields([]byte(tc.list), tc.fields)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("InjectPluginFields = %s, want error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("InjectPluginFields: %v", err)
			}
			if string(got) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestPluginsDeclare(t *testing.T) {
	t.Parallel()
	list := `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","capabilities":{"ips":true,"mac":false}},{"type":"b","capabilities":{"portMappings":true,"bandwidth":"yes"}}]}`
	tests := []struct {
		name, list, capability string
		want                   bool
	}{
		{"first plugin", list, "ips", true},
		{"second plugin", list, "portMappings", true},
		{"declared false", list, "mac", false},
		{"non-bool value", list, "bandwidth", false},
		{"absent", list, "infinibandGUID", false},
		{"no capabilities", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"}]}`, "ips", false},
		{"malformed", `{"plugins":`, "ips", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := PluginsDeclare([]byte(tc.list), tc.capability); got != tc.want {
				t.Fatalf("PluginsDeclare(%q) = %v, want %v", tc.capability, got, tc.want)
			}
		})
	}
}

func TestNormalizedOutputFeedsEditors(t *testing.T) {
	t.Parallel()
	// A normalized single conf must survive the editors with its odd bytes.
	list, err := NormalizeConfList([]byte(oddConf), "n")
	if err != nil {
		t.Fatal(err)
	}
	got, err := MergeCNIArgs(list, map[string]interface{}{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"big": 12345678901234567890`, `"note":"<a&b>"`, `{ "type" :"macvlan",`, `"args":{"cni":{"a":"b"}}`} {
		if !bytes.Contains(got, []byte(frag)) {
			t.Errorf("%s lost %q", got, frag)
		}
	}
	if strings.Count(string(got), `"name"`) != 2 {
		t.Errorf("expected name at list and plugin level: %s", got)
	}
}

// A config file on the node may carry its own runtimeConfig (the runtime
// would pass it on); a NAD's spec.config may not. The other reserved keys
// stay reserved everywhere.
func TestHostFileMayCarryRuntimeConfig(t *testing.T) {
	ovnk := `{"cniVersion":"1.1.0","name":"ovn-kubernetes","type":"ovn-k8s-cni-overlay","ipam":{},"dns":{},"runtimeConfig":{}}`
	out, err := NormalizeHostConfList([]byte(ovnk), "x")
	if err != nil {
		t.Fatalf("host file: %v", err)
	}
	if !strings.Contains(string(out), `"runtimeConfig":{}`) {
		t.Errorf("runtimeConfig not kept: %s", out)
	}
	if _, err := NormalizeConfList([]byte(ovnk), "x"); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("NAD config with runtimeConfig: err %v, want reserved", err)
	}
	if _, err := NormalizeHostConfList([]byte(`{"cniVersion":"1.0.0","type":"x","prevResult":{}}`), "x"); err == nil {
		t.Error("host file with prevResult accepted")
	}
}

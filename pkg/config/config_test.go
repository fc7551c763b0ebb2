package config

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// base is Default() with the one required key set, i.e. what
// {"clusterNetwork": "calico"} parses to.
func base() Config {
	c := Default()
	c.ClusterNetwork = "calico"
	return c
}

// keyErrors flattens err (an errors.Join tree) into its *KeyErrors.
func keyErrors(t *testing.T, err error) []*KeyError {
	t.Helper()
	var out []*KeyError
	var walk func(error)
	walk = func(e error) {
		if ke, ok := e.(*KeyError); ok { //nolint:errorlint // walking the tree by hand on purpose
			out = append(out, ke)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		t.Errorf("error %q is not a *KeyError", e)
	}
	if err != nil {
		walk(err)
	}
	return out
}

func keysOf(kes []*KeyError) []string {
	var keys []string
	for _, ke := range kes {
		keys = append(keys, ke.Key)
	}
	sort.Strings(keys)
	return keys
}

func TestDefault(t *testing.T) {
	t.Parallel()
	d := Default()
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"clusterNetwork", d.ClusterNetwork, ""},
		{"defaultNetworks", d.DefaultNetworks, []string{}},
		{"multusNamespace", d.MultusNamespace, "kube-system"},
		{"systemNamespaces", d.SystemNamespaces, []string{"kube-system"}},
		{"namespaceIsolation", d.NamespaceIsolation, false},
		{"globalNamespaces", d.GlobalNamespaces, []string(nil)},
		{"confDir", d.ConfDir, "/etc/cni/plexus/net.d"},
		{"binDir", d.BinDirs, []string{"/opt/cni/bin"}},
		{"cniDir", d.CNIDir, "/var/lib/cni/plexus"},
		{"socketDir", d.SocketDir, "/run/plexus"},
		{"socketPath", d.SocketPath(), "/run/plexus/plexus.sock"},
		{"readinessindicatorfile", d.ReadinessIndicatorFile, ""},
		{"manifestsDir", d.ManifestsDir, ""},
		{"statusDir", d.StatusDir, "/run/plexus/status"},
		{"maxConcurrency", d.MaxConcurrency, 8},
		{"hotplug", d.Hotplug, false},
		{"metricsPort", d.MetricsPort, 0},
		{"metricsBindAddress", d.MetricsBindAddress, "127.0.0.1"},
		{"hotplugConcurrency", d.HotplugConcurrency, 1},
		{"statusWrite", d.StatusWrite, "async"},
		{"queueSize", d.QueueSize, 256},
		{"queueTimeout", d.QueueTimeout, 30 * time.Second},
		{"requestTimeout", d.RequestTimeout, 110 * time.Second},
		{"maxRequestBytes", d.MaxRequestBytes, int64(1 << 20)},
		{"maxAttachments", d.MaxAttachments, 32},
		{"logFile", d.Log.File, ""},
		{"logLevel", d.Log.Level, slog.LevelInfo},
		{"logToStderr", d.Log.ToStderr, true},
		{"logFormat", d.Log.Format, "text"},
		{"logOptions.maxSize", d.Log.MaxSizeMB, 100},
		{"logOptions.maxAge", d.Log.MaxAgeDays, 5},
		{"logOptions.maxBackups", d.Log.MaxBackups, 5},
		{"logOptions.compress", d.Log.Compress, true},
		{"effectiveGlobalNamespaces", d.EffectiveGlobalNamespaces(), []string{"default"}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("got %#v, want %#v", c.got, c.want)
			}
		})
	}
}

func TestDefaultNeedsOnlyClusterNetwork(t *testing.T) {
	t.Parallel()
	kes := keyErrors(t, Default().Validate())
	if got := keysOf(kes); !reflect.DeepEqual(got, []string{"clusterNetwork"}) {
		t.Fatalf("Default().Validate() keys = %v, want [clusterNetwork]", got)
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("base().Validate() = %v", err)
	}
	got, err := Parse([]byte(`{"clusterNetwork": "calico"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, base()) {
		t.Fatalf("Parse(minimal) = %+v, want %+v", got, base())
	}
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		json string // members added after "clusterNetwork": "calico", or the whole object if it starts with "{"
		mod  func(c *Config)
	}{
		{"clusterNetwork trimmed", `{"clusterNetwork": " /etc/cni/net.d/10-calico.conflist "}`, func(c *Config) { c.ClusterNetwork = "/etc/cni/net.d/10-calico.conflist" }},
		{"defaultNetworks", `"defaultNetworks": ["a", "other/b"]`, func(c *Config) { c.DefaultNetworks = []string{"a", "other/b"} }},
		{"defaultNetworks null is unset", `"defaultNetworks": null`, func(*Config) {}},
		{"multusNamespace", `"multusNamespace": "plexus"`, func(c *Config) { c.MultusNamespace = "plexus" }},
		{"systemNamespaces", `"systemNamespaces": ["kube-system", "infra"]`, func(c *Config) { c.SystemNamespaces = []string{"kube-system", "infra"} }},
		{"systemNamespaces empty", `"systemNamespaces": []`, func(c *Config) { c.SystemNamespaces = []string{} }},
		{"namespaceIsolation", `"namespaceIsolation": true`, func(c *Config) { c.NamespaceIsolation = true }},
		{"confDir cleaned", `"confDir": "/etc/cni/multus/net.d/"`, func(c *Config) { c.ConfDir = "/etc/cni/multus/net.d" }},
		{"binDir string", `"binDir": "/usr/libexec/cni"`, func(c *Config) { c.BinDirs = []string{"/usr/libexec/cni"} }},
		{"binDir list", `"binDir": ["/opt/cni/bin", "/usr/libexec/cni/"]`, func(c *Config) { c.BinDirs = []string{"/opt/cni/bin", "/usr/libexec/cni"} }},
		{"cniDir", `"cniDir": "/var/lib/cni/multus"`, func(c *Config) { c.CNIDir = "/var/lib/cni/multus" }},
		{"socketDir", `"socketDir": "/host/run/multus/"`, func(c *Config) { c.SocketDir = "/host/run/multus" }},
		{"readinessindicatorfile", `"readinessindicatorfile": "/run/calico/ready"`, func(c *Config) { c.ReadinessIndicatorFile = "/run/calico/ready" }},
		{"manifestsDir", `"manifestsDir": "/etc/plexus/manifests"`, func(c *Config) { c.ManifestsDir = "/etc/plexus/manifests" }},
		{"statusDir", `"statusDir": "/var/run/plexus/st"`, func(c *Config) { c.StatusDir = "/var/run/plexus/st" }},
		{"maxConcurrency", `"maxConcurrency": 1024`, func(c *Config) { c.MaxConcurrency = 1024 }},
		{"queueSize zero", `"queueSize": 0`, func(c *Config) { c.QueueSize = 0 }},
		{"queueTimeout", `"queueTimeout": "1m"`, func(c *Config) { c.QueueTimeout = time.Minute }},
		{"requestTimeout", `"requestTimeout": "90s", "queueTimeout": "500ms"`, func(c *Config) {
			c.RequestTimeout = 90 * time.Second
			c.QueueTimeout = 500 * time.Millisecond
		}},
		{"maxRequestBytes", `"maxRequestBytes": 1024`, func(c *Config) { c.MaxRequestBytes = 1024 }},
		{"maxAttachments", `"maxAttachments": 256`, func(c *Config) { c.MaxAttachments = 256 }},
		{"logFile", `"logFile": "/var/log/plexus.log"`, func(c *Config) { c.Log.File = "/var/log/plexus.log" }},
		{"logLevel", `"logLevel": "debug"`, func(c *Config) { c.Log.Level = slog.LevelDebug }},
		{"logToStderr", `"logToStderr": false`, func(c *Config) { c.Log.ToStderr = false }},
		{"logFormat", `"logFormat": "JSON"`, func(c *Config) { c.Log.Format = "json" }},
		{"logOptions all", `"logOptions": {"maxSize": 10, "maxAge": 0, "maxBackups": 2, "compress": false}`, func(c *Config) {
			c.Log.MaxSizeMB, c.Log.MaxAgeDays, c.Log.MaxBackups, c.Log.Compress = 10, 0, 2, false
		}},
		{"logOptions partial keeps other defaults", `"logOptions": {"maxAge": 30}`, func(c *Config) { c.Log.MaxAgeDays = 30 }},
		{"logOptions empty", `"logOptions": {}`, func(*Config) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := tc.json
			if !strings.HasPrefix(doc, "{") {
				doc = `{"clusterNetwork": "calico", ` + doc + `}`
			}
			got, err := Parse([]byte(doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := base()
			tc.mod(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestGlobalNamespaces(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		json      string
		want      []string
		effective []string
	}{
		{"unset", ``, nil, []string{"default"}},
		{"null", `, "globalNamespaces": null`, nil, []string{"default"}},
		{"multus string", `, "globalNamespaces": "default,infra"`, []string{"default", "infra"}, []string{"default", "infra"}},
		{"string trimmed, empties dropped", `, "globalNamespaces": " default , ,infra,"`, []string{"default", "infra"}, []string{"default", "infra"}},
		{"string without default", `, "globalNamespaces": "infra"`, []string{"infra"}, []string{"infra"}},
		{"empty string is unset (Multus)", `, "globalNamespaces": ""`, nil, []string{"default"}},
		{"list", `, "globalNamespaces": ["default", "infra"]`, []string{"default", "infra"}, []string{"default", "infra"}},
		{"list trimmed, empties dropped", `, "globalNamespaces": [" infra ", ""]`, []string{"infra"}, []string{"infra"}},
		{"empty list means none", `, "globalNamespaces": []`, []string{}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(`{"clusterNetwork": "calico"` + tc.json + `}`))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(c.GlobalNamespaces, tc.want) {
				t.Errorf("GlobalNamespaces = %#v, want %#v", c.GlobalNamespaces, tc.want)
			}
			if got := c.EffectiveGlobalNamespaces(); !reflect.DeepEqual(got, tc.effective) {
				t.Errorf("EffectiveGlobalNamespaces() = %#v, want %#v", got, tc.effective)
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"verbose", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"warning", slog.LevelWarn},
		{"error", slog.LevelError},
		{"panic", slog.LevelError},
		{"DEBUG", slog.LevelDebug},
		{" Verbose ", slog.LevelInfo},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(`{"clusterNetwork": "calico", "logLevel": "` + tc.in + `"}`))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.Log.Level != tc.want {
				t.Errorf("level = %v, want %v", c.Log.Level, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "trace", "fatal", "notice"} {
		t.Run("bad "+bad, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(`{"clusterNetwork": "calico", "logLevel": "` + bad + `"}`))
			if got := keysOf(keyErrors(t, err)); !reflect.DeepEqual(got, []string{"logLevel"}) {
				t.Fatalf("error keys = %v, want [logLevel]; err = %v", got, err)
			}
		})
	}
}

// A Multus key whose value Plexus cannot honour is refused, saying why.
func TestUnsupportedMultusValue(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(`{"clusterNetwork": "calico", "multusConfigFile": "/etc/cni/multus/00-multus.conf"}`))
	if !errors.Is(err, ErrUnsupportedKey) || errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnsupportedKey only", err)
	}
	for _, want := range []string{`"multusConfigFile"`, "unsupported Multus key", "auto"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not contain %q", err, want)
		}
	}
}

// delegates has Multus's meaning: inline configs, the first the default
// network, used only without clusterNetwork; with it, a warning.
func TestDelegates(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(`{"delegates": [{"cniVersion":"1.0.0","name":"a","type":"bridge"}, {"type":"macvlan"}]}`))
	if err != nil || len(c.Delegates) != 2 || len(c.Warnings) != 0 {
		t.Fatalf("delegates alone: %v %+v", err, c)
	}
	c, err = Parse([]byte(`{"clusterNetwork": "calico", "delegates": [{"type":"bridge"}]}`))
	if err != nil || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "delegates") {
		t.Fatalf("delegates beside clusterNetwork: %v %v", err, c.Warnings)
	}
	_, err = Parse([]byte(`{"delegates": ["bridge"]}`))
	if err == nil || !strings.Contains(err.Error(), "delegates[0]") {
		t.Fatalf("a string delegate: %v", err)
	}
	_, err = Parse([]byte(`{"delegates": []}`))
	if err == nil || !strings.Contains(err.Error(), "clusterNetwork") {
		t.Fatalf("no delegate, no clusterNetwork: %v", err)
	}
}

// The other Multus keys are accepted, whatever their value, each with a
// warning that says what Plexus does instead.
func TestIgnoredMultusKeys(t *testing.T) {
	t.Parallel()
	hints := map[string]string{
		"enablePprof":         "pprofSocket",
		"connectionLimit":     "maxConcurrency and queueSize",
		"perNodeCertificate":  "service account",
		"forceCNIVersion":     "cniVersion",
		"overrideNetworkName": "plexus-cni-network",
		"retryDeleteOnError":  "until DEL succeeds",
		"kubeconfig":          "--kubeconfig",
		"capabilities":        "primary's capabilities",
		"name":                "plexus-cni-network",
		"type":                `"type": "plexus"`,
		"daemonSocketDir":     "socketDir",
	}
	if len(hints) != len(ignored) {
		t.Errorf("test covers %d ignored keys, package has %d", len(hints), len(ignored))
	}
	for key, hint := range hints {
		c, err := Parse([]byte(`{"clusterNetwork": "calico", "` + key + `": {"any": 1}}`))
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], `"`+key+`"`) || !strings.Contains(c.Warnings[0], hint) {
			t.Errorf("%s: warnings %q, want one naming it and %q", key, c.Warnings, hint)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		json    string // whole document
		wantKey string
		want    string
	}{
		{"missing clusterNetwork", `{}`, "clusterNetwork", "required"},
		{"blank clusterNetwork", `{"clusterNetwork": "  "}`, "clusterNetwork", "required"},
		{"unknown key", `{"clusterNetwork": "c", "foo": 1}`, "foo", "unknown key"},
		{"unknown key case hint", `{"clusterNetwork": "c", "confdir": "/x"}`, "confdir", `did you mean "confDir"`},
		{"unknown logOptions key", `{"clusterNetwork": "c", "logOptions": {"maxsize": 1}}`, "logOptions.maxsize", `did you mean "logOptions.maxSize"`},
		{"duplicate key", `{"clusterNetwork": "c", "cniDir": "/a", "cniDir": "/b"}`, "cniDir", "more than once"},
		{"clusterNetwork type", `{"clusterNetwork": 1}`, "clusterNetwork", "want a string, got number 1"},
		{"defaultNetworks type", `{"clusterNetwork": "c", "defaultNetworks": "a,b"}`, "defaultNetworks", "want a list of strings"},
		{"defaultNetworks empty item", `{"clusterNetwork": "c", "defaultNetworks": ["a", " "]}`, "defaultNetworks[1]", "must not be empty"},
		{"namespaceIsolation type", `{"clusterNetwork": "c", "namespaceIsolation": "true"}`, "namespaceIsolation", `want a boolean (true or false), got string "true"`},
		{"multusNamespace not a label", `{"clusterNetwork": "c", "multusNamespace": "Kube_System"}`, "multusNamespace", "DNS-1123 label"},
		{"multusNamespace empty", `{"clusterNetwork": "c", "multusNamespace": ""}`, "multusNamespace", "must not be empty"},
		{"multusNamespace too long", `{"clusterNetwork": "c", "multusNamespace": "` + strings.Repeat("a", 64) + `"}`, "multusNamespace", "at most 63"},
		{"systemNamespaces not a label", `{"clusterNetwork": "c", "systemNamespaces": ["-x"]}`, "systemNamespaces[0]", "DNS-1123 label"},
		{"globalNamespaces not a label", `{"clusterNetwork": "c", "globalNamespaces": "default,Infra"}`, "globalNamespaces[1]", "DNS-1123 label"},
		{"globalNamespaces type", `{"clusterNetwork": "c", "globalNamespaces": 3}`, "globalNamespaces", "comma-separated string or a list of strings"},
		{"globalNamespaces list item type", `{"clusterNetwork": "c", "globalNamespaces": [1]}`, "globalNamespaces", "want a list of strings"},
		{"confDir relative", `{"clusterNetwork": "c", "confDir": "etc/cni"}`, "confDir", "absolute path"},
		{"confDir empty", `{"clusterNetwork": "c", "confDir": ""}`, "confDir", "absolute path, got an empty string"},
		{"binDir relative", `{"clusterNetwork": "c", "binDir": "bin"}`, "binDir", "absolute path"},
		{"binDir list relative", `{"clusterNetwork": "c", "binDir": ["/opt/cni/bin", "bin"]}`, "binDir[1]", "absolute path"},
		{"binDir empty list", `{"clusterNetwork": "c", "binDir": []}`, "binDir", "at least one directory"},
		{"binDir type", `{"clusterNetwork": "c", "binDir": true}`, "binDir", "comma-separated string or a list of strings"},
		{"cniDir relative", `{"clusterNetwork": "c", "cniDir": "./cache"}`, "cniDir", "absolute path"},
		{"socketDir relative", `{"clusterNetwork": "c", "socketDir": "run"}`, "socketDir", "absolute path"},
		{"socketDir too long", `{"clusterNetwork": "c", "socketDir": "/` + strings.Repeat("d", 100) + `"}`, "socketDir", "longer than the 107"},
		{"statusDir relative", `{"clusterNetwork": "c", "statusDir": "status"}`, "statusDir", "absolute path"},
		{"readinessindicatorfile relative", `{"clusterNetwork": "c", "readinessindicatorfile": "ready"}`, "readinessindicatorfile", "absolute path"},
		{"manifestsDir relative", `{"clusterNetwork": "c", "manifestsDir": "m"}`, "manifestsDir", "absolute path"},
		{"logFile relative", `{"clusterNetwork": "c", "logFile": "plexus.log"}`, "logFile", "absolute path"},
		{"logFormat", `{"clusterNetwork": "c", "logFormat": "logfmt"}`, "logFormat", `must be "text" or "json"`},
		{"logToStderr type", `{"clusterNetwork": "c", "logToStderr": 1}`, "logToStderr", "want a boolean"},
		{"logOptions type", `{"clusterNetwork": "c", "logOptions": []}`, "logOptions", "want an object, got list []"},
		{"logOptions.maxSize negative", `{"clusterNetwork": "c", "logOptions": {"maxSize": -1}}`, "logOptions.maxSize", "must be >= 0, got -1"},
		{"logOptions.maxAge negative", `{"clusterNetwork": "c", "logOptions": {"maxAge": -1}}`, "logOptions.maxAge", "must be >= 0"},
		{"logOptions.maxBackups negative", `{"clusterNetwork": "c", "logOptions": {"maxBackups": -5}}`, "logOptions.maxBackups", "must be >= 0"},
		{"logOptions.compress type", `{"clusterNetwork": "c", "logOptions": {"compress": "yes"}}`, "logOptions.compress", "want a boolean"},
		{"maxConcurrency zero", `{"clusterNetwork": "c", "maxConcurrency": 0}`, "maxConcurrency", "between 1 and 1024, got 0"},
		{"hotplugConcurrency above maxConcurrency", `{"clusterNetwork": "c", "maxConcurrency": 2, "hotplugConcurrency": 3}`, "hotplugConcurrency", "between 1 and 2, got 3"},
		{"metricsPort out of range", `{"clusterNetwork": "c", "metricsPort": 70000}`, "metricsPort", "between 0 and 65535, got 70000"},
		{"metricsPort string", `{"clusterNetwork": "c", "metricsPort": "9091"}`, "metricsPort", "want an integer"},
		{"metricsBindAddress not an IP", `{"clusterNetwork": "c", "metricsBindAddress": "localhost"}`, "metricsBindAddress", "want an IP address"},
		{"statusWrite", `{"clusterNetwork": "c", "statusWrite": "later"}`, "statusWrite", `must be "async" or "sync"`},
		{"hotplug without the API", `{"clusterNetwork": "c", "manifestsDir": "/m", "hotplug": true}`, "hotplug", "needs the Kubernetes API"},
		{"maxConcurrency too big", `{"clusterNetwork": "c", "maxConcurrency": 1025}`, "maxConcurrency", "between 1 and 1024"},
		{"maxConcurrency fraction", `{"clusterNetwork": "c", "maxConcurrency": 8.5}`, "maxConcurrency", "want an integer, got number 8.5"},
		{"maxConcurrency string", `{"clusterNetwork": "c", "maxConcurrency": "8"}`, "maxConcurrency", "want an integer"},
		{"queueSize negative", `{"clusterNetwork": "c", "queueSize": -1}`, "queueSize", "between 0 and 100000"},
		{"queueSize too big", `{"clusterNetwork": "c", "queueSize": 100001}`, "queueSize", "between 0 and 100000"},
		{"maxRequestBytes too small", `{"clusterNetwork": "c", "maxRequestBytes": 1023}`, "maxRequestBytes", "between 1024 and 67108864"},
		{"maxRequestBytes too big", `{"clusterNetwork": "c", "maxRequestBytes": 67108865}`, "maxRequestBytes", "between 1024 and 67108864"},
		{"maxAttachments zero", `{"clusterNetwork": "c", "maxAttachments": 0}`, "maxAttachments", "between 1 and 256"},
		{"maxAttachments too big", `{"clusterNetwork": "c", "maxAttachments": 257}`, "maxAttachments", "between 1 and 256"},
		{"queueTimeout unparsable", `{"clusterNetwork": "c", "queueTimeout": "30"}`, "queueTimeout", "Go duration string"},
		{"queueTimeout number", `{"clusterNetwork": "c", "queueTimeout": 30}`, "queueTimeout", `want a Go duration string such as "30s", got number 30`},
		{"queueTimeout zero", `{"clusterNetwork": "c", "queueTimeout": "0s"}`, "queueTimeout", "must be > 0"},
		{"requestTimeout negative", `{"clusterNetwork": "c", "requestTimeout": "-1s"}`, "requestTimeout", "must be > 0"},
		{"requestTimeout garbage", `{"clusterNetwork": "c", "requestTimeout": "soon"}`, "requestTimeout", "Go duration string"},
		{"queueTimeout not below requestTimeout", `{"clusterNetwork": "c", "queueTimeout": "2m"}`, "queueTimeout", "shorter than requestTimeout (1m50s)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tc.json))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Errorf("Parse returned a non-zero Config with an error")
			}
			kes := keyErrors(t, err)
			if got := keysOf(kes); !reflect.DeepEqual(got, []string{tc.wantKey}) {
				t.Fatalf("error keys = %v, want [%s]; err = %v", got, tc.wantKey, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), `key "`+tc.wantKey+`"`) {
				t.Errorf("error %q does not name key %q", err, tc.wantKey)
			}
		})
	}
}

func TestNotAnObject(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"empty":    ``,
		"list":     `[]`,
		"null":     `null`,
		"string":   `"x"`,
		"syntax":   `{"clusterNetwork": }`,
		"trailing": `{"clusterNetwork": "c"} {}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), "must be a JSON object") {
				t.Fatalf("err = %v, want one about a JSON object", err)
			}
		})
	}
}

func TestSeveralProblemsReportedAtOnce(t *testing.T) {
	t.Parallel()
	doc := `{
		"chrootDir": "hostroot",
		"multusConfigFile": "/etc/cni/net.d/00-multus.conf",
		"bogus": true,
		"multusNamespace": "Not A Label",
		"namespaceIsolation": "yes",
		"globalNamespaces": "default,BAD",
		"confDir": "relative",
		"binDir": ["/opt/cni/bin", "rel"],
		"maxConcurrency": "lots",
		"queueSize": -3,
		"queueTimeout": "forever",
		"logLevel": "loud",
		"logFormat": "xml",
		"logOptions": {"maxSize": -1, "rotate": true, "compress": 1}
	}`
	_, err := Parse([]byte(doc))
	want := []string{
		"binDir[1]", "bogus", "chrootDir", "clusterNetwork", "confDir",
		"globalNamespaces[1]", "logFormat", "logLevel", "logOptions.compress",
		"logOptions.maxSize", "logOptions.rotate", "maxConcurrency", "multusConfigFile",
		"multusNamespace", "namespaceIsolation", "queueSize", "queueTimeout",
	}
	if got := keysOf(keyErrors(t, err)); !reflect.DeepEqual(got, want) {
		t.Fatalf("error keys\n got %v\nwant %v\nerr: %v", got, want, err)
	}
	if !errors.Is(err, ErrUnsupportedKey) || !errors.Is(err, ErrUnknownKey) {
		t.Errorf("want both ErrUnsupportedKey and ErrUnknownKey in %v", err)
	}
}

// TestMultusCarryOver parses a Multus thick daemon-config that uses only
// keys Plexus supports, with Multus-style values.
func TestMultusCarryOver(t *testing.T) {
	t.Parallel()
	doc := `{
		"clusterNetwork": "/host/etc/cni/net.d/10-calico.conflist",
		"defaultNetworks": ["sidecar-net"],
		"multusNamespace": "kube-system",
		"systemNamespaces": ["kube-system"],
		"namespaceIsolation": true,
		"globalNamespaces": "default,infra",
		"confDir": "/etc/cni/multus/net.d",
		"cniDir": "/var/lib/cni/multus",
		"binDir": "/opt/cni/bin",
		"socketDir": "/host/run/multus/",
		"readinessindicatorfile": "/host/run/calico/ready",
		"logFile": "/var/log/multus.log",
		"logLevel": "verbose",
		"logToStderr": true,
		"logOptions": {"maxAge": 5, "maxSize": 100, "maxBackups": 5, "compress": true}
	}`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Default()
	want.ClusterNetwork = "/host/etc/cni/net.d/10-calico.conflist"
	want.DefaultNetworks = []string{"sidecar-net"}
	want.NamespaceIsolation = true
	want.GlobalNamespaces = []string{"default", "infra"}
	want.ConfDir = "/etc/cni/multus/net.d"
	want.CNIDir = "/var/lib/cni/multus"
	want.SocketDir = "/host/run/multus"
	want.ReadinessIndicatorFile = "/host/run/calico/ready"
	want.Log.File = "/var/log/multus.log"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if got := c.SocketPath(); got != "/host/run/multus/plexus.sock" {
		t.Errorf("SocketPath() = %q", got)
	}
}

// TestUpstreamThickDaemonConfig feeds the daemon-config.json that Multus
// ships with its thick DaemonSet: accepted as is, with the same meaning
// (delegates chrooted into /hostroot, the daemon's own paths in its view).
func TestUpstreamThickDaemonConfig(t *testing.T) {
	t.Parallel()
	doc := `{
		"chrootDir": "/hostroot",
		"cniVersion": "0.3.1",
		"logLevel": "verbose",
		"logToStderr": true,
		"cniConfigDir": "/host/etc/cni/net.d",
		"multusAutoconfigDir": "/host/etc/cni/net.d",
		"multusConfigFile": "auto",
		"socketDir": "/host/run/multus/"
	}`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Default()
	want.ChrootDir = "/hostroot"
	want.CNIVersion = "0.3.1"
	want.Log.Level = c.Log.Level // "verbose", covered by the log tests
	want.CNIConfigDir = "/host/etc/cni/net.d"
	want.AutoconfigDir = "/host/etc/cni/net.d"
	want.SocketDir = "/host/run/multus"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(`{"clusterNetwork": "calico"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"clusterNetwork": "calico", "multusConfigFile": "/x.conf"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("good", func(t *testing.T) {
		t.Parallel()
		c, err := Load(good)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c, base()) {
			t.Errorf("Load = %+v", c)
		}
	})
	t.Run("bad", func(t *testing.T) {
		t.Parallel()
		_, err := Load(bad)
		if err == nil || !strings.Contains(err.Error(), bad) || !errors.Is(err, ErrUnsupportedKey) {
			t.Fatalf("err = %v, want it to name %s and wrap ErrUnsupportedKey", err, bad)
		}
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(dir, "missing.json")
		_, err := Load(missing)
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
			t.Fatalf("err = %v, want a not-exist error naming the path", err)
		}
	})
}

// TestWireTagsMatchFields keeps the wire struct's json tags (documentation)
// and the decoder table (behaviour) in step.
func TestWireTagsMatchFields(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, typ reflect.Type, fields map[string]any) {
		t.Helper()
		var tags, keys []string
		for i := range typ.NumField() {
			tags = append(tags, typ.Field(i).Tag.Get("json"))
		}
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(tags)
		sort.Strings(keys)
		if !reflect.DeepEqual(tags, keys) {
			t.Errorf("json tags %v != fields() keys %v", tags, keys)
		}
	}
	t.Run("wire", func(t *testing.T) {
		t.Parallel()
		check(t, reflect.TypeFor[wire](), (&wire{}).fields())
	})
	t.Run("logOptions", func(t *testing.T) {
		t.Parallel()
		check(t, reflect.TypeFor[wireLogOptions](), (&wireLogOptions{}).fields())
	})
}

// TestDocsListEveryKey makes sure docs/config.md mentions every key Parse
// accepts and every Multus key it rejects, so the doc cannot rot.
func TestDocsListEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatalf("reading docs/config.md: %v", err)
	}
	doc := string(data)
	var keys []string
	for _, k := range acceptedKeys() {
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			k = k[i+1:]
		}
		keys = append(keys, k)
	}
	for _, k := range keys {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("docs/config.md does not mention `%s`", k)
		}
	}
}

// TestDocsExampleParses parses the "Complete example" in docs/config.md.
func TestDocsExampleParses(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatalf("reading docs/config.md: %v", err)
	}
	doc := string(data)
	_, after, ok := strings.Cut(doc, "### Complete example")
	if !ok {
		t.Fatal(`docs/config.md has no "### Complete example" section`)
	}
	_, after, ok = strings.Cut(after, "```json\n")
	if !ok {
		t.Fatal("no ```json block after the Complete example heading")
	}
	example, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("unterminated ```json block")
	}
	c, err := Parse([]byte(example))
	if err != nil {
		t.Fatalf("the documented example does not parse: %v", err)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(example), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range acceptedKeys() {
		if strings.HasPrefix(k, "logOptions.") {
			continue
		}
		if _, ok := raw[k]; !ok {
			t.Errorf("the complete example lacks key %q", k)
		}
	}
	if c.Log.Format != FormatJSON || !c.NamespaceIsolation {
		t.Errorf("example parsed to %+v", c)
	}
}

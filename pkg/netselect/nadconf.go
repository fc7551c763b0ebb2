package netselect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-cni/plexus/pkg/api"
	"github.com/plexus-cni/plexus/pkg/rawjson"
)

// networkNameRE is the CNI network name rule (CNI spec, "Configuration format").
var networkNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

// reservedPluginKeys are set by the runtime or by Plexus, never by the author
// of a delegate config (CNI spec: runtimeConfig, args and prevResult are
// injected by the runtime; keys prefixed "cni.dev/" are reserved).
var reservedPluginKeys = []string{"runtimeConfig", "args", "prevResult"}

// spelledKeys must appear exactly as written. encoding/json matches struct
// fields case-insensitively, so a plugin object holding both "type" and
// "Type" would let a Go plugin see a type other than the one we validated.
var spelledKeys = []string{
	"type", "name", "cniVersion", "plugins", "ipam", "capabilities",
	"runtimeConfig", "args", "prevResult",
}

// LoadNADConfig returns the NAD's delegate configuration as a normalized
// conflist (see NormalizeConfList). A non-empty spec.config is used as is;
// an empty one selects the conf in confDir whose "name" is the NAD's name
// (NPWG spec §3.4). A missing name is set to the NAD's name (spec §3.4.2).
// Errors are *SelectionError naming the NAD and the field.
func LoadNADConfig(nad *nadv1.NetworkAttachmentDefinition, confDir string, loader ConfLoader) (confList []byte, err error) {
	if nad == nil {
		return nil, &SelectionError{Element: "NetworkAttachmentDefinition", Reason: "nil NetworkAttachmentDefinition"}
	}
	element := fmt.Sprintf("NetworkAttachmentDefinition %q", nad.Namespace+"/"+nad.Name)
	raw := []byte(nad.Spec.Config)
	source := "spec.config"
	if len(bytes.TrimSpace(raw)) == 0 {
		source = "confDir"
		if loader == nil {
			return nil, &SelectionError{Element: element, Field: "spec.config",
				Reason: "spec.config is empty and no configuration loader is available"}
		}
		raw, err = loader.ByName(confDir, nad.Name)
		if err != nil {
			return nil, &SelectionError{Element: element, Field: "spec.config",
				Reason: fmt.Sprintf("spec.config is empty and no CNI configuration named %q could be loaded from %q", nad.Name, confDir),
				Err:    err}
		}
	}
	normalize := NormalizeConfList
	if source == "confDir" {
		normalize = NormalizeHostConfList
	}
	out, err := normalize(raw, nad.Name)
	if err != nil {
		return nil, withSource(err, element, source)
	}
	return out, nil
}

// withSource re-labels a NormalizeConfList error: element names the owner of
// the config and source where the config came from ("spec.config",
// "confDir", a file path).
func withSource(err error, element, source string) error {
	var se *SelectionError
	if !errors.As(err, &se) {
		return &SelectionError{Element: element, Field: source, Reason: "invalid CNI configuration", Err: err}
	}
	out := *se
	out.Element = element
	if out.Field == "" {
		out.Field = source
	} else {
		out.Field = source + ": " + out.Field
	}
	return &out
}

// confErr builds the error NormalizeConfList returns.
func confErr(field, format string, args ...interface{}) error {
	return &SelectionError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// NormalizeConfList validates a CNI configuration and returns it as a
// conflist.
//
// An object with a "plugins" key is a conflist: plugins must be a non-empty
// array of objects, and a missing top-level name is set to defaultName.
// Anything else is a single plugin conf, wrapped as
//
//	{"cniVersion":<its cniVersion>,"name":<its name>,"plugins":[<the conf, verbatim>]}
//
// where a missing name is set to defaultName, also inside the plugin object.
// The only edits ever made are inserting that name; every other byte of a
// plugin object is kept.
//
// Rules: cniVersion is one of 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0; the network
// name matches ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$; every plugin (and its ipam, if
// any) has a type that is a plain binary name (no "/", "\", NUL, not "." or
// ".."); no plugin sets the reserved keys runtimeConfig, args, prevResult or
// "cni.dev/…"; the keys this package reads are spelled exactly and not
// duplicated. Errors are *SelectionError whose Field is the JSON path.
func NormalizeConfList(raw []byte, defaultName string) ([]byte, error) {
	return normalize(raw, defaultName, false)
}

// NormalizeHostConfList is NormalizeConfList for a file on the node (the
// primary CNI's config, confDir): written by the node's admin or a
// primary's installer, it may carry a runtimeConfig of its own, as
// OVN-Kubernetes's ("runtimeConfig":{}) and Azure CNI's do; the runtime
// would hand it to the plugin, so Plexus does too.
func NormalizeHostConfList(raw []byte, defaultName string) ([]byte, error) {
	return normalize(raw, defaultName, true)
}

func normalize(raw []byte, defaultName string, hostFile bool) ([]byte, error) {
	doc := bytes.TrimSpace(raw)
	if len(doc) == 0 {
		return nil, confErr("", "empty CNI configuration")
	}
	if !json.Valid(doc) {
		var v json.RawMessage
		err := json.Unmarshal(doc, &v)
		return nil, &SelectionError{Reason: "invalid JSON", Err: err}
	}
	if doc[0] != '{' {
		return nil, confErr("", "CNI configuration must be a JSON object")
	}
	ms, err := rawjson.Members(doc)
	if err != nil {
		return nil, &SelectionError{Reason: "invalid JSON", Err: err}
	}
	if err := checkKeys(ms, ""); err != nil {
		return nil, err
	}
	if _, ok := rawjson.Find(ms, "plugins"); ok {
		return normalizeList(doc, ms, defaultName, hostFile)
	}
	return normalizeSingle(doc, ms, defaultName, hostFile)
}

func normalizeList(doc []byte, ms []rawjson.Member, defaultName string, hostFile bool) ([]byte, error) {
	if err := checkCNIVersion(doc, ms, ""); err != nil {
		return nil, err
	}
	nameJSON, inject, err := networkName(doc, ms, "", defaultName)
	if err != nil {
		return nil, err
	}
	pm, _ := rawjson.Find(ms, "plugins")
	arr := doc[pm.Val.Start:pm.Val.End]
	if arr[0] != '[' {
		return nil, confErr("plugins", "must be an array of plugin objects")
	}
	els, err := rawjson.Elements(arr)
	if err != nil {
		return nil, &SelectionError{Field: "plugins", Reason: "invalid JSON", Err: err}
	}
	if len(els) == 0 {
		return nil, confErr("plugins", "must not be empty")
	}
	for i, s := range els {
		if err := checkPlugin(arr[s.Start:s.End], fmt.Sprintf("plugins[%d].", i), hostFile); err != nil {
			return nil, err
		}
	}
	out := append([]byte(nil), doc...)
	if inject {
		if out, err = rawjson.SetMember(out, "name", nameJSON); err != nil {
			return nil, &SelectionError{Field: "name", Reason: "cannot set name", Err: err}
		}
	}
	return out, nil
}

func normalizeSingle(doc []byte, ms []rawjson.Member, defaultName string, hostFile bool) ([]byte, error) {
	if err := checkPlugin(doc, "", hostFile); err != nil {
		return nil, err
	}
	if err := checkCNIVersion(doc, ms, ""); err != nil {
		return nil, err
	}
	nameJSON, inject, err := networkName(doc, ms, "", defaultName)
	if err != nil {
		return nil, err
	}
	plugin := doc
	if inject {
		if plugin, err = rawjson.SetMember(doc, "name", nameJSON); err != nil {
			return nil, &SelectionError{Field: "name", Reason: "cannot set name", Err: err}
		}
	}
	cv, _ := rawjson.Find(ms, "cniVersion")
	var b bytes.Buffer
	b.WriteString(`{"cniVersion":`)
	b.Write(doc[cv.Val.Start:cv.Val.End])
	b.WriteString(`,"name":`)
	b.Write(nameJSON)
	b.WriteString(`,"plugins":[`)
	b.Write(plugin)
	b.WriteString(`]}`)
	return b.Bytes(), nil
}

// checkKeys rejects duplicate keys and mis-spelled well-known keys.
func checkKeys(ms []rawjson.Member, prefix string) error {
	seen := make(map[string]bool, len(ms))
	for _, m := range ms {
		if seen[m.Key] {
			return confErr(prefix+m.Key, "duplicate key %q", m.Key)
		}
		seen[m.Key] = true
		for _, k := range spelledKeys {
			if m.Key != k && strings.EqualFold(m.Key, k) {
				return confErr(prefix+m.Key, "key %q must be spelled %q", m.Key, k)
			}
		}
	}
	return nil
}

func checkCNIVersion(doc []byte, ms []rawjson.Member, prefix string) error {
	m, ok := rawjson.Find(ms, "cniVersion")
	if !ok {
		return confErr(prefix+"cniVersion", "missing cniVersion")
	}
	var v string
	if err := json.Unmarshal(doc[m.Val.Start:m.Val.End], &v); err != nil {
		return confErr(prefix+"cniVersion", "cniVersion must be a string")
	}
	if !api.SupportsCNIVersion(v) {
		return confErr(prefix+"cniVersion", "unsupported cniVersion %q (want one of 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)", v)
	}
	return nil
}

// networkName returns the network name as JSON and whether it must be
// injected because the config has none.
func networkName(doc []byte, ms []rawjson.Member, prefix, defaultName string) ([]byte, bool, error) {
	m, ok := rawjson.Find(ms, "name")
	if !ok || string(doc[m.Val.Start:m.Val.End]) == "null" {
		if !networkNameRE.MatchString(defaultName) {
			return nil, false, confErr(prefix+"name", "missing name, and the default name %q is not a valid network name", defaultName)
		}
		b, err := rawjson.Encode(defaultName)
		return b, true, err
	}
	var name string
	if err := json.Unmarshal(doc[m.Val.Start:m.Val.End], &name); err != nil {
		return nil, false, confErr(prefix+"name", "name must be a string")
	}
	if !networkNameRE.MatchString(name) {
		return nil, false, confErr(prefix+"name", "invalid network name %q (must match %s)", name, networkNameRE)
	}
	return doc[m.Val.Start:m.Val.End], false, nil
}

// checkPlugin validates one plugin object; prefix is its JSON path plus
// ".". A host file may set runtimeConfig.
func checkPlugin(obj []byte, prefix string, hostFile bool) error {
	if obj[0] != '{' {
		return confErr(strings.TrimSuffix(prefix, "."), "plugin must be a JSON object")
	}
	ms, err := rawjson.Members(obj)
	if err != nil {
		return &SelectionError{Field: strings.TrimSuffix(prefix, "."), Reason: "invalid JSON", Err: err}
	}
	if err := checkKeys(ms, prefix); err != nil {
		return err
	}
	for _, m := range ms {
		if isReservedKey(m.Key) && (!hostFile || m.Key != "runtimeConfig") {
			return confErr(prefix+m.Key, "key %q is reserved for the runtime and must not be set in a delegate configuration", m.Key)
		}
	}
	if err := checkType(obj, ms, prefix); err != nil {
		return err
	}
	im, ok := rawjson.Find(ms, "ipam")
	if !ok || string(obj[im.Val.Start:im.Val.End]) == "null" {
		return nil
	}
	ipam := obj[im.Val.Start:im.Val.End]
	if ipam[0] != '{' {
		return confErr(prefix+"ipam", "ipam must be a JSON object")
	}
	ims, err := rawjson.Members(ipam)
	if err != nil {
		return &SelectionError{Field: prefix + "ipam", Reason: "invalid JSON", Err: err}
	}
	if err := checkKeys(ims, prefix+"ipam."); err != nil {
		return err
	}
	if _, ok := rawjson.Find(ims, "type"); !ok {
		return nil // some plugins accept an ipam section without a type
	}
	return checkType(ipam, ims, prefix+"ipam.")
}

func isReservedKey(k string) bool {
	for _, r := range reservedPluginKeys {
		if k == r {
			return true
		}
	}
	return len(k) >= len("cni.dev/") && strings.EqualFold(k[:len("cni.dev/")], "cni.dev/")
}

// checkType requires a "type" member naming a plain binary.
func checkType(obj []byte, ms []rawjson.Member, prefix string) error {
	field := prefix + "type"
	m, ok := rawjson.Find(ms, "type")
	if !ok {
		return confErr(field, "missing type")
	}
	var t string
	if err := json.Unmarshal(obj[m.Val.Start:m.Val.End], &t); err != nil {
		return confErr(field, "type must be a string")
	}
	return validatePluginType(field, t)
}

func validatePluginType(field, t string) error {
	switch {
	case t == "":
		return confErr(field, "type must not be empty")
	case t == "." || t == "..":
		return confErr(field, "invalid type %q", t)
	case strings.ContainsAny(t, "/\\\x00"):
		return confErr(field, "type %q must be a plain binary name (no \"/\", \"\\\" or NUL)", t)
	}
	return nil
}

// InjectPluginFields sets each key of fields as a top-level key of every
// plugin object of confList (a normalized conflist), replacing an existing
// value. Used for deviceID and pciBusID. Other bytes are untouched.
func InjectPluginFields(confList []byte, fields map[string]json.RawMessage) ([]byte, error) {
	keys := make([]string, 0, len(fields))
	for k, v := range fields {
		if !json.Valid(v) {
			return nil, fmt.Errorf("inject plugin field %q: invalid JSON value", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return rawjson.EditPlugins(confList, func(_ int, p []byte) ([]byte, error) {
		var err error
		for _, k := range keys {
			if p, err = rawjson.SetMember(p, k, bytes.TrimSpace(fields[k])); err != nil {
				return nil, err
			}
		}
		return p, nil
	})
}

// MergeCNIArgs merges cniArgs (a selection element's "cni-args") into the
// args.cni object of every plugin of confList, creating args and args.cni
// when missing. A key in cniArgs overrides the same key already in args.cni
// (NPWG spec §4.1.2.1.6). Values are encoded without HTML escaping; a
// json.Number keeps its exact text.
func MergeCNIArgs(confList []byte, cniArgs map[string]interface{}) ([]byte, error) {
	if len(cniArgs) == 0 {
		return bytes.TrimSpace(confList), nil
	}
	keys := make([]string, 0, len(cniArgs))
	vals := make(map[string][]byte, len(cniArgs))
	for k, v := range cniArgs {
		b, err := rawjson.Encode(v)
		if err != nil {
			return nil, fmt.Errorf("cni-args %q: %w", k, err)
		}
		keys = append(keys, k)
		vals[k] = b
	}
	sort.Strings(keys)
	return rawjson.EditPlugins(confList, func(_ int, p []byte) ([]byte, error) {
		ms, err := rawjson.Members(p)
		if err != nil {
			return nil, err
		}
		args := []byte("{}")
		if m, ok := rawjson.Find(ms, "args"); ok && string(p[m.Val.Start:m.Val.End]) != "null" {
			args = p[m.Val.Start:m.Val.End]
			if args[0] != '{' {
				return nil, errors.New(`"args" is not an object`)
			}
		}
		ams, err := rawjson.Members(args)
		if err != nil {
			return nil, err
		}
		cni := []byte("{}")
		if m, ok := rawjson.Find(ams, "cni"); ok && string(args[m.Val.Start:m.Val.End]) != "null" {
			cni = args[m.Val.Start:m.Val.End]
			if cni[0] != '{' {
				return nil, errors.New(`"args.cni" is not an object`)
			}
		}
		for _, k := range keys {
			if cni, err = rawjson.SetMember(cni, k, vals[k]); err != nil {
				return nil, err
			}
		}
		if args, err = rawjson.SetMember(args, "cni", cni); err != nil {
			return nil, err
		}
		return rawjson.SetMember(p, "args", args)
	})
}

// PluginsDeclare reports whether any plugin of confList declares
// "capabilities": {"<capability>": true}. Malformed input declares nothing.
func PluginsDeclare(confList []byte, capability string) bool {
	doc := bytes.TrimSpace(confList)
	spans, err := rawjson.PluginSpans(doc)
	if err != nil {
		return false
	}
	for _, s := range spans {
		var p struct {
			Capabilities map[string]json.RawMessage `json:"capabilities"`
		}
		if json.Unmarshal(doc[s.Start:s.End], &p) != nil {
			continue
		}
		var v bool
		if raw, ok := p.Capabilities[capability]; ok && json.Unmarshal(raw, &v) == nil && v {
			return true
		}
	}
	return false
}

package netselect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/plexus-cni/plexus/pkg/rawjson"
)

// Pod annotation keys read by network selection.
const (
	// NetworksAnnotation selects additional networks (NPWG spec §4.1).
	NetworksAnnotation = nadv1.NetworkAttachmentAnnot
	// DefaultNetworkAnnotation replaces the cluster network for one pod
	// (a Multus extension).
	DefaultNetworkAnnotation = "v1.multus-cni.io/default-network"
)

// DefaultMaxAttachments is the attachment limit used when none is configured.
const DefaultMaxAttachments = 32

// maxIfNameLen is IFNAMSIZ-1: the kernel's limit on interface names.
const maxIfNameLen = 15

// ParseNetworks parses the k8s.v1.cni.cncf.io/networks annotation value,
// allowing at most DefaultMaxAttachments elements. See ParseNetworksLimit.
func ParseNetworks(value, podNamespace string) ([]nadv1.NetworkSelectionElement, error) {
	return ParseNetworksLimit(value, podNamespace, DefaultMaxAttachments)
}

// ParseNetworksLimit parses the k8s.v1.cni.cncf.io/networks annotation
// value and validates every element; more than maxElements elements is an
// error (maxElements <= 0 means DefaultMaxAttachments).
//
// An empty or all-whitespace value selects nothing (nil, nil). A value that
// contains '[', '{' or '"' is the JSON list form (NPWG spec §4.1.2); unknown
// keys are ignored and the legacy key "interfaceRequest" is an alias of
// "interface". Anything else is the comma form "[namespace/]name[@ifname]"
// (spec §4.1.1 plus the Multus @ifname extension), whitespace trimmed around
// each element. A missing namespace is podNamespace.
//
// Errors are *SelectionError with Element `networks[i] "name"` (0-based)
// and the offending Field. The spec says an invalid annotation may be
// ignored; like Multus, we fail the attachment instead, which is easier to
// debug.
func ParseNetworksLimit(value, podNamespace string, maxElements int) ([]nadv1.NetworkSelectionElement, error) {
	if maxElements <= 0 {
		maxElements = DefaultMaxAttachments
	}
	return parseSelection(value, podNamespace, maxElements, "networks", NetworksAnnotation)
}

// ParseDefaultNetwork parses the v1.multus-cni.io/default-network annotation
// value: the same two forms as ParseNetworks, but exactly one element and no
// interface name (the default network always gets the runtime's CNI_IFNAME).
// A missing namespace is plexusNamespace, as in Multus. An empty value
// returns nil, nil.
func ParseDefaultNetwork(value, plexusNamespace string) (*nadv1.NetworkSelectionElement, error) {
	els, err := parseSelection(value, plexusNamespace, 1<<20, DefaultNetworkAnnotation, DefaultNetworkAnnotation)
	if err != nil {
		var se *SelectionError
		if errors.As(err, &se) {
			se.Element = DefaultNetworkAnnotation
		}
		return nil, err
	}
	switch {
	case len(els) == 0:
		return nil, nil
	case len(els) > 1:
		return nil, &SelectionError{Element: DefaultNetworkAnnotation,
			Reason: fmt.Sprintf("must select exactly one network, got %d", len(els))}
	case els[0].InterfaceRequest != "":
		return nil, &SelectionError{Element: DefaultNetworkAnnotation, Field: "interface",
			Reason: fmt.Sprintf("the default network cannot request an interface name (got %q); it always uses the runtime's CNI_IFNAME", els[0].InterfaceRequest)}
	}
	return &els[0], nil
}

// FormatNetworks writes elements in the JSON list form of the networks
// annotation, with every namespace explicit. ParseNetworks(FormatNetworks(x))
// returns x for any x that ParseNetworks produced.
func FormatNetworks(elements []nadv1.NetworkSelectionElement) string {
	if elements == nil {
		elements = []nadv1.NetworkSelectionElement{}
	}
	b, err := rawjson.Encode(elements)
	if err != nil {
		// Only reachable for cni-args values that cannot be encoded,
		// which ParseNetworks never produces.
		return "[]"
	}
	return string(b)
}

// parseSelection implements both annotation forms. label prefixes element
// names ("networks" gives `networks[1] "x"`); annotation names the whole
// value in errors that are not about one element.
func parseSelection(value, defaultNS string, maxElements int, label, annotation string) ([]nadv1.NetworkSelectionElement, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return nil, nil
	}
	if strings.ContainsAny(v, `[{"`) {
		return parseJSONForm(v, defaultNS, maxElements, label, annotation)
	}
	return parseCommaForm(v, defaultNS, maxElements, label, annotation)
}

func tooMany(annotation string, n, maxElements int) error {
	return &SelectionError{Element: annotation,
		Reason: fmt.Sprintf("selects %d networks, more than the limit of %d", n, maxElements)}
}

func elementLabel(label string, i int, name string) string {
	if name == "" {
		return fmt.Sprintf("%s[%d]", label, i)
	}
	return fmt.Sprintf("%s[%d] %q", label, i, name)
}

func parseCommaForm(v, defaultNS string, maxElements int, label, annotation string) ([]nadv1.NetworkSelectionElement, error) {
	parts := strings.Split(v, ",")
	if len(parts) > maxElements {
		return nil, tooMany(annotation, len(parts), maxElements)
	}
	out := make([]nadv1.NetworkSelectionElement, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, &SelectionError{Element: elementLabel(label, i, ""),
				Reason: "empty element (stray comma?)"}
		}
		ref, ifName, hasIf := strings.Cut(p, "@")
		ns, name, hasNS := strings.Cut(ref, "/")
		if !hasNS {
			ns, name = "", ref
		}
		el := nadv1.NetworkSelectionElement{Name: name, Namespace: ns, InterfaceRequest: ifName}
		if hasIf && ifName == "" {
			return nil, &SelectionError{Element: elementLabel(label, i, name), Field: "interface",
				Reason: `empty interface name after "@"`}
		}
		if hasNS && ns == "" {
			return nil, &SelectionError{Element: elementLabel(label, i, name), Field: "namespace",
				Reason: `empty namespace before "/"`}
		}
		if el.Namespace == "" {
			el.Namespace = defaultNS
		}
		if err := validateElement(&el, elementLabel(label, i, name)); err != nil {
			return nil, err
		}
		out = append(out, el)
	}
	return out, nil
}

// wireElement is one JSON list element with every known field kept raw, so
// that a bad value is reported with its field name. Unknown keys are
// ignored; keys match case-insensitively, like encoding/json (and Multus).
type wireElement struct {
	Name               json.RawMessage `json:"name"`
	Namespace          json.RawMessage `json:"namespace"`
	IPs                json.RawMessage `json:"ips"`
	MAC                json.RawMessage `json:"mac"`
	InfinibandGUID     json.RawMessage `json:"infiniband-guid"`
	Interface          json.RawMessage `json:"interface"`
	InterfaceRequest   json.RawMessage `json:"interfaceRequest"` // legacy alias of interface
	PortMappings       json.RawMessage `json:"portMappings"`
	Bandwidth          json.RawMessage `json:"bandwidth"`
	CNIArgs            json.RawMessage `json:"cni-args"`
	DefaultRoute       json.RawMessage `json:"default-route"`
	IPAMClaimReference json.RawMessage `json:"ipam-claim-reference"`
}

func parseJSONForm(v, defaultNS string, maxElements int, label, annotation string) ([]nadv1.NetworkSelectionElement, error) {
	if v[0] != '[' {
		return nil, &SelectionError{Element: annotation,
			Reason: "JSON form must be a list of selection objects ([{...}, ...])"}
	}
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(v), &raws); err != nil {
		return nil, &SelectionError{Element: annotation, Reason: "invalid JSON", Err: err}
	}
	if len(raws) > maxElements {
		return nil, tooMany(annotation, len(raws), maxElements)
	}
	if len(raws) == 0 {
		return nil, nil
	}
	out := make([]nadv1.NetworkSelectionElement, 0, len(raws))
	for i, raw := range raws {
		el, err := decodeElement(raw, defaultNS, label, i)
		if err != nil {
			return nil, err
		}
		out = append(out, el)
	}
	return out, nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// decodeField decodes raw into dst, reporting a type error against field.
func decodeField(raw json.RawMessage, dst interface{}, element, field string) error {
	if isNull(raw) {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return &SelectionError{Element: element, Field: field, Reason: "invalid value", Err: err}
	}
	return nil
}

func decodeElement(raw json.RawMessage, defaultNS, label string, i int) (nadv1.NetworkSelectionElement, error) {
	var el nadv1.NetworkSelectionElement
	if len(raw) == 0 || raw[0] != '{' {
		return el, &SelectionError{Element: elementLabel(label, i, ""), Reason: "element must be a JSON object"}
	}
	var w wireElement
	if err := json.Unmarshal(raw, &w); err != nil {
		return el, &SelectionError{Element: elementLabel(label, i, ""), Reason: "invalid JSON", Err: err}
	}
	if err := decodeField(w.Name, &el.Name, elementLabel(label, i, ""), "name"); err != nil {
		return el, err
	}
	lbl := elementLabel(label, i, el.Name)
	var ifAlias string
	var defaultRoute []string
	var cniArgs map[string]interface{}
	fields := []struct {
		raw   json.RawMessage
		dst   interface{}
		field string
	}{
		{w.Namespace, &el.Namespace, "namespace"},
		{w.IPs, &el.IPRequest, "ips"},
		{w.MAC, &el.MacRequest, "mac"},
		{w.InfinibandGUID, &el.InfinibandGUIDRequest, "infiniband-guid"},
		{w.Interface, &el.InterfaceRequest, "interface"},
		{w.InterfaceRequest, &ifAlias, "interfaceRequest"},
		{w.PortMappings, &el.PortMappingsRequest, "portMappings"},
		{w.Bandwidth, &el.BandwidthRequest, "bandwidth"},
		{w.DefaultRoute, &defaultRoute, "default-route"},
		{w.IPAMClaimReference, &el.IPAMClaimReference, "ipam-claim-reference"},
	}
	for _, f := range fields {
		if err := decodeField(f.raw, f.dst, lbl, f.field); err != nil {
			return el, err
		}
	}
	if !isNull(w.CNIArgs) {
		if w.CNIArgs[0] != '{' {
			return el, &SelectionError{Element: lbl, Field: "cni-args", Reason: "cni-args must be a JSON object"}
		}
		dec := json.NewDecoder(bytes.NewReader(w.CNIArgs))
		dec.UseNumber() // keep numbers exact: they end up in the delegate's args.cni
		if err := dec.Decode(&cniArgs); err != nil {
			return el, &SelectionError{Element: lbl, Field: "cni-args", Reason: "invalid value", Err: err}
		}
		el.CNIArgs = &cniArgs
	}
	switch {
	case el.InterfaceRequest == "":
		el.InterfaceRequest = ifAlias
	case ifAlias != "" && ifAlias != el.InterfaceRequest:
		return el, &SelectionError{Element: lbl, Field: "interfaceRequest",
			Reason: fmt.Sprintf("legacy interfaceRequest %q conflicts with interface %q", ifAlias, el.InterfaceRequest)}
	}
	for j, gw := range defaultRoute {
		ip := net.ParseIP(gw)
		if ip == nil {
			return el, &SelectionError{Element: lbl, Field: fmt.Sprintf("default-route[%d]", j),
				Reason: fmt.Sprintf("invalid gateway IP address %q", gw)}
		}
		el.GatewayRequest = append(el.GatewayRequest, ip)
	}
	// Empty lists mean the same as absent ones; keep one representation.
	if len(el.IPRequest) == 0 {
		el.IPRequest = nil
	}
	if len(el.PortMappingsRequest) == 0 {
		el.PortMappingsRequest = nil
	}
	if el.Namespace == "" {
		el.Namespace = defaultNS
	}
	return el, validateElement(&el, lbl)
}

// validateElement checks every field of a parsed element.
func validateElement(el *nadv1.NetworkSelectionElement, lbl string) error {
	fail := func(field, format string, args ...interface{}) error {
		return &SelectionError{Element: lbl, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if el.Name == "" {
		return fail("name", "missing network name")
	}
	if errs := validation.IsDNS1123Subdomain(el.Name); len(errs) > 0 {
		return fail("name", "invalid network name %q: %s", el.Name, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(el.Namespace); len(errs) > 0 {
		return fail("namespace", "invalid namespace %q: %s", el.Namespace, strings.Join(errs, "; "))
	}
	if el.InterfaceRequest != "" {
		if err := ValidateIfName(el.InterfaceRequest); err != nil {
			return fail("interface", "%v", err)
		}
	}
	for j, s := range el.IPRequest {
		if !validIPOrCIDR(s) {
			return fail(fmt.Sprintf("ips[%d]", j), "invalid IP address or CIDR %q", s)
		}
	}
	if el.MacRequest != "" {
		if hw, err := net.ParseMAC(el.MacRequest); err != nil || len(hw) != 6 {
			return fail("mac", "invalid MAC address %q", el.MacRequest)
		}
	}
	if el.InfinibandGUIDRequest != "" {
		if hw, err := net.ParseMAC(el.InfinibandGUIDRequest); err != nil || len(hw) != 8 {
			return fail("infiniband-guid", "invalid InfiniBand GUID %q (want 8 bytes, e.g. 00:11:22:33:44:55:66:77)", el.InfinibandGUIDRequest)
		}
	}
	for j, pm := range el.PortMappingsRequest {
		field := fmt.Sprintf("portMappings[%d]", j)
		switch {
		case pm == nil:
			return fail(field, "port mapping must be an object")
		case pm.HostPort < 1 || pm.HostPort > 65535:
			return fail(field+".hostPort", "port %d out of range 1-65535", pm.HostPort)
		case pm.ContainerPort < 1 || pm.ContainerPort > 65535:
			return fail(field+".containerPort", "port %d out of range 1-65535", pm.ContainerPort)
		case !validProtocol(pm.Protocol):
			return fail(field+".protocol", "invalid protocol %q (want tcp, udp or sctp)", pm.Protocol)
		case pm.HostIP != "" && !validIP(pm.HostIP):
			return fail(field+".hostIP", "invalid IP address %q", pm.HostIP)
		}
	}
	if bw := el.BandwidthRequest; bw != nil {
		for _, r := range []struct {
			name string
			v    int
		}{{"ingressRate", bw.IngressRate}, {"ingressBurst", bw.IngressBurst}, {"egressRate", bw.EgressRate}, {"egressBurst", bw.EgressBurst}} {
			if r.v < 0 {
				return fail("bandwidth."+r.name, "must not be negative (got %d)", r.v)
			}
		}
	}
	return nil
}

// ValidateIfName checks an interface name against the kernel's rules
// (dev_valid_name): 1–15 bytes, not "." or "..", no "/", ":" or whitespace.
// It also rejects NUL, other control characters and invalid UTF-8, which
// would not survive the JSON records the name is stored in.
func ValidateIfName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty interface name")
	case len(name) > maxIfNameLen:
		return fmt.Errorf("interface name %q is %d bytes, longer than %d", name, len(name), maxIfNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("invalid interface name %q", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("interface name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if r == '/' || r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("interface name %q contains %q", name, r)
		}
	}
	return nil
}

func validIP(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}

func validIPOrCIDR(s string) bool {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return err == nil && p.Addr().Zone() == ""
	}
	return validIP(s)
}

func validProtocol(p string) bool {
	switch strings.ToLower(p) {
	case "", "tcp", "udp", "sctp":
		return true
	}
	return false
}

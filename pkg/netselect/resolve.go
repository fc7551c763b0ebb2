package netselect

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// Options are the daemon settings that shape network selection (the Multus
// NetConf keys of the same meaning in parentheses).
type Options struct {
	// ClusterNetwork is the default network (clusterNetwork): an absolute
	// path to a CNI config file if it starts with "/"; otherwise the name of
	// a NAD in PlexusNamespace, or failing that the "name" of a CNI config
	// in ConfDir.
	ClusterNetwork string
	// DefaultNetworks are attached to every pod after the cluster network
	// (defaultNetworks); same resolution rules as ClusterNetwork.
	DefaultNetworks []string
	// Delegates are inline CNI configs (Multus's delegates), used only
	// when ClusterNetwork is "": the first is the default network, the
	// others follow it on every pod in place of DefaultNetworks.
	Delegates []json.RawMessage
	// PlexusNamespace holds the NADs named by ClusterNetwork and
	// DefaultNetworks, and is the namespace of a namespace-less
	// default-network annotation (multusNamespace).
	PlexusNamespace string
	// SystemNamespaces: pods here do not get DefaultNetworks
	// (systemNamespaces).
	SystemNamespaces []string
	// NamespaceIsolation restricts pod-originated references (the networks
	// annotation and the default-network annotation) to NADs in the pod's
	// own namespace or in GlobalNamespaces (namespaceIsolation).
	NamespaceIsolation bool
	// GlobalNamespaces may be referenced from any namespace under
	// isolation. nil means ["default"]; a non-nil list means exactly these
	// (globalNamespaces).
	GlobalNamespaces []string
	// ConfDir is searched for CNI configs by name (confDir).
	ConfDir string
	// MaxAttachments caps the number of attachments per pod, the default
	// network included. 0 means DefaultMaxAttachments.
	MaxAttachments int
	// AuxiliaryChain names the chain run last on every pod
	// (auxiliaryCNIChainName): passthru, then the plugins of
	// <dir of ClusterNetwork>/<AuxiliaryChain>/*.conf; none if that
	// directory holds no .conf file. "" for none.
	AuxiliaryChain string
	// AuxiliaryCNIVersion is the chain's cniVersion (the daemon's
	// cniVersion); "" takes the default network's.
	AuxiliaryCNIVersion string
}

// PassthruType is the plugin at the head of the auxiliary chain: Multus's
// passthru, which the Plexus shim serves under that name.
const PassthruType = "passthru"

// Request is the part of a CNI ADD that selection depends on.
type Request struct {
	// Pod is nil when the runtime sent no K8S_POD_* args: the sandbox then
	// gets only the cluster network and DefaultNetworks.
	Pod *podref.Pod
	// RuntimeIfName is CNI_IFNAME, e.g. "eth0": the default network's
	// interface.
	RuntimeIfName string
}

// ResourceNameAnnotation on a NAD names the device-plugin resource whose
// devices the attachment uses (e.g. an SR-IOV VF pool); the device is
// assigned after resolution (pkg/devices).
const ResourceNameAnnotation = "k8s.v1.cni.cncf.io/resourceName"

// ResourceClaimAnnotation on a NAD names the pod resource claim (the name
// in the pod's spec.resourceClaims) whose DRA device the attachment uses;
// the device is assigned after resolution (pkg/devices).
const ResourceClaimAnnotation = "plexus-cni.io/resource-claim"

// capability is one per-attachment request that becomes a runtimeConfig
// capability argument.
type capability struct {
	annotationKey string // key in the selection element
	capabilityKey string // runtimeConfig / "capabilities" key
}

var capabilities = []capability{
	{"ips", "ips"},
	{"mac", "mac"},
	{"infiniband-guid", "infinibandGUID"},
	{"portMappings", "portMappings"},
	{"bandwidth", "bandwidth"},
}

// CapabilityKeys returns the runtimeConfig capability keys Resolve may put
// in a Spec's CapabilityArgs.
func CapabilityKeys() []string {
	out := make([]string, len(capabilities))
	for i, c := range capabilities {
		out[i] = c.capabilityKey
	}
	return out
}

// Resolve returns the pod's attachments in execution order:
//
//  0. the default network: the pod's v1.multus-cni.io/default-network NAD if
//     set (it replaces the cluster network), else opts.ClusterNetwork; it is
//     marked Default and uses req.RuntimeIfName;
//  1. opts.DefaultNetworks in order, unless the pod is in a system namespace;
//  2. the k8s.v1.cni.cncf.io/networks elements in order; duplicates are
//     separate attachments (NPWG spec §4.2).
//
// Everything is checked before the first delegate runs: annotation syntax,
// namespace isolation, interface names, one default-route gateway per
// family, the attachment limit, NAD existence and config validity, and that
// the delegate declares every capability the element requests (spec
// §4.1.2.1.3.2, which Multus does not enforce). Errors are *SelectionError;
// CNICode maps them to a CNI error code.
func Resolve(opts Options, req Request, nads NADGetter, confs ConfLoader) ([]delegate.Spec, error) {
	r := &resolver{opts: opts.withDefaults(), nads: nads, confs: confs}
	if err := ValidateIfName(req.RuntimeIfName); err != nil {
		return nil, &SelectionError{Element: "CNI_IFNAME", Reason: err.Error()}
	}
	elements, override, err := r.readPod(req.Pod)
	if err != nil {
		return nil, err
	}
	defaults, inline := r.opts.fixed(r.pod)
	aux, err := r.auxiliaryPlugins()
	if err != nil {
		return nil, err
	}
	auxN := 0
	if aux != nil {
		auxN = 1
	}
	if n := 1 + len(defaults) + len(inline) + len(elements) + auxN; n > r.opts.MaxAttachments {
		return nil, r.fail(&SelectionError{
			Reason: fmt.Sprintf("%d attachments (default network, %d default networks, %d from %s, %d auxiliary chain) exceed the limit of %d",
				n, len(defaults)+len(inline), len(elements), NetworksAnnotation, auxN, r.opts.MaxAttachments)})
	}

	// Cheap checks on the request itself come before any lookup.
	labels, ifNames, err := r.nameInterfaces(req.RuntimeIfName, defaults, len(inline), elements, aux != nil)
	if err != nil {
		return nil, err
	}
	if err := r.checkGateways(override, elements); err != nil {
		return nil, err
	}

	specs := make([]delegate.Spec, 0, 1+len(labels))
	def, err := r.defaultNetwork(override)
	if err != nil {
		return nil, err
	}
	def.Default = true
	def.IfName = req.RuntimeIfName
	specs = append(specs, def)
	for i, d := range defaults {
		s, err := r.configured(d, labels[i])
		if err != nil {
			return nil, err
		}
		s.IfName = ifNames[i]
		specs = append(specs, s)
	}
	for i, raw := range inline {
		j := len(defaults) + i
		s, err := r.inlineSpec(raw, i+1, labels[j])
		if err != nil {
			return nil, err
		}
		s.IfName = ifNames[j]
		specs = append(specs, s)
	}
	for i, el := range elements {
		j := len(defaults) + len(inline) + i
		s, err := r.selected(el, labels[j])
		if err != nil {
			return nil, err
		}
		s.IfName = ifNames[j]
		s.Selection = SelectionKey(el)
		specs = append(specs, s)
	}
	if aux != nil {
		s, err := r.auxiliarySpec(aux, def)
		if err != nil {
			return nil, err
		}
		s.IfName = ifNames[len(ifNames)-1]
		specs = append(specs, s)
	}
	return specs, nil
}

// auxiliaryPlugins reads the auxiliary chain's plugin configs; nil if no
// chain is configured or its directory holds none (as Multus: passthru
// alone is no chain).
func (r *resolver) auxiliaryPlugins() ([][]byte, error) {
	name := r.opts.AuxiliaryChain
	if name == "" {
		return nil, nil
	}
	label := "auxiliaryCNIChainName " + strconv.Quote(name)
	if !strings.HasPrefix(r.opts.ClusterNetwork, "/") {
		return nil, r.fail(&SelectionError{Element: label, Reason: fmt.Sprintf("needs clusterNetwork to be a file path, got %q", r.opts.ClusterNetwork)})
	}
	if r.confs == nil {
		return nil, r.fail(&SelectionError{Element: label, Reason: "no configuration loader available"})
	}
	dir := filepath.Join(filepath.Dir(r.opts.ClusterNetwork), name)
	plugins, err := r.confs.Chain(dir)
	if err != nil {
		return nil, r.fail(&SelectionError{Element: label, Reason: "reading the chain's plugins in " + dir, Err: err})
	}
	return plugins, nil
}

// auxiliarySpec builds the auxiliary chain's conflist: passthru, then the
// plugins, in the daemon's cniVersion (else the default network's).
func (r *resolver) auxiliarySpec(plugins [][]byte, def delegate.Spec) (delegate.Spec, error) {
	name := r.opts.AuxiliaryChain
	label := "auxiliaryCNIChainName " + strconv.Quote(name)
	version := r.opts.AuxiliaryCNIVersion
	if version == "" {
		var head struct {
			CNIVersion string `json:"cniVersion"`
		}
		_ = json.Unmarshal(def.ConfList, &head)
		version = head.CNIVersion
	}
	list := struct {
		CNIVersion string            `json:"cniVersion"`
		Name       string            `json:"name"`
		Plugins    []json.RawMessage `json:"plugins"`
	}{version, name, []json.RawMessage{json.RawMessage(`{"type":"` + PassthruType + `","name":"passthru-cni"}`)}}
	for _, p := range plugins {
		list.Plugins = append(list.Plugins, json.RawMessage(p))
	}
	raw, err := json.Marshal(list)
	if err != nil {
		return delegate.Spec{}, r.fail(&SelectionError{Element: label, Reason: "a plugin config is not valid JSON", Err: err})
	}
	confList, err := NormalizeHostConfList(raw, name)
	if err != nil {
		return delegate.Spec{}, r.relabel(err, label)
	}
	return delegate.Spec{Network: name, ConfList: json.RawMessage(confList), Auxiliary: true}, nil
}

// fixed returns what every pod gets after its default network: the
// defaultNetworks (none in a system namespace), or in delegates mode the
// inline delegates after the first (every pod, as Multus).
func (o Options) fixed(pod *podref.Pod) (defaults []string, inline []json.RawMessage) {
	if o.ClusterNetwork == "" && len(o.Delegates) > 0 {
		return nil, o.Delegates[1:]
	}
	if pod != nil && slices.Contains(o.SystemNamespaces, pod.Namespace) {
		return nil, nil
	}
	return o.DefaultNetworks, nil
}

// inlineSpec is delegates[index] (Multus's inline delegates), checked as
// a file on the node is.
func (r *resolver) inlineSpec(raw []byte, index int, label string) (delegate.Spec, error) {
	confList, err := NormalizeHostConfList(raw, fmt.Sprintf("delegates-%d", index))
	if err != nil {
		return delegate.Spec{}, r.relabel(err, label)
	}
	return r.confSpec(confList, label)
}

func (o Options) withDefaults() Options {
	if o.MaxAttachments <= 0 {
		o.MaxAttachments = DefaultMaxAttachments
	}
	if o.GlobalNamespaces == nil {
		o.GlobalNamespaces = []string{"default"}
	}
	return o
}

type resolver struct {
	opts   Options
	nads   NADGetter
	confs  ConfLoader
	pod    *podref.Pod // nil without K8S_POD_* args
	podRef string      // "ns/name" or ""
}

// readPod parses the pod's selection annotations; a nil pod selects
// nothing.
func (r *resolver) readPod(p *podref.Pod) ([]nadv1.NetworkSelectionElement, *nadv1.NetworkSelectionElement, error) {
	if p == nil {
		return nil, nil, nil
	}
	r.pod = p
	r.podRef = p.Namespace + "/" + p.Name
	if p.Namespace == "" {
		return nil, nil, r.fail(&SelectionError{Reason: "pod has no namespace"})
	}
	elements, err := ParseNetworksLimit(p.Annotations[NetworksAnnotation], p.Namespace, r.opts.MaxAttachments)
	if err != nil {
		return nil, nil, r.fail(err)
	}
	override, err := ParseDefaultNetwork(p.Annotations[DefaultNetworkAnnotation], r.opts.PlexusNamespace)
	if err != nil {
		return nil, nil, r.fail(err)
	}
	return elements, override, nil
}

// nameInterfaces labels the non-default attachments for error messages and
// assigns their interface names.
func (r *resolver) nameInterfaces(runtimeIfName string, defaults []string, inline int, elements []nadv1.NetworkSelectionElement, aux bool) (labels, ifNames []string, err error) {
	labels = make([]string, 0, len(defaults)+inline+len(elements)+1)
	requested := make([]string, 0, len(defaults)+inline+len(elements)+1)
	for i, d := range defaults {
		labels = append(labels, fmt.Sprintf("defaultNetworks[%d] %q", i, d))
		requested = append(requested, "")
	}
	for i := range inline {
		labels = append(labels, fmt.Sprintf("delegates[%d]", i+1))
		requested = append(requested, "")
	}
	for i, el := range elements {
		labels = append(labels, elementLabel("networks", i, el.Name))
		requested = append(requested, el.InterfaceRequest)
	}
	if aux {
		labels = append(labels, "auxiliaryCNIChainName "+strconv.Quote(r.opts.AuxiliaryChain))
		requested = append(requested, "")
	}
	ifNames, err = AssignIfNames(runtimeIfName, requested)
	if err != nil {
		return nil, nil, r.fail(ifNameError(err, labels, runtimeIfName))
	}
	return labels, ifNames, nil
}

// defaultNetwork resolves attachment 0: the pod's override if any, else
// the cluster network.
func (r *resolver) defaultNetwork(override *nadv1.NetworkSelectionElement) (delegate.Spec, error) {
	if override != nil {
		return r.selected(*override, DefaultNetworkAnnotation)
	}
	if r.opts.ClusterNetwork == "" && len(r.opts.Delegates) > 0 {
		return r.inlineSpec(r.opts.Delegates[0], 0, "delegates[0]")
	}
	return r.configured(r.opts.ClusterNetwork, "clusterNetwork")
}

// fail stamps the pod onto a SelectionError.
func (r *resolver) fail(err error) error {
	var se *SelectionError
	if errors.As(err, &se) && se.Pod == "" {
		se.Pod = r.podRef
	}
	return err
}

// relabel returns err (from LoadNADConfig or NormalizeConfList) with the
// pod set and label prepended to its element.
func (r *resolver) relabel(err error, label string) error {
	var se *SelectionError
	if !errors.As(err, &se) {
		return &SelectionError{Pod: r.podRef, Element: label, Err: err}
	}
	out := *se
	out.Pod = r.podRef
	if out.Element == "" {
		out.Element = label
	} else {
		out.Element = label + ": " + out.Element
	}
	return &out
}

func ifNameError(err error, labels []string, runtimeIfName string) error {
	var ce *IfNameConflictError
	if !errors.As(err, &ce) {
		return err
	}
	first := "the default network (CNI_IFNAME " + fmt.Sprintf("%q", runtimeIfName) + ")"
	if ce.First >= 0 {
		first = labels[ce.First]
	}
	return &SelectionError{Element: labels[ce.Second], Field: "interface",
		Reason: fmt.Sprintf("interface name %q is already used by %s", ce.Name, first), Err: err}
}

// checkGateways allows at most one IPv4 and one IPv6 default-route gateway
// across all elements, as Multus does (ECMP is not supported).
func (r *resolver) checkGateways(override *nadv1.NetworkSelectionElement, elements []nadv1.NetworkSelectionElement) error {
	type req struct {
		label string
		gws   []net.IP
	}
	reqs := make([]req, 0, len(elements)+1)
	if override != nil {
		reqs = append(reqs, req{DefaultNetworkAnnotation, override.GatewayRequest})
	}
	for i, el := range elements {
		reqs = append(reqs, req{elementLabel("networks", i, el.Name), el.GatewayRequest})
	}
	var v4, v6 string // label of the first requester per family
	for _, q := range reqs {
		for _, gw := range q.gws {
			family, first := "IPv6", &v6
			if gw.To4() != nil {
				family, first = "IPv4", &v4
			}
			if *first != "" {
				return r.fail(&SelectionError{Element: q.label, Field: "default-route",
					Reason: fmt.Sprintf("second %s default-route gateway %s (%s already requests one): at most one IPv4 and one IPv6 gateway may be requested across all networks (ECMP is not supported)",
						family, gw, *first)})
			}
			*first = q.label
		}
	}
	return nil
}

// getNAD looks a NAD up; found is false (with err nil) when it does not exist.
func (r *resolver) getNAD(namespace, name string) (nad *nadv1.NetworkAttachmentDefinition, found bool, err error) {
	if r.nads == nil {
		return nil, false, nil
	}
	nad, err = r.nads.GetNAD(namespace, name)
	switch {
	case errors.Is(err, podref.ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	case nad == nil:
		return nil, false, nil
	}
	return nad, true, nil
}

// selected resolves a pod-originated selection element to a Spec (IfName
// left to the caller).
func (r *resolver) selected(el nadv1.NetworkSelectionElement, label string) (delegate.Spec, error) {
	ref := el.Namespace + "/" + el.Name
	if r.opts.NamespaceIsolation && el.Namespace != r.pod.Namespace && !slices.Contains(r.opts.GlobalNamespaces, el.Namespace) {
		return delegate.Spec{}, r.fail(&SelectionError{Element: label, Field: "namespace",
			Reason: fmt.Sprintf("namespace isolation: pod in %s may not use networks in %s", r.pod.Namespace, el.Namespace)})
	}
	nad, found, err := r.getNAD(el.Namespace, el.Name)
	if err != nil {
		return delegate.Spec{}, r.fail(&SelectionError{Element: label,
			Reason: fmt.Sprintf("getting NetworkAttachmentDefinition %q", ref), Err: err, Transient: true})
	}
	if !found {
		return delegate.Spec{}, r.fail(&SelectionError{Element: label,
			Reason: fmt.Sprintf("NetworkAttachmentDefinition %q not found", ref), Err: podref.ErrNotFound})
	}
	confList, err := LoadNADConfig(nad, r.opts.ConfDir, r.confs)
	if err != nil {
		return delegate.Spec{}, r.relabel(err, label)
	}
	if el.CNIArgs != nil && len(*el.CNIArgs) > 0 {
		if confList, err = MergeCNIArgs(confList, *el.CNIArgs); err != nil {
			return delegate.Spec{}, r.fail(&SelectionError{Element: label, Field: "cni-args",
				Reason: "cannot merge cni-args into the delegate configuration", Err: err})
		}
	}
	spec := delegate.Spec{Network: ref, ConfList: json.RawMessage(confList), ResourceName: resourceName(nad), ResourceClaim: resourceClaim(nad)}
	caps := capabilityArgs(el)
	for _, c := range capabilities {
		if _, ok := caps[c.capabilityKey]; ok && !PluginsDeclare(confList, c.capabilityKey) {
			return delegate.Spec{}, r.fail(&SelectionError{Element: label, Field: c.annotationKey,
				Reason: fmt.Sprintf("network %q has no plugin declaring capability %q (NPWG spec 4.1.2.1.3.2)", ref, c.capabilityKey)})
		}
	}
	if len(caps) > 0 {
		spec.CapabilityArgs = caps
	}
	// Legacy CNI_ARGS, still read by the static IPAM plugin and others.
	if len(el.IPRequest) > 0 {
		spec.Args = append(spec.Args, [2]string{"IP", strings.Join(el.IPRequest, ",")})
	}
	if el.MacRequest != "" {
		spec.Args = append(spec.Args, [2]string{"MAC", el.MacRequest})
	}
	for _, gw := range el.GatewayRequest {
		spec.DefaultRoute = append(spec.DefaultRoute, gw.String())
	}
	return spec, nil
}

// resourceClaim is the pod resource claim the NAD takes its device from,
// or "".
func resourceClaim(nad *nadv1.NetworkAttachmentDefinition) string {
	return strings.TrimSpace(nad.Annotations[ResourceClaimAnnotation])
}

// resourceName is the NAD's device-plugin resource, or "".
func resourceName(nad *nadv1.NetworkAttachmentDefinition) string {
	return strings.TrimSpace(nad.Annotations[ResourceNameAnnotation])
}

// capabilityArgs turns an element's requests into runtimeConfig values.
func capabilityArgs(el nadv1.NetworkSelectionElement) map[string]interface{} {
	caps := map[string]interface{}{}
	if len(el.IPRequest) > 0 {
		caps["ips"] = slices.Clone(el.IPRequest)
	}
	if el.MacRequest != "" {
		caps["mac"] = el.MacRequest
	}
	if el.InfinibandGUIDRequest != "" {
		caps["infinibandGUID"] = el.InfinibandGUIDRequest
	}
	if len(el.PortMappingsRequest) > 0 {
		pms := make([]nadv1.PortMapEntry, 0, len(el.PortMappingsRequest))
		for _, pm := range el.PortMappingsRequest {
			e := *pm
			// The portmap plugin passes the protocol to iptables/nftables
			// as is; Kubernetes' default protocol is TCP.
			e.Protocol = strings.ToLower(e.Protocol)
			if e.Protocol == "" {
				e.Protocol = "tcp"
			}
			pms = append(pms, e)
		}
		caps["portMappings"] = pms
	}
	if el.BandwidthRequest != nil {
		caps["bandwidth"] = *el.BandwidthRequest
	}
	return caps
}

// configured resolves an admin-configured network reference
// (ClusterNetwork or a DefaultNetworks entry); namespace isolation does not
// apply, the admin chose it.
func (r *resolver) configured(ref, label string) (delegate.Spec, error) {
	if ref == "" {
		return delegate.Spec{}, r.fail(&SelectionError{Element: label, Reason: "no network configured"})
	}
	if strings.HasPrefix(ref, "/") {
		if r.confs == nil {
			return delegate.Spec{}, r.fail(&SelectionError{Element: label, Reason: "no configuration loader available"})
		}
		raw, err := r.confs.File(ref)
		if err != nil {
			return delegate.Spec{}, r.fail(&SelectionError{Element: label,
				Reason: fmt.Sprintf("cannot load CNI configuration file %q", ref), Err: err})
		}
		base := filepath.Base(ref)
		confList, err := NormalizeHostConfList(raw, strings.TrimSuffix(base, filepath.Ext(base)))
		if err != nil {
			return delegate.Spec{}, r.relabel(withSource(err, "", ref), label)
		}
		return r.confSpec(confList, label)
	}
	if len(validation.IsDNS1123Subdomain(ref)) == 0 {
		nad, found, err := r.getNAD(r.opts.PlexusNamespace, ref)
		if err != nil {
			return delegate.Spec{}, r.fail(&SelectionError{Element: label,
				Reason:    fmt.Sprintf("getting NetworkAttachmentDefinition %q", r.opts.PlexusNamespace+"/"+ref),
				Err:       err,
				Transient: true})
		}
		if found {
			confList, err := LoadNADConfig(nad, r.opts.ConfDir, r.confs)
			if err != nil {
				return delegate.Spec{}, r.relabel(err, label)
			}
			return delegate.Spec{Network: r.opts.PlexusNamespace + "/" + ref, ConfList: json.RawMessage(confList), ResourceName: resourceName(nad), ResourceClaim: resourceClaim(nad)}, nil
		}
	}
	notFound := fmt.Sprintf("network %q is neither a NetworkAttachmentDefinition in namespace %q nor a CNI configuration in %q",
		ref, r.opts.PlexusNamespace, r.opts.ConfDir)
	if r.confs == nil {
		return delegate.Spec{}, r.fail(&SelectionError{Element: label, Reason: notFound, Err: podref.ErrNotFound})
	}
	raw, err := r.confs.ByName(r.opts.ConfDir, ref)
	switch {
	case errors.Is(err, podref.ErrNotFound):
		return delegate.Spec{}, r.fail(&SelectionError{Element: label, Reason: notFound, Err: err})
	case err != nil:
		return delegate.Spec{}, r.fail(&SelectionError{Element: label,
			Reason: fmt.Sprintf("cannot load CNI configuration %q from %q", ref, r.opts.ConfDir), Err: err})
	}
	confList, err := NormalizeHostConfList(raw, ref)
	if err != nil {
		return delegate.Spec{}, r.relabel(withSource(err, "", "confDir"), label)
	}
	return r.confSpec(confList, label)
}

// confSpec makes the Spec of a conf-file network: its display name is the
// conf's own name.
func (r *resolver) confSpec(confList []byte, label string) (delegate.Spec, error) {
	var head struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(confList, &head); err != nil {
		return delegate.Spec{}, r.fail(&SelectionError{Element: label, Reason: "reading the network name", Err: err})
	}
	return delegate.Spec{Network: head.Name, ConfList: json.RawMessage(confList)}, nil
}

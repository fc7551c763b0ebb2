package netselect

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// SelectionKey is the canonical form of a networks-annotation element
// (namespace filled in): two elements ask for the same attachment exactly
// when their keys are equal. A changed field (interface, ips, mac, cni-args…)
// makes a different attachment.
func SelectionKey(el nadv1.NetworkSelectionElement) string {
	b, err := json.Marshal(el)
	if err != nil { // the element came from JSON: cannot happen
		return el.Namespace + "/" + el.Name + "@" + el.InterfaceRequest
	}
	return string(b)
}

// Change is what turns a running pod's attachments into what its networks
// annotation asks for now.
type Change struct {
	// Remove are indexes into the current attachments, last first (the
	// order their DELs run in).
	Remove []int
	// Add are the new attachments, resolved and named, in annotation order.
	Add []delegate.Spec
}

// Empty reports whether the change does nothing.
func (c Change) Empty() bool { return len(c.Remove) == 0 && len(c.Add) == 0 }

// ErrNotAdoptable means current holds annotation attachments without a
// selection key (a record from before hot-plug) that do not match the
// annotation as it is now: which element each one was made for is unknown.
var ErrNotAdoptable = fmt.Errorf("the attachments were made by a plexusd without hot-plug and no longer match the networks annotation")

// Adopt stamps the selection keys on the annotation attachments of a record
// written before they existed, when resolving the pod now gives exactly the
// same networks and interface names; otherwise ErrNotAdoptable.
func Adopt(opts Options, pod *podref.Pod, runtimeIfName string, current []delegate.Spec, nads NADGetter, confs ConfLoader) ([]delegate.Spec, error) {
	want, err := Resolve(opts, Request{Pod: pod, RuntimeIfName: runtimeIfName}, nads, confs)
	if err != nil {
		return nil, err
	}
	if len(want) != len(current) {
		return nil, ErrNotAdoptable
	}
	out := slices.Clone(current)
	for i := range out {
		if out[i].Network != want[i].Network || out[i].IfName != want[i].IfName || out[i].Default != want[i].Default {
			return nil, ErrNotAdoptable
		}
		out[i].Selection = want[i].Selection
	}
	return out, nil
}

// NeedsAdoption reports whether current has attachments that may have come
// from the annotation but carry no selection key (a record from before
// hot-plug; defaultNetworks' attachments also have none).
func NeedsAdoption(opts Options, pod *podref.Pod, current []delegate.Spec) bool {
	keyed, plain := 0, 0
	for _, s := range current {
		switch {
		case s.Default, s.Auxiliary:
		case s.Selection != "":
			keyed++
		default:
			plain++
		}
	}
	defaults, inline := opts.fixed(pod)
	return keyed == 0 && plain > len(defaults)+len(inline)
}

// Diff plans the hot-plug change of a running pod: current is what its
// record holds, in order; the pod's networks annotation is what it should
// hold. The default network and defaultNetworks never change. Element by
// element (SelectionKey), each current attachment made for an element is
// kept by the first equal element not already matched; the rest are
// removed; unmatched elements are added.
//
// Everything is checked as at ADD before anything is returned: the whole
// annotation parses, the attachment limit and the one-gateway-per-family
// rule hold, and each new element passes isolation, NAD lookup, config and
// capability checks. New interfaces are named as at ADD: an explicitly
// requested name must be free (not the runtime's, not kept, not asked
// twice); the others take the lowest net<N> in use by no kept attachment
// and asked for by no new element. Kept names never move.
func Diff(opts Options, pod *podref.Pod, runtimeIfName string, current []delegate.Spec, nads NADGetter, confs ConfLoader) (Change, error) {
	r := &resolver{opts: opts.withDefaults(), nads: nads, confs: confs}
	elements, _, err := r.readPod(pod)
	if err != nil {
		return Change{}, err
	}
	fixed := 0
	for _, s := range current {
		if s.Selection == "" {
			fixed++
		}
	}
	if n := fixed + len(elements); n > r.opts.MaxAttachments {
		return Change{}, r.fail(&SelectionError{
			Reason: fmt.Sprintf("%d attachments (%d fixed, %d from %s) exceed the limit of %d", n, fixed, len(elements), NetworksAnnotation, r.opts.MaxAttachments)})
	}
	if err := r.checkGateways(nil, elements); err != nil {
		return Change{}, err
	}

	// Match current attachments to elements, in order.
	matched := make([]bool, len(elements))
	keys := make([]string, len(elements))
	for i, el := range elements {
		keys[i] = SelectionKey(el)
	}
	var ch Change
	inUse := map[string]bool{runtimeIfName: true}
	for i, s := range current {
		if s.Selection == "" {
			inUse[s.IfName] = true
			continue
		}
		j := slices.IndexFunc(keys, func(k string) bool { return k == s.Selection })
		for j >= 0 && matched[j] {
			next := slices.IndexFunc(keys[j+1:], func(k string) bool { return k == s.Selection })
			if next < 0 {
				j = -1
				break
			}
			j += 1 + next
		}
		if j < 0 {
			ch.Remove = append(ch.Remove, i)
			continue
		}
		matched[j] = true
		inUse[s.IfName] = true
	}
	slices.Reverse(ch.Remove)

	// Name the new elements: explicit names first, then positional ones.
	owner := map[string]int{}
	for i, el := range elements {
		if matched[i] || el.InterfaceRequest == "" {
			continue
		}
		label := elementLabel("networks", i, el.Name)
		if inUse[el.InterfaceRequest] {
			return Change{}, r.fail(&SelectionError{Element: label, Field: "interface",
				Reason: fmt.Sprintf("interface name %q is in use in the running pod", el.InterfaceRequest)})
		}
		if prev, taken := owner[el.InterfaceRequest]; taken {
			return Change{}, r.fail(&SelectionError{Element: label, Field: "interface",
				Reason: fmt.Sprintf("interface name %q is already requested by %s", el.InterfaceRequest, elementLabel("networks", prev, elements[prev].Name))})
		}
		owner[el.InterfaceRequest] = i
	}
	next := 1
	for i, el := range elements {
		if matched[i] {
			continue
		}
		label := elementLabel("networks", i, el.Name)
		s, err := r.selected(el, label)
		if err != nil {
			return Change{}, err
		}
		s.Selection = keys[i]
		s.IfName = el.InterfaceRequest
		for s.IfName == "" {
			c := "net" + strconv.Itoa(next)
			next++
			if _, asked := owner[c]; !inUse[c] && !asked {
				s.IfName = c
			}
		}
		inUse[s.IfName] = true
		ch.Add = append(ch.Add, s)
	}
	return ch, nil
}

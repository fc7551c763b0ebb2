package netselect

import (
	"fmt"
	"strconv"
)

// IfNameConflictError reports two attachments that want the same interface
// name. Indexes refer to the requested slice given to AssignIfNames; -1 is
// the default network, which always uses the runtime's CNI_IFNAME.
type IfNameConflictError struct {
	Name          string
	First, Second int
}

func (e *IfNameConflictError) Error() string {
	first := "attachment " + strconv.Itoa(e.First)
	if e.First < 0 {
		first = "the default network (CNI_IFNAME)"
	}
	return fmt.Sprintf("interface name %q requested by attachment %d is already used by %s", e.Name, e.Second, first)
}

// AssignIfNames names the interfaces of the non-default attachments, in
// order. requested[i] is the name attachment i asked for, or "" for none.
//
// Explicitly requested names are reserved first; the others get net1, net2,
// … in order, skipping every reserved name and runtimeIfName (the default
// network's interface). Unlike Multus, whose net<N> is the attachment's
// position and so can collide with a name another element requested
// (multus issues #1089, #1200), this never produces a duplicate, like Genie.
// A requested name equal to runtimeIfName, or requested twice, is an
// *IfNameConflictError. Requested names are assumed valid (ValidateIfName).
func AssignIfNames(runtimeIfName string, requested []string) ([]string, error) {
	owner := map[string]int{runtimeIfName: -1}
	for i, name := range requested {
		if name == "" {
			continue
		}
		if prev, taken := owner[name]; taken {
			return nil, &IfNameConflictError{Name: name, First: prev, Second: i}
		}
		owner[name] = i
	}
	out := make([]string, len(requested))
	next := 1
	for i, name := range requested {
		if name != "" {
			out[i] = name
			continue
		}
		for {
			candidate := "net" + strconv.Itoa(next)
			next++
			if _, taken := owner[candidate]; !taken {
				out[i] = candidate
				break
			}
		}
	}
	return out, nil
}

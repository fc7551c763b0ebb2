package api

import (
	"slices"

	"github.com/plexus-cni/plexus/pkg/api/wire"
)

// CNIVersions are the CNI spec versions Plexus serves (wire.CNIVersions).
var CNIVersions = wire.CNIVersions

// SupportsCNIVersion reports whether v is in CNIVersions.
func SupportsCNIVersion(v string) bool { return slices.Contains(CNIVersions, v) }

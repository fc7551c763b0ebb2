package api

import "slices"

// CNIVersions are the CNI spec versions Plexus serves: what the shim
// advertises on VERSION, what the daemon config may generate, and what a
// delegate config may declare. One list, here.
var CNIVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// SupportsCNIVersion reports whether v is in CNIVersions.
func SupportsCNIVersion(v string) bool { return slices.Contains(CNIVersions, v) }

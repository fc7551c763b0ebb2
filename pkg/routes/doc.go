// Package routes applies the NPWG "default-route" selection (spec v1.3
// 4.1.2.1.9) inside the pod's network namespace once every delegate ADD
// succeeded, and verifies it on CHECK.
//
// For each IP family some attachment asked a gateway for, every default
// route of that family is removed from every other interface and
// "default via <gw> dev <ifname>" is installed on the requesting one. A
// default route is matched whether netlink reports it without a
// destination or as 0.0.0.0/0 / ::/0: vishvananda/netlink >= 1.2 reports
// the latter, which is why Multus stopped removing eth0's default route
// (https://github.com/k8snetworkplumbingwg/multus-cni/issues/1444). Routes
// are listed for the requested family only.
//
// The delegates' results, and libcni's cached copies of them, are then
// rewritten to match, so the runtime's result, network-status, and the
// prevResult libcni hands to CHECK and DEL all describe the routes the pod
// really has.
//
// Namespace work runs in short ns.WithNetNSPath closures without
// goroutines; netlink reads go through netlinksafe. The package imports no
// client-go.
package routes

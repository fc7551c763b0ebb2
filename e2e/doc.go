// Package e2e holds Plexus's end-to-end tests: a test runtime that execs
// bin/plexus exactly as containerd does (environment + stdin, K8S_* in
// CNI_ARGS) against a real plexusd, with the real reference plugins in real
// network namespaces. Every test builds its own "host" network namespace,
// so the machine's own links, routes and sysctls are never touched.
// The tests need root and the binaries from `make build plugins testbins`.
package e2e

// Package manifest is the no-cluster source of NADs and pods: standard
// Kubernetes manifests (YAML or JSON, multi-document) in one directory,
// reloaded when they change. network-status is written as JSON under
// <statusDir>/<namespace>/<pod>.json. It serves the same interfaces as the
// Kubernetes source, so resolution code is shared.
package manifest

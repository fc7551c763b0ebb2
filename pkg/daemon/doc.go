// Package daemon is plexusd's composition root: Run wires the config, the
// logger, the network source (manifests or Kubernetes), the attachment
// store, the delegate invoker and the socket server. Multiplexer implements
// server.Handler with one short method per CNI verb. Only cmd/thick-daemon
// imports it.
package daemon

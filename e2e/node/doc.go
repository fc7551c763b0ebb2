// Package node is the "real node" end-to-end suite: Plexus deployed the way
// users deploy it (image, CRD, RBAC, ConfigMap, DaemonSet) on a one-node
// Kubernetes built here: etcd + kube-apiserver (e2e/kubeharness),
// kube-controller-manager, kube-scheduler, a private containerd and a
// kubelet, all on loopback, with every file in one private directory.
//
// The suite runs only with PLEXUS_E2E_NODE=1 and as root (`make e2e-node`
// builds what it needs first); otherwise every test skips. Everything it
// starts is stopped and everything it changes on the machine is undone at
// the end, and again at the start of the next run if a run was killed.
package node

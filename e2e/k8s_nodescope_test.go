package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/plexus-cni/plexus/e2e/kubeharness"
	"github.com/plexus-cni/plexus/internal/testutil"
)

const (
	plexusSA     = "system:serviceaccount:kube-system:plexus"
	nodeNameKey  = "authentication.kubernetes.io/node-name"
	statusUpdate = `{"metadata":{"annotations":{"` + nadv1.NetworkStatusAnnot + `":"[{\"name\":\"cluster-net\",\"interface\":\"eth0\",\"default\":true}]"}}}`
)

// deployments/hardening/node-scope.yaml on a real API server: the plexus
// ServiceAccount with a token bound to a pod on node A (as the kubelet
// mints it for the DaemonSet's pod) may patch pods/status of pods on node
// A only; a token with no node-name claim may patch none. Other users are
// not affected.
func TestK8sNodeScopePolicy(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	admin := kubernetes.NewForConfigOrDie(c.RESTConfig())
	if _, err := c.Kubectl(ctx, "apply", "-f", filepath.Join(root, "deployments", "rbac.yaml")); err != nil {
		t.Fatal(err)
	}
	ns, nodeA, nodeB := "plexus-scope-"+rand.String(6), "scope-a-"+rand.String(6), "scope-b-"+rand.String(6)
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{nodeA, nodeB} {
		if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create node %s: %v", n, err)
		}
		t.Cleanup(func() { _ = admin.CoreV1().Nodes().Delete(context.Background(), n, metav1.DeleteOptions{}) })
	}
	podA := createPodOn(t, admin, ns, "on-a", nodeA, "")
	podB := createPodOn(t, admin, ns, "on-b", nodeB, "")
	holder := createPodOn(t, admin, "kube-system", "plexus-"+rand.String(6), nodeA, "plexus")
	bound := plexusClient(t, c, admin, holder)
	unbound := plexusClient(t, c, admin, nil)

	for _, tc := range []struct {
		name string
		kube kubernetes.Interface
		want string
	}{{"pod-bound", bound, nodeA}, {"unbound", unbound, ""}} {
		ssr, err := tc.kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("%s token: self subject review: %v", tc.name, err)
		}
		if got := strings.Join(ssr.Status.UserInfo.Extra[nodeNameKey], ","); ssr.Status.UserInfo.Username != plexusSA || got != tc.want {
			t.Fatalf("%s token: user %s, %s %q; want %s, %q", tc.name, ssr.Status.UserInfo.Username, nodeNameKey, got, plexusSA, tc.want)
		}
	}
	// RBAC alone lets the ServiceAccount write any pod's status, so a
	// denial below is the policy's.
	if err := patchNetworkStatus(bound, podB); err != nil {
		t.Fatalf("before the policy: patch %s/%s status: %v", podB.Namespace, podB.Name, err)
	}

	policy := filepath.Join(root, "deployments", "hardening", "node-scope.yaml")
	t.Cleanup(func() {
		// The API server is shared and later tests (TestK8sDeploymentsRBAC)
		// run plexusd with an unbound token: wait until admission has
		// dropped the policy too, not just the API.
		if _, err := c.Kubectl(context.Background(), "delete", "--ignore-not-found", "-f", policy); err != nil {
			t.Error(err)
		}
		if !testutil.Within(10*time.Second, func() bool { return patchNetworkStatus(unbound, podA) == nil }) {
			t.Errorf("node-scope policy still enforced 10s after its deletion: %v", patchNetworkStatus(unbound, podA))
		}
	})
	if _, err := c.Kubectl(ctx, "apply", "-f", policy); err != nil {
		t.Fatal(err)
	}
	// The policy takes effect once the API server's policy informer has
	// seen it and its binding.
	var errB error
	if !testutil.Within(10*time.Second, func() bool { errB = patchNetworkStatus(bound, podB); return errB != nil }) {
		t.Fatalf("node-scope policy not enforced 10s after it was applied: node A may still patch a pod on node B")
	}
	wantPolicyDenial(t, "patch from node A of a pod on node B", errB, nodeA, nodeB, ns+"/on-b")

	if err := patchNetworkStatus(bound, podA); err != nil {
		t.Errorf("patch from node A of a pod on node A: %v", err)
	} else if p, err := admin.CoreV1().Pods(ns).Get(ctx, podA.Name, metav1.GetOptions{}); err != nil {
		t.Error(err)
	} else if p.Annotations[nadv1.NetworkStatusAnnot] == "" {
		t.Errorf("pod on node A: no %s after an allowed patch", nadv1.NetworkStatusAnnot)
	}
	wantPolicyDenial(t, "patch with an unbound token", patchNetworkStatus(unbound, podA), nodeA, nodeNameKey, ns+"/on-a")
	if err := patchNetworkStatus(admin, podB); err != nil {
		t.Errorf("the policy matched another user: admin patch of %s/%s status: %v", podB.Namespace, podB.Name, err)
	}
}

// The plexus ServiceAccount's complete permissions, as `kubectl auth can-i
// --list` prints them (its own grants plus what every authenticated
// ServiceAccount gets), match e2e/testdata/plexus-can-i.golden, so that a
// grant added to or dropped from rbac.yaml is a reviewed diff.
// PLEXUS_UPDATE_GOLDEN=1 rewrites the file.
func TestK8sPlexusPermissionsGolden(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	if _, err := c.Kubectl(ctx, "apply", "-f", filepath.Join(root, "deployments", "rbac.yaml")); err != nil {
		t.Fatal(err)
	}
	out, err := c.Kubectl(ctx, "auth", "can-i", "--list", "--as", plexusSA, "-n", "kube-system")
	if err != nil {
		t.Fatal(err)
	}
	got := normalizeLines(out)
	golden := filepath.Join(root, "e2e", "testdata", "plexus-can-i.golden")
	if os.Getenv("PLEXUS_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", golden)
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (PLEXUS_UPDATE_GOLDEN=1 writes it)", err)
	}
	if got != string(want) {
		t.Errorf("permissions of %s differ from %s (+ granted now, - no longer; PLEXUS_UPDATE_GOLDEN=1 accepts):\n%s", plexusSA, golden, lineDiff(got, string(want)))
	}
}

// createPodOn creates a pod object bound to node (nothing runs it),
// deleted when the test ends.
func createPodOn(t *testing.T, kube kubernetes.Interface, ns, name, node, serviceAccount string) *corev1.Pod {
	t.Helper()
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: serviceAccount, AutomountServiceAccountToken: new(bool),
			Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
	}
	p, err := kube.CoreV1().Pods(ns).Create(context.Background(), obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	t.Cleanup(func() {
		zero := int64(0)
		_ = kube.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
	return p
}

// plexusClient authenticates as the plexus ServiceAccount with a token from
// the TokenRequest API, bound to pod (which carries its node's name into
// the token) or, with pod nil, bound to nothing.
func plexusClient(t *testing.T, c *kubeharness.Cluster, admin kubernetes.Interface, pod *corev1.Pod) kubernetes.Interface {
	t.Helper()
	exp := int64(3600)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}
	if pod != nil {
		req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	tr, err := admin.CoreV1().ServiceAccounts("kube-system").CreateToken(context.Background(), "plexus", req, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", plexusSA, err)
	}
	return kubernetes.NewForConfigOrDie(&rest.Config{Host: c.URL, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAFile: c.CAFile}})
}

// patchNetworkStatus writes the network-status annotation through
// pods/status, as plexusd does.
func patchNetworkStatus(kube kubernetes.Interface, p *corev1.Pod) error {
	_, err := kube.CoreV1().Pods(p.Namespace).Patch(context.Background(), p.Name, types.MergePatchType, []byte(statusUpdate), metav1.PatchOptions{}, "status")
	return err
}

func wantPolicyDenial(t *testing.T, what string, err error, mentions ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: allowed; want denied by the node-scope policy", what)
		return
	}
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ValidatingAdmissionPolicy 'plexus-node-scope'") {
		t.Errorf("%s: %v; want Forbidden by ValidatingAdmissionPolicy 'plexus-node-scope'", what, err)
		return
	}
	for _, m := range mentions {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("%s: denial %q does not mention %q", what, err, m)
		}
	}
	t.Logf("%s: %v", what, err)
}

// normalizeLines collapses each line's whitespace (kubectl pads columns)
// and sorts the lines (the API server lists rules in no fixed order).
func normalizeLines(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// lineDiff lists the lines only in got (+) and only in want (-).
func lineDiff(got, want string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var d []string
	for l, n := range count {
		for ; n < 0; n++ {
			d = append(d, "+ "+l)
		}
		for ; n > 0; n-- {
			d = append(d, "- "+l)
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/testutils"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// A pod deleted from the API while its ADD runs, again and again: the ADD
// either succeeds or fails cleanly, the daemon never panics, and after the
// runtime's DEL nothing is left.
func TestK8sPodDeletedDuringAdd(t *testing.T) {
	e := newEnv(t, withKube(t))
	k := e.kube
	k.createNAD(t, k.ns, "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir))
	zero := int64(0)
	ok, failed := 0, 0
	for i := 0; i < 20; i++ {
		p := e.createPod(k.ns, "racy", map[string]string{"k8s.v1.cni.cncf.io/networks": "mv1"})
		done := make(chan cniResult, 1)
		go func() { done <- e.add(p) }()
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond) // before, during or after the lookup, the delegates, the status write
		if err := k.kube.CoreV1().Pods(k.ns).Delete(context.Background(), "racy", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		if r := <-done; r.err != nil {
			failed++
			if n := len(e.links(p)); n != 1 {
				t.Errorf("round %d: failed ADD left %d interfaces (%s)", i, n, r)
			}
		} else {
			ok++
		}
		e.mustDel(p)
		testutil.Eventually(t, 10*time.Second, "pod gone", func() bool {
			_, err := k.kube.CoreV1().Pods(k.ns).Get(context.Background(), "racy", metav1.GetOptions{})
			return err != nil
		})
	}
	t.Logf("20 rounds: %d ADDs succeeded, %d failed cleanly", ok, failed)
	if e.logHas("panic") {
		t.Error("the daemon log mentions a panic")
	}
	e.assertClean()
}

// A pod recreated under the same name PLEXUS_RECREATE times (default 200),
// the old sandbox's DEL arriving after the new sandbox's ADD: every status
// lands on the pod of its own UID, and two live sandboxes never share an IP.
func TestK8sPodRecreatedManyTimes(t *testing.T) {
	rounds := 200
	if v, err := strconv.Atoi(os.Getenv("PLEXUS_RECREATE")); err == nil && v > 0 {
		rounds = v
	}
	e := newEnv(t, withKube(t))
	k := e.kube
	k.createNAD(t, k.ns, "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir))
	nets := [2]*pod{}
	for i := range nets {
		n, err := testutils.NewNS()
		if err != nil {
			t.Fatal(err)
		}
		nets[i] = &pod{netns: n}
		t.Cleanup(func() { n.Close(); _ = testutils.UnmountNS(n) })
	}
	zero := int64(0)
	var prev *pod
	for i := 0; i < rounds; i++ {
		p := e.createPodObject(k.ns, "sts-0", map[string]string{"k8s.v1.cni.cncf.io/networks": "mv1"})
		p.netns = nets[i%2].netns
		e.mustAdd(p)
		st := e.apiStatus(p)
		if len(st) != 2 || len(st[1].IPs) != 1 {
			t.Fatalf("round %d: status %+v", i, st)
		}
		ip := strings.Split(e.links(p)["net1"].ipv4()[0], "/")[0]
		if st[1].IPs[0] != ip {
			t.Fatalf("round %d: status says %s, the sandbox has %s", i, st[1].IPs[0], ip)
		}
		if prev != nil {
			if old := e.links(prev)["net1"].ipv4(); len(old) == 1 && strings.Split(old[0], "/")[0] == ip {
				t.Fatalf("round %d: the old and the new sandbox share %s", i, ip)
			}
			e.mustDel(prev)
		}
		if err := k.kube.CoreV1().Pods(k.ns).Delete(context.Background(), "sts-0", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, "pod gone", func() bool {
			_, err := k.kube.CoreV1().Pods(k.ns).Get(context.Background(), "sts-0", metav1.GetOptions{})
			return err != nil
		})
		prev = p
	}
	e.mustDel(prev)
	e.assertClean()
}

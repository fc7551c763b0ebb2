package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	k8stypes "k8s.io/apimachinery/pkg/types"
)

// hotplugResult: pod start-up ADD with and without 50 running pods being
// hot-plugged at the same time (same daemon, interleaved), and how long a
// hot-plug change takes from the annotation update to the network-status
// that reports it (written once the interface is up).
type hotplugResult struct {
	BackgroundPods, ProbePods, Repeats int
	QuietAddP50, BusyAddP50            float64 // ms, medians over repeats
	QuietDelP50, BusyDelP50            float64
	BusyAddRatio, BusyDelRatio         float64
	Changes                            int
	ChangeP50, ChangeP99, ChangeMax    float64 // ms, 50 pods changed at once
	Single                             int
	SingleP50, SingleP99               float64 // ms, one pod changed at a time
	Errors                             int
}

const hotplugNode = "hotplug-node"

// hotplugPhase runs the pod start-up probe (concurrency 1, 2 networks)
// quiet, then while every background pod's networks annotation flips
// between "" and "mv2" round after round, repeats times.
func (b *bench) hotplugPhase(ctx context.Context, background, probes, repeats int) (*hotplugResult, error) {
	d, cfgPath, err := b.daemonConfig("hotplug", map[string]interface{}{"hotplug": true})
	if err != nil {
		return nil, err
	}
	b.hotplugD = d
	if err := b.startDaemon(d, cfgPath, "--kubeconfig", b.cluster.Kubeconfig, "--node-name", hotplugNode); err != nil {
		return nil, err
	}
	res := &hotplugResult{BackgroundPods: background, ProbePods: probes, Repeats: repeats}
	bg := make([]*sandbox, background)
	for i := range bg {
		p := podInfo{name: fmt.Sprintf("hp-bg-%02d", i)}
		if p.uid, err = b.createPod(ctx, hotplugNode, benchNS, p.name, nil); err != nil {
			return nil, err
		}
		if bg[i], err = b.newSandbox(p, "hpbg"); err != nil {
			return nil, err
		}
	}
	b.track(bg)
	defer b.release(bg)
	probe := make([]podInfo, probes)
	for i := range probe {
		probe[i] = podInfo{name: fmt.Sprintf("hp-probe-%02d", i)}
		if probe[i].uid, err = b.createPod(ctx, hotplugNode, benchNS, probe[i].name, map[string]string{nadv1.NetworkAttachmentAnnot: "mv1"}); err != nil {
			return nil, err
		}
	}
	time.Sleep(time.Second) // the informer has the pods
	for _, s := range bg {
		if err := b.shimOp(d, "ADD", s); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, s := range bg {
			_ = b.shimOp(d, "DEL", s)
		}
	}()

	w := newStatusWatch()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if err := w.start(wctx, b, hotplugNode); err != nil {
		return nil, err
	}
	var quietAdd, busyAdd, quietDel, busyDel []float64
	var changes []time.Duration
	attached := false
	for rep := 0; rep < repeats; rep++ {
		ph, err := b.runPhase(modeAPI, d, 1, 2, rep, probe)
		if err != nil {
			return nil, err
		}
		quietAdd, quietDel = append(quietAdd, ph.Add.P50), append(quietDel, ph.Del.P50)
		res.Errors += ph.Add.Errors + ph.Del.Errors

		// Busy: rounds of flips until the probe phase is done.
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				attached = !attached
				lat, err := b.flip(ctx, w, bg, attached)
				changes = append(changes, lat...)
				if err != nil {
					done <- err
					return
				}
			}
		}()
		time.Sleep(200 * time.Millisecond) // the first round is under way
		ph, err = b.runPhase(modeAPI, d, 1, 2, rep, probe)
		close(stop)
		if ferr := <-done; ferr != nil {
			return nil, ferr
		}
		if err != nil {
			return nil, err
		}
		busyAdd, busyDel = append(busyAdd, ph.Add.P50), append(busyDel, ph.Del.P50)
		res.Errors += ph.Add.Errors + ph.Del.Errors
		fmt.Fprintf(os.Stderr, "hotplug rep %d: probe ADD p50 quiet %.1f ms, busy %.1f ms; %d changes so far\n", rep, quietAdd[rep], busyAdd[rep], len(changes))
	}
	res.QuietAddP50, res.BusyAddP50 = median(quietAdd), median(busyAdd)
	res.QuietDelP50, res.BusyDelP50 = median(quietDel), median(busyDel)
	res.BusyAddRatio, res.BusyDelRatio = res.BusyAddP50/res.QuietAddP50, res.BusyDelP50/res.QuietDelP50
	res.Changes = len(changes)
	res.ChangeP50 = ms(percentile(changes, 0.5))
	res.ChangeP99 = ms(percentile(changes, 0.99))
	res.ChangeMax = ms(percentile(changes, 1))
	// One pod at a time, nothing else running: the latency of a change.
	var single []time.Duration
	for i := 0; i < 40; i++ {
		attached = !attached
		lat, err := b.flip(ctx, w, bg[:1], attached)
		if err != nil {
			return nil, err
		}
		single = append(single, lat...)
	}
	res.Single, res.SingleP50, res.SingleP99 = len(single), ms(percentile(single, 0.5)), ms(percentile(single, 0.99))
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// flip sets every background pod's networks to "mv2" (attach) or ""
// and waits until each pod's network-status says so; it returns the
// latency of each change.
func (b *bench) flip(ctx context.Context, w *statusWatch, bg []*sandbox, attach bool) ([]time.Duration, error) {
	val := ""
	if attach {
		val = "mv2"
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{nadv1.NetworkAttachmentAnnot: val}}})
	for _, s := range bg {
		w.expect(s.pod.name, attach)
		if _, err := b.kube.CoreV1().Pods(benchNS).Patch(ctx, s.pod.name, k8stypes.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return nil, err
		}
	}
	return w.wait(60 * time.Second)
}

// statusWatch watches the node's pods and times each expected change of
// their network-status (net1 present or not).
type statusWatch struct {
	mu      sync.Mutex
	pending map[string]pendingChange
	done    []time.Duration
	cond    chan struct{}
}

type pendingChange struct {
	since  time.Time
	attach bool
}

func newStatusWatch() *statusWatch {
	return &statusWatch{pending: map[string]pendingChange{}, cond: make(chan struct{}, 1)}
}

func (w *statusWatch) expect(pod string, attach bool) {
	w.mu.Lock()
	w.pending[pod] = pendingChange{since: time.Now(), attach: attach}
	w.mu.Unlock()
}

func (w *statusWatch) start(ctx context.Context, b *bench, node string) error {
	wi, err := b.kube.CoreV1().Pods(benchNS).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		return err
	}
	go func() {
		defer wi.Stop()
		for ev := range wi.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			has := strings.Contains(p.Annotations[nadv1.NetworkStatusAnnot], `"interface": "net1"`) ||
				strings.Contains(p.Annotations[nadv1.NetworkStatusAnnot], `"interface":"net1"`)
			w.mu.Lock()
			if pc, ok := w.pending[p.Name]; ok && pc.attach == has {
				w.done = append(w.done, time.Since(pc.since))
				delete(w.pending, p.Name)
				select {
				case w.cond <- struct{}{}:
				default:
				}
			}
			w.mu.Unlock()
		}
	}()
	return nil
}

// wait returns the latencies measured since the last wait once nothing is
// pending.
func (w *statusWatch) wait(timeout time.Duration) ([]time.Duration, error) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		n := len(w.pending)
		if n == 0 {
			out := w.done
			w.done = nil
			w.mu.Unlock()
			return out, nil
		}
		w.mu.Unlock()
		select {
		case <-w.cond:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			return nil, fmt.Errorf("hot-plug: %d pods did not reach the expected network-status in %s", n, timeout)
		}
	}
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/testutils"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// opStats summarises one verb of one phase.
type opStats struct {
	P50, P90, P99, Max float64 // milliseconds
	OpsPerSec          float64
	Errors             int
}

// phase is one (mode, concurrency, networks, repeat) run: 'pods' ADDs,
// then as many DELs.
type phase struct {
	Mode        mode
	Concurrency int
	Networks    int
	Repeat      int
	Add, Del    opStats
	Leaks       []string
	DaemonRSSMB float64 `json:",omitempty"` // after the ADDs: every pod attached
	CPUPerOpMS  float64 `json:",omitempty"` // daemon CPU (user+sys) per ADD or DEL
	// APICPUPerOpMS is kube-apiserver's and etcd's CPU per ADD or DEL
	// during the phase: what the node's API traffic costs the machine in
	// plexus-api, what they cost idle in the other modes.
	APICPUPerOpMS float64            `json:",omitempty"`
	ShimCPUAdd    float64            `json:",omitempty"` // shim process CPU (user+sys) per ADD, ms
	APIPerAdd     map[string]float64 `json:",omitempty"` // requests per ADD by "VERB resource"
	APIPerDel     map[string]float64 `json:",omitempty"`
	FirstErrors   []string           `json:",omitempty"`
	// StepsMS is the mean time of each ADD step (daemons with metrics).
	StepsMS map[string]float64 `json:",omitempty"`
}

func stats(lat []time.Duration, wall time.Duration, errs []error) opStats {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return opStats{P50: ms(percentile(lat, .50)), P90: ms(percentile(lat, .90)), P99: ms(percentile(lat, .99)), Max: ms(percentile(lat, 1)),
		OpsPerSec: float64(len(lat)) / wall.Seconds(), Errors: len(errs)}
}

func (b *bench) daemonFor(m mode) *daemonProc {
	switch m {
	case modeManifest:
		return b.manifest
	case modeMetrics:
		return b.metricsD
	case modeAPI:
		return b.api
	}
	return nil
}

func (b *bench) runPhase(m mode, d *daemonProc, conc, nets, rep int, pods []podInfo) (*phase, error) {
	ph := &phase{Mode: m, Concurrency: conc, Networks: nets, Repeat: rep}
	sbs := make([]*sandbox, len(pods))
	for i, p := range pods {
		s, err := b.newSandbox(p, "bench")
		if err != nil {
			return nil, err
		}
		sbs[i] = s
	}
	b.track(sbs)
	defer b.release(sbs)
	ctx := context.Background()
	op := func(add bool) func(*sandbox) error {
		if m == modeFloor {
			return func(s *sandbox) error { return b.floorOp(ctx, add, s, nets) }
		}
		verb := "DEL"
		if add {
			verb = "ADD"
		}
		return func(s *sandbox) error { return b.shimOp(d, verb, s) }
	}
	// CPU/op is the daemon's, or for the floor this process's, which runs
	// libcni there (what plexusd replaces).
	cpuPid := os.Getpid()
	if d != nil {
		cpuPid = d.cmd.Process.Pid
	}
	cpu0, apiCPU0 := procCPU(cpuPid), 0.0
	var api0 map[string]float64
	if m == modeAPI {
		api0 = b.apiRequests()
	}
	if b.cluster != nil {
		apiCPU0 = b.clusterCPU()
	}
	var steps0 map[string][2]float64
	if d != nil && d.metricsPort != 0 {
		steps0 = scrapeSteps(d.metricsPort)
	}
	shim0 := b.shimCPUNanos("ADD")
	lat, wall, errs := runConc(conc, sbs, op(true))
	ph.Add = stats(lat, wall, errs)
	if d != nil {
		ph.ShimCPUAdd = float64(b.shimCPUNanos("ADD")-shim0) / 1e6 / float64(len(pods))
	}
	if steps0 != nil {
		ph.StepsMS = stepMeans(scrapeSteps(d.metricsPort), steps0)
	}
	ph.FirstErrors = firstErrors(errs)
	var api1 map[string]float64
	if d != nil {
		ph.DaemonRSSMB = procRSS(d.cmd.Process.Pid)
	}
	if m == modeAPI {
		api1 = b.apiRequests()
		ph.APIPerAdd = perOp(api1, api0, len(pods))
	}
	lat, wall, errs = runConc(conc, sbs, op(false))
	ph.Del = stats(lat, wall, errs)
	ph.FirstErrors = append(ph.FirstErrors, firstErrors(errs)...)
	ph.CPUPerOpMS = (procCPU(cpuPid) - cpu0) * 1000 / float64(2*len(pods))
	if b.cluster != nil { // in every mode: the others show what it costs idle
		ph.APICPUPerOpMS = (b.clusterCPU() - apiCPU0) * 1000 / float64(2*len(pods))
	}
	if m == modeAPI {
		ph.APIPerDel = perOp(b.apiRequests(), api1, len(pods))
	}
	ph.Leaks = b.leaks(d)
	return ph, nil
}

// newSandbox gives pod a fresh netns and a unique 64-character container
// ID starting with prefix.
func (b *bench) newSandbox(p podInfo, prefix string) (*sandbox, error) {
	n, err := testutils.NewNS()
	if err != nil {
		return nil, err
	}
	b.seq++
	id := fmt.Sprintf("%s%08d", prefix, b.seq)
	return &sandbox{pod: p, cid: id + strings.Repeat("0", 64-len(id)), netns: n}, nil
}

func firstErrors(errs []error) []string {
	var out []string
	for i, e := range errs {
		if i == 3 {
			break
		}
		out = append(out, e.Error())
	}
	return out
}

// leaks lists what a phase left behind: links beyond the bench's own,
// IP allocations, attachment records, libcni cache entries.
func (b *bench) leaks(d *daemonProc) []string {
	var out []string
	links, _ := exec.Command("ip", "-o", "link", "show").Output()
	for _, l := range strings.Split(strings.TrimSpace(string(links)), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(strings.Split(f[1], "@")[0], ":")
		switch name {
		case "lo", parent, parent + "p", "benchbr0":
		default:
			out = append(out, "link "+name)
		}
	}
	dirs := []string{b.ipamDir, filepath.Join(b.dir, "floor-cache", "results")}
	if d != nil {
		dirs = append(dirs, filepath.Join(d.cniDir, "attachments"), filepath.Join(d.cniDir, "results"))
	}
	for _, dir := range dirs {
		_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() && info.Name() != "lock" && !strings.HasPrefix(info.Name(), "last_reserved_ip") {
				out = append(out, "file "+p)
			}
			return nil
		})
	}
	return out
}

// procRSS is the process's resident set in MiB.
func procRSS(pid int) float64 { return procMem(pid)["VmRSS"] }

// procMem reads the VmRSS, RssAnon (heap, stacks) and RssFile (the
// binary's pages in use) lines of /proc/<pid>/status, in MiB.
func procMem(pid int) map[string]float64 {
	out := map[string]float64{}
	procLines(pid, "status", func(fs []string) {
		if len(fs) >= 2 && (fs[0] == "VmRSS:" || fs[0] == "RssAnon:" || fs[0] == "RssFile:") {
			kb, _ := strconv.ParseFloat(fs[1], 64)
			out[strings.TrimSuffix(fs[0], ":")] = kb / 1024
		}
	})
	return out
}

// procMaps splits the process's resident set (MiB) by what is mapped: the
// binary's code, read-only data and data, anonymous memory (heap, Go
// stacks) and the rest (vdso, thread stacks).
func procMaps(pid int) map[string]float64 {
	out := map[string]float64{}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	class := "other"
	procLines(pid, "smaps", func(fs []string) {
		switch {
		case len(fs) >= 5 && strings.Contains(fs[0], "-") && len(fs[1]) == 4: // a mapping's header
			path := ""
			if len(fs) >= 6 {
				path = fs[5]
			}
			switch {
			case path == exe && fs[1][2] == 'x':
				class = "code"
			case path == exe && fs[1][1] == 'w':
				class = "data"
			case path == exe:
				class = "rodata"
			case path == "" || path == "[heap]":
				class = "anon"
			default:
				class = "other"
			}
		case len(fs) >= 2 && fs[0] == "Rss:":
			kb, _ := strconv.ParseFloat(fs[1], 64)
			out[class] += kb / 1024
		}
	})
	return out
}

// procLines calls each with the fields of every line of /proc/<pid>/file;
// a process that is gone has none.
func procLines(pid int, file string, each func([]string)) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		each(strings.Fields(sc.Text()))
	}
}

// procCPU is the process's user+system CPU time in seconds.
func procCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// clusterCPU is kube-apiserver's and etcd's CPU time in seconds.
func (b *bench) clusterCPU() float64 {
	var t float64
	for _, pid := range b.cluster.Pids() {
		t += procCPU(pid)
	}
	return t
}

func (b *bench) apiRequests() map[string]float64 {
	out, err := b.cluster.RequestCounts(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	return out
}

// scrapeSteps reads plexus_add_step_duration_seconds from the daemon's
// metrics: step → {sum seconds, count}. The ADD requests as plexusd timed
// them (plexus_cni_request_duration_seconds, from the socket to the
// answer) count as the pseudo-step "request".
func scrapeSteps(port int) map[string][2]float64 {
	out := map[string][2]float64{}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: scrape:", err)
		return out
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: scrape:", err)
		return out
	}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	for _, m := range fams["plexus_add_step_duration_seconds"].GetMetric() {
		out[label(m, "step")] = [2]float64{m.GetHistogram().GetSampleSum(), float64(m.GetHistogram().GetSampleCount())}
	}
	for _, m := range fams["plexus_cni_request_duration_seconds"].GetMetric() {
		if label(m, "verb") == "ADD" && label(m, "code") == "ok" {
			out["request"] = [2]float64{m.GetHistogram().GetSampleSum(), float64(m.GetHistogram().GetSampleCount())}
		}
	}
	return out
}

// stepMeans is each step's mean over the scrapes' difference, in ms.
func stepMeans(after, before map[string][2]float64) map[string]float64 {
	out := map[string]float64{}
	for k, a := range after {
		if n := a[1] - before[k][1]; n > 0 {
			out[k] = (a[0] - before[k][0]) / n * 1000
		}
	}
	return out
}

// perOp is the request delta divided by ops, leaving out the harness's
// own metrics scrapes.
func perOp(after, before map[string]float64, ops int) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 && !strings.Contains(k, "metrics") && k != "GET " {
			out[k] = d / float64(ops)
		}
	}
	return out
}

// shimCost execs the shim for VERSION (no daemon work) n times, and an
// empty Go program (bench/gostart) as many times, interleaved: what any Go
// binary costs to start here.
func (b *bench) shimCost(n int) (wallMS, cpuMS, sizeMB, goCPUMS float64) {
	var gos []time.Duration
	gostart := filepath.Join(b.o.root, "bin", "test", "gostart")
	var walls, cpus []time.Duration
	for i := 0; i < n; i++ {
		if g := exec.Command(gostart); g.Run() == nil {
			ru := g.ProcessState.SysUsage().(*syscall.Rusage)
			gos = append(gos, time.Duration(ru.Utime.Nano()+ru.Stime.Nano()))
		}
		cmd := exec.Command(b.shim)
		cmd.Env = []string{"CNI_COMMAND=VERSION"}
		cmd.Stdin = strings.NewReader(`{"cniVersion":"1.0.0"}`)
		t := time.Now()
		if err := cmd.Run(); err != nil {
			continue
		}
		walls = append(walls, time.Since(t))
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpus = append(cpus, time.Duration(ru.Utime.Nano()+ru.Stime.Nano()))
	}
	fi, _ := os.Stat(b.shim)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return ms(percentile(walls, .5)), ms(percentile(cpus, .5)), float64(fi.Size()) / (1 << 20), ms(percentile(gos, .5))
}

// scaleStep measures ADD p50 (concurrency 1, 100 pods, 2 networks) with the
// cluster holding nads NADs and the node holding pods pods.
type scaleStep struct {
	NADs, NodePods int
	AddP50, DelP50 float64
	DaemonRSSMB    float64
	// RSSAnonMB (heap, stacks) and RSSFileMB (binary pages) split it.
	RSSAnonMB, RSSFileMB float64
	// RSSByMapMB splits it by mapping: code, rodata, data, anon, other.
	RSSByMapMB map[string]float64 `json:",omitempty"`
	Errors     int
}

func (b *bench) scale(ctx context.Context) ([]scaleStep, error) {
	const node = "scale-node"
	d, cfgPath, err := b.daemonConfig("scale", nil)
	if err != nil {
		return nil, err
	}
	b.scaleD = d
	if err := b.startDaemon(d, cfgPath, "--kubeconfig", b.cluster.Kubeconfig, "--node-name", node); err != nil {
		return nil, err
	}
	probe := make([]podInfo, 100) // the target's "100 pods attached"
	for i := range probe {
		probe[i] = podInfo{name: fmt.Sprintf("scale-probe-%02d", i)}
		uid, err := b.createPod(ctx, node, benchNS, probe[i].name, map[string]string{nadv1.NetworkAttachmentAnnot: "mv1"})
		if err != nil {
			return nil, err
		}
		probe[i].uid = uid
	}
	var steps []scaleStep
	nads, pods := 4, len(probe)
	for _, target := range []struct{ nads, pods int }{{10, 100}, {2000, 200}, {2000, 500}} {
		for ; nads < target.nads; nads++ {
			if err := b.createNAD(ctx, "scale", fmt.Sprintf("nad-%04d", nads), fmt.Sprintf(`{"cniVersion":"1.0.0","name":"nad-%04d","type":"macvlan","master":"%s","ipam":{"type":"host-local","ranges":[[{"subnet":"10.200.0.0/16"}]]}}`, nads, parent)); err != nil {
				return nil, err
			}
		}
		for ; pods < target.pods; pods++ {
			if _, err := b.createPod(ctx, node, "scale", fmt.Sprintf("filler-%04d", pods), map[string]string{nadv1.NetworkAttachmentAnnot: "nad-0004"}); err != nil {
				return nil, err
			}
		}
		time.Sleep(2 * time.Second) // let the informers catch up
		ph, err := b.runPhase(modeAPI, d, 1, 2, 0, probe)
		if err != nil {
			return nil, err
		}
		mem, maps := procMem(d.cmd.Process.Pid), procMaps(d.cmd.Process.Pid)
		if os.Getenv("BENCH_PPROF") != "0" && target.pods == 200 {
			if err := d.profile("/debug/pprof/heap", filepath.Join(b.o.resultDir, b.resultStamp()+"-scale-heap.pprof")); err != nil {
				fmt.Fprintln(os.Stderr, "heap profile:", err)
			}
		}
		steps = append(steps, scaleStep{NADs: nads, NodePods: pods, AddP50: ph.Add.P50, DelP50: ph.Del.P50, DaemonRSSMB: ph.DaemonRSSMB,
			RSSAnonMB: mem["RssAnon"], RSSFileMB: mem["RssFile"], RSSByMapMB: maps, Errors: ph.Add.Errors + ph.Del.Errors})
	}
	return steps, nil
}

// track remembers a phase's sandboxes so an interrupted bench removes them.
func (b *bench) track(sbs []*sandbox) {
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	if b.live == nil {
		b.live = map[*sandbox]bool{}
	}
	for _, s := range sbs {
		b.live[s] = true
	}
}

// release removes sandboxes' network namespaces.
func (b *bench) release(sbs []*sandbox) {
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	for _, s := range sbs {
		if b.live[s] {
			s.netns.Close()
			_ = testutils.UnmountNS(s.netns)
			delete(b.live, s)
		}
	}
}

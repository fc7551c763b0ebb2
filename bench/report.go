package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// report is what the bench prints and stores.
type report struct {
	Date       string
	Pods       int
	Repeats    int
	Phases     []*phase
	Summary    []summaryRow
	ShimWallMS float64
	ShimCPUMS  float64
	ShimSizeMB float64
	// GoStartCPUMS is an empty Go program's exec, for scale.
	GoStartCPUMS float64
	Scale        []scaleStep    `json:",omitempty"`
	Hotplug      *hotplugResult `json:",omitempty"`
}

// summaryRow: medians over the repeats of one (mode, concurrency, networks).
type summaryRow struct {
	Mode                 mode
	Concurrency          int
	Networks             int
	Add, Del             opStats
	AddP50Ratio          float64 // plexus / floor
	DelP50Ratio          float64
	AddOpsRatio          float64
	DelOpsRatio          float64
	DaemonRSSMB          float64
	CPUPerOpMS           float64
	APICPUPerOpMS        float64
	ShimCPUAdd           float64
	APIPerAdd, APIPerDel map[string]float64
	StepsMS              map[string]float64 `json:",omitempty"`
	Leaks, Errors        int
}

// addStepOrder is the daemon's ADD steps, in order (pkg/daemon addSteps).
var addStepOrder = []string{"lookup", "resolve", "reclaim", "devices", "save plan", "delegates", "routes", "verify", "status", "commit"}

// warmupPods is how many pods each mode adds and deletes before the
// measured repeats.
const warmupPods = 10

func (b *bench) runAll() (*report, error) {
	r := &report{Date: time.Now().UTC().Format(time.RFC3339), Pods: b.o.pods, Repeats: b.o.repeats}
	modes := []mode{modeFloor, modeManifest, modeMetrics}
	if b.o.api {
		modes = append(modes, modeAPI)
	}
	r.ShimWallMS, r.ShimCPUMS, r.ShimSizeMB, r.GoStartCPUMS = b.shimCost(200)
	// Warm-up, not reported: a mode's first operations pay for what is
	// cold (the plugins' pages, the daemon's first requests, the API
	// server's caches), which made repeat 0 the worst of every mode.
	for _, nets := range b.o.nets {
		for _, m := range modes {
			pods := b.pods[nets][:min(warmupPods, len(b.pods[nets]))]
			if _, err := b.runPhase(m, b.daemonFor(m), 1, nets, -1, pods); err != nil {
				return nil, fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	for rep := 0; rep < b.o.repeats; rep++ {
		for _, conc := range b.o.concs {
			for _, nets := range b.o.nets {
				// Interleaved: every mode once per repeat, in reverse
				// order on odd repeats, so that a drift of the machine's
				// speed within a repeat favours no mode; ratios are taken
				// within each repeat (paired), then their median.
				order := modes
				if rep%2 == 1 {
					order = make([]mode, len(modes))
					for i, m := range modes {
						order[len(modes)-1-i] = m
					}
				}
				for _, m := range order {
					stop := b.maybeProfile(m, rep, conc, nets)
					ph, err := b.runPhase(m, b.daemonFor(m), conc, nets, rep, b.pods[nets])
					stop()
					if err != nil {
						return nil, err
					}
					fmt.Fprintf(os.Stderr, "rep %d c=%d n=%d %-16s ADD p50 %6.1f ms %6.1f/s  DEL p50 %6.1f ms %6.1f/s  errors %d leaks %d\n",
						rep, conc, nets, m, ph.Add.P50, ph.Add.OpsPerSec, ph.Del.P50, ph.Del.OpsPerSec, ph.Add.Errors+ph.Del.Errors, len(ph.Leaks))
					r.Phases = append(r.Phases, ph)
				}
			}
		}
	}
	r.summarise(modes, b.o)
	if b.o.scale && b.o.api {
		steps, err := b.scale(context.Background())
		if err != nil {
			return nil, err
		}
		r.Scale = steps
	}
	if b.o.hotplug && b.o.api {
		hp, err := b.hotplugPhase(context.Background(), 50, 20, b.o.repeats)
		if err != nil {
			return nil, err
		}
		r.Hotplug = hp
	}
	return r, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func (r *report) summarise(modes []mode, o options) {
	for _, conc := range o.concs {
		for _, nets := range o.nets {
			for _, m := range modes {
				row := summaryRow{Mode: m, Concurrency: conc, Networks: nets, APIPerAdd: map[string]float64{}, APIPerDel: map[string]float64{}}
				var f [10][]float64
				var ratios [4][]float64 // each repeat's ×floor (paired)
				apiAdd, apiDel, steps := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
				for _, ph := range r.Phases {
					if ph.Mode != m || ph.Concurrency != conc || ph.Networks != nets {
						continue
					}
					for i, v := range []float64{ph.Add.P50, ph.Add.P90, ph.Add.P99, ph.Add.Max, ph.Add.OpsPerSec, ph.Del.P50, ph.Del.P90, ph.Del.P99, ph.Del.Max, ph.Del.OpsPerSec} {
						f[i] = append(f[i], v)
					}
					row.DaemonRSSMB = max(row.DaemonRSSMB, ph.DaemonRSSMB)
					row.CPUPerOpMS += ph.CPUPerOpMS / float64(o.repeats)
					row.APICPUPerOpMS += ph.APICPUPerOpMS / float64(o.repeats)
					row.ShimCPUAdd += ph.ShimCPUAdd / float64(o.repeats)
					row.Leaks += len(ph.Leaks)
					row.Errors += ph.Add.Errors + ph.Del.Errors
					for k, v := range ph.APIPerAdd {
						apiAdd[k] = append(apiAdd[k], v)
					}
					for k, v := range ph.APIPerDel {
						apiDel[k] = append(apiDel[k], v)
					}
					for k, v := range ph.StepsMS {
						steps[k] = append(steps[k], v)
					}
					if fl := r.phase(modeFloor, conc, nets, ph.Repeat); m != modeFloor && fl != nil && fl.Add.P50 > 0 && fl.Del.P50 > 0 && fl.Add.OpsPerSec > 0 && fl.Del.OpsPerSec > 0 {
						for i, v := range []float64{ph.Add.P50 / fl.Add.P50, ph.Del.P50 / fl.Del.P50, ph.Add.OpsPerSec / fl.Add.OpsPerSec, ph.Del.OpsPerSec / fl.Del.OpsPerSec} {
							ratios[i] = append(ratios[i], v)
						}
					}
				}
				if len(steps) > 0 {
					row.StepsMS = map[string]float64{}
					for k, v := range steps {
						row.StepsMS[k] = median(v)
					}
				}
				row.Add = opStats{P50: median(f[0]), P90: median(f[1]), P99: median(f[2]), Max: median(f[3]), OpsPerSec: median(f[4])}
				row.Del = opStats{P50: median(f[5]), P90: median(f[6]), P99: median(f[7]), Max: median(f[8]), OpsPerSec: median(f[9])}
				for k, v := range apiAdd {
					row.APIPerAdd[k] = median(v)
				}
				for k, v := range apiDel {
					row.APIPerDel[k] = median(v)
				}
				row.AddP50Ratio, row.DelP50Ratio = median(ratios[0]), median(ratios[1])
				row.AddOpsRatio, row.DelOpsRatio = median(ratios[2]), median(ratios[3])
				r.Summary = append(r.Summary, row)
			}
		}
	}
}

// phase is the run of (m, conc, nets) in repeat rep, or nil.
func (r *report) phase(m mode, conc, nets, rep int) *phase {
	for _, ph := range r.Phases {
		if ph.Mode == m && ph.Concurrency == conc && ph.Networks == nets && ph.Repeat == rep {
			return ph
		}
	}
	return nil
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Plexus vs floor (%d pods per phase, medians of %d repeats, interleaved; ×floor: the median of each repeat's ratio)\n\n", r.Pods, r.Repeats)
	b.WriteString("| mode | conc | nets | ADD p50 / p90 / p99 / max ms | ADD ops/s | DEL p50 / p90 / p99 / max ms | DEL ops/s | ADD p50 ×floor | ADD ops/s ×floor | DEL p50 ×floor | DEL ops/s ×floor | daemon RSS MiB | CPU/op ms (daemon, or the floor's libcni runner) | API server + etcd CPU/op ms | shim CPU/ADD ms | errors | leaks |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Summary {
		ratio := func(v float64) string {
			if s.Mode == modeFloor {
				return "1"
			}
			return fmt.Sprintf("%.2f", v)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f / %.1f / %.1f / %.1f | %.1f | %.1f / %.1f / %.1f / %.1f | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d |\n",
			s.Mode, s.Concurrency, s.Networks, s.Add.P50, s.Add.P90, s.Add.P99, s.Add.Max, s.Add.OpsPerSec,
			s.Del.P50, s.Del.P90, s.Del.P99, s.Del.Max, s.Del.OpsPerSec,
			ratio(s.AddP50Ratio), ratio(s.AddOpsRatio), ratio(s.DelP50Ratio), ratio(s.DelOpsRatio),
			blank(s.DaemonRSSMB, "%.1f"), blank(s.CPUPerOpMS, "%.2f"), blank(s.APICPUPerOpMS, "%.2f"), blank(s.ShimCPUAdd, "%.2f"), s.Errors, s.Leaks)
	}
	var onOff []string
	for _, on := range r.Summary {
		if on.Mode != modeMetrics {
			continue
		}
		for _, off := range r.Summary {
			if off.Mode == modeManifest && off.Concurrency == on.Concurrency && off.Networks == on.Networks {
				onOff = append(onOff, fmt.Sprintf("| %d | %d | %.2f | %.2f | %.2f | %.2f | %.1f / %.1f |", on.Concurrency, on.Networks,
					on.Add.P50/off.Add.P50, on.Add.OpsPerSec/off.Add.OpsPerSec, on.Del.P50/off.Del.P50, on.Del.OpsPerSec/off.Del.OpsPerSec, on.DaemonRSSMB, off.DaemonRSSMB))
			}
		}
	}
	if len(onOff) > 0 {
		b.WriteString("\n### Metrics on vs off (plexus-manifest-metrics / plexus-manifest, same run, interleaved)\n\n| conc | nets | ADD p50 | ADD ops/s | DEL p50 | DEL ops/s | RSS MiB on / off |\n|---|---|---|---|---|---|---|\n")
		b.WriteString(strings.Join(onOff, "\n") + "\n")
	}
	var stepRows []string
	for _, s := range r.Summary {
		if len(s.StepsMS) == 0 {
			continue
		}
		row := fmt.Sprintf("| %s | %d | %d |", s.Mode, s.Concurrency, s.Networks)
		outside := 0.0
		for _, st := range addStepOrder {
			row += fmt.Sprintf(" %.2f |", s.StepsMS[st])
			if st != "delegates" {
				outside += s.StepsMS[st]
			}
		}
		req := s.StepsMS["request"]
		stepRows = append(stepRows, row+fmt.Sprintf(" %.2f | %.2f | %.2f |", outside, req-outside-s.StepsMS["delegates"], s.Add.P50-req))
	}
	if len(stepRows) > 0 {
		b.WriteString("\n### Where an ADD's time goes (daemons with metrics: mean ms per step, medians of the repeats)\n\n")
		b.WriteString("| mode | conc | nets | " + strings.Join(addStepOrder, " | ") + " | steps besides delegates | in plexusd outside the steps (queue, decode, answer) | ADD p50 − plexusd's request time (shim exec, socket) |\n")
		b.WriteString("|---|---|---|" + strings.Repeat("---|", len(addStepOrder)+3) + "\n")
		b.WriteString(strings.Join(stepRows, "\n") + "\n")
	}
	fmt.Fprintf(&b, "\nShim: %.1f MiB; exec with no daemon work (VERSION): %.2f ms wall, %.2f ms CPU (median of 200); an empty Go program: %.2f ms CPU, so %.2f ms is the shim's own.\n",
		r.ShimSizeMB, r.ShimWallMS, r.ShimCPUMS, r.GoStartCPUMS, r.ShimCPUMS-r.GoStartCPUMS)
	var api []string
	for _, s := range r.Summary {
		if s.Mode == modeAPI {
			api = append(api, fmt.Sprintf("| %d | %d | %s | %s |", s.Concurrency, s.Networks, fmtReq(s.APIPerAdd), fmtReq(s.APIPerDel)))
		}
	}
	if len(api) > 0 {
		b.WriteString("\n### API requests per operation (apiserver_request_total)\n\n| conc | nets | per ADD | per DEL |\n|---|---|---|---|\n")
		b.WriteString(strings.Join(api, "\n") + "\n")
	}
	if len(r.Scale) > 0 {
		b.WriteString("\n### Scale (plexus-api, concurrency 1, 100 pods, 2 networks)\n\n| NADs in cluster | pods on node | ADD p50 ms | DEL p50 ms | daemon RSS MiB (with 100 attached) | of it heap+stacks / binary pages (after the DELs) | binary's code / rodata / data | errors |\n|---|---|---|---|---|---|---|---|\n")
		for _, s := range r.Scale {
			m := s.RSSByMapMB
			fmt.Fprintf(&b, "| %d | %d | %.1f | %.1f | %.1f | %.1f / %.1f | %.1f / %.1f / %.1f | %d |\n", s.NADs, s.NodePods, s.AddP50, s.DelP50, s.DaemonRSSMB, s.RSSAnonMB, s.RSSFileMB, m["code"], m["rodata"], m["data"], s.Errors)
		}
	}
	if h := r.Hotplug; h != nil {
		fmt.Fprintf(&b, "\n### Pod start-up while %d running pods are hot-plugged (plexus-api, hotplug on, concurrency 1, 2 networks, %d probe pods, medians of %d)\n\n", h.BackgroundPods, h.ProbePods, h.Repeats)
		b.WriteString("| | ADD p50 ms | DEL p50 ms |\n|---|---|---|\n")
		fmt.Fprintf(&b, "| quiet | %.1f | %.1f |\n| %d pods hot-plugging | %.1f | %.1f |\n| ratio | %.2f | %.2f |\n", h.QuietAddP50, h.QuietDelP50, h.BackgroundPods, h.BusyAddP50, h.BusyDelP50, h.BusyAddRatio, h.BusyDelRatio)
		fmt.Fprintf(&b, "\nHot-plug change, annotation PATCH → network-status reporting it (%d changes): p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d pods changed at once, one change applied at a time); one pod changed alone (%d changes): p50 %.1f ms, p99 %.1f ms; errors %d.\n", h.Changes, h.ChangeP50, h.ChangeP99, h.ChangeMax, h.BackgroundPods, h.Single, h.SingleP50, h.SingleP99, h.Errors)
	}
	return b.String()
}

func blank(v float64, f string) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf(f, v)
}

func fmtReq(m map[string]float64) string {
	if len(m) == 0 {
		return "0"
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// stampFormat names the files of a run in resultDir: its UTC time.
const stampFormat = "20060102T150405Z"

// resultStamp is the name of profiles written now, in resultDir, which it
// creates.
func (b *bench) resultStamp() string {
	_ = os.MkdirAll(b.o.resultDir, 0o755)
	return time.Now().UTC().Format(stampFormat)
}

// maybeProfile takes a CPU profile of the manifest daemon over the first
// repeat's concurrency-8, most-networks phase, and a heap profile after it,
// into the results dir (BENCH_PPROF=0 turns it off).
func (b *bench) maybeProfile(m mode, rep, conc, nets int) func() {
	if os.Getenv("BENCH_PPROF") == "0" || m != modeManifest || rep != 0 || conc != b.o.concs[len(b.o.concs)-1] || nets != b.o.nets[len(b.o.nets)-1] {
		return func() {}
	}
	d := b.daemonFor(m)
	stamp := b.resultStamp()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.profile("/debug/pprof/profile?seconds=10", filepath.Join(b.o.resultDir, stamp+"-cpu.pprof")); err != nil {
			fmt.Fprintln(os.Stderr, "cpu profile:", err)
		}
	}()
	return func() {
		<-done
		if err := d.profile("/debug/pprof/heap", filepath.Join(b.o.resultDir, stamp+"-heap.pprof")); err != nil {
			fmt.Fprintln(os.Stderr, "heap profile:", err)
		}
	}
}

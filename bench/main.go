// Command bench measures Plexus against the floor: the same delegate plugins
// run directly, in the same order, per pod. It runs, in one process and
// interleaved, the floor, Plexus with the manifest source and Plexus with a
// real kube-apiserver, over a matrix of concurrency and networks per pod,
// and prints a markdown table of ratios (noisy shared machines: absolute
// times drift, ratios hold). `make bench` runs it as root.
//
// Everything happens in a network namespace of its own (the bench re-execs
// itself inside it), so the machine's links, routes and sysctls are not
// touched and the API server it starts listens on that namespace's
// loopback.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type options struct {
	pods      int
	repeats   int
	concs     []int
	nets      []int
	scale     bool
	hotplug   bool
	api       bool
	root      string
	resultDir string
}

func main() {
	var o options
	var concs, nets string
	flag.IntVar(&o.pods, "pods", envInt("BENCH_PODS", 60), "pods per phase")
	flag.IntVar(&o.repeats, "repeats", envInt("BENCH_REPEATS", 5), "repeats (medians are reported)")
	flag.StringVar(&concs, "concurrency", "1,8", "concurrency levels")
	flag.StringVar(&nets, "networks", "2,4", "networks per pod (eth0 included)")
	flag.BoolVar(&o.scale, "scale", os.Getenv("BENCH_SCALE") != "0", "run the NAD/pod scale phase")
	flag.BoolVar(&o.hotplug, "hotplug", os.Getenv("BENCH_HOTPLUG") != "0", "run the hot-plug phase (needs -api)")
	flag.BoolVar(&o.api, "api", os.Getenv("BENCH_API") != "0", "include Plexus with a real API server")
	flag.StringVar(&o.root, "root", ".", "repository root")
	flag.Parse()
	o.concs, o.nets = ints(concs), ints(nets)
	o.root, _ = filepath.Abs(o.root)
	o.resultDir = filepath.Join(o.root, "bench", "results")
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const insideEnv = "PLEXUS_BENCH_INSIDE"

// run re-execs the bench inside a fresh network namespace.
func run(o options) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces)")
	}
	if os.Getenv(insideEnv) == "" {
		name := fmt.Sprintf("plexus-bench-%d", os.Getpid())
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			return fmt.Errorf("ip netns add: %w: %s", err, out)
		}
		defer func() { _ = exec.Command("ip", "netns", "del", name).Run() }()
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + name, self}, os.Args[1:]...)...)
		cmd.Env = append(os.Environ(), insideEnv+"=1")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		return cmd.Run()
	}
	b, err := newBench(o)
	if err != nil {
		return err
	}
	defer b.close()
	// An interrupted bench still stops its daemons and API server.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "bench: interrupted, cleaning up")
		b.close()
		os.Exit(130)
	}()
	report, err := b.runAll()
	if err != nil {
		return err
	}
	fmt.Println(report.markdown())
	if err := os.MkdirAll(o.resultDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(o.resultDir, time.Now().UTC().Format(stampFormat)+".json")
	data, _ := json.MarshalIndent(report, "", "  ")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	fmt.Println("results:", path)
	return nil
}

func envInt(k string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(k), &v); err == nil && v > 0 {
		return v
	}
	return def
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		var v int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &v); err == nil {
			out = append(out, v)
		}
	}
	return out
}

package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/plexus-cni/plexus/pkg/api"
)

// SocketFileName is the name of plexusd's unix socket inside SocketDir.
const SocketFileName = "plexus.sock"

// maxSocketPath is the longest unix socket path Linux accepts: sun_path is
// 108 bytes including the terminating NUL.
const maxSocketPath = 107

// Ranges enforced by Validate.
const (
	MinMaxConcurrency  = 1
	MaxMaxConcurrency  = 1024
	MinQueueSize       = 0
	MaxQueueSize       = 100000
	MinMaxRequestBytes = 1 << 10
	MaxMaxRequestBytes = 64 << 20
	MinMaxAttachments  = 1
	MaxMaxAttachments  = 256
)

// Config is the resolved, typed daemon configuration. Build one with Parse,
// Load, or Default() followed by your own changes and Validate().
type Config struct {
	// ClusterNetwork is the pod's default network: a NAD name in
	// MultusNamespace, a CNI config name in ConfDir, or an absolute file path.
	ClusterNetwork string
	// DefaultNetworks are attached to every pod not in SystemNamespaces.
	DefaultNetworks []string
	// Delegates are inline CNI configs, used only when ClusterNetwork is
	// empty and no cniConfigDir names a primary (Multus's meaning): the
	// first is the pod's default network, the others are attached after
	// it on every pod, instead of DefaultNetworks.
	Delegates []json.RawMessage
	// AuxiliaryCNIChainName, when set, runs one more attachment after all
	// others on every pod: Multus's passthru plugin followed by the plugins
	// in <dir of the cluster network's file>/<name>/*.conf (tuning, say),
	// acting on the interfaces the pod already has. Needs ClusterNetwork to
	// be a file path (or the generated config's primary).
	AuxiliaryCNIChainName string
	// MultusNamespace holds the NADs named by ClusterNetwork and
	// DefaultNetworks, and is the namespace of an unqualified
	// default-network override annotation.
	MultusNamespace string
	// SystemNamespaces do not get DefaultNetworks.
	SystemNamespaces []string
	// NamespaceIsolation restricts pods to NADs in their own namespace or a
	// global namespace.
	NamespaceIsolation bool
	// GlobalNamespaces are exempt from isolation. nil means unset, which
	// the resolver treats as ["default"] (Multus semantics); a non-nil empty
	// slice (from "globalNamespaces": []) means no namespace is global.
	// Use EffectiveGlobalNamespaces rather than reading this directly.
	GlobalNamespaces []string
	// ConfDir holds CNI config files referred to by name.
	ConfDir string
	// BinDirs are searched, in order, for delegate plugin binaries. With
	// ChrootDir set they are host paths, looked up inside ChrootDir.
	BinDirs []string
	// ChrootDir, when set, is the host's root as the daemon sees it
	// (Multus "chrootDir"): delegate plugins run chrooted into it, so they
	// see the host's files, sockets and binaries, and the daemon opens the
	// runtime's netns paths (host paths) below it.
	ChrootDir string
	// MultusCacheDir is where Multus thick kept its delegate plans and
	// libcni cache (its cniDir): a DEL of a sandbox Multus attached before
	// the switch to Plexus is carried out from there. A host path; ""
	// turns it off.
	MultusCacheDir string
	// WriteMultusCache also writes each sandbox's plan in Multus's format
	// to MultusCacheDir, so that a switch back to Multus tears down the
	// sandboxes Plexus attached (default on when run as multus-daemon).
	WriteMultusCache bool
	// Hotplug makes plexusd apply changes of a running pod's networks
	// annotation: attachments added and removed without a restart
	// (docs/hotplug.md). Off by default, as in Multus.
	Hotplug bool
	// StatusWrite is when the network-status annotation is written with
	// the Kubernetes source: StatusAsync (default) right after the ADD
	// answers, retried until it lands; StatusSync before the ADD answers,
	// the ADD failing and rolled back if it cannot (Multus's behaviour).
	StatusWrite string
	// HotplugConcurrency bounds the hot-plug changes applied at once (each
	// holds one of the maxConcurrency worker slots).
	HotplugConcurrency int
	// CNIDir holds attachment records and the libcni result cache.
	CNIDir string
	// SocketDir holds the daemon socket; see SocketPath.
	SocketDir string
	// ReadinessIndicatorFile, when set, must exist before the daemon
	// reports ready.
	ReadinessIndicatorFile string
	// ManifestsDir, when set, makes NADs and pods come from YAML files in
	// this directory instead of the Kubernetes API.
	ManifestsDir string
	// StatusDir is where the daemon writes status files.
	StatusDir string
	// MaxConcurrency bounds delegate operations running at once.
	MaxConcurrency int
	// QueueSize bounds requests waiting for a worker; more are rejected
	// with CNI "try again later".
	QueueSize int
	// QueueTimeout is how long a request may wait in the queue.
	QueueTimeout time.Duration
	// RequestTimeout is the total budget for one CNI request, the undo
	// of a failed ADD included.
	RequestTimeout time.Duration
	// RollbackTimeout is the part of RequestTimeout kept for undoing a
	// failed ADD: the delegates must be done by RequestTimeout minus it.
	RollbackTimeout time.Duration
	// OrphanSweepInterval is how often records of sandboxes that are gone
	// (netns and pod) are torn down; 0 turns the sweep off.
	OrphanSweepInterval time.Duration
	// OrphanGracePeriod is how old a record must be before the sweep may
	// take it.
	OrphanGracePeriod time.Duration
	// CRISocket, when set, is the CRI runtime's socket: the orphan sweep
	// takes what the runtime does not list.
	CRISocket string
	// DelegateTimeout bounds one execution of a delegate plugin binary;
	// past it the plugin's whole process group is killed.
	DelegateTimeout time.Duration
	// MaxRequestBytes bounds the size of one request body.
	MaxRequestBytes int64
	// MaxAttachments bounds the attachments (networks) of one pod.
	MaxAttachments int
	// APIQPS and APIBurst limit the Kubernetes client (pod and NAD reads,
	// the network-status patch).
	APIQPS   int
	APIBurst int
	// EventQPS limits the separate client that records Events.
	EventQPS int
	// PodResourcesSocket is the kubelet PodResources API socket, asked for
	// the devices allocated to a pod whose NAD names a resource.
	PodResourcesSocket string
	// DeviceInfoDir is the device-info spec's root (dp/ and cni/ below it).
	DeviceInfoDir string
	// CNIConfigDir, when set, is the runtime's CNI config directory where
	// plexusd writes 00-plexus.conflist, layered over the primary CNI's
	// config, and keeps it there (Multus "cniConfigDir" with
	// multusConfigFile "auto").
	CNIConfigDir string
	// AutoconfigDir is where the primary CNI config is looked for;
	// default CNIConfigDir (Multus "multusAutoconfigDir").
	AutoconfigDir string
	// PrimaryConfig pins the primary CNI config by file name (Multus
	// "multusMasterCNI"); default: the first .conf/.conflist/.json by name
	// that is not Plexus's own.
	PrimaryConfig string
	// CNIVersion of the generated file; default: the primary's.
	CNIVersion string
	// MetricsPort, when not 0, serves Prometheus metrics at
	// http://MetricsBindAddress:MetricsPort/metrics (Multus's key).
	MetricsPort int
	// MetricsBindAddress is the IP the metrics listener binds to.
	MetricsBindAddress string
	// PprofSocket, when set, serves net/http/pprof on this unix socket
	// (root only, 0600). Off by default.
	PprofSocket string
	// PodWaitTimeout bounds how long an ADD waits for the pod informer to
	// catch up before one live GET.
	PodWaitTimeout time.Duration
	// Log configures the daemon's logger (see package logging).
	Log LogConfig
	// Warnings are the Multus keys the file set that Plexus ignores, each
	// with what Plexus does instead; plexusd logs them at start.
	Warnings []string
}

// LogConfig configures logging. When File is empty logs go to stderr
// whatever ToStderr says.
type LogConfig struct {
	File     string
	Level    slog.Level
	ToStderr bool
	// Format is "text" or "json".
	Format string
	// MaxSizeMB, MaxAgeDays, MaxBackups and Compress are passed to
	// lumberjack as is: MaxSizeMB 0 means lumberjack's default (100 MB),
	// MaxAgeDays 0 and MaxBackups 0 mean "keep all".
	MaxSizeMB  int
	MaxAgeDays int
	MaxBackups int
	Compress   bool
}

// Log formats.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// Default returns the configuration with every default applied. Its
// ClusterNetwork is empty, so it does not validate until that is set.
// The statusWrite values.
const (
	StatusAsync = "async"
	StatusSync  = "sync"
)

func Default() Config {
	return Config{
		DefaultNetworks:     []string{},
		MultusNamespace:     "kube-system",
		SystemNamespaces:    []string{"kube-system"},
		NamespaceIsolation:  false,
		GlobalNamespaces:    nil,
		ConfDir:             "/etc/cni/plexus/net.d",
		BinDirs:             []string{"/opt/cni/bin"},
		CNIDir:              "/var/lib/cni/plexus",
		SocketDir:           "/run/plexus",
		StatusDir:           "/run/plexus/status",
		MaxConcurrency:      8,
		HotplugConcurrency:  1,
		StatusWrite:         StatusAsync,
		MetricsBindAddress:  "127.0.0.1",
		QueueSize:           256,
		QueueTimeout:        30 * time.Second,
		RequestTimeout:      110 * time.Second,
		RollbackTimeout:     30 * time.Second,
		DelegateTimeout:     30 * time.Second,
		OrphanSweepInterval: 5 * time.Minute,
		OrphanGracePeriod:   time.Minute,
		MaxRequestBytes:     1 << 20,
		MaxAttachments:      32,
		APIQPS:              50,
		APIBurst:            100,
		EventQPS:            5,
		PodWaitTimeout:      3 * time.Second,
		PodResourcesSocket:  "/var/lib/kubelet/pod-resources/kubelet.sock",
		DeviceInfoDir:       "/var/run/k8s.cni.cncf.io/devinfo",
		MultusCacheDir:      "/var/lib/cni/multus",
		Log: LogConfig{
			Level:      slog.LevelInfo,
			ToStderr:   true,
			Format:     FormatText,
			MaxSizeMB:  100,
			MaxAgeDays: 5,
			MaxBackups: 5,
			Compress:   true,
		},
	}
}

// SocketPath is the daemon's unix socket: <SocketDir>/plexus.sock.
func (c Config) SocketPath() string { return filepath.Join(c.SocketDir, SocketFileName) }

// EffectiveGlobalNamespaces returns the namespaces exempt from namespace
// isolation: GlobalNamespaces, or ["default"] when it is unset (nil).
func (c Config) EffectiveGlobalNamespaces() []string {
	if c.GlobalNamespaces == nil {
		return []string{"default"}
	}
	return c.GlobalNamespaces
}

// Validate reports every problem with c, joined; each is a *KeyError naming
// the config key.
// chainNameRE is the CNI spec's network name, which names a directory here.
var chainNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func (c Config) Validate() error { return errors.Join(c.problems()...) }

func (c Config) problems() []error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	if c.ClusterNetwork == "" && c.CNIConfigDir == "" && len(c.Delegates) == 0 {
		add(keyErrorf("clusterNetwork", "required unless cniConfigDir or delegates is set: a NAD name in multusNamespace, a CNI config name in confDir, or an absolute file path"))
	}
	for i, d := range c.Delegates {
		if firstByte(d) != '{' {
			add(keyErrorf(fmt.Sprintf("delegates[%d]", i), "must be a CNI config object"))
		}
	}
	if c.CNIVersion != "" && !api.SupportsCNIVersion(c.CNIVersion) {
		add(keyErrorf("cniVersion", "must be one of 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0, got %q", c.CNIVersion))
	}
	if strings.ContainsAny(c.PrimaryConfig, "/\\") {
		add(keyErrorf("multusMasterCNI", "a file name in multusAutoconfigDir, not a path: %q", c.PrimaryConfig))
	}
	if c.AutoconfigDir != "" && c.CNIConfigDir == "" {
		add(keyErrorf("multusAutoconfigDir", "needs cniConfigDir"))
	}
	if c.AuxiliaryCNIChainName != "" {
		if !chainNameRE.MatchString(c.AuxiliaryCNIChainName) {
			add(keyErrorf("auxiliaryCNIChainName", "must be a CNI network name (a letter or digit, then letters, digits, '_', '.' or '-'), got %q", c.AuxiliaryCNIChainName))
		}
		if c.ClusterNetwork != "" && !strings.HasPrefix(c.ClusterNetwork, "/") {
			add(keyErrorf("auxiliaryCNIChainName", "needs clusterNetwork to be an absolute file path (the chain's plugins are read from <its directory>/%s/), got %q", c.AuxiliaryCNIChainName, c.ClusterNetwork))
		}
	}
	for i, n := range c.DefaultNetworks {
		if n == "" {
			add(keyErrorf(fmt.Sprintf("defaultNetworks[%d]", i), "must not be empty"))
		}
	}
	add(checkLabel("multusNamespace", c.MultusNamespace))
	for i, ns := range c.SystemNamespaces {
		add(checkLabel(fmt.Sprintf("systemNamespaces[%d]", i), ns))
	}
	for i, ns := range c.GlobalNamespaces {
		add(checkLabel(fmt.Sprintf("globalNamespaces[%d]", i), ns))
	}

	add(checkOptionalAbs("chrootDir", c.ChrootDir))
	add(checkOptionalAbs("multusCacheDir", c.MultusCacheDir))
	add(checkAbsDir("confDir", c.ConfDir))
	if len(c.BinDirs) == 0 {
		add(keyErrorf("binDir", "must name at least one directory"))
	}
	for i, d := range c.BinDirs {
		key := "binDir"
		if len(c.BinDirs) > 1 {
			key = fmt.Sprintf("binDir[%d]", i)
		}
		add(checkAbsDir(key, d))
	}
	add(checkAbsDir("cniDir", c.CNIDir))
	if err := checkAbsDir("socketDir", c.SocketDir); err != nil {
		add(err)
	} else if p := c.SocketPath(); len(p) > maxSocketPath {
		add(keyErrorf("socketDir", "socket path %q is %d bytes, longer than the %d a unix socket allows", p, len(p), maxSocketPath))
	}
	add(checkAbsDir("statusDir", c.StatusDir))
	add(checkOptionalAbs("readinessindicatorfile", c.ReadinessIndicatorFile))
	add(checkOptionalAbs("manifestsDir", c.ManifestsDir))
	if c.StatusWrite != StatusAsync && c.StatusWrite != StatusSync {
		add(keyErrorf("statusWrite", "must be %q or %q, got %q", StatusAsync, StatusSync, c.StatusWrite))
	}
	if c.Hotplug && c.ManifestsDir != "" {
		add(keyErrorf("hotplug", "needs the Kubernetes API as the source of pods; manifestsDir (%s) is set", c.ManifestsDir))
	}

	add(checkRange("maxConcurrency", int64(c.MaxConcurrency), MinMaxConcurrency, MaxMaxConcurrency))
	add(checkRange("metricsPort", int64(c.MetricsPort), 0, 65535))
	if net.ParseIP(c.MetricsBindAddress) == nil {
		add(keyErrorf("metricsBindAddress", "want an IP address (127.0.0.1, ::1, a node IP, 0.0.0.0), got %q", c.MetricsBindAddress))
	}
	add(checkRange("hotplugConcurrency", int64(c.HotplugConcurrency), 1, int64(max(1, c.MaxConcurrency))))
	add(checkRange("queueSize", int64(c.QueueSize), MinQueueSize, MaxQueueSize))
	add(checkRange("maxRequestBytes", c.MaxRequestBytes, MinMaxRequestBytes, MaxMaxRequestBytes))
	add(checkRange("maxAttachments", int64(c.MaxAttachments), MinMaxAttachments, MaxMaxAttachments))
	add(checkRange("apiQPS", int64(c.APIQPS), 1, 10000))
	add(checkRange("apiBurst", int64(c.APIBurst), 1, 10000))
	add(checkRange("eventQPS", int64(c.EventQPS), 1, 1000))
	if c.PodWaitTimeout <= 0 {
		add(keyErrorf("podWaitTimeout", "must be > 0, got %s", c.PodWaitTimeout))
	}
	qOK, rOK := c.QueueTimeout > 0, c.RequestTimeout > 0
	if !qOK {
		add(keyErrorf("queueTimeout", "must be > 0, got %s", c.QueueTimeout))
	}
	if !rOK {
		add(keyErrorf("requestTimeout", "must be > 0, got %s", c.RequestTimeout))
	}
	if c.OrphanSweepInterval < 0 {
		add(keyErrorf("orphanSweepInterval", "must be >= 0 (0 turns the sweep off), got %s", c.OrphanSweepInterval))
	}
	if c.OrphanGracePeriod < 0 {
		add(keyErrorf("orphanGracePeriod", "must be >= 0, got %s", c.OrphanGracePeriod))
	}
	if c.DelegateTimeout <= 0 {
		add(keyErrorf("delegateTimeout", "must be > 0, got %s", c.DelegateTimeout))
	}
	if c.RollbackTimeout <= 0 || rOK && c.RollbackTimeout >= c.RequestTimeout {
		add(keyErrorf("rollbackTimeout", "must be > 0 and shorter than requestTimeout (%s), got %s", c.RequestTimeout, c.RollbackTimeout))
	}
	if qOK && rOK && c.QueueTimeout >= c.RequestTimeout {
		// The queue wait is part of the request budget; a queue timeout at
		// or above it could never fire before the request itself times out.
		add(keyErrorf("queueTimeout", "must be shorter than requestTimeout (%s), got %s", c.RequestTimeout, c.QueueTimeout))
	}

	errs = append(errs, c.Log.problems()...)
	return errs
}

func (l LogConfig) problems() []error {
	var errs []error
	if err := checkOptionalAbs("logFile", l.File); err != nil {
		errs = append(errs, err)
	}
	if l.Format != FormatText && l.Format != FormatJSON {
		errs = append(errs, keyErrorf("logFormat", "must be %q or %q, got %q", FormatText, FormatJSON, l.Format))
	}
	for _, f := range []struct {
		key string
		v   int
	}{
		{"logOptions.maxSize", l.MaxSizeMB},
		{"logOptions.maxAge", l.MaxAgeDays},
		{"logOptions.maxBackups", l.MaxBackups},
	} {
		if f.v < 0 {
			errs = append(errs, keyErrorf(f.key, "must be >= 0, got %d", f.v))
		}
	}
	return errs
}

func checkRange(key string, v, lo, hi int64) error {
	if v < lo || v > hi {
		return keyErrorf(key, "must be between %d and %d, got %d", lo, hi, v)
	}
	return nil
}

func checkAbsDir(key, p string) error {
	if p == "" {
		return keyErrorf(key, "must be an absolute path, got an empty string")
	}
	if !filepath.IsAbs(p) {
		return keyErrorf(key, "must be an absolute path, got %q", p)
	}
	return nil
}

func checkOptionalAbs(key, p string) error {
	if p == "" {
		return nil
	}
	return checkAbsDir(key, p)
}

// checkLabel checks an RFC 1123 DNS label, which is what a Kubernetes
// namespace name must be.
func checkLabel(key, s string) error {
	if msg := dns1123LabelProblem(s); msg != "" {
		return keyErrorf(key, "%q is not a valid namespace name (DNS-1123 label): %s", s, msg)
	}
	return nil
}

func dns1123LabelProblem(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > 63 {
		return "must be at most 63 characters"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		switch {
		case alnum:
		case c == '-' && i != 0 && i != len(s)-1:
		default:
			return "must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
		}
	}
	return ""
}

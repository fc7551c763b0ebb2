package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Parse decodes a daemon config, applies Default() to every key that is
// unset, and validates the result. On failure it returns the zero Config and
// an errors.Join of every problem found (unknown keys, unsupported Multus
// keys, wrong JSON types, bad values), each a *KeyError naming its key.
func Parse(data []byte) (Config, error) { return ParseOver(data, Default()) }

// ParseOver is Parse with base's values as the defaults.
func ParseOver(data []byte, base Config) (Config, error) {
	w, warnings, errs, err := decodeWire(data)
	if err != nil {
		return Config{}, err
	}
	c, rerrs := w.resolve(base)
	c.Warnings = warnings
	if len(c.Delegates) > 0 && (c.ClusterNetwork != "" || c.CNIConfigDir != "") {
		c.Warnings = append(c.Warnings, `Multus key "delegates" is not used: clusterNetwork (or the primary found in cniConfigDir) is the default network, as in Multus`)
	}
	errs = append(errs, rerrs...)
	// A key whose value could not be decoded keeps its default; do not
	// also report that default (e.g. "clusterNetwork": 1 is a type error,
	// not additionally "required").
	reported := map[string]bool{}
	for _, err := range errs {
		var ke *KeyError
		if errors.As(err, &ke) {
			reported[ke.Key] = true
		}
	}
	for _, err := range c.problems() {
		var ke *KeyError
		if errors.As(err, &ke) && reported[baseKey(ke.Key)] {
			continue
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Load reads and parses the daemon config file at path.
func Load(path string) (Config, error) { return LoadOver(path, Default()) }

// LoadOver is Load with base's values as the defaults.
func LoadOver(path string, base Config) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := ParseOver(data, base)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// resolve applies w on top of base. It returns the problems found while
// converting values (durations, log level); range and path checks are left
// to Validate. A value that fails to convert leaves the default in place so
// that Validate does not report it a second time.
func (w *wire) resolve(base Config) (Config, []error) {
	c := base
	var errs []error

	if w.ClusterNetwork != nil {
		c.ClusterNetwork = strings.TrimSpace(*w.ClusterNetwork)
	}
	if w.DefaultNetworks != nil {
		c.DefaultNetworks = trimAll(*w.DefaultNetworks)
	}
	if w.Delegates != nil {
		c.Delegates = *w.Delegates
	}
	if w.AuxiliaryCNIChainName != nil {
		c.AuxiliaryCNIChainName = strings.TrimSpace(*w.AuxiliaryCNIChainName)
	}
	setString(&c.MultusNamespace, w.MultusNamespace)
	if w.SystemNamespaces != nil {
		c.SystemNamespaces = *w.SystemNamespaces
	}
	setBool(&c.NamespaceIsolation, w.NamespaceIsolation)
	if g := w.GlobalNamespaces; g != nil {
		if g.fromString {
			// Multus form: "a, b,,c". An empty string means unset, as in
			// Multus, so it keeps the "default" behaviour.
			c.GlobalNamespaces = nonEmpty(strings.Split(g.str, ","))
		} else {
			// A list is taken literally: [] means no namespace is global.
			c.GlobalNamespaces = nonEmpty(g.list)
			if c.GlobalNamespaces == nil {
				c.GlobalNamespaces = []string{}
			}
		}
	}
	setPath(&c.ConfDir, w.ConfDir)
	if b := w.BinDir; b != nil {
		if b.fromString {
			c.BinDirs = []string{cleanPath(b.str)}
		} else {
			c.BinDirs = make([]string, len(b.list))
			for i, d := range b.list {
				c.BinDirs[i] = cleanPath(d)
			}
		}
	}
	setPath(&c.CNIDir, w.CNIDir)
	setPath(&c.SocketDir, w.SocketDir)
	setPath(&c.ReadinessIndicatorFile, w.ReadinessIndicatorFile)
	setPath(&c.ManifestsDir, w.ManifestsDir)
	setPath(&c.StatusDir, w.StatusDir)
	setPath(&c.PodResourcesSocket, w.PodResourcesSocket)
	setPath(&c.DeviceInfoDir, w.DeviceInfoDir)
	setPath(&c.PprofSocket, w.PprofSocket)
	setInt(&c.MetricsPort, w.MetricsPort)
	setString(&c.MetricsBindAddress, w.MetricsBindAddress)
	setPath(&c.CRISocket, w.CRISocket)
	setPath(&c.CNIConfigDir, w.CNIConfigDir)
	setPath(&c.AutoconfigDir, w.AutoconfigDir)
	setPath(&c.ChrootDir, w.ChrootDir)
	setPath(&c.MultusCacheDir, w.MultusCacheDir)
	setBool(&c.WriteMultusCache, w.WriteMultusCache)
	setBool(&c.Hotplug, w.Hotplug)
	setInt(&c.HotplugConcurrency, w.HotplugConcurrency)
	if w.StatusWrite != nil {
		c.StatusWrite = strings.ToLower(strings.TrimSpace(*w.StatusWrite))
	}
	if w.PrimaryConfig != nil {
		c.PrimaryConfig = *w.PrimaryConfig
	}
	if w.CNIVersion != nil {
		c.CNIVersion = *w.CNIVersion
	}
	if w.MultusConfigFile != nil && *w.MultusConfigFile != "auto" {
		errs = append(errs, &KeyError{Key: "multusConfigFile", Err: fmt.Errorf("%w: only \"auto\" (generate 00-plexus.conflist in cniConfigDir) is supported, got %q", ErrUnsupportedKey, *w.MultusConfigFile)})
	}

	setInt(&c.MaxConcurrency, w.MaxConcurrency)
	setInt(&c.QueueSize, w.QueueSize)
	setInt(&c.MaxAttachments, w.MaxAttachments)
	setInt(&c.APIQPS, w.APIQPS)
	setInt(&c.APIBurst, w.APIBurst)
	setInt(&c.EventQPS, w.EventQPS)
	errs = appendErr(errs, setDuration(&c.PodWaitTimeout, "podWaitTimeout", w.PodWaitTimeout))
	if w.MaxRequestBytes != nil {
		c.MaxRequestBytes = *w.MaxRequestBytes
	}
	errs = appendErr(errs, setDuration(&c.QueueTimeout, "queueTimeout", w.QueueTimeout))
	errs = appendErr(errs, setDuration(&c.RequestTimeout, "requestTimeout", w.RequestTimeout))
	errs = appendErr(errs, setDuration(&c.RollbackTimeout, "rollbackTimeout", w.RollbackTimeout))
	errs = appendErr(errs, setDuration(&c.DelegateTimeout, "delegateTimeout", w.DelegateTimeout))
	errs = appendErr(errs, setDurationOrZero(&c.OrphanSweepInterval, "orphanSweepInterval", w.OrphanSweepInterval))
	errs = appendErr(errs, setDurationOrZero(&c.OrphanGracePeriod, "orphanGracePeriod", w.OrphanGracePeriod))

	setPath(&c.Log.File, w.LogFile)
	if w.LogLevel != nil {
		lvl, err := ParseLevel(*w.LogLevel)
		if err != nil {
			errs = append(errs, &KeyError{Key: "logLevel", Err: err})
		} else {
			c.Log.Level = lvl
		}
	}
	setBool(&c.Log.ToStderr, w.LogToStderr)
	if w.LogFormat != nil {
		c.Log.Format = strings.ToLower(strings.TrimSpace(*w.LogFormat))
	}
	if o := w.LogOptions; o != nil {
		setInt(&c.Log.MaxSizeMB, o.MaxSize)
		setInt(&c.Log.MaxAgeDays, o.MaxAge)
		setInt(&c.Log.MaxBackups, o.MaxBackups)
		setBool(&c.Log.Compress, o.Compress)
	}
	return c, errs
}

// ParseLevel maps a config log level to a slog.Level. It accepts debug,
// info, warn, warning and error, plus the Multus levels verbose (= info) and
// panic (= error), case-insensitively.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "verbose":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "panic":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown level %q (want debug, info, warn, warning or error; Multus verbose and panic are accepted too)", s)
}

func setDuration(dst *time.Duration, key string, v *durationString) error {
	return setDurationMin(dst, key, v, false)
}

// setDurationOrZero accepts "0s" (off) too.
func setDurationOrZero(dst *time.Duration, key string, v *durationString) error {
	return setDurationMin(dst, key, v, true)
}

func setDurationMin(dst *time.Duration, key string, v *durationString, zeroOK bool) error {
	if v == nil {
		return nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(string(*v)))
	if err != nil {
		return keyErrorf(key, "want a Go duration string such as \"30s\": %v", err)
	}
	if d < 0 || d == 0 && !zeroOK {
		return keyErrorf(key, "must be > 0, got %q", string(*v))
	}
	*dst = d
	return nil
}

func setString(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

func setPath(dst *string, v *string) {
	if v != nil {
		*dst = cleanPath(*v)
	}
}

func setBool(dst *bool, v *bool) {
	if v != nil {
		*dst = *v
	}
}

func setInt(dst *int, v *int) {
	if v != nil {
		*dst = *v
	}
}

// cleanPath trims and cleans p, leaving "" as "" (not ".") so that the
// "required" and "optional" checks in Validate still see it.
func cleanPath(p string) string {
	p = strings.TrimSpace(p)
	if p == "" {
		return ""
	}
	return filepath.Clean(p)
}

func trimAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

// nonEmpty trims each item and drops the empty ones; nil if none is left.
func nonEmpty(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// baseKey strips a list index: "binDir[1]" → "binDir".
func baseKey(k string) string {
	if i := strings.IndexByte(k, '['); i >= 0 {
		return k[:i]
	}
	return k
}

func appendErr(errs []error, err error) []error {
	if err != nil {
		return append(errs, err)
	}
	return errs
}

package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/plexus-cni/plexus/pkg/rawjson"
)

// wire is the JSON form of the daemon config. Every field is a pointer (or a
// type with its own "set" state) so that "unset" is distinguishable from a
// zero value. It is never used outside this package: resolve turns it into a
// Config.
//
// The json tags document the key names; decoding goes through fields(),
// which a test keeps in step with the tags.
type wire struct {
	ClusterNetwork         *string            `json:"clusterNetwork"`
	DefaultNetworks        *[]string          `json:"defaultNetworks"`
	AuxiliaryCNIChainName  *string            `json:"auxiliaryCNIChainName"`
	Delegates              *[]json.RawMessage `json:"delegates"`
	MultusNamespace        *string            `json:"multusNamespace"`
	SystemNamespaces       *[]string          `json:"systemNamespaces"`
	NamespaceIsolation     *bool              `json:"namespaceIsolation"`
	GlobalNamespaces       *stringOrList      `json:"globalNamespaces"`
	ConfDir                *string            `json:"confDir"`
	BinDir                 *stringOrList      `json:"binDir"`
	CNIDir                 *string            `json:"cniDir"`
	SocketDir              *string            `json:"socketDir"`
	ReadinessIndicatorFile *string            `json:"readinessindicatorfile"`
	LogFile                *string            `json:"logFile"`
	LogLevel               *string            `json:"logLevel"`
	LogToStderr            *bool              `json:"logToStderr"`
	LogFormat              *string            `json:"logFormat"`
	LogOptions             *wireLogOptions    `json:"logOptions"`
	ManifestsDir           *string            `json:"manifestsDir"`
	StatusDir              *string            `json:"statusDir"`
	MaxConcurrency         *int               `json:"maxConcurrency"`
	QueueSize              *int               `json:"queueSize"`
	QueueTimeout           *durationString    `json:"queueTimeout"`
	RequestTimeout         *durationString    `json:"requestTimeout"`
	RollbackTimeout        *durationString    `json:"rollbackTimeout"`
	DelegateTimeout        *durationString    `json:"delegateTimeout"`
	OrphanSweepInterval    *durationString    `json:"orphanSweepInterval"`
	OrphanGracePeriod      *durationString    `json:"orphanGracePeriod"`
	CRISocket              *string            `json:"criSocket"`
	MaxRequestBytes        *int64             `json:"maxRequestBytes"`
	MaxAttachments         *int               `json:"maxAttachments"`
	APIQPS                 *int               `json:"apiQPS"`
	APIBurst               *int               `json:"apiBurst"`
	EventQPS               *int               `json:"eventQPS"`
	PodWaitTimeout         *durationString    `json:"podWaitTimeout"`
	PprofSocket            *string            `json:"pprofSocket"`
	MetricsPort            *int               `json:"metricsPort"`
	MetricsBindAddress     *string            `json:"metricsBindAddress"`
	CNIConfigDir           *string            `json:"cniConfigDir"`
	AutoconfigDir          *string            `json:"multusAutoconfigDir"`
	PrimaryConfig          *string            `json:"multusMasterCNI"`
	CNIVersion             *string            `json:"cniVersion"`
	MultusConfigFile       *string            `json:"multusConfigFile"`
	PodResourcesSocket     *string            `json:"podResourcesSocket"`
	DeviceInfoDir          *string            `json:"deviceInfoDir"`
	ChrootDir              *string            `json:"chrootDir"`
	MultusCacheDir         *string            `json:"multusCacheDir"`
	WriteMultusCache       *bool              `json:"writeMultusCache"`
	Hotplug                *bool              `json:"hotplug"`
	HotplugConcurrency     *int               `json:"hotplugConcurrency"`
	StatusWrite            *string            `json:"statusWrite"`
}

// wireLogOptions is the Multus logOptions object.
type wireLogOptions struct {
	MaxSize    *int  `json:"maxSize"`
	MaxAge     *int  `json:"maxAge"`
	MaxBackups *int  `json:"maxBackups"`
	Compress   *bool `json:"compress"`
}

// durationString is a Go duration string ("30s"), parsed by resolve.
type durationString string

// stringOrList accepts either a JSON string or a JSON list of strings.
// Multus writes globalNamespaces as "a,b"; a list is the Plexus extension.
type stringOrList struct {
	fromString bool
	str        string
	list       []string
}

// fields maps each top-level key to the field it decodes into.
func (w *wire) fields() map[string]any {
	return map[string]any{
		"clusterNetwork":         &w.ClusterNetwork,
		"defaultNetworks":        &w.DefaultNetworks,
		"auxiliaryCNIChainName":  &w.AuxiliaryCNIChainName,
		"delegates":              &w.Delegates,
		"multusNamespace":        &w.MultusNamespace,
		"systemNamespaces":       &w.SystemNamespaces,
		"namespaceIsolation":     &w.NamespaceIsolation,
		"globalNamespaces":       &w.GlobalNamespaces,
		"confDir":                &w.ConfDir,
		"binDir":                 &w.BinDir,
		"cniDir":                 &w.CNIDir,
		"socketDir":              &w.SocketDir,
		"readinessindicatorfile": &w.ReadinessIndicatorFile,
		"logFile":                &w.LogFile,
		"logLevel":               &w.LogLevel,
		"logToStderr":            &w.LogToStderr,
		"logFormat":              &w.LogFormat,
		"logOptions":             &w.LogOptions,
		"manifestsDir":           &w.ManifestsDir,
		"statusDir":              &w.StatusDir,
		"maxConcurrency":         &w.MaxConcurrency,
		"queueSize":              &w.QueueSize,
		"queueTimeout":           &w.QueueTimeout,
		"requestTimeout":         &w.RequestTimeout,
		"rollbackTimeout":        &w.RollbackTimeout,
		"delegateTimeout":        &w.DelegateTimeout,
		"orphanSweepInterval":    &w.OrphanSweepInterval,
		"orphanGracePeriod":      &w.OrphanGracePeriod,
		"criSocket":              &w.CRISocket,
		"maxRequestBytes":        &w.MaxRequestBytes,
		"maxAttachments":         &w.MaxAttachments,
		"apiQPS":                 &w.APIQPS,
		"apiBurst":               &w.APIBurst,
		"eventQPS":               &w.EventQPS,
		"podWaitTimeout":         &w.PodWaitTimeout,
		"pprofSocket":            &w.PprofSocket,
		"metricsPort":            &w.MetricsPort,
		"metricsBindAddress":     &w.MetricsBindAddress,
		"cniConfigDir":           &w.CNIConfigDir,
		"multusAutoconfigDir":    &w.AutoconfigDir,
		"multusMasterCNI":        &w.PrimaryConfig,
		"cniVersion":             &w.CNIVersion,
		"multusConfigFile":       &w.MultusConfigFile,
		"podResourcesSocket":     &w.PodResourcesSocket,
		"deviceInfoDir":          &w.DeviceInfoDir,
		"chrootDir":              &w.ChrootDir,
		"multusCacheDir":         &w.MultusCacheDir,
		"writeMultusCache":       &w.WriteMultusCache,
		"hotplug":                &w.Hotplug,
		"hotplugConcurrency":     &w.HotplugConcurrency,
		"statusWrite":            &w.StatusWrite,
	}
}

func (o *wireLogOptions) fields() map[string]any {
	return map[string]any{
		"maxSize":    &o.MaxSize,
		"maxAge":     &o.MaxAge,
		"maxBackups": &o.MaxBackups,
		"compress":   &o.Compress,
	}
}

// Keys lists every key Parse accepts, nested ones dotted
// ("logOptions.maxSize"), sorted (the Helm chart's values are checked
// against it).
func Keys() []string { return acceptedKeys() }

// acceptedKeys lists every key Parse accepts, nested ones dotted
// ("logOptions.maxSize"), sorted.
func acceptedKeys() []string {
	var keys []string
	for k := range (&wire{}).fields() {
		keys = append(keys, k)
	}
	for k := range (&wireLogOptions{}).fields() {
		keys = append(keys, "logOptions."+k)
	}
	sort.Strings(keys)
	return keys
}

// decodeWire decodes data into a wire. It returns a single error if data is
// not a JSON object at all; otherwise it decodes every key on its own, so
// that one bad key does not hide the others, and returns one error per
// problem.
func decodeWire(data []byte) (*wire, []string, []error, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, nil, nil, fmt.Errorf("the config must be a JSON object: %w", err)
	}
	if raw == nil { // the document was "null"
		return nil, nil, nil, fmt.Errorf("the config must be a JSON object, got null")
	}
	var errs []error
	dups, _ := rawjson.DuplicateKeys(data) // data decoded above: valid
	for _, k := range dups {
		errs = append(errs, keyErrorf(k, "given more than once"))
	}
	var warnings []string
	for k := range raw {
		if what, ok := ignored[k]; ok {
			warnings = append(warnings, fmt.Sprintf("Multus key %q is ignored: %s", k, what))
			delete(raw, k)
		}
	}
	sort.Strings(warnings)
	w := &wire{}
	errs = append(errs, decodeObject("", raw, w.fields())...)
	return w, warnings, errs, nil
}

// decodeObject decodes each entry of raw into the matching field, in sorted
// key order so that errors come out in a stable order. prefix is prepended
// to key names in errors ("logOptions.").
func decodeObject(prefix string, raw map[string]json.RawMessage, fields map[string]any) []error {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	var errs []error
	for _, k := range keys {
		key := prefix + k
		target, ok := fields[k]
		if !ok {
			errs = append(errs, unknownKeyError(prefix, k, fields))
			continue
		}
		if err := decodeValue(key, raw[k], target); err != nil {
			errs = append(errs, err...)
		}
	}
	return errs
}

func unknownKeyError(prefix, k string, fields map[string]any) error {
	for known := range fields {
		if strings.EqualFold(known, k) {
			return &KeyError{Key: prefix + k, Err: fmt.Errorf("%w (did you mean %q? keys are case-sensitive)", ErrUnknownKey, prefix+known)}
		}
	}
	return &KeyError{Key: prefix + k, Err: ErrUnknownKey}
}

// decodeValue decodes one value into target, a pointer to one of the wire
// field types. JSON null leaves the field unset.
func decodeValue(key string, raw json.RawMessage, target any) []error {
	if isNull(raw) {
		return nil
	}
	one := func(err error) []error {
		if err != nil {
			return []error{err}
		}
		return nil
	}
	switch p := target.(type) {
	case **string:
		return one(decodeAs(key, raw, p, "a string"))
	case **bool:
		return one(decodeAs(key, raw, p, "a boolean (true or false)"))
	case **int:
		return one(decodeAs(key, raw, p, "an integer"))
	case **int64:
		return one(decodeAs(key, raw, p, "an integer"))
	case **[]string:
		return one(decodeAs(key, raw, p, "a list of strings"))
	case **[]json.RawMessage:
		return one(decodeAs(key, raw, p, "a list of CNI config objects"))
	case **durationString:
		return one(decodeAs(key, raw, p, `a Go duration string such as "30s"`))
	case **stringOrList:
		v := &stringOrList{}
		switch firstByte(raw) {
		case '"':
			v.fromString = true
			if err := json.Unmarshal(raw, &v.str); err != nil {
				return one(typeError(key, raw, "a string"))
			}
		case '[':
			if err := json.Unmarshal(raw, &v.list); err != nil {
				return one(typeError(key, raw, "a list of strings"))
			}
			if v.list == nil {
				v.list = []string{}
			}
		default:
			return one(typeError(key, raw, "a comma-separated string or a list of strings"))
		}
		*p = v
		return nil
	case **wireLogOptions:
		var m map[string]json.RawMessage
		if firstByte(raw) != '{' || json.Unmarshal(raw, &m) != nil {
			return one(typeError(key, raw, "an object"))
		}
		o := &wireLogOptions{}
		*p = o
		return decodeObject(key+".", m, o.fields())
	default:
		panic(fmt.Sprintf("config: no decoder for key %q (%T)", key, target))
	}
}

func decodeAs[T any](key string, raw json.RawMessage, dst **T, want string) error {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return typeError(key, raw, want)
	}
	*dst = &v
	return nil
}

func typeError(key string, raw json.RawMessage, want string) error {
	got := "number"
	switch firstByte(raw) {
	case '"':
		got = "string"
	case '{':
		got = "object"
	case '[':
		got = "list"
	case 't', 'f':
		got = "boolean"
	}
	if s := string(bytes.TrimSpace(raw)); len(s) <= 40 {
		got += " " + s
	}
	return keyErrorf(key, "want %s, got %s", want, got)
}

func firstByte(raw json.RawMessage) byte {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return 0
	}
	return t[0]
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// Package config loads the plexusd daemon configuration (plexusd --config FILE).
//
// Responsibility: turn the JSON file into a validated, typed Config, and
// nothing else. The file's wire form (wire.go, pointers meaning "unset") is
// kept separate from the resolved model (config.go). Parse decodes, applies
// Default() and then runs Validate(), and reports every problem at once with
// errors.Join, each problem naming the key it is about (see STYLE.md habit 8).
//
// Keys that mean what a Multus daemon-config key means keep the Multus name,
// so a Multus user can carry a config over; the Multus keys Plexus does not
// act on are accepted with a warning that says what it does instead
// (unsupported.go), and a value whose Multus meaning Plexus cannot honour
// (multusConfigFile other than "auto") is rejected with the reason.
// docs/config.md documents every key, and a test keeps the two in step.
//
// This package imports only the standard library. It must not import
// client-go, libcni or any other Plexus package: it is a leaf that the
// daemon and the logging package depend on.
package config

package config

import (
	"errors"
	"fmt"
)

var (
	// ErrUnknownKey marks a key that neither Plexus nor Multus defines.
	ErrUnknownKey = errors.New("unknown key")
	// ErrUnsupportedKey marks a Multus key whose value Plexus deliberately
	// rejects.
	ErrUnsupportedKey = errors.New("unsupported Multus key")
)

// KeyError is one problem with one configuration key. Parse returns an
// errors.Join of KeyErrors (plus, for a file that is not a JSON object, a
// plain syntax error). Nested keys use a dotted name, e.g. "logOptions.maxSize".
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return fmt.Sprintf("key %q: %v", e.Key, e.Err) }

// Unwrap returns the underlying problem, so errors.Is(err, ErrUnknownKey) works.
func (e *KeyError) Unwrap() error { return e.Err }

func keyErrorf(key, format string, args ...any) error {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/plexus-cni/plexus/pkg/config"
)

// New returns a logger configured by c, and a Closer that closes the log
// file (a no-op when logging only to stderr). With c.File set, output goes
// to a lumberjack.Logger rotating that file, and to stderr as well when
// c.ToStderr is true; with c.File empty, output goes to stderr.
//
// New checks that the log file can be opened for appending, so that a bad
// path fails at startup rather than on the first log line.
func New(c config.LogConfig) (*slog.Logger, io.Closer, error) {
	return newLogger(c, os.Stderr)
}

func newLogger(c config.LogConfig, stderr io.Writer) (*slog.Logger, io.Closer, error) {
	var (
		out              = stderr
		closer io.Closer = nopCloser{}
	)
	if c.File != "" {
		if err := checkWritable(c.File); err != nil {
			return nil, nil, err
		}
		lj := &lumberjack.Logger{
			Filename:   c.File,
			MaxSize:    c.MaxSizeMB,
			MaxAge:     c.MaxAgeDays,
			MaxBackups: c.MaxBackups,
			Compress:   c.Compress,
		}
		out, closer = lj, lj
		if c.ToStderr {
			out = fanout{lj, stderr}
		}
	}

	opts := &slog.HandlerOptions{Level: c.Level}
	var h slog.Handler
	switch c.Format {
	case config.FormatJSON:
		h = slog.NewJSONHandler(out, opts)
	case config.FormatText, "":
		h = slog.NewTextHandler(out, opts)
	default:
		_ = closer.Close()
		return nil, nil, fmt.Errorf("logging: unknown format %q (want %q or %q)", c.Format, config.FormatText, config.FormatJSON)
	}
	return slog.New(h), closer, nil
}

// checkWritable creates the log file's directory and opens the file for
// appending, as lumberjack will on the first write.
func checkWritable(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("logging: log file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("logging: log file %s: %w", path, err)
	}
	return f.Close()
}

// fanout writes every p to all its writers, even when one fails, and
// returns the first error. Unlike io.MultiWriter it does not stop at the
// first failing writer, so a full disk does not also silence stderr.
type fanout []io.Writer

func (f fanout) Write(p []byte) (int, error) {
	var errs []error
	for _, w := range f {
		n, err := w.Write(p)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	return len(p), nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

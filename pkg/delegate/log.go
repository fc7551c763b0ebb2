package delegate

import (
	"context"
	"io"
	"log/slog"
)

type logKey struct{}

// WithLogger returns ctx carrying the request's logger, for the few things
// the delegate chain logs without failing (ignored DEL failures).
func WithLogger(ctx context.Context, log *slog.Logger) context.Context {
	return context.WithValue(ctx, logKey{}, log)
}

// Logger returns the logger ctx carries, or one that discards.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(logKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return discard
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// Package logging builds the *slog.Logger that plexusd injects into every
// component (STYLE.md habit 9): a text or JSON handler at the configured
// level, writing to a lumberjack-rotated file, stderr, or both. It also
// mints request IDs and attaches them as the "req" attribute, so that the
// lines logged for one CNI request can be found together.
//
// Responsibility: turning a config.LogConfig into a logger, nothing else.
// There is no package-level logger here; callers pass the logger down.
// It imports only pkg/config, lumberjack and the standard library; it must
// not import client-go or klog. client-go's klog output reaches the same
// handler through klog.SetSlogLogger, which pkg/k8sclient calls with the
// logger it is given (lines tagged component=client-go).
package logging

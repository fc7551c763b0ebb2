package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/api"
)

// Handler does the work of one CNI request. It returns the encoded result
// (already in the request's cniVersion) or an error; an error that is a
// *types.Error or has a CNICode() method keeps its code on the wire.
type Handler interface {
	Handle(ctx context.Context, log *slog.Logger, req *api.Request) ([]byte, error)
	// Ready returns nil when the daemon can serve ADD.
	Ready() error
}

// Options are the server's limits.
type Options struct {
	Workers int
	// BackgroundWorkers bounds the worker slots background work may hold
	// at once (at least 1).
	BackgroundWorkers int
	// Observer, when set, is told of every request (metrics).
	Observer       Observer
	QueueSize      int
	QueueTimeout   time.Duration
	RequestTimeout time.Duration
	MaxBodyBytes   int64
}

// Observer is told what happens to CNI requests (pkg/metrics).
type Observer interface {
	// Request: a request answered after d; code is "ok" or the CNI code.
	Request(verb, code string, d time.Duration)
	// QueueWait: how long a request waited for a worker.
	QueueWait(d time.Duration)
	// Rejected: a request refused before it ran, "full" or "timeout".
	Rejected(reason string)
}

// Stats are the limiter's state now.
type Stats struct{ Waiting, Running int }

// Stats returns how many CNI requests wait for a worker and how many
// operations (background work included) hold one.
func (s *Server) Stats() Stats {
	return Stats{Waiting: int(s.lim.waiting.Load()), Running: len(s.lim.slots)}
}

// Server is the daemon's HTTP-over-unix-socket front end.
type Server struct {
	h     Handler
	log   *slog.Logger
	opts  Options
	lim   *limiter
	locks *keyedMutex
	http  *http.Server
}

// New returns a server for h.
func New(h Handler, log *slog.Logger, opts Options) *Server {
	s := &Server{h: h, log: log, opts: opts, lim: newLimiter(opts.Workers, opts.QueueSize, opts.BackgroundWorkers, opts.QueueTimeout), locks: newKeyedMutex()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathCNI, s.serveCNI)
	mux.HandleFunc("GET "+api.PathHealthz, func(w http.ResponseWriter, _ *http.Request) { writeText(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET "+api.PathReadyz, s.serveReadyz)
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      opts.RequestTimeout + 10*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	return s
}

// Serve serves on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	if err := s.http.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

func (s *Server) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.h.Ready(); err != nil {
		writeText(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeText(w, http.StatusOK, "ok")
}

func (s *Server) serveCNI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	log := s.log.With("req", newRequestID())
	req, err := api.DecodeRequest(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes), s.opts.MaxBodyBytes)
	var perr *api.ProtocolError
	switch {
	case errors.As(err, &perr):
		log.Warn("request from a newer shim", "err", err)
		writeResponse(w, log, &api.Response{Error: ToCNIError(err)})
		return
	case err != nil:
		log.Warn("bad request", "err", err)
		writeResponse(w, log, &api.Response{Error: types.NewError(types.ErrDecodingFailure, "plexusd: cannot decode request", err.Error())})
		return
	}
	log = log.With("command", req.Command, "container", req.ContainerID, "pod", req.Pod(), "ifname", req.IfName, "netns", req.Netns)
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	defer cancel()

	result, err := s.run(ctx, log, req)
	resp := &api.Response{Result: result}
	code := "ok"
	if err != nil {
		resp.Error = ToCNIError(err)
		code = strconv.FormatUint(uint64(resp.Error.Code), 10)
		log.Error("request failed", "code", resp.Error.Code, "err", err, "ms", time.Since(start).Milliseconds())
	} else {
		log.Info("request done", "ms", time.Since(start).Milliseconds())
	}
	if s.opts.Observer != nil {
		s.opts.Observer.Request(string(req.Command), code, time.Since(start))
	}
	writeResponse(w, log, resp)
}

// run serializes on the container ID, then waits for a worker slot.
func (s *Server) run(ctx context.Context, log *slog.Logger, req *api.Request) ([]byte, error) {
	if req.ContainerID != "" {
		unlock, err := s.locks.lock(ctx, req.ContainerID)
		if err != nil {
			return nil, busyError(err)
		}
		defer unlock()
	}
	waitStart := time.Now()
	release, err := s.lim.acquire(ctx)
	if o := s.opts.Observer; o != nil {
		switch {
		case err == nil:
			o.QueueWait(time.Since(waitStart))
		case errors.Is(err, ErrQueueFull):
			o.Rejected("full")
		case errors.Is(err, ErrQueueTimeout):
			o.Rejected("timeout")
		}
	}
	if err != nil {
		return nil, busyError(err)
	}
	defer release()
	return s.h.Handle(ctx, log, req)
}

// Background runs fn as work of lower priority than CNI requests:
// serialized with the CNI requests of the same container ID, inside the
// same worker pool, and started only when no CNI request waits for a
// worker (see limiter). It returns ctx's error if fn never got to run.
func (s *Server) Background(ctx context.Context, containerID string, fn func(context.Context) error) error {
	return s.Locked(ctx, containerID, func(ctx context.Context) error {
		release, err := s.lim.acquireLow(ctx)
		if err != nil {
			return err
		}
		defer release()
		ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		defer cancel()
		return fn(ctx)
	})
}

// Locked runs fn holding only the lock of containerID (the one its CNI
// requests take), no worker slot: for short bookkeeping that must not
// interleave with that sandbox's ADD, DEL or CHECK.
func (s *Server) Locked(ctx context.Context, containerID string, fn func(context.Context) error) error {
	unlock, err := s.locks.lock(ctx, containerID)
	if err != nil {
		return err
	}
	defer unlock()
	return fn(ctx)
}

func busyError(err error) error {
	return types.NewError(types.ErrTryAgainLater, "plexusd is busy, try again later", err.Error())
}

// ToCNIError keeps a CNI code if the error carries one, else uses 999
// (generic failure, CNI spec error table "100+ plugin specific").
func ToCNIError(err error) *types.Error {
	var te *types.Error
	if errors.As(err, &te) && te == err { //nolint:errorlint // identity: err is itself a *types.Error, unwrapped
		return te
	}
	code := types.ErrInternal
	var coded interface{ CNICode() uint }
	switch {
	case errors.As(err, &coded):
		code = coded.CNICode()
	case te != nil:
		// A wrapped CNI error: keep its code, and the context around it.
		return types.NewError(te.Code, err.Error(), te.Details)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = types.ErrTryAgainLater
	case errors.Is(err, api.ErrBadRequest):
		code = types.ErrDecodingFailure
	}
	return types.NewError(code, err.Error(), "")
}

func writeResponse(w http.ResponseWriter, log *slog.Logger, resp *api.Response) {
	resp.Protocol = api.Protocol
	data, err := json.Marshal(resp)
	if err != nil {
		log.Error("encode response", "err", err)
		data = []byte(`{"error":{"code":999,"msg":"plexusd: cannot encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data))) // never chunked: the shim reads one sized body
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(data); err != nil {
		log.Warn("write response", "err", err)
	}
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/api/wire"
)

// Command is a CNI verb.
type Command string

// The CNI verbs the daemon serves. VERSION is answered by the shim itself.
const (
	CmdAdd    Command = "ADD"
	CmdDel    Command = "DEL"
	CmdCheck  Command = "CHECK"
	CmdStatus Command = "STATUS"
	CmdGC     Command = "GC"
)

// Protocol is the shim↔daemon wire version (wire.Protocol).
const Protocol = wire.Protocol

// Request carries only the CNI fields of one invocation; never the shim's
// whole environment.
type Request struct {
	// Protocol is the shim's wire version (see Protocol).
	Protocol    int             `json:"protocol,omitempty"`
	Command     Command         `json:"command"`
	ContainerID string          `json:"containerID,omitempty"`
	Netns       string          `json:"netns,omitempty"`
	IfName      string          `json:"ifName,omitempty"`
	Args        string          `json:"args,omitempty"`
	Path        string          `json:"path,omitempty"`
	Config      json.RawMessage `json:"config"`
}

// ErrBadRequest classifies a request the daemon cannot decode or accept.
var ErrBadRequest = errors.New("bad request")

// Validate checks the fields the verb needs (CNI spec section 3: ADD, DEL
// and CHECK need a container ID and an ifname; ADD and CHECK a netns).
func (r *Request) Validate() error {
	var errs []error
	switch r.Command {
	case CmdAdd, CmdCheck:
		if r.Netns == "" {
			errs = append(errs, errors.New("netns is required"))
		}
		fallthrough
	case CmdDel:
		if r.ContainerID == "" {
			errs = append(errs, errors.New("containerID is required"))
		}
		if r.IfName == "" {
			errs = append(errs, errors.New("ifName is required"))
		}
	case CmdStatus, CmdGC:
	default:
		errs = append(errs, fmt.Errorf("unknown command %q", r.Command))
	}
	if len(bytes.TrimSpace(r.Config)) == 0 || r.Config[0] != '{' {
		errs = append(errs, errors.New("config must be a JSON object"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrBadRequest, errors.Join(errs...))
	}
	return nil
}

// DecodeRequest reads one request of at most limit bytes and validates it.
func DecodeRequest(r io.Reader, limit int64) (*Request, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: invalid body limit %d", ErrBadRequest, limit)
	}
	readLimit := limit
	if limit < math.MaxInt64 {
		readLimit++ // one byte more tells "too big" from "exactly the limit"
	}
	data, err := io.ReadAll(io.LimitReader(r, readLimit))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %w", ErrBadRequest, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrBadRequest, limit)
	}
	var req Request
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("%w: decode: %w", ErrBadRequest, err)
	}
	if req.Protocol > Protocol || req.Protocol < 0 {
		return nil, &ProtocolError{Shim: req.Protocol, Daemon: Protocol}
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return &req, nil
}

// ProtocolError is a request from a shim newer than the daemon.
type ProtocolError struct{ Shim, Daemon int }

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("the plexus shim speaks wire protocol %d, this plexusd only up to %d: finish upgrading the plexus DaemonSet (the shim on the host is newer than the daemon)", e.Shim, e.Daemon)
}

// CNICode is 11, "try again later": the upgrade in progress fixes it.
func (e *ProtocolError) CNICode() uint { return types.ErrTryAgainLater }

// Response is the daemon's answer: a CNI result already converted to the
// request's cniVersion, or a CNI error whose code the shim passes through.
type Response struct {
	// Protocol is the daemon's wire version.
	Protocol int             `json:"protocol,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *types.Error    `json:"error,omitempty"`
}

// Pod returns "namespace/name" from the K8S_POD_* pairs of Args, or "".
// It is for log lines only; the daemon parses Args strictly elsewhere.
func (r *Request) Pod() string {
	var ns, name string
	for _, kv := range strings.Split(r.Args, ";") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "K8S_POD_NAMESPACE":
			ns = v
		case "K8S_POD_NAME":
			name = v
		}
	}
	if ns == "" || name == "" {
		return ""
	}
	return ns + "/" + name
}

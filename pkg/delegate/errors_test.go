package delegate

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestPluginErrorCNICode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want uint
	}{
		{name: "direct CNI error", err: &types.Error{Code: types.ErrTryAgainLater, Msg: "busy"}, want: types.ErrTryAgainLater},
		{name: "plugin-specific code", err: &types.Error{Code: 142, Msg: "custom"}, want: 142},
		{name: "wrapped CNI error", err: fmt.Errorf("netplugin failed: %w", &types.Error{Code: types.ErrIOFailure}), want: types.ErrIOFailure},
		{name: "joined CNI error", err: errors.Join(errors.New("x"), &types.Error{Code: types.ErrInvalidNetworkConfig}), want: types.ErrInvalidNetworkConfig},
		{name: "CNI error with code 0", err: &types.Error{Msg: "no code"}, want: CodePluginFailed},
		{name: "plain error", err: errors.New("exec: no such file"), want: CodePluginFailed},
		{name: "nil error", err: nil, want: CodePluginFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pe := &PluginError{Network: "ns/net", IfName: "net1", Op: "ADD", Err: tt.err}
			if got := pe.CNICode(); got != tt.want {
				t.Fatalf("CNICode = %d, want %d", got, tt.want)
			}
		})
	}
	if CodePluginFailed != 100 {
		t.Fatalf("CodePluginFailed = %d, want 100", CodePluginFailed)
	}
}

func TestPluginErrorUnwrap(t *testing.T) {
	t.Parallel()
	sentinel := errors.New("sentinel")
	cniErr := &types.Error{Code: types.ErrUnsupportedField, Msg: "nope"}
	tests := []struct {
		name string
		err  error
	}{
		{name: "sentinel", err: sentinel},
		{name: "wrapped sentinel", err: fmt.Errorf("ctx: %w", sentinel)},
		{name: "cni error", err: cniErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error = &PluginError{Network: "n", IfName: "i", Op: "DEL", Err: tt.err}
			if !errors.Is(err, tt.err) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.err)
			}
			if errors.Unwrap(err) != tt.err { //nolint:errorlint // Unwrap must return exactly the wrapped error
				t.Fatalf("Unwrap = %v, want %v", errors.Unwrap(err), tt.err)
			}
			var pe *PluginError
			if !errors.As(fmt.Errorf("outer: %w", err), &pe) || pe.Op != "DEL" {
				t.Fatalf("errors.As through a wrap failed: %+v", pe)
			}
		})
	}
	t.Run("cni error via As", func(t *testing.T) {
		t.Parallel()
		var err error = &PluginError{Network: "n", IfName: "i", Op: "CHECK", Err: fmt.Errorf("x: %w", cniErr)}
		var te *types.Error
		if !errors.As(err, &te) || te != cniErr {
			t.Fatalf("errors.As = %v, want %v", te, cniErr)
		}
	})
	t.Run("rollback error", func(t *testing.T) {
		t.Parallel()
		inner := &PluginError{Network: "n", IfName: "i", Op: "DEL", Err: sentinel}
		var err error = &RollbackError{Err: errors.Join(inner)}
		var pe *PluginError
		if !errors.As(err, &pe) || pe != inner || !errors.Is(err, sentinel) {
			t.Fatalf("RollbackError does not unwrap to its cause: %v", err)
		}
	})
}

// The message is the feature here: an operator must see which delegate
// failed, on which interface, in which verb.
func TestPluginErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pe   PluginError
	}{
		{name: "ADD", pe: PluginError{Network: "kube-system/macvlan-conf", IfName: "net1", Op: "ADD", Err: errors.New("no master")}},
		{name: "DEL", pe: PluginError{Network: "default", IfName: "eth0", Op: "DEL", Err: &types.Error{Code: 11, Msg: "try again"}}},
		{name: "CHECK", pe: PluginError{Network: "ns/sriov", IfName: "net7", Op: "CHECK", Err: errors.New("vf gone")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := tt.pe.Error()
			for _, part := range []string{tt.pe.Network, tt.pe.IfName, tt.pe.Op, tt.pe.Err.Error()} {
				if !strings.Contains(msg, part) {
					t.Errorf("Error() = %q does not name %q", msg, part)
				}
			}
		})
	}
}

package replay

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/api/wire"
)

func run(env map[string]string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Main(func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Run by hand, without the shim's settings, it says what it is for.
func TestNotAPlugin(t *testing.T) {
	code, out, errOut := run(map[string]string{"CNI_COMMAND": "ADD"})
	if code != 2 || out != "" || !strings.Contains(errOut, "not a CNI plugin") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// A DEL without a record succeeds and says so; a container ID that is not
// one fails with "try again later" naming the daemon's socket, as the shim
// answered before the replay moved here.
func TestDel(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c1", "CNI_PATH": dir,
		wire.EnvReplaySocket: "/run/plexus/plexus.sock", wire.EnvReplayCNIDir: dir, wire.EnvReplayReason: "dial: no such file"}
	code, out, errOut := run(env)
	if code != 0 || out != "" || !strings.Contains(errOut, "no attachment record") || !strings.Contains(errOut, "dial: no such file") {
		t.Errorf("DEL without a record: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	env["CNI_CONTAINERID"] = "../x"
	code, out, _ = run(env)
	var te types.Error
	if code != 1 || json.Unmarshal([]byte(out), &te) != nil || te.Code != types.ErrTryAgainLater || !strings.Contains(te.Msg, "/run/plexus/plexus.sock") {
		t.Errorf("bad container ID: exit %d, stdout %q", code, out)
	}
}

// Command recorder is a CNI plugin for tests: it appends every invocation
// ("COMMAND containerID ifname") to the file named by "logFile" and, when
// "failOn" names the command, fails with "failCode". On ADD it passes the
// prevResult through, or returns an empty result in the config's version.
// "childOn" names a command on which it first starts `sleep <childSleep>`
// holding its stdout and leaves it running; "hangOn" one on which it then
// sleeps for ever (until killed).
//
// Copied into <d>/bin under another plugin's name (a stand-in for a
// primary CNI that cannot run here), it also writes the config it was
// given to <d>/stdin/<COMMAND>-<name>-<ifname>.json when <d>/stdin exists.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

type conf struct {
	types.PluginConf
	LogFile    string `json:"logFile"`
	FailOn     string `json:"failOn"`
	FailCode   uint   `json:"failCode"`
	ChildOn    string `json:"childOn"`
	ChildSleep string `json:"childSleep"`
	HangOn     string `json:"hangOn"`
}

func load(a *skel.CmdArgs) (*conf, error) {
	var c conf
	if err := json.Unmarshal(a.StdinData, &c); err != nil {
		return nil, err
	}
	if err := version.ParsePrevResult(&c.PluginConf); err != nil {
		return nil, err
	}
	return &c, nil
}

func record(cmd string, a *skel.CmdArgs) (*conf, error) {
	c, err := load(a)
	if err != nil {
		return nil, err
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Join(filepath.Dir(filepath.Dir(exe)), "stdin")
		if _, err := os.Stat(dir); err == nil {
			// A stand-in: the config's keys are another plugin's.
			name := fmt.Sprintf("%s-%s-%s.json", cmd, filepath.Base(exe), a.IfName)
			return c, os.WriteFile(filepath.Join(dir, name), a.StdinData, 0o644)
		}
	}
	if c.LogFile != "" {
		f, err := os.OpenFile(c.LogFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(f, "%s %s %s\n", cmd, a.ContainerID, a.IfName)
		f.Close()
	}
	if c.ChildOn == cmd {
		child := exec.Command("sleep", c.ChildSleep)
		child.Stdout = os.Stdout
		if err := child.Start(); err != nil {
			return nil, err
		}
	}
	if c.HangOn == cmd {
		time.Sleep(time.Hour)
	}
	if c.FailOn == cmd {
		code := c.FailCode
		if code == 0 {
			code = 100
		}
		return nil, types.NewError(code, "recorder: told to fail "+cmd, "")
	}
	return c, nil
}

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add: func(a *skel.CmdArgs) error {
			c, err := record("ADD", a)
			if err != nil {
				return err
			}
			if c.PrevResult != nil {
				return types.PrintResult(c.PrevResult, c.CNIVersion)
			}
			return types.PrintResult(&current.Result{CNIVersion: current.ImplementedSpecVersion}, c.CNIVersion)
		},
		Del:    func(a *skel.CmdArgs) error { _, err := record("DEL", a); return err },
		Check:  func(a *skel.CmdArgs) error { _, err := record("CHECK", a); return err },
		Status: func(a *skel.CmdArgs) error { _, err := record("STATUS", a); return err },
		GC:     func(a *skel.CmdArgs) error { _, err := record("GC", a); return err },
	}, version.All, "recorder test plugin")
}

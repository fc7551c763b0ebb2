package devices

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-cni/plexus/pkg/atomicfile"
	"github.com/plexus-cni/plexus/pkg/delegate"
)

// Device-info spec v1.1.0 §4: the device plugin writes dp/, the NPWG
// implementation (or the CNI plugin) writes cni/.
const (
	dpSubDir  = "dp"
	cniSubDir = "cni"
	// infoFileMode is what the NAD client's Save helpers write: read-only.
	infoFileMode fs.FileMode = 0o444
	infoDirMode  fs.FileMode = 0o755
)

// DPDeviceInfoPath is the device plugin's file for one device:
// <dir>/dp/<resourceName>-<deviceID>-device.json with "/" turned into "-"
// (as the NAD client's getDPDeviceInfoPath does).
func DPDeviceInfoPath(dir, resourceName, deviceID string) string {
	return filepath.Join(dir, dpSubDir, fmt.Sprintf("%s-%s-device.json",
		strings.ReplaceAll(resourceName, "/", "-"), strings.ReplaceAll(deviceID, "/", "-")))
}

// CNIDeviceInfoPath is an attachment's CNI file:
// <dir>/cni/<network>-<containerID>_<ifName> with "/" turned into "-" (the
// name Multus gives it, through the NAD client's GetCNIDeviceInfoPath).
func CNIDeviceInfoPath(dir, network, containerID, ifName string) string {
	return filepath.Join(dir, cniSubDir, strings.ReplaceAll(fmt.Sprintf("%s-%s_%s", network, containerID, ifName), "/", "-"))
}

// ReadDeviceInfo returns the device-info in s.DeviceInfoFile: nil (and no
// error) when the attachment has no such path or nobody wrote the file.
// It is what the daemon passes to netstatus.Build.
func ReadDeviceInfo(s delegate.Spec) (*nadv1.DeviceInfo, error) {
	if s.DeviceInfoFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(s.DeviceInfoFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var di nadv1.DeviceInfo
	if err := json.Unmarshal(data, &di); err != nil {
		return nil, fmt.Errorf("%s: %w", s.DeviceInfoFile, err)
	}
	return &di, nil
}

// stageDeviceInfo puts the device plugin's file for s's device at
// s.DeviceInfoFile. Without a (readable, valid) DP file it only removes a
// stale CNI file an earlier attempt may have left, so the plugin can write
// its own; copied reports whether a file was written.
func stageDeviceInfo(dir string, s delegate.Spec) (copied bool, dpErr, err error) {
	dp := DPDeviceInfoPath(dir, s.ResourceName, s.DeviceID)
	data, readErr := os.ReadFile(dp)
	if readErr == nil {
		var di nadv1.DeviceInfo
		if uErr := json.Unmarshal(data, &di); uErr != nil {
			readErr = fmt.Errorf("%s: %w", dp, uErr)
		}
	}
	if readErr != nil {
		if !errors.Is(readErr, fs.ErrNotExist) {
			dpErr = readErr
		}
		return false, dpErr, removeIfExists(s.DeviceInfoFile)
	}
	if err := os.MkdirAll(filepath.Dir(s.DeviceInfoFile), infoDirMode); err != nil {
		return false, nil, err
	}
	if err := atomicfile.Write(s.DeviceInfoFile, data, infoFileMode); err != nil {
		return false, nil, err
	}
	return true, nil, nil
}

// removeIfExists removes path; a missing file is not an error.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

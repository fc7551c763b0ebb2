// Command deviceplugin is a kubelet device plugin for tests, standing in
// for sriov-network-device-plugin: it serves the device-plugin API
// v1beta1 on a socket in the kubelet's device-plugins directory,
// registers one resource with the kubelet, advertises the devices named by
// -ids (PCI addresses of the "VFs": links the test made, found by the CNI
// stand-in through their alias) as healthy, answers Allocate the way the
// SR-IOV plugin does (PCIDEVICE_<RESOURCE> with the IDs), and writes the
// device-info v1.1.0 file of each device (dp/), removed again on exit.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadutils "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/utils"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	dp "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

type plugin struct {
	dp.UnimplementedDevicePluginServer
	resource string
	ids      []string
	stop     chan struct{}
}

func (p *plugin) GetDevicePluginOptions(context.Context, *dp.Empty) (*dp.DevicePluginOptions, error) {
	return &dp.DevicePluginOptions{}, nil
}

func (p *plugin) ListAndWatch(_ *dp.Empty, s dp.DevicePlugin_ListAndWatchServer) error {
	devs := make([]*dp.Device, len(p.ids))
	for i, id := range p.ids {
		devs[i] = &dp.Device{ID: id, Health: dp.Healthy}
	}
	if err := s.Send(&dp.ListAndWatchResponse{Devices: devs}); err != nil {
		return err
	}
	select {
	case <-p.stop:
	case <-s.Context().Done():
	}
	return nil
}

func (p *plugin) GetPreferredAllocation(context.Context, *dp.PreferredAllocationRequest) (*dp.PreferredAllocationResponse, error) {
	return &dp.PreferredAllocationResponse{}, nil
}

func (p *plugin) Allocate(_ context.Context, req *dp.AllocateRequest) (*dp.AllocateResponse, error) {
	env := "PCIDEVICE_" + strings.ToUpper(strings.NewReplacer("/", "_", ".", "_", "-", "_").Replace(p.resource))
	resp := &dp.AllocateResponse{}
	for _, c := range req.ContainerRequests {
		log.Printf("allocate %s: %v", p.resource, c.DevicesIds)
		resp.ContainerResponses = append(resp.ContainerResponses, &dp.ContainerAllocateResponse{
			Envs: map[string]string{env: strings.Join(c.DevicesIds, ",")},
		})
	}
	return resp, nil
}

func (p *plugin) PreStartContainer(context.Context, *dp.PreStartContainerRequest) (*dp.PreStartContainerResponse, error) {
	return &dp.PreStartContainerResponse{}, nil
}

func main() {
	resource := flag.String("resource", "plexus.test/vf", "the extended resource name")
	ids := flag.String("ids", "", "comma-separated device IDs (PCI addresses)")
	dir := flag.String("dir", dp.DevicePluginPath, "the kubelet's device-plugins directory")
	flag.Parse()
	if *ids == "" {
		log.Fatal("-ids is empty")
	}
	if err := run(&plugin{resource: *resource, ids: strings.Split(*ids, ","), stop: make(chan struct{})}, *dir); err != nil {
		log.Fatal(err)
	}
}

func run(p *plugin, dir string) error {
	defer func() {
		for _, id := range p.ids {
			_ = nadutils.CleanDeviceInfoForDP(p.resource, id)
		}
	}()
	for _, id := range p.ids {
		_ = nadutils.CleanDeviceInfoForDP(p.resource, id) // a previous run's
		info := &nadv1.DeviceInfo{Type: nadv1.DeviceInfoTypePCI, Version: nadv1.DeviceInfoVersion, Pci: &nadv1.PciDevice{PciAddress: id}}
		if err := nadutils.SaveDeviceInfoForDP(p.resource, id, info); err != nil {
			return fmt.Errorf("device-info of %s: %w", id, err)
		}
	}
	name := strings.NewReplacer("/", "-", ".", "-").Replace(p.resource) + ".sock"
	sock := filepath.Join(dir, name)
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	dp.RegisterDevicePluginServer(srv, p)
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	if err := register(filepath.Join(dir, "kubelet.sock"), name, p.resource); err != nil {
		return err
	}
	log.Printf("serving %s with %d devices on %s", p.resource, len(p.ids), sock)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	close(p.stop)
	return nil
}

func register(kubelet, endpoint, resource string) error {
	conn, err := grpc.NewClient("unix://"+kubelet, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := dp.NewRegistrationClient(conn).Register(ctx, &dp.RegisterRequest{Version: dp.Version, Endpoint: endpoint, ResourceName: resource}); err != nil {
		return fmt.Errorf("register %s with %s: %w", resource, kubelet, err)
	}
	return nil
}

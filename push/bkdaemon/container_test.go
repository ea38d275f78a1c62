package bkdaemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeEngine is an engine with at most one container (ours or another's)
// and a set of images. It refuses privileged containers when told to, as
// this machine's engine does ("unable to apply caps").
type fakeEngine struct {
	images           map[string]string // ref -> image ID
	pullable         map[string]string
	refusePrivileged bool
	conflictOnCreate bool

	ctr   *container.InspectResponse
	calls []string
}

func (f *fakeEngine) call(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeEngine) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	f.call("inspect %s", id)
	if f.ctr == nil {
		return container.InspectResponse{}, cerrdefs.ErrNotFound.WithMessage("No such container: " + id)
	}
	return *f.ctr, nil
}

func (f *fakeEngine) ContainerCreate(_ context.Context, cfg *container.Config, hc *container.HostConfig, _ *network.NetworkingConfig, _ *ocispec.Platform, name string) (container.CreateResponse, error) {
	if f.conflictOnCreate {
		f.call("create %s: conflict", name)
		f.ctr = &container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{Image: cfg.Image, State: &container.State{Running: true}},
			Config: &container.Config{Labels: cfg.Labels}}
		return container.CreateResponse{}, cerrdefs.ErrConflict.WithMessage("name in use")
	}
	f.call("create %s image=%s mode=%s net=%s", name, cfg.Image, cfg.Labels[labelMode], hc.NetworkMode)
	f.ctr = &container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{Image: cfg.Image, State: &container.State{}, HostConfig: hc},
		Config: &container.Config{Labels: cfg.Labels}}
	return container.CreateResponse{ID: "c1"}, nil
}

func (f *fakeEngine) ContainerStart(_ context.Context, id string, _ container.StartOptions) error {
	f.call("start %s", id)
	if f.ctr == nil {
		return cerrdefs.ErrNotFound
	}
	if f.refusePrivileged && f.ctr.HostConfig != nil && f.ctr.HostConfig.Privileged {
		return errors.New("failed to create shim task: OCI runtime create failed: unable to apply caps: operation not permitted")
	}
	f.ctr.State.Running = true
	return nil
}

func (f *fakeEngine) ContainerRemove(_ context.Context, id string, _ container.RemoveOptions) error {
	f.call("remove %s", id)
	if f.ctr == nil {
		return cerrdefs.ErrNotFound
	}
	f.ctr = nil
	return nil
}

func (f *fakeEngine) ContainerLogs(context.Context, string, container.LogsOptions) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}

func (f *fakeEngine) ContainerExecCreate(context.Context, string, container.ExecOptions) (container.ExecCreateResponse, error) {
	return container.ExecCreateResponse{}, errors.New("not in this fake")
}

func (f *fakeEngine) ContainerExecAttach(context.Context, string, container.ExecAttachOptions) (types.HijackedResponse, error) {
	return types.HijackedResponse{}, errors.New("not in this fake")
}

func (f *fakeEngine) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	if id, ok := f.images[ref]; ok {
		return image.InspectResponse{ID: id}, nil
	}
	return image.InspectResponse{}, cerrdefs.ErrNotFound.WithMessage("No such image: " + ref)
}

func (f *fakeEngine) ImagePull(_ context.Context, ref string, _ image.PullOptions) (io.ReadCloser, error) {
	f.call("pull %s", ref)
	id, ok := f.pullable[ref]
	if !ok {
		return nil, errors.New("pull access denied for " + ref)
	}
	f.images[ref] = id
	return io.NopCloser(strings.NewReader(`{"status":"Downloaded newer image"}`)), nil
}

// ours is a container push made earlier.
func ours(ref, id string, m mode, running bool) *container.InspectResponse {
	return &container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{Image: id, State: &container.State{Running: running}},
		Config:            &container.Config{Labels: map[string]string{labelOwner: "1", labelImage: ref, labelMode: string(m)}},
	}
}

// TestContainerBuilderLifecycle: which container push runs BuildKit in,
// whether it reuses, starts, recreates or refuses one, and what it says.
func TestContainerBuilderLifecycle(t *testing.T) {
	const ref, id, newID = "moby/buildkit:v0.34.2", "sha256:aaaa", "sha256:bbbb"
	tests := []struct {
		name    string
		engine  fakeEngine
		image   string
		calls   string
		said    string
		wantErr string
	}{
		{
			name:   "none yet: created privileged",
			engine: fakeEngine{images: map[string]string{ref: id}},
			calls:  "inspect containerise-buildkit; create containerise-buildkit image=sha256:aaaa mode=privileged net=host; start containerise-buildkit",
			said:   "started the BuildKit container containerise-buildkit (moby/buildkit:v0.34.2), privileged",
		},
		{
			name:   "privileged refused: CAP_SYS_ADMIN instead, said so",
			engine: fakeEngine{images: map[string]string{ref: id}, refusePrivileged: true},
			calls: "inspect containerise-buildkit; create containerise-buildkit image=sha256:aaaa mode=privileged net=host; start containerise-buildkit; " +
				"remove containerise-buildkit; create containerise-buildkit image=sha256:aaaa mode=sys-admin net=host; start containerise-buildkit",
			said: "the engine refused a privileged container (failed to create shim task: OCI runtime create failed: unable to apply caps: operation not permitted): started the BuildKit container containerise-buildkit (moby/buildkit:v0.34.2) with CAP_SYS_ADMIN",
		},
		{
			name:   "running with the same image: reused",
			engine: fakeEngine{images: map[string]string{ref: id}, ctr: ours(ref, id, modeSysAdmin, true)},
			calls:  "inspect containerise-buildkit",
			said:   "reusing the BuildKit container containerise-buildkit (moby/buildkit:v0.34.2, with CAP_SYS_ADMIN",
		},
		{
			name:   "stopped: started again",
			engine: fakeEngine{images: map[string]string{ref: id}, ctr: ours(ref, id, modePrivileged, false)},
			calls:  "inspect containerise-buildkit; start containerise-buildkit",
			said:   "restarted the BuildKit container containerise-buildkit (moby/buildkit:v0.34.2, privileged)",
		},
		{
			name:   "another image asked for: recreated",
			engine: fakeEngine{images: map[string]string{ref: id, "example.com/buildkit:v1": newID}, ctr: ours(ref, id, modePrivileged, true)},
			image:  "example.com/buildkit:v1",
			calls:  "inspect containerise-buildkit; remove containerise-buildkit; create containerise-buildkit image=sha256:bbbb mode=privileged net=host; start containerise-buildkit",
			said:   "containerise-buildkit runs moby/buildkit:v0.34.2, not example.com/buildkit:v1 (bbbb): recreating it",
		},
		{
			name:   "the same name now another image: recreated",
			engine: fakeEngine{images: map[string]string{ref: newID}, ctr: ours(ref, id, modePrivileged, true)},
			calls:  "inspect containerise-buildkit; remove containerise-buildkit; create containerise-buildkit image=sha256:bbbb mode=privileged net=host; start containerise-buildkit",
			said:   "recreating it",
		},
		{
			name:   "image missing: pulled first",
			engine: fakeEngine{images: map[string]string{}, pullable: map[string]string{ref: id}},
			calls:  "pull moby/buildkit:v0.34.2; inspect containerise-buildkit; create containerise-buildkit image=sha256:aaaa mode=privileged net=host; start containerise-buildkit",
			said:   "pulling the BuildKit image moby/buildkit:v0.34.2",
		},
		{
			name:    "image missing and not pullable: refused, nothing created",
			engine:  fakeEngine{images: map[string]string{}},
			calls:   "pull moby/buildkit:v0.34.2",
			wantErr: "pulling the BuildKit image moby/buildkit:v0.34.2 on the test engine: pull access denied for moby/buildkit:v0.34.2; give another with --buildkit-image",
		},
		{
			name: "a container of the same name that is not ours: left alone",
			engine: fakeEngine{images: map[string]string{ref: id}, ctr: &container.InspectResponse{
				ContainerJSONBase: &container.ContainerJSONBase{Image: id, State: &container.State{Running: true}}, Config: &container.Config{}}},
			calls:   "inspect containerise-buildkit",
			wantErr: "a container named containerise-buildkit exists on the test engine and containerise did not make it",
		},
		{
			name:   "another push made it meanwhile: theirs is used",
			engine: fakeEngine{images: map[string]string{ref: id}, conflictOnCreate: true},
			calls:  "inspect containerise-buildkit; create containerise-buildkit: conflict",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var said []string
			c := &Container{Engine: &tt.engine, EngineName: "the test engine", Image: tt.image,
				Logf: func(format string, args ...any) { said = append(said, fmt.Sprintf(format, args...)) }}
			imageID, err := c.ensureImage(context.Background())
			if err == nil {
				err = c.ensureRunning(context.Background(), imageID)
			}
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			}
			if got := strings.Join(tt.engine.calls, "; "); got != tt.calls {
				t.Errorf("calls:\n  %s\nwant:\n  %s", got, tt.calls)
			}
			if all := strings.Join(said, "\n"); !strings.Contains(all, tt.said) {
				t.Errorf("said:\n%s\nwant it to contain %q", all, tt.said)
			}
			if tt.wantErr == "" && (tt.engine.ctr == nil || tt.engine.ctr.State == nil || !tt.engine.ctr.State.Running) {
				t.Error("no running container afterwards")
			}
		})
	}
}

// TestSysAdminModeIsWhatBuildKitNeeds: the unprivileged way has exactly
// what RUN steps were seen to need on an engine that refuses privileges.
func TestSysAdminModeIsWhatBuildKitNeeds(t *testing.T) {
	hc := modeSysAdmin.hostConfig()
	got := fmt.Sprintf("privileged=%v caps=%v secopt=%v binds=%v net=%s", hc.Privileged, hc.CapAdd, hc.SecurityOpt, hc.Binds, hc.NetworkMode)
	want := "privileged=false caps=[SYS_ADMIN] secopt=[seccomp=unconfined apparmor=unconfined] binds=[/sys/fs/cgroup:/sys/fs/cgroup:rw] net=host"
	if got != want {
		t.Errorf("%s\nwant %s", got, want)
	}
}

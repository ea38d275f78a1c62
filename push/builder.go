package push

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/versions"

	"github.com/containerise/containerise/internal/clierror"
)

// minBuildKitAPI is the first Engine API version that serves BuildKit
// builds and their sessions without experimental mode (Docker 18.09).
const minBuildKitAPI = "1.39"

// buildRequest is what one build needs beyond the Options.
type buildRequest struct {
	builder Builder // BuilderBuildKit or BuilderClassic, never auto
	// refs are the registry references the engine tags the image with;
	// none leaves it untagged for the caller to tag.
	refs []string
	// cacheFrom are the images now on the engine whose layers the build may
	// reuse.
	cacheFrom []string
	// registry answers the engine's BuildKit when it asks for registry
	// credentials.
	registry *registryGate
}

// chooseBuilder settles the builder asked for against what the engine offers. auto is
// BuildKit when the engine serves it, else the classic builder with a
// one-line notice. Several platforms need BuildKit and an engine whose
// images live in containerd's image store.
func (p *Pusher) chooseBuilder(ctx context.Context, o Options, ping types.Ping) (Builder, error) {
	offers, why := offersBuildKit(ping)
	needs := buildKitOnly(o)
	switch o.Builder {
	case BuilderClassic:
		if needs != "" {
			return "", clierror.Usagef("%s need BuildKit; the classic builder cannot pass them to the build", needs)
		}
		return BuilderClassic, nil
	case BuilderBuildKit:
		if !offers {
			return "", fmt.Errorf("building with BuildKit: %s does not offer it (%s): use a newer engine, or the classic builder", p.engineDescription(), why)
		}
	default:
		if !offers {
			if needs != "" {
				return "", fmt.Errorf("%s need BuildKit, and %s does not offer it (%s): use a newer engine", needs, p.engineDescription(), why)
			}
			p.logf("the engine does not offer BuildKit (%s): building with the classic builder", why)
			return BuilderClassic, nil
		}
	}
	if len(o.Platforms) > 1 {
		if err := p.checkMultiPlatform(ctx, o.Platforms); err != nil {
			return "", err
		}
	}
	return BuilderBuildKit, nil
}

// offersBuildKit says whether the engine serves BuildKit builds over its
// API, and if not, why.
func offersBuildKit(ping types.Ping) (bool, string) {
	if ping.OSType == "windows" {
		return false, "a Windows engine"
	}
	if ping.APIVersion != "" && versions.LessThan(ping.APIVersion, minBuildKitAPI) {
		return false, fmt.Sprintf("its API %s is older than %s", ping.APIVersion, minBuildKitAPI)
	}
	return true, ""
}

// buildKitOnly names the options only BuildKit can serve, "" when none.
func buildKitOnly(o Options) string {
	var needs []string
	if len(o.Secrets) > 0 {
		needs = append(needs, "build secrets")
	}
	if len(o.SSH) > 0 {
		needs = append(needs, "SSH forwarding")
	}
	if len(o.Platforms) > 1 {
		needs = append(needs, "several platforms")
	}
	return strings.Join(needs, " and ")
}

// checkMultiPlatform refuses several platforms unless the engine keeps its
// images in containerd's image store, the only store that holds an image
// for several platforms under one name.
func (p *Pusher) checkMultiPlatform(ctx context.Context, platforms []string) error {
	store, err := p.imageStore(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("asking %s about its image store (for the platforms %s): %v", p.engineDescription(), strings.Join(platforms, ","), err)
	}
	if store == containerdStore {
		return nil
	}
	return fmt.Errorf("platforms %s: building several platforms at once needs an engine that keeps images in the containerd image store, and %s uses the %s storage driver; build one platform per push with this engine, enable the containerd image store (Docker 24 or later), or use --builder container",
		strings.Join(platforms, ","), p.engineDescription(), store)
}

// containerdStore is imageStore's answer for the containerd image store.
const containerdStore = "containerd"

// imageStore names where the engine keeps images: containerdStore, or the
// graph driver's name.
func (p *Pusher) imageStore(ctx context.Context) (string, error) {
	info, err := p.Engine.Info(ctx)
	if err != nil {
		return "", err
	}
	for _, kv := range info.DriverStatus {
		if len(kv) == 2 && kv[0] == "driver-type" && kv[1] == "io.containerd.snapshotter.v1" {
			return containerdStore, nil
		}
	}
	return info.Driver, nil
}

// build builds the Dockerfile once with the chosen builder and returns the
// image ID. With refs, the engine tags the image with each of them when the
// build succeeds; without, the image is left untagged for the caller to tag
// (names are then the repository:tag pairs the progress line shows).
func (p *Pusher) build(ctx context.Context, o Options, bc buildContext, req buildRequest) (string, error) {
	names := req.refs
	if len(names) == 0 {
		for _, tag := range o.Tags {
			names = append(names, o.Repository+":"+tag)
		}
	}
	dockerfile := bc.Dockerfile
	if bc.External != "" || req.builder == BuilderBuildKit {
		dockerfile = bc.DockerfilePath
	}
	p.logf("building %s with %s (context %s, %s)", strings.Join(names, ", "), req.builder.display(), bc.Dir, dockerfile)
	if req.builder == BuilderBuildKit {
		return p.buildKit(ctx, o, bc, req)
	}
	return p.buildClassic(ctx, o, bc, req)
}

func (b Builder) display() string {
	if b == BuilderBuildKit {
		return "BuildKit"
	}
	return "the classic builder"
}

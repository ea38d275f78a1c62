package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/pkg/jsonmessage"
)

// buildClassic builds with the engine's classic builder: the context goes
// as a tar in the request body, and the engine streams its output back.
func (p *Pusher) buildClassic(ctx context.Context, o Options, bc buildContext, req buildRequest) (string, error) {
	tarball, err := bc.tar()
	if err != nil {
		return "", err
	}
	defer tarball.Close()
	resp, err := p.Engine.ImageBuild(ctx, tarball, build.ImageBuildOptions{
		Tags:        req.refs,
		Dockerfile:  bc.Dockerfile,
		BuildArgs:   o.BuildArgs,
		Target:      o.Target,
		Labels:      o.Labels,
		Remove:      true,
		CacheFrom:   req.cacheFrom,
		NoCache:     o.NoCache,
		NetworkMode: o.Network,
		Platform:    strings.Join(o.Platforms, ","),
		Version:     build.BuilderV1,
	})
	if err != nil {
		return "", p.refusedBuild(ctx, err)
	}
	defer resp.Body.Close()

	var imageID string
	steps := &stepWatcher{w: p.Err}
	err = p.display(resp.Body, steps, func(m jsonmessage.JSONMessage) {
		var aux build.Result
		if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
			imageID = aux.ID
		}
	})
	var jerr *jsonmessage.JSONError
	switch {
	case errors.As(err, &jerr):
		if steps.last != "" {
			return "", fmt.Errorf("build failed at %s: %s", steps.last, jerr.Message)
		}
		return "", fmt.Errorf("build failed: %s", jerr.Message)
	case ctx.Err() != nil:
		return "", ctx.Err()
	case err != nil:
		return "", p.brokenBuild(err)
	case imageID == "":
		return "", errNoImageID
	}
	return imageID, nil
}

var errNoImageID = errors.New("building: the Docker engine's build output ended without an image ID: the build did not finish")

// refusedBuild is the error for a build request the engine did not take.
func (p *Pusher) refusedBuild(ctx context.Context, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("building: the Docker engine refused the build: %v", err)
}

// brokenBuild is the error for a build stream cut off midway.
func (p *Pusher) brokenBuild(err error) error {
	return fmt.Errorf("building: the connection to %s broke off mid-build (%v): check that the engine is still running, then rerun", p.engineDescription(), err)
}

package push

import (
	"context"
	"os"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// buildStages counts the Dockerfile's stages (its FROM instructions); 0
// when it cannot be read or parsed (the build will say why).
func buildStages(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		return 0
	}
	n := 0
	for _, child := range res.AST.Children {
		if strings.EqualFold(child.Value, "from") {
			n++
		}
	}
	return n
}

// adviseOnStages says, in one line, that a multi-stage Dockerfile's build
// stages are not cached on an engine that cannot export a registry cache:
// the engine's cache holds the final image's layers only, so a cold engine
// runs every build stage again.
func (p *Pusher) adviseOnStages(ctx context.Context, o Options, bc buildContext) {
	if o.NoCache || buildStages(bc.DockerfilePath) < 2 {
		return
	}
	if store, err := p.imageStore(ctx); err != nil || store == containerdStore {
		return
	}
	p.logf("cache: this engine caches only the final stage of a multi-stage Dockerfile, so a cold engine runs the build stages again; --builder container would cache them in the registry")
}

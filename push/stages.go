package push

import (
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
// stages are not cached on the engine path: it exports no registry cache
// (even an engine with the containerd image store, which could, is given
// only the inline cache), so the engine's cache holds the final image's
// layers only, and a cold engine runs every build stage again.
func (p *Pusher) adviseOnStages(o Options, bc buildContext) {
	if o.NoCache || buildStages(bc.DockerfilePath) < 2 {
		return
	}
	p.logf("cache: this engine caches only the final stage of a multi-stage Dockerfile, so a cold engine runs the build stages again; --builder container would cache them in the registry")
}

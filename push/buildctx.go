package push

import (
	"archive/tar"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/buildkit/session/filesync"
	"github.com/moby/go-archive"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"

	"github.com/containerise/containerise/internal/clierror"
)

// buildContext is a checked build context: the folder and the Dockerfile.
type buildContext struct {
	Dir string
	// DockerfilePath is the Dockerfile's absolute path, wherever it lies.
	DockerfilePath string
	// Dockerfile is the Dockerfile's path inside the context tar of the
	// classic builder (with '/' separators).
	Dockerfile string
	// External is the Dockerfile's own path when it lies outside Dir: as the
	// docker CLI does, the classic builder gets it in the streamed context
	// under Dockerfile, a name no file of the context has. (BuildKit reads
	// the Dockerfile from its own folder, so it needs no such name.)
	External string
}

// Input names an input of a push that can be wrong, for errors about it;
// the command layer says which flag gives it.
type Input string

// Inputs.
const (
	InputContext Input = "the build context"
	// InputDockerfile is a Dockerfile named explicitly.
	InputDockerfile Input = "the Dockerfile"
	// InputContextDockerfile is the Dockerfile the context holds by
	// default.
	InputContextDockerfile Input = "the context's Dockerfile"
)

// InputError is a push input that cannot be used, found before any call.
type InputError struct {
	Input Input
	Value string
	// Missing: it does not exist. Otherwise Problem says what is wrong.
	Missing bool
	Problem string
}

func (e *InputError) Error() string {
	if e.Missing {
		return fmt.Sprintf("%s %s does not exist", e.Input, e.Value)
	}
	return fmt.Sprintf("%s %q %s", e.Input, e.Value, e.Problem)
}

func badInput(input Input, value, problem string) error {
	return clierror.AsUsage(&InputError{Input: input, Value: value, Problem: problem})
}

func missingInput(input Input, value string) error {
	return clierror.AsUsage(&InputError{Input: input, Value: value, Missing: true})
}

// prepareContext checks that the context folder and the Dockerfile exist,
// and notes whether the Dockerfile lies outside the context. Failures are
// usage errors (*InputError), reported before any call.
func prepareContext(dir, dockerfile string) (buildContext, error) {
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return buildContext{}, badInput(InputContext, dir, "cannot be read: "+err.Error())
	}
	st, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return buildContext{}, missingInput(InputContext, dir)
	case err != nil:
		return buildContext{}, badInput(InputContext, dir, "cannot be read: "+err.Error())
	case !st.IsDir():
		return buildContext{}, badInput(InputContext, dir, "is not a folder")
	}
	input := InputDockerfile
	if dockerfile == "" {
		dockerfile = filepath.Join(abs, "Dockerfile")
		input = InputContextDockerfile
	}
	dfAbs, err := filepath.Abs(dockerfile)
	if err != nil {
		return buildContext{}, badInput(input, dockerfile, "cannot be read: "+err.Error())
	}
	st, err = os.Stat(dfAbs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return buildContext{}, missingInput(input, dockerfile)
	case err != nil:
		return buildContext{}, badInput(input, dockerfile, "cannot be read: "+err.Error())
	case st.IsDir():
		return buildContext{}, badInput(input, dockerfile, "is a folder, not a Dockerfile")
	}
	rel, err := filepath.Rel(abs, dfAbs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return buildContext{Dir: abs, DockerfilePath: dfAbs, Dockerfile: externalDockerfileName(), External: dfAbs}, nil
	}
	return buildContext{Dir: abs, DockerfilePath: dfAbs, Dockerfile: filepath.ToSlash(rel)}, nil
}

// externalDockerfileName is a fresh name for a Dockerfile from outside the
// context, so it cannot replace a file of the context.
func externalDockerfileName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return ".containerise-dockerfile-" + hex.EncodeToString(b)
}

// ignoreFile is the ignore file that applies to a build. The classic builder
// reads the context's .dockerignore only. BuildKit prefers
// <Dockerfile>.dockerignore beside the Dockerfile, as its Dockerfile
// frontend does, and falls back to the context's .dockerignore.
func (bc buildContext) ignoreFile(buildKit bool) string {
	if buildKit {
		specific := bc.DockerfilePath + ".dockerignore"
		if st, err := os.Stat(specific); err == nil && !st.IsDir() {
			return specific
		}
	}
	return filepath.Join(bc.Dir, ".dockerignore")
}

// excludes reads the ignore file that applies and, as the docker CLI does,
// never lets it exclude the Dockerfile or the .dockerignore itself (the
// engine needs both: BuildKit's frontend reads .dockerignore from the
// context, and applies it again when it asks for the files).
func (bc buildContext) excludes(buildKit bool) ([]string, error) {
	name := bc.ignoreFile(buildKit)
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	keep := []string{".dockerignore"}
	if bc.External == "" {
		keep = append(keep, bc.Dockerfile)
	}
	for _, k := range keep {
		excluded, err := patternmatcher.MatchesOrParentMatches(k, patterns)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		if excluded {
			patterns = append(patterns, "!"+k)
		}
	}
	return patterns, nil
}

// tar streams the context as a tar through a pipe for the classic builder:
// it is never held whole in memory. Owners are reset to root, as the docker
// CLI does.
func (bc buildContext) tar() (io.ReadCloser, error) {
	excludes, err := bc.excludes(false)
	if err != nil {
		return nil, err
	}
	var external []byte
	if bc.External != "" {
		// Read before the stream starts, so a vanished file fails here.
		if external, err = os.ReadFile(bc.External); err != nil {
			return nil, fmt.Errorf("reading the Dockerfile %s: %w", bc.External, err)
		}
	}
	rc, err := archive.TarWithOptions(bc.Dir, &archive.TarOptions{
		ExcludePatterns: excludes,
		ChownOpts:       &archive.ChownOpts{UID: 0, GID: 0},
	})
	if err != nil {
		return nil, fmt.Errorf("archiving the build context %s: %w", bc.Dir, err)
	}
	if bc.External == "" {
		return rc, nil
	}
	// The wrapper appends an entry when the stream has no file of that name.
	// As the docker CLI does, the sent .dockerignore also names the added
	// Dockerfile, so that the engine drops it from the context after reading
	// it and a COPY . never sees it.
	now := time.Now()
	return archive.ReplaceFileTarWrapper(rc, map[string]archive.TarModifierFunc{
		bc.Dockerfile: func(string, *tar.Header, io.Reader) (*tar.Header, []byte, error) {
			return &tar.Header{Name: bc.Dockerfile, Typeflag: tar.TypeReg, Mode: 0o600, ModTime: now}, external, nil
		},
		".dockerignore": func(_ string, h *tar.Header, content io.Reader) (*tar.Header, []byte, error) {
			if h == nil {
				h = &tar.Header{Name: ".dockerignore", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: now}
			}
			var b []byte
			if content != nil {
				var err error
				if b, err = io.ReadAll(content); err != nil {
					return nil, nil, err
				}
			}
			return h, append(b, "\n"+bc.Dockerfile+"\n"...), nil
		},
	}), nil
}

// Names of the two folders a BuildKit session offers; the engine's
// Dockerfile frontend asks for them by these names.
const (
	sessionContextDir    = "context"
	sessionDockerfileDir = "dockerfile"
)

// sessionDirs are the folders a BuildKit session serves, read file by file
// as the engine asks (nothing is held in memory). The context is filtered by
// the same ignore file BuildKit's frontend applies, so an ignored file never
// leaves this machine, and the frontend's own patterns then apply on top. The
// Dockerfile's folder offers the Dockerfile and its own .dockerignore only.
// Owners are reset to root, as the docker CLI does.
func (bc buildContext) sessionDirs() (filesync.StaticDirSource, error) {
	excludes, err := bc.excludes(true)
	if err != nil {
		return nil, err
	}
	contextFS, err := fsutil.NewFS(bc.Dir)
	if err != nil {
		return nil, fmt.Errorf("reading the build context %s: %w", bc.Dir, err)
	}
	contextFS, err = fsutil.NewFilterFS(contextFS, &fsutil.FilterOpt{ExcludePatterns: excludes, Map: ownedByRoot})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", bc.ignoreFile(true), err)
	}
	dfDir, dfName := filepath.Split(bc.DockerfilePath)
	dockerfileFS, err := fsutil.NewFS(dfDir)
	if err != nil {
		return nil, fmt.Errorf("reading the Dockerfile's folder %s: %w", dfDir, err)
	}
	dockerfileFS, err = fsutil.NewFilterFS(dockerfileFS, &fsutil.FilterOpt{
		IncludePatterns: []string{dfName, dfName + ".dockerignore"},
		Map:             ownedByRoot,
	})
	if err != nil {
		return nil, fmt.Errorf("reading the Dockerfile's folder %s: %w", dfDir, err)
	}
	return filesync.StaticDirSource{sessionContextDir: contextFS, sessionDockerfileDir: dockerfileFS}, nil
}

func ownedByRoot(_ string, st *fstypes.Stat) fsutil.MapResult {
	st.Uid, st.Gid = 0, 0
	return fsutil.MapResultKeep
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
)

// resetMoto clears all of moto's state (POST /moto-api/reset).
func (b *bench) resetMoto() error { return b.resetMotoCtx(b.ctx) }

func (b *bench) resetMotoCtx(ctx context.Context) error {
	b.setupVars = nil
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(b.motoURL, "/")+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("resetting moto: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("resetting moto: %s", resp.Status)
	}
	return nil
}

// setupNames are the four names a setup manages.
type setupNames struct{ Repository, Policy, User, Role string }

func (n setupNames) args() []string {
	if n == (setupNames{}) {
		return nil
	}
	return []string{"--repository", n.Repository, "--policy", n.Policy, "--user", n.User, "--role", n.Role}
}

// setupRun is one timed `containerise setup`.
type setupRun struct {
	run
	Calls, Mutating int // from the --verbose summary line
}

var callSummary = regexp.MustCompile(`(?m)^aws: (\d+) calls, (\d+) mutating$`)

// setup runs `containerise --verbose setup --output dotenv` against endpoint
// (moto, or the latency proxy in front of it) with the stack's admin keys.
func (b *bench) setup(endpoint string, names setupNames) (setupRun, error) {
	args := append([]string{"--verbose", "setup", "--output", "dotenv"}, names.args()...)
	env := withEnv(b.env, []string{"AWS_ENDPOINT_URL=" + endpoint})
	r := execute(b.ctx, cmdSpec{Name: b.bin, Args: args, Dir: b.tmp, Env: env})
	sr := setupRun{run: r}
	if r.Err != nil {
		return sr, r.Err
	}
	m := callSummary.FindStringSubmatch(r.Stderr)
	if m == nil {
		return sr, fmt.Errorf("containerise --verbose setup printed no %q line:\n%s", "aws: N calls, M mutating", tail(r.Stderr, 20))
	}
	sr.Calls, _ = strconv.Atoi(m[1])
	sr.Mutating, _ = strconv.Atoi(m[2])
	return sr, nil
}

// callLevels groups the --verbose call lines of a run through the latency
// proxy into levels of the critical path. Calls sent together complete
// together (within moto's own few milliseconds), and a call that had to wait
// for another completes at least one latency later: so a completion more
// than half a latency after the previous one starts a new level. The levels
// show what ran concurrently and what had to wait.
func callLevels(lines []stampedLine, latency time.Duration) [][]string {
	var levels [][]string
	var prev time.Duration
	for _, l := range lines {
		f := strings.Fields(l.Text)
		if len(f) != 4 || f[0] != "aws:" || !strings.Contains(f[1], ".") {
			continue
		}
		if len(levels) == 0 || l.At-prev > latency/2 {
			levels = append(levels, nil)
		}
		levels[len(levels)-1] = append(levels[len(levels)-1], f[1])
		prev = l.At
	}
	return levels
}

// parseDotenv reads NAME=value lines.
func parseDotenv(s string) map[string]string {
	vars, err := godotenv.Unmarshal(s)
	if err != nil {
		return map[string]string{}
	}
	return vars
}

// ciVars resets moto and runs a setup with the blog's default names (the
// peer script pushes to circleci-ecr-test, as the blog does), and returns the CI variables
// it prints. They are kept until the next reset.
func (b *bench) ciVars() (map[string]string, error) {
	if b.setupVars != nil {
		return b.setupVars, nil
	}
	if err := b.resetMoto(); err != nil {
		return nil, err
	}
	sr, err := b.setup(b.motoURL, setupNames{})
	if err != nil {
		return nil, err
	}
	vars := parseDotenv(sr.Stdout)
	for _, k := range []string{"AWS_IAM_USER_ACCESS_KEY_ID", "AWS_IAM_USER_SECRET_ACCESS_KEY", "AWS_IAM_ROLE_ARN", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		if vars[k] == "" {
			return nil, fmt.Errorf("setup --output dotenv printed no %s", k)
		}
	}
	b.setupVars = vars
	return vars, nil
}

// ciEnv is the environment of a CI job: the stack's, less the admin keys, plus
// the CI variables that setup printed.
func (b *bench) ciEnv(vars map[string]string, extra ...string) []string {
	var set []string
	for k, v := range vars {
		set = append(set, k+"="+v)
	}
	set = append(set, extra...)
	return withEnv(b.env, set, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
}

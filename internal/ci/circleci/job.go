package circleci

import (
	"time"

	"github.com/containerise/containerise/internal/ci"
)

// Detect reports whether this process runs in a CircleCI job, which sets
// CIRCLECI=true.
func Detect(getenv func(string) string) bool { return getenv("CIRCLECI") == "true" }

// SessionName names the role session after the job's run:
// "circleci-<repository>-<build number>", from CIRCLE_PROJECT_REPONAME and
// CIRCLE_BUILD_NUM.
func SessionName(getenv func(string) string, now time.Time) string {
	return ci.SessionName(Name, getenv("CIRCLE_PROJECT_REPONAME"), getenv("CIRCLE_BUILD_NUM"), now)
}

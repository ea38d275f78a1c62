// Package buildlog reads BuildKit's plain progress output, as the e2e tests
// and the benchmarks see it on a build's standard error.
package buildlog

import "strings"

// StepCached says whether the plain progress in out shows the step whose
// name contains step as CACHED.
func StepCached(out, step string) bool {
	var id string
	for _, line := range strings.Split(out, "\n") {
		num, rest, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(num, "#") {
			continue
		}
		if id == "" && strings.HasPrefix(rest, "[") && strings.Contains(rest, step) {
			id = num
			continue
		}
		if id != "" && num == id && rest == "CACHED" {
			return true
		}
	}
	return false
}

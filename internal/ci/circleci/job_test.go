package circleci

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// The role session is named after the job's run, within STS's rules.
func TestSessionName(t *testing.T) {
	now := time.Unix(1700000000, 0)
	long := strings.Repeat("very-long-repository-name", 4)
	tests := []struct {
		env  map[string]string
		want string
	}{
		{env: map[string]string{"CIRCLE_PROJECT_REPONAME": "app", "CIRCLE_BUILD_NUM": "42"}, want: "circleci-app-42"},
		{env: map[string]string{}, want: "containerise-1700000000"},
		{env: map[string]string{"CIRCLE_BUILD_NUM": "7"}, want: "circleci-7"},
		{env: map[string]string{"CIRCLE_PROJECT_REPONAME": "my app/ä!", "CIRCLE_BUILD_NUM": "9"}, want: "circleci-my-app-9"},
		{env: map[string]string{"CIRCLE_PROJECT_REPONAME": long, "CIRCLE_BUILD_NUM": "123456"}, want: ("circleci-" + long)[:57] + "-123456"},
		{env: map[string]string{"CIRCLE_PROJECT_REPONAME": "a.b_c@d=e,f+g", "CIRCLE_BUILD_NUM": "1"}, want: "circleci-a.b_c@d=e,f+g-1"},
	}
	for _, tt := range tests {
		got := Provider{}.SessionName(func(k string) string { return tt.env[k] }, now)
		if got != tt.want {
			t.Errorf("SessionName(%v) = %q, want %q", tt.env, got, tt.want)
		}
		if len(got) < 2 || len(got) > 64 || regexp.MustCompile(`[^\w+=,.@-]`).MatchString(got) {
			t.Errorf("SessionName(%v) = %q breaks STS's rule", tt.env, got)
		}
	}
}

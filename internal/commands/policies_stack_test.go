package commands

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/containerise/containerise/internal/testsupport/awsfake"
	"github.com/containerise/containerise/policies"
)

// policiesSections runs `policies --document all` and returns its documents
// by heading: "permissions", "trust" and, when setup's grant follows the
// repository's scanning, "scanning".
func policiesSections(t *testing.T, acct *awsfake.Account, args ...string) map[string]string {
	t.Helper()
	out, errOut, code := runCLI(t, append([]string{"policies", "--account", acct.ID(), "--region", acct.Region(), "--document", "all"}, args...)...)
	if code != 0 {
		t.Fatalf("policies %v: exit %d\n%s", args, code, errOut)
	}
	docs := map[string]string{}
	for _, part := range strings.Split(out, "\n# ")[0:] {
		heading, body, _ := strings.Cut(strings.TrimPrefix(part, "# "), "\n")
		key := "permissions"
		switch {
		case strings.HasPrefix(heading, "Trust policy"):
			key = "trust"
		case strings.Contains(heading, "scans on push"):
			key = "scanning"
		}
		docs[key] = strings.TrimSpace(body)
	}
	return docs
}

// written reads back the default version of setup's policy and its role's
// trust policy.
func written(t *testing.T, acct *awsfake.Account) (perms, trust string) {
	t.Helper()
	ctx := context.Background()
	arn := policies.PolicyARN(acct.Partition(), acct.ID(), "ECRContainerise")
	pol := must(acct.IAM().GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)}))
	ver := must(acct.IAM().GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: pol.Policy.DefaultVersionId}))
	role := must(acct.IAM().GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("containerise")}))
	return aws.ToString(ver.PolicyVersion.Document), aws.ToString(role.Role.AssumeRolePolicyDocument)
}

// authCombos are the ways of trusting CI the walk below tries: the user,
// CircleCI, and the other CIs alone and beside CircleCI on one role.
var authCombos = [][]string{
	nil,
	keylessArgs,
	append(append([]string{}, keylessArgs...), "--branch", "main", "--branch", "release/$1"),
	{"--auth", "oidc", "--github-repo", "acme/app", "--branch", "main"},
	{"--auth", "oidc", "--github-repo", "acme/app", "--github-repo", "acme/lib", "--github-environment", "production", "--github-host", "github.example.com"},
	append(append([]string{}, keylessArgs...), "--github-repo", "acme/app", "--gitlab-project", "acme/sub/app", "--gitlab-host", "gitlab.example.com",
		"--gitlab-audience", "https://gitlab.example.com", "--buildkite-org", "acme", "--buildkite-pipeline", "app", "--branch", "main"),
	{"--auth", "oidc", "--bitbucket-workspace", "acme", "--bitbucket-workspace-uuid", "{0c9b4e1a-7d2f-4b8e-9a61-3f5d2c8b7e40}",
		"--bitbucket-repo-uuid", "5e6f7a8b-1c2d-4e3f-8a9b-0c1d2e3f4a5b", "--gitlab-project", "acme/app"},
}

// policies prints exactly what setup writes: for every combination of the
// flags both take, and a repository that scans on push or not, the
// documents setup leaves in the account are the ones policies shows.
func TestPoliciesShowWhatSetupWrites(t *testing.T) {
	isolateAWS(t)
	var combos [][]string
	for _, base := range [][]string{nil, {"--permissions", "blog"}} {
		for _, skip := range [][]string{nil, {"--allow-skip-existing"}} {
			for _, cache := range [][]string{nil, {"--registry-cache=false"}} {
				for _, scan := range [][]string{nil, {"--scan-on-push"}, {"--scan-on-push=false"}} {
					for _, start := range [][]string{nil, {"--allow-scan"}} {
						for _, auth := range authCombos {
							var args []string
							for _, part := range [][]string{base, skip, cache, scan, start, auth} {
								args = append(args, part...)
							}
							combos = append(combos, args)
						}
					}
				}
			}
		}
	}
	// Several repositories: one of them scanning is enough for the grant
	// that follows the repositories' scanning.
	several := []string{"--repository", "api", "--repository", "web"}
	for _, scan := range [][]string{nil, {"--scan-on-push"}, {"--scan-on-push=false"}} {
		for _, more := range [][]string{nil, {"--allow-skip-existing", "--allow-scan"}, keylessArgs} {
			combos = append(combos, append(append(append([]string{}, several...), scan...), more...))
		}
	}
	for _, scans := range []bool{false, true} {
		for _, args := range combos {
			name := fmt.Sprintf("scans=%v %s", scans, strings.Join(args, " "))
			acct := awsfake.New(awsfake.Config{})
			scanning := "circleci-ecr-test"
			if len(args) > 1 && args[0] == "--repository" {
				scanning = args[3] // the second of several
			}
			if scans {
				must(acct.ECR().CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: aws.String(scanning),
					ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: true}}))
			}
			shown := policiesSections(t, acct, args...)
			r := runSetupCmd(t, acct, append(append([]string{}, args...), "--yes")...)
			if r.err != nil {
				t.Fatalf("%s: setup: %s", name, r.message)
			}
			perms, trust := written(t, acct)
			wantPerms := shown["permissions"]
			if s, ok := shown["scanning"]; ok && scans {
				wantPerms = s
			}
			for _, c := range []struct{ what, have, want string }{{"permissions", perms, wantPerms}, {"trust", trust, shown["trust"]}} {
				doc, err := policies.Parse(c.want)
				if err != nil {
					t.Fatalf("%s: policies' %s document: %v\n%s", name, c.what, err, c.want)
				}
				if same, err := policies.Equivalent(c.have, doc); !same || err != nil {
					t.Errorf("%s: setup wrote the %s document\n%s\npolicies shows\n%s", name, c.what, c.have, c.want)
				}
			}
		}
	}
}

// The registry features' grants: policies shows what setup writes with
// --scanning (either type, which replaces the repository's own scan
// setting as the grant's source) and --signing-profile, alone and with the
// other grants.
func TestPoliciesShowWhatSetupWritesForRegistryFeatures(t *testing.T) {
	isolateAWS(t)
	profile := "arn:aws:signer:us-east-1:123456789012:/signing-profiles/ci_signing"
	for _, args := range [][]string{
		{"--scanning", "basic"},
		{"--scanning", "enhanced"},
		{"--scanning", "enhanced", "--scan-on-push=false"},
		{"--scanning", "enhanced", "--allow-scan", "--permissions", "blog"},
		{"--signing-profile", profile},
		{"--signing-profile", profile, "--scanning", "enhanced"},
		append([]string{"--signing-profile", profile, "--scanning", "basic"}, keylessArgs...),
	} {
		name := strings.Join(args, " ")
		acct := awsfake.New(awsfake.Config{})
		shown := policiesSections(t, acct, args...)
		if _, ok := shown["scanning"]; ok && strings.Contains(name, "--scanning") {
			t.Errorf("%s: with registry scanning the grant does not follow the repository's setting", name)
		}
		r := runSetupCmd(t, acct, append(append([]string{}, args...), "--yes")...)
		if r.err != nil {
			t.Fatalf("%s: setup: %s", name, r.message)
		}
		perms, _ := written(t, acct)
		doc, err := policies.Parse(shown["permissions"])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if same, err := policies.Equivalent(perms, doc); !same || err != nil {
			t.Errorf("%s: setup wrote\n%s\npolicies shows\n%s", name, perms, shown["permissions"])
		}
		for flag, action := range map[string]string{"enhanced": "inspector2:ListFindings", profile: "signer:SignPayload", "--scanning": "ecr:DescribeImageScanFindings"} {
			if strings.Contains(name, flag) != strings.Contains(shown["permissions"], action) {
				t.Errorf("%s: %s granted iff %s is asked for:\n%s", name, action, flag, shown["permissions"])
			}
		}
	}
}

package e2e

// Faults injected between containerise and the real parts (proxy_test.go
// builds the paths), each outcome checked the way a user would: the exit
// code, the one error line, and the end state read back through the real
// APIs (moto, the registry).
//
// IAM's propagation delay (a role refused as "Invalid principal", a fresh
// key refused by STS) cannot be reproduced with moto, which is consistent at
// once: it is covered by the commands' unit tests over AWS-like fakes
// (internal/awsfake; provision and push tests).

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/joho/godotenv"
)

// The blog's names: setup's and teardown's defaults.
const (
	fxRepo   = "circleci-ecr-test"
	fxPolicy = "ECRContainerise"
	fxUser   = "circleci"
	fxRole   = "containerise"
)

var fxVarNames = []string{"AWS_IAM_USER_ACCESS_KEY_ID", "AWS_IAM_USER_SECRET_ACCESS_KEY", "AWS_IAM_ROLE_ARN", "AWS_REGION", "AWS_DEFAULT_REGION"}

// fxDotenv parses NAME=value lines.
func fxDotenv(text string) map[string]string {
	vars, err := godotenv.Unmarshal(text)
	if err != nil {
		return map[string]string{}
	}
	return vars
}

// fxSetup runs setup --output dotenv (through env, e.g. a fault path) and
// returns the CircleCI variables.
func fxSetup(t *testing.T, env []string, args ...string) map[string]string {
	t.Helper()
	r := run(t, env, append([]string{"setup", "--output", "dotenv"}, args...)...)
	if r.Code != 0 {
		t.Fatalf("setup failed:\n%s", r)
	}
	vars := fxDotenv(r.Stdout)
	for _, name := range fxVarNames {
		if vars[name] == "" {
			t.Fatalf("setup printed no %s:\n%s", name, r)
		}
	}
	return vars
}

// fxCIEnv is a CI job's environment: the variables setup printed and none
// of the admin's credentials.
func fxCIEnv(vars map[string]string, extra ...string) []string {
	env := []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN="}
	for _, name := range fxVarNames {
		env = append(env, name+"="+vars[name])
	}
	return append(env, extra...)
}

// fxApp writes a build context whose image has a layer of size random bytes
// no registry has seen, so a push really uploads it.
func fxApp(t *testing.T, size int, extra string) (dir, stamp string) {
	t.Helper()
	stamp = fmt.Sprintf("%x", time.Now().UnixNano())
	blob := make([]byte, size)
	rand.Read(blob)
	df := fmt.Sprintf("FROM %s\nCOPY blob.bin /blob.bin\n%sCMD [\"sh\", \"-c\", \"echo %s\"]\n", baseImage(), extra, stamp)
	return writeApp(t, df, map[string]string{"blob.bin": string(blob)}), stamp
}

// fxPush runs push in dir as a CI job would.
func fxPush(t *testing.T, vars map[string]string, extra []string, dir string, tags ...string) result {
	t.Helper()
	args := []string{"push"}
	for _, tag := range tags {
		args = append(args, "--tag", tag)
	}
	env := fxCIEnv(vars, append([]string{"DOCKER_CONFIG=" + t.TempDir()}, extra...)...)
	return runWith(t, runOpts{env: env, dir: dir}, args...)
}

// fxPrintedDigest finds push's "<registry>/<repo>:<tag>@sha256:…" line for tag.
func fxPrintedDigest(stdout, repo, tag string) string {
	re := regexp.MustCompile(`(?m)^\S+/` + regexp.QuoteMeta(repo) + `:` + regexp.QuoteMeta(tag) + `@(sha256:[0-9a-f]{64})$`)
	if m := re.FindStringSubmatch(stdout); m != nil {
		return m[1]
	}
	return ""
}

// fxErrorLine checks a failed run's stderr: exactly one line starting with
// "Error: ", containing each of want (case-insensitive), and no Go panic or
// stack trace.
func fxErrorLine(t *testing.T, r result, want ...string) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(r.Stderr, "\n") {
		if strings.HasPrefix(l, "Error: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Errorf("want exactly one \"Error: \" line on stderr, got %d:\n%s", len(lines), r)
		return
	}
	for _, w := range want {
		if !strings.Contains(strings.ToLower(lines[0]), strings.ToLower(w)) {
			t.Errorf("the error line does not name %q: %s", w, lines[0])
		}
	}
	if m := fxTraceRE.FindString(r.Stdout + r.Stderr); m != "" {
		t.Errorf("output contains %q (a Go panic or stack trace):\n%s", m, r)
	}
}

// fxTraceRE finds what a Go panic or stack trace prints.
var fxTraceRE = regexp.MustCompile(`goroutine \d+ \[|panic: |\.go:\d+`)

// fxClients are admin clients straight to moto in region.
func fxClients(t *testing.T, region string) (*iam.Client, *ecr.Client) {
	t.Helper()
	cfg := awsClients(t).Cfg.Copy()
	cfg.Region = region
	return iam.NewFromConfig(cfg), ecr.NewFromConfig(cfg)
}

func fxAccount() string {
	account, _, _ := strings.Cut(os.Getenv("STACK_REGISTRY_HOST"), ".")
	return account
}

func fxNotFound(err error) bool {
	var nse *iamtypes.NoSuchEntityException
	var rnf *ecrtypes.RepositoryNotFoundException
	return errors.As(err, &nse) || errors.As(err, &rnf)
}

// fxNormJSON decodes a (possibly URL-encoded) policy document and re-encodes
// it with sorted keys, so equal documents compare equal.
func fxNormJSON(doc string) string {
	if d, err := url.QueryUnescape(doc); err == nil && strings.HasPrefix(strings.TrimSpace(d), "{") {
		doc = d
	}
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return "unparsable: " + doc
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func fxIAMTags(tags []iamtypes.Tag) string {
	var out []string
	for _, tg := range tags {
		out = append(out, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// fxEndState describes, through the admin API, everything setup manages
// under the default names, without the IDs and dates that differ between
// runs: equal strings mean the same end state. "absent" marks what does not
// exist.
func fxEndState(t *testing.T, region string) string {
	t.Helper()
	ctx := context.Background()
	iamc, ecrc := fxClients(t, region)
	var b strings.Builder
	must := func(what string, err error) bool {
		t.Helper()
		if err != nil && !fxNotFound(err) {
			t.Fatalf("reading %s: %v", what, err)
		}
		return err == nil
	}

	repos, err := ecrc.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{fxRepo}})
	if must("the repository", err) {
		tags, err := ecrc.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: repos.Repositories[0].RepositoryArn})
		must("the repository's tags", err)
		var kv []string
		for _, tg := range tags.Tags {
			kv = append(kv, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
		sort.Strings(kv)
		fmt.Fprintf(&b, "repository %s tags=[%s]\n", fxRepo, strings.Join(kv, ","))
	} else {
		fmt.Fprintf(&b, "repository %s absent\n", fxRepo)
	}

	policyARN := fmt.Sprintf("arn:aws:iam::%s:policy/%s", fxAccount(), fxPolicy)
	pol, err := iamc.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
	if must("the policy", err) {
		versions, err := iamc.ListPolicyVersions(ctx, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(policyARN)})
		must("the policy's versions", err)
		def, err := iamc.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(policyARN), VersionId: pol.Policy.DefaultVersionId})
		must("the policy's default version", err)
		tags, err := iamc.ListPolicyTags(ctx, &iam.ListPolicyTagsInput{PolicyArn: aws.String(policyARN)})
		must("the policy's tags", err)
		ents, err := iamc.ListEntitiesForPolicy(ctx, &iam.ListEntitiesForPolicyInput{PolicyArn: aws.String(policyARN)})
		must("the policy's attachments", err)
		var attached []string
		for _, r := range ents.PolicyRoles {
			attached = append(attached, "role:"+aws.ToString(r.RoleName))
		}
		for _, u := range ents.PolicyUsers {
			attached = append(attached, "user:"+aws.ToString(u.UserName))
		}
		for _, g := range ents.PolicyGroups {
			attached = append(attached, "group:"+aws.ToString(g.GroupName))
		}
		sort.Strings(attached)
		fmt.Fprintf(&b, "policy %s versions=%d tags=[%s] attached=[%s]\n  document %s\n", fxPolicy, len(versions.Versions),
			fxIAMTags(tags.Tags), strings.Join(attached, ","), fxNormJSON(aws.ToString(def.PolicyVersion.Document)))
	} else {
		fmt.Fprintf(&b, "policy %s absent\n", fxPolicy)
	}

	if _, err := iamc.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(fxUser)}); must("the user", err) {
		keys, err := iamc.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(fxUser)})
		must("the user's keys", err)
		var active int
		for _, k := range keys.AccessKeyMetadata {
			if k.Status == iamtypes.StatusTypeActive {
				active++
			}
		}
		tags, err := iamc.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String(fxUser)})
		must("the user's tags", err)
		att, err := iamc.ListAttachedUserPolicies(ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(fxUser)})
		must("the user's policies", err)
		inl, err := iamc.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String(fxUser)})
		must("the user's inline policies", err)
		fmt.Fprintf(&b, "user %s keys=%d active=%d tags=[%s] attached=%d inline=%d\n", fxUser, len(keys.AccessKeyMetadata), active,
			fxIAMTags(tags.Tags), len(att.AttachedPolicies), len(inl.PolicyNames))
	} else {
		fmt.Fprintf(&b, "user %s absent\n", fxUser)
	}

	if role, err := iamc.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(fxRole)}); must("the role", err) {
		tags, err := iamc.ListRoleTags(ctx, &iam.ListRoleTagsInput{RoleName: aws.String(fxRole)})
		must("the role's tags", err)
		att, err := iamc.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(fxRole)})
		must("the role's policies", err)
		var names []string
		for _, p := range att.AttachedPolicies {
			names = append(names, aws.ToString(p.PolicyName))
		}
		sort.Strings(names)
		inl, err := iamc.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(fxRole)})
		must("the role's inline policies", err)
		fmt.Fprintf(&b, "role %s tags=[%s] attached=[%s] inline=%d\n  trust %s\n", fxRole, fxIAMTags(tags.Tags),
			strings.Join(names, ","), len(inl.PolicyNames), fxNormJSON(aws.ToString(role.Role.AssumeRolePolicyDocument)))
	} else {
		fmt.Fprintf(&b, "role %s absent\n", fxRole)
	}
	return b.String()
}

// fxGone is the end state of a complete teardown.
var fxGone = fmt.Sprintf("repository %s absent\npolicy %s absent\nuser %s absent\nrole %s absent\n", fxRepo, fxPolicy, fxUser, fxRole)

// fxCheckComplete checks the parts of a complete setup a user relies on:
// exactly one access key, one policy version, the policy attached to the
// role, the role trusting the user, everything tagged.
func fxCheckComplete(t *testing.T, state string) {
	t.Helper()
	userARN := fmt.Sprintf("arn:aws:iam::%s:user/%s", fxAccount(), fxUser)
	for _, want := range []string{
		"repository " + fxRepo + " tags=[managed-by=containerise]",
		"user " + fxUser + " keys=1 active=1 tags=[managed-by=containerise] attached=0 inline=0",
		"role " + fxRole + " tags=[managed-by=containerise] attached=[" + fxPolicy + "] inline=0",
		`"AWS":"` + userARN + `"`,
	} {
		if !strings.Contains(state, want) {
			t.Errorf("end state lacks %q:\n%s", want, state)
		}
	}
	// The policy also carries the tags a rerun reads instead of the
	// document: its only version, v1, and that document's digest.
	policy := regexp.MustCompile(`(?m)^policy ` + regexp.QuoteMeta(fxPolicy) + ` versions=1 tags=\[containerise/default-version=v1,` +
		`containerise/document-sha256=[0-9a-f]{64},managed-by=containerise\] attached=\[role:` + regexp.QuoteMeta(fxRole) + `\]$`)
	if !policy.MatchString(state) {
		t.Errorf("end state lacks the policy, version 1, tagged managed-by=containerise with its version and digest, attached to role %s:\n%s", fxRole, state)
	}
}

// fxPutImage puts an image in the repository through the ECR API, so a
// teardown has images to delete with it.
func fxPutImage(t *testing.T, region string) {
	t.Helper()
	_, ecrc := fxClients(t, region)
	manifest := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",` +
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`
	_, err := ecrc.PutImage(context.Background(), &ecr.PutImageInput{
		RepositoryName: aws.String(fxRepo), ImageManifest: aws.String(manifest), ImageTag: aws.String("v1"),
	})
	if err != nil {
		t.Fatalf("putting an image in %s: %v", fxRepo, err)
	}
}

// ---------------------------------------------------------------- throttling and 5xx

func TestFaultEveryNthAWSCallThrottledOr5xx(t *testing.T) {
	region := awsClients(t).Cfg.Region
	for _, tc := range []struct {
		name string
		f    awsFault
		n    int
	}{
		{"every 3rd call throttled", fThrottle, 3},
		{"every 4th call answered 503", fUnavailable, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetAWS(t)
			p := newAWSPath(t)
			p.setFault(everyNth(tc.n, tc.f))
			faulted := func() int {
				n := 0
				for _, c := range p.Calls() {
					if c.Fault != "" {
						n++
					}
				}
				return n
			}

			vars := fxSetup(t, p.env())
			fxCheckComplete(t, fxEndState(t, region))
			if faulted() == 0 {
				t.Fatalf("no call was faulted during setup:\n%s", p.Summary())
			}
			t.Logf("setup: %d requests, %d answered %s", len(p.Calls()), faulted(), tc.f)

			app, stamp := fxApp(t, 4<<10, "")
			tag := "nth-" + stamp
			before := len(p.Calls())
			r := fxPush(t, vars, p.env(), app, tag)
			if r.Code != 0 {
				t.Fatalf("push failed:\n%s\ncalls:\n%s", r, p.Summary())
			}
			if d := fxPrintedDigest(r.Stdout, fxRepo, tag); d == "" || manifestDigest(t, fxRepo, tag) != d {
				t.Errorf("push printed digest %q; the registry has %q", d, manifestDigest(t, fxRepo, tag))
			}
			t.Logf("push: %d requests", len(p.Calls())-before)

			td := run(t, p.env(), "teardown", "--yes")
			if td.Code != 0 {
				t.Fatalf("teardown failed:\n%s\ncalls:\n%s", td, p.Summary())
			}
			if got := fxEndState(t, region); got != fxGone {
				t.Errorf("after teardown:\n%s", got)
			}
			t.Logf("in all: %d requests, %d answered %s, SDK retries: %d", len(p.Calls()), faulted(), tc.f, len(p.Retried()))
		})
	}
}

// ---------------------------------------------------------------- latency

func TestFaultLatencyOnEveryAWSCall(t *testing.T) {
	resetAWS(t)
	region := awsClients(t).Cfg.Region
	p := newAWSPath(t)
	p.tox.latency(100*time.Millisecond, 0)

	check := func(what string, r result, start time.Time) {
		t.Helper()
		if r.Code != 0 {
			t.Fatalf("%s with 100 ms latency failed:\n%s\ncalls:\n%s", what, r, p.Summary())
		}
		if d := p.Duplicates(); len(d) > 0 {
			t.Errorf("%s made these calls twice: %v\ncalls:\n%s", what, d, p.Summary())
		}
		if rt := p.Retried(); len(rt) > 0 {
			t.Errorf("%s: the SDK retried under latency alone: %v", what, rt)
		}
		t.Logf("%s: %d calls in %v", what, len(p.Calls()), time.Since(start).Round(time.Millisecond))
		p.reset()
	}

	start := time.Now()
	r := run(t, p.env(), "setup", "--output", "dotenv")
	check("setup", r, start)
	vars := fxDotenv(r.Stdout)
	fxCheckComplete(t, fxEndState(t, region))

	start = time.Now()
	r = run(t, p.env(), "setup", "--output", "dotenv")
	check("setup rerun", r, start)

	app, stamp := fxApp(t, 4<<10, "")
	start = time.Now()
	r = fxPush(t, vars, p.env(), app, "latency-"+stamp)
	check("push", r, start)
	if d := fxPrintedDigest(r.Stdout, fxRepo, "latency-"+stamp); d == "" || manifestDigest(t, fxRepo, "latency-"+stamp) != d {
		t.Errorf("push printed digest %q; the registry has %q", d, manifestDigest(t, fxRepo, "latency-"+stamp))
	}

	start = time.Now()
	r = run(t, p.env(), "teardown", "--yes")
	check("teardown", r, start)
	if got := fxEndState(t, region); got != fxGone {
		t.Errorf("after teardown:\n%s", got)
	}
}

// ---------------------------------------------------------------- cut-offs

// fxCutModes are the ways a run is cut off:
//   - refused: every request after the k-th is answered AccessDenied (the
//     admin's session expired, a permission was revoked);
//   - killed: the process is killed (SIGKILL) when request k+1 arrives;
//   - answer lost: the first call of one mutating operation reaches AWS and
//     is applied, but its connection is cut before the answer; the SDK's own
//     retry and the rest of the run go on.
//
// Independent calls run concurrently, so the k-th request is not always the
// same operation: refused and killed runs are named by k alone, lost answers
// by their operation.
var fxCutModes = []string{"refused", "killed", "answer lost"}

// fxCutRun runs containerise with a cut-off: after request k (refused,
// killed) or at the first call of operation op (answer lost).
func fxCutRun(t *testing.T, p *awsPath, mode string, k int, op string, args ...string) result {
	t.Helper()
	switch mode {
	case "refused":
		p.setFault(afterCall(k, fRefuse))
		return run(t, p.env(), args...)
	case "answer lost":
		lost := false
		p.setFault(func(c awsCall) awsFault {
			if !lost && c.Name() == op {
				lost = true
				return fLoseAnswer
			}
			return fPass
		})
		return run(t, p.env(), args...)
	}
	var victim atomic.Pointer[os.Process]
	p.setFault(func(c awsCall) awsFault {
		if c.N <= k {
			return fPass
		}
		if pr := victim.Load(); pr != nil {
			pr.Kill()
		}
		return fDrop
	})
	bp := startBinary(t, runOpts{env: p.env()}, args...)
	victim.Store(bp.cmd.Process)
	return bp.wait(t)
}

// fxCutOffs runs the cut-off matrix for a command: prepare the account, run
// args once cleanly to count its requests and get the reference end state,
// then for each cut-off: prepare, cut off, check the cut run, rerun cleanly,
// and compare the end state with the reference.
func fxCutOffs(t *testing.T, prepare func(t *testing.T), args []string, checkCut func(t *testing.T, mode string, cut result)) {
	region := awsClients(t).Cfg.Region
	p := newAWSPath(t)

	resetAWS(t)
	prepare(t)
	p.reset()
	ref := run(t, p.env(), args...)
	if ref.Code != 0 {
		t.Fatalf("%v without faults failed:\n%s", args, ref)
	}
	calls := p.Calls()
	want := fxEndState(t, region)
	t.Logf("%v makes %d calls: %s", args, len(calls), strings.Join(p.Names(), " "))

	type cutOff struct {
		mode, op, name string
		k              int
	}
	var cuts []cutOff
	for _, mode := range []string{"refused", "killed"} {
		for k := 0; k < len(calls); k++ {
			cuts = append(cuts, cutOff{mode: mode, k: k, name: fmt.Sprintf("%s after %d calls", mode, k)})
		}
	}
	seen := map[string]bool{}
	for _, c := range calls {
		if c.Mutating() && !seen[c.Name()] {
			seen[c.Name()] = true
			cuts = append(cuts, cutOff{mode: "answer lost", op: c.Name(), name: "answer lost: " + c.Name()})
		}
	}
	for _, co := range cuts {
		t.Run(co.name, func(t *testing.T) {
			resetAWS(t)
			prepare(t)
			p.reset()
			cut := fxCutRun(t, p, co.mode, co.k, co.op, args...)
			cutCalls := p.Summary()
			if checkCut != nil {
				checkCut(t, co.mode, cut)
			}
			if t.Failed() {
				t.Logf("cut run's calls:\n%s", cutCalls)
			}
			p.reset()
			again := run(t, p.env(), args...)
			if again.Code != 0 {
				t.Fatalf("the rerun after the cut-off failed:\n%s\ncut run:\n%s\ncut run's calls:\n%s", again, cut, cutCalls)
			}
			if got := fxEndState(t, region); got != want {
				t.Errorf("end state after the cut-off and a rerun:\n%s\nwant (a run without faults):\n%s\ncut run:\n%s\ncut run's calls:\n%s",
					got, want, cut, cutCalls)
			}
		})
	}
}

// fxCheckCut checks what a cut-off run told its user: a run that could still
// speak either failed with one clear error line or, having finished all
// that matters despite the fault, succeeded with the end state complete
// (checked by complete); a killed run did not report success.
func fxCheckCut(t *testing.T, mode string, cut result, complete func(t *testing.T)) {
	t.Helper()
	switch {
	case mode == "killed":
		if cut.Code == 0 {
			t.Errorf("the killed run exited 0:\n%s", cut)
		}
	case cut.Code == 1:
		fxErrorLine(t, cut)
	case cut.Code == 0:
		complete(t)
	default:
		t.Errorf("want exit 0 or 1, got:\n%s", cut)
	}
}

func TestFaultSetupCutOffThenRerun(t *testing.T) {
	region := awsClients(t).Cfg.Region
	args := []string{"setup", "--output", "dotenv"}
	fxCutOffs(t, func(*testing.T) {}, args, func(t *testing.T, mode string, cut result) {
		fxCheckCut(t, mode, cut, func(t *testing.T) { fxCheckComplete(t, fxEndState(t, region)) })
		if mode == "killed" {
			return
		}
		// A key that exists after a run that could still speak must have
		// been printed by it with its secret: nobody else can ever see that
		// secret, and a key without it is of no use to CI.
		iamc, _ := fxClients(t, region)
		keys, err := iamc.ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(fxUser)})
		if err != nil || len(keys.AccessKeyMetadata) == 0 {
			return
		}
		printed := fxDotenv(cut.Stdout)
		for _, k := range keys.AccessKeyMetadata {
			if printed["AWS_IAM_USER_ACCESS_KEY_ID"] != aws.ToString(k.AccessKeyId) || printed["AWS_IAM_USER_SECRET_ACCESS_KEY"] == "" {
				t.Errorf("the user has access key %s after the cut run, but the run did not print it with its secret; its secret is lost:\n%s",
					aws.ToString(k.AccessKeyId), cut)
			}
		}
	})
}

func TestFaultTeardownCutOffThenRerun(t *testing.T) {
	region := awsClients(t).Cfg.Region
	prepare := func(t *testing.T) {
		t.Helper()
		fxSetup(t, nil)
		fxPutImage(t, region)
	}
	fxCutOffs(t, prepare, []string{"teardown", "--yes"}, func(t *testing.T, mode string, cut result) {
		fxCheckCut(t, mode, cut, func(t *testing.T) {
			if got := fxEndState(t, region); got != fxGone {
				t.Errorf("teardown exited 0 but left:\n%s", got)
			}
		})
	})
	if got := fxEndState(t, region); got != fxGone {
		t.Errorf("teardown's end state:\n%s", got)
	}
}

// ---------------------------------------------------------------- registry

func TestFaultRegistryLayerUpload(t *testing.T) {
	resetAWS(t)
	rp := newRegistryPath(t)
	vars := fxSetup(t, nil, "--region", rp.Region)
	if vars["AWS_REGION"] != rp.Region {
		t.Fatalf("setup --region %s printed AWS_REGION=%s", rp.Region, vars["AWS_REGION"])
	}
	p := newAWSPath(t)

	for _, tc := range []struct {
		name        string
		arm         func()
		mustRecover bool // false: recovering and failing cleanly are both right
		mustFail    bool
	}{
		{"refused once (503 on the first layer upload)", func() { rp.setFault(onceOnUpload(regUnavailable)) }, false, false},
		{"dropped once (toxiproxy cuts the first connection past 256 KiB)", func() { rp.dropUploadOnce(256 << 10) }, false, false},
		{"refused every time (403 DENIED on every layer upload)", func() { rp.setFault(alwaysOnUpload(regDenied)) }, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, stamp := fxApp(t, 1<<20, "")
			tags := []string{"up-" + stamp, "up2-" + stamp}
			rp.setFault(nil)
			rp.tox.clear()
			p.reset()
			before := len(rp.Requests())
			tc.arm()
			start := time.Now()
			r := fxPush(t, vars, p.env(), app, tags...)
			took := time.Since(start).Round(time.Millisecond)
			rp.setFault(nil)
			rp.tox.clear()

			var patches []string
			for _, req := range rp.Requests()[before:] {
				if strings.HasPrefix(req, "PATCH ") {
					patches = append(patches, req)
				}
			}
			if len(patches) == 0 {
				t.Fatalf("no layer upload went through the registry path:\n%s", r)
			}
			if m := p.Mutating(); len(m) > 0 {
				t.Errorf("push made mutating AWS calls: %v", m)
			}
			switch {
			case r.Code == 0 && !tc.mustFail:
				for _, tag := range tags {
					d := fxPrintedDigest(r.Stdout, fxRepo, tag)
					if d == "" || manifestDigest(t, fxRepo, tag) != d {
						t.Errorf("push printed %q for %s; the registry has %q", d, tag, manifestDigest(t, fxRepo, tag))
					}
				}
				t.Logf("recovered in %v; uploads: %v", took, patches)
			case r.Code == 1 && !tc.mustRecover:
				fxErrorLine(t, r)
				for _, tag := range tags {
					if d := manifestDigest(t, fxRepo, tag); d != "" {
						t.Errorf("the failed push left tag %s (%s) in the registry", tag, d)
					}
				}
				if strings.Contains(r.Stdout, "@sha256:") {
					t.Errorf("the failed push printed a pushed digest:\n%s", r.Stdout)
				}
				t.Logf("failed cleanly in %v: %s", took, fxFirstErrorLine(r))
			default:
				t.Errorf("push under %s: exit %d:\n%s\nuploads: %v", tc.name, r.Code, r, patches)
			}
		})
	}
}

func fxFirstErrorLine(r result) string {
	for _, l := range strings.Split(r.Stderr, "\n") {
		if strings.HasPrefix(l, "Error: ") {
			return l
		}
	}
	return ""
}

// ---------------------------------------------------------------- Docker engine

func TestFaultDockerEngineUnreachable(t *testing.T) {
	resetAWS(t)
	vars := fxSetup(t, nil)
	p := newAWSPath(t)
	app, stamp := fxApp(t, 1<<10, "")

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, host := range []string{
		"unix://" + filepath.Join(t.TempDir(), "docker.sock"), // no engine at that socket
		"tcp://" + closedAddr, // a remote engine that is gone
	} {
		t.Run(host, func(t *testing.T) {
			p.reset()
			r := fxPush(t, vars, p.env("DOCKER_HOST="+host), app, "dead-"+stamp)
			if r.Code != 1 {
				t.Fatalf("push with DOCKER_HOST=%s: want exit 1:\n%s", host, r)
			}
			fxErrorLine(t, r, "DOCKER_HOST")
			if m := p.Mutating(); len(m) > 0 {
				t.Errorf("push made mutating AWS calls: %v", m)
			}
		})
	}
}

func TestFaultDockerEngineStopsMidBuild(t *testing.T) {
	resetAWS(t)
	vars := fxSetup(t, nil)
	dp := newDockerPath(t)
	marker := fmt.Sprintf("midbuild-%x", time.Now().UnixNano())
	app, _ := fxApp(t, 1<<10, fmt.Sprintf("RUN echo %s && sleep 15\n", marker))
	tag := "mid-" + marker

	env := fxCIEnv(vars, "DOCKER_HOST="+dp.Host, "DOCKER_CONFIG="+t.TempDir())
	// The classic builder runs RUN in an engine container, which
	// fxEngineRuns sees; buildkit_test.go has BuildKit's case.
	bp := startBinary(t, runOpts{env: env, dir: app}, "push", "--builder", "classic", "--tag", tag)
	fxEngineGoneMidBuild(t, dp, bp, tag, func() bool { return fxEngineRuns(t, marker) })
}

// fxEngineGoneMidBuild takes the engine away once running says the build
// reached its RUN step, then checks that push fails naming DOCKER_HOST,
// soon, and leaves no tag behind.
func fxEngineGoneMidBuild(t *testing.T, dp *dockerPath, bp *bgProc, tag string, running func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !running() {
		if time.Now().After(deadline) {
			dp.tox.stop()
			t.Fatalf("the build never reached its RUN step:\n%s", bp.wait(t))
		}
		time.Sleep(200 * time.Millisecond)
	}
	dp.tox.stop()
	start := time.Now()
	r := bp.wait(t)
	if r.Code != 1 {
		t.Fatalf("push whose engine went away mid-build: want exit 1:\n%s", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("push took %v to notice the engine was gone", d)
	}
	fxErrorLine(t, r, "DOCKER_HOST")
	if d := manifestDigest(t, fxRepo, tag); d != "" {
		t.Errorf("the interrupted push left tag %s", tag)
	}
}

// fxEngineRuns says whether a running container's command contains marker.
func fxEngineRuns(t *testing.T, marker string) bool {
	t.Helper()
	resp, err := engineClient(t).Get("http://docker/containers/json")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var list []struct{ Command string }
	if json.NewDecoder(resp.Body).Decode(&list) != nil {
		return false
	}
	for _, c := range list {
		if strings.Contains(c.Command, marker) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- two setups at once

type fxSetupDoc struct {
	Resources []struct {
		Kind, Name, ARN, Status string
	} `json:"resources"`
	Variables       map[string]string `json:"variables"`
	SecretAvailable bool              `json:"secret_available"`
}

func TestFaultTwoSetupsAtOnce(t *testing.T) {
	region := awsClients(t).Cfg.Region
	iamc, _ := fxClients(t, region)
	// Straight to moto the two runs overlap by a few milliseconds; through a
	// path with 100 ms latency on every call, both finish reading before
	// either writes, so they race on every create, the access key included.
	slow := newAWSPath(t)
	slow.tox.latency(100*time.Millisecond, 20*time.Millisecond)
	for round := 1; round <= 4; round++ {
		var env []string
		name := fmt.Sprintf("round %d straight to moto", round)
		if round > 2 {
			env = slow.env()
			name = fmt.Sprintf("round %d with 100 ms latency", round)
		}
		t.Run(name, func(t *testing.T) {
			resetAWS(t)
			slow.reset()
			a := startBinary(t, runOpts{env: env}, "setup", "--output", "json")
			b := startBinary(t, runOpts{env: env}, "setup", "--output", "json")
			results := []result{a.wait(t), b.wait(t)}
			var docs []fxSetupDoc
			for i, r := range results {
				if r.Code != 0 {
					t.Fatalf("setup %d of 2 failed:\n%s\nthe other:\n%s", i+1, r, results[1-i])
				}
				var d fxSetupDoc
				if err := json.Unmarshal([]byte(r.Stdout), &d); err != nil {
					t.Fatalf("setup %d printed no JSON: %v\n%s", i+1, err, r)
				}
				docs = append(docs, d)
			}

			state := fxEndState(t, region)
			keys, err := iamc.ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(fxUser)})
			if err != nil {
				t.Fatal(err)
			}
			n := len(keys.AccessKeyMetadata)
			if n < 1 || n > 2 {
				t.Errorf("the user has %d access keys after two setups", n)
			}
			// Everything else exactly once and complete (the key count aside).
			fxCheckComplete(t, strings.Replace(state, fmt.Sprintf("keys=%d active=%d", n, n), "keys=1 active=1", 1))

			// Honest: each resource created by exactly one run; every key the
			// user has was printed with its secret by the run that made it,
			// and a run that printed a key made it.
			for _, kind := range []string{"repository", "policy", "user", "role"} {
				var statuses []string
				created := 0
				for _, d := range docs {
					for _, res := range d.Resources {
						if res.Kind == kind {
							statuses = append(statuses, res.Status)
							if res.Status == "created" {
								created++
							}
						}
					}
				}
				if created != 1 {
					t.Errorf("%s: the two runs report %v; exactly one of them created it", kind, statuses)
				}
			}
			printed := map[string]bool{}
			for i, d := range docs {
				id := d.Variables["AWS_IAM_USER_ACCESS_KEY_ID"]
				if d.SecretAvailable {
					if id == "" || d.Variables["AWS_IAM_USER_SECRET_ACCESS_KEY"] == "" {
						t.Errorf("setup %d says a secret is available but printed key %q without it", i+1, id)
					}
					printed[id] = true
				} else if d.Variables["AWS_IAM_USER_SECRET_ACCESS_KEY"] != "" {
					t.Errorf("setup %d printed a secret but says none is available", i+1)
				}
			}
			for _, k := range keys.AccessKeyMetadata {
				if !printed[aws.ToString(k.AccessKeyId)] {
					t.Errorf("key %s exists but neither run printed it with its secret:\n%s\n%s", aws.ToString(k.AccessKeyId), results[0], results[1])
				}
			}
			if len(printed) != n {
				t.Errorf("the runs printed %d new keys; the user has %d", len(printed), n)
			}
			t.Logf("keys: %d; statuses: %s | %s", n, fxStatuses(docs[0]), fxStatuses(docs[1]))
			if env != nil {
				count := map[string]int{}
				for _, name := range slow.Mutating() {
					count[name]++
				}
				t.Logf("mutating calls of both runs: %v", count)
			}
		})
	}
}

func fxStatuses(d fxSetupDoc) string {
	var out []string
	for _, r := range d.Resources {
		out = append(out, r.Kind+"="+r.Status)
	}
	return strings.Join(out, " ")
}

// ---------------------------------------------------------------- AWS stops answering

// TestFaultAWSStopsAnsweringThenInterrupt black-holes the AWS endpoint
// (toxiproxy's timeout toxic with no timeout: requests go out, no answer
// ever comes back) and interrupts the run as Ctrl-C or a CI cancel would:
// the command must stop promptly, say it was cancelled, and a rerun must
// converge.
func TestFaultAWSStopsAnsweringThenInterrupt(t *testing.T) {
	region := awsClients(t).Cfg.Region
	resetAWS(t)
	vars := fxSetup(t, nil)
	app, stamp := fxApp(t, 1<<10, "")
	for _, tc := range []struct {
		name string
		opts func(p *awsPath) runOpts
		args []string
	}{
		{"setup", func(p *awsPath) runOpts { return runOpts{env: p.env()} }, []string{"setup", "--output", "dotenv"}},
		{"push", func(p *awsPath) runOpts {
			return runOpts{env: fxCIEnv(vars, p.env("DOCKER_CONFIG="+t.TempDir())...), dir: app}
		}, []string{"push", "--tag", "hang-" + stamp}},
		{"teardown", func(p *awsPath) runOpts { return runOpts{env: p.env()} }, []string{"teardown", "--yes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newAWSPath(t)
			p.tox.timeout("downstream", 0)
			bp := startBinary(t, tc.opts(p), tc.args...)
			deadline := time.Now().Add(30 * time.Second)
			for len(p.Calls()) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no AWS call was made")
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(time.Second) // hanging on the black hole
			sent := time.Now()
			bp.cmd.Process.Signal(os.Interrupt)
			r := bp.wait(t)
			if d := time.Since(sent); d > 5*time.Second {
				t.Errorf("%s took %v to stop after the interrupt", tc.name, d)
			}
			if r.Code != 130 {
				t.Errorf("an interrupted %s: want exit 130:\n%s", tc.name, r)
			}
			fxErrorLine(t, r, "cancel")
			if m := p.Mutating(); len(m) > 0 && tc.name == "push" {
				t.Errorf("push made mutating AWS calls: %v", m)
			}
			t.Logf("calls before the interrupt: %v; %s", p.Names(), fxFirstErrorLine(r))
		})
	}
	// The account is whole (teardown never got an answer, so deleted
	// nothing it knew of): a rerun of setup converges.
	again := run(t, nil, "setup", "--output", "dotenv")
	if again.Code != 0 {
		t.Fatalf("setup after the interrupted runs failed:\n%s", again)
	}
	fxCheckComplete(t, fxEndState(t, region))
}

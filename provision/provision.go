// Package provision is the logic of `containerise setup`: it creates, or
// corrects, what the blog post clicks into existence (an ECR repository, a
// managed policy that may push to it, an IAM user with one access key, and a
// role with the policy attached that only that user may assume), then
// reports the CircleCI variables.
//
// Setup is the resource model's read, diff, apply: every resource is read
// first, concurrently; the differences from what is wanted become steps;
// the steps run, independent ones concurrently. Rerunning it makes no
// mutating call when nothing drifted and never creates a second access key.
// What it creates carries the tag managed-by=containerise; resources without
// the tag (made by hand) are used as they are and reported as unmanaged,
// with what differs.
//
// Keyless (AuthOIDC): instead of the user and its key, setup creates the IAM
// OIDC provider of the CircleCI organisation's token issuer and makes the
// role trust the organisation's jobs (of the given projects, and branches)
// through it; CI then needs no secret at all. A user left from an earlier
// setup with keys is deleted, keys first, once a person confirms (CI may
// still hold its key). Switching back to keys rewrites the role's trust to
// the user and leaves the provider, which other roles may use (teardown
// removes it).
//
// A key rotation ends in two moves: Run creates the new key and leaves the
// old one active; once the caller has delivered the new secret, Finish
// deletes the old key (or keeps it), and Discard removes a new key whose
// secret could not be delivered.
package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/ci"
	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/names"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/policies"
)

// DefaultPropagationWait bounds how long setup waits for IAM to accept a new
// user as a role's principal (Terraform's AWS provider waits as long).
const DefaultPropagationWait = 2 * time.Minute

// Options say what to set up.
type Options struct {
	Repository, Policy, User, Role string
	// Repositories, when set, are every repository the role pushes to (all
	// in Region), and Repository is ignored.
	Repositories []string
	// Region is the region of the repository (the SDK config's region).
	Region string
	// Grants choose the policy's statements: least privilege or the blog's,
	// plus the reads of the features CI uses.
	Grants policies.PermissionOptions
	// Settings are the repository's settings to hold; those not asked for
	// are left as they are.
	Settings resource.Settings
	// Scanning, when set, is the registry scanning rule that covers the
	// repository; SigningProfile, the AWS Signer profile of the registry's
	// managed signing rule for it.
	Scanning       *resource.Scanning
	SigningProfile string
	// DryRun reads and plans, and makes no mutating call.
	DryRun bool
	// RotateKey creates a new access key when the user has one; the old one
	// stays until Finish.
	RotateKey bool
	// PropagationWait bounds the wait for IAM to accept a new user as the
	// role's principal; 0 means DefaultPropagationWait.
	PropagationWait time.Duration
	// Confirmed lets Run make the changes that ask for confirmation.
	Confirmed bool
	// Confirm, when set and not Confirmed, is asked once the plan is made
	// whether its questions (changes that take away what someone may still
	// use) may be done; an error stops setup before any change.
	Confirm func(questions []string) (bool, error)
	// CircleCI, when set, is where setup writes the variables itself (the
	// Provisioner's CircleCI client does): the new secret then goes there
	// and nowhere else.
	CircleCI *resource.CircleCITarget
	// Auth is how CI assumes the role: AuthKeys (the default) or AuthOIDC.
	Auth Auth
	// OIDC says, with AuthOIDC, which CircleCI jobs the role trusts.
	OIDC circleci.Selector
	// Trust, with AuthOIDC, are the jobs of other CIs the role also trusts
	// (each CI's selector; CircleCI's is OIDC, when its organisation is set).
	Trust []ci.Selector
}

// Auth is how CI authenticates to assume the role.
type Auth string

// Ways to authenticate.
const (
	// AuthKeys is the blog's way: the access key of an IAM user, which is
	// the role's only principal.
	AuthKeys Auth = "keys"
	// AuthOIDC is keyless: CircleCI's OIDC token for the job, trusted
	// through the organisation's IAM OIDC provider.
	AuthOIDC Auth = "oidc"
)

// Keyless reports whether CI authenticates with its OIDC token.
func (o Options) Keyless() bool { return o.Auth == AuthOIDC }

// Spec is the options as the resource model's one description of what
// setup makes.
func (o Options) Spec() resource.Spec {
	return resource.Spec{
		Repository: o.Repository, Policy: o.Policy, User: o.User, Role: o.Role, Region: o.Region,
		Grants: o.Grants, Settings: o.Settings, Scanning: o.Scanning, SigningProfile: o.SigningProfile, RotateKey: o.RotateKey,
		Trust: o.trust(), CircleCI: o.CircleCI, Repositories: o.repositories(),
	}
}

// trust are the selectors of a keyless setup: CircleCI's, unless only
// other CIs are named, then theirs.
func (o Options) trust() []ci.Selector {
	if !o.Keyless() {
		return nil
	}
	var out []ci.Selector
	if o.OIDC.OrgID != "" || len(o.Trust) == 0 {
		out = append(out, o.OIDC)
	}
	return append(out, o.Trust...)
}

// Validate checks the names, the region, the settings and, keyless, what
// the role is to trust, before any API call.
func (o Options) Validate() error {
	switch o.Auth {
	case "", AuthKeys, AuthOIDC:
	default:
		return clierror.Usagef("the authentication %q is invalid: use %s or %s", o.Auth, AuthKeys, AuthOIDC)
	}
	return o.Spec().Validate(resource.Meaning)
}

func (o Options) wait() time.Duration {
	if o.PropagationWait > 0 {
		return o.PropagationWait
	}
	return DefaultPropagationWait
}

// Provisioner runs setup with the given clients. *iam.Client, *ecr.Client
// and *sts.Client satisfy the field types.
type Provisioner struct {
	IAM resource.IAM
	ECR resource.ECR
	STS awsx.CallerAPI
	// CircleCI writes the variables when Options.CircleCI names a target.
	CircleCI resource.CircleCIAPI
	// KMS resolves the key asked for with Settings.KMSKey (*kms.Client);
	// nil is fine when none is.
	KMS resource.KMS
	// Logf receives progress lines (for stderr). It never receives a secret.
	// Calls are serialised, so it need not be safe for concurrent use.
	Logf func(format string, args ...any)

	// Test hooks: the clock, the sleep between retries, and how long to wait
	// for a concurrent setup's decision about its access key (default 5s).
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	raceWait time.Duration
}

// Variables are the CircleCI environment variables, under the blog's names.
type Variables struct {
	AccessKeyID     string // AWS_IAM_USER_ACCESS_KEY_ID
	SecretAccessKey string // AWS_IAM_USER_SECRET_ACCESS_KEY; only when just created
	RoleARN         string // AWS_IAM_ROLE_ARN
	Region          string // AWS_REGION
	// Keyless: CI assumes the role with its OIDC token, so there is no key
	// to pass.
	Keyless bool
}

// Pairs returns the variables as name/value pairs in the blog's order,
// without the secret when it is not available, and without the key at all
// when keyless.
func (v Variables) Pairs() [][2]string {
	var out [][2]string
	if !v.Keyless {
		out = append(out, [2]string{names.EnvAccessKeyID, v.AccessKeyID})
		if v.SecretAccessKey != "" {
			out = append(out, [2]string{names.EnvSecretAccessKey, v.SecretAccessKey})
		}
	}
	return append(out, [2]string{names.EnvRoleARN, v.RoleARN}, [2]string{names.EnvRegion, v.Region}, [2]string{names.EnvDefaultRegion, v.Region})
}

// Rotation is a key rotation whose old key is still active.
type Rotation struct {
	User, OldKeyID, NewKeyID string
	// DeleteCommand is the aws CLI command that deletes the old key.
	DeleteCommand string
}

// Result is what setup did, for the command to render.
type Result struct {
	Account, Region, Partition string
	DryRun                     bool
	Resources                  []*resource.Report
	Variables                  Variables
	// SecretAvailable: the access key was created by this run, so its
	// secret is in Variables. It exists nowhere else.
	SecretAvailable bool
	// SecretIn names where the new secret went instead of the result
	// ("CircleCI project gh/acme/app"); then it is not in Variables.
	SecretIn string
	// Keyless: CI assumes the role with its OIDC token; there is no key.
	Keyless bool
	// CircleCIHolds says what CircleCI holds of the key after a run that
	// failed while writing it; Variables.AccessKeyID is then the ID it
	// holds ("" when unknown).
	CircleCIHolds string
	// Rotation is set when this run created a key to replace one that is
	// still active: Finish retires it.
	Rotation *Rotation
	// Notes are things the user should know or do next.
	Notes []resource.Note
	// Warnings concern unmanaged resources that differ from what setup
	// would make.
	Warnings []string

	env  *resource.Env
	user *resource.User
	key  *resource.Report
}

func (p *Provisioner) env(o Options) *resource.Env {
	return &resource.Env{
		IAM: p.IAM, ECR: p.ECR, KMS: p.KMS, Caller: &awsx.Caller{STS: p.STS}, Region: o.Region, Logf: p.Logf,
		Wait:     awsx.Waiter{Bound: o.wait(), First: 500 * time.Millisecond, Max: 10 * time.Second, Now: p.now, Sleep: p.sleep},
		RaceWait: p.raceWait,
	}
}

// Setup is a planned setup: what was found, and what Apply will change.
type Setup struct {
	o    Options
	env  *resource.Env
	plan *resource.Plan
	user *resource.User
	role *resource.Role
	ci   *resource.CircleCIVariables
	res  *Result
	// policy says which repositories the new document stops granting.
	policy *resource.Policy
}

// Prepare reads the account and plans the changes; it makes none.
func (p *Provisioner) Prepare(ctx context.Context, o Options) (*Setup, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	env := p.env(o)
	st := resource.NewStack(o.Spec(), resource.ForSetup, p.CircleCI)
	user, role, ci := st.User, st.Role, st.Variables
	plan, err := resource.Observe(ctx, env, resource.ForSetup, st.Resources()...)
	if err != nil {
		return nil, advise(err)
	}
	plan.Reconcile()
	if err := plan.Refused(); err != nil {
		return nil, advise(err)
	}
	s := &Setup{o: o, env: env, plan: plan, user: user, role: role, ci: ci, policy: st.Policy}
	s.res = &Result{
		Account: plan.Identity.Account, Region: o.Region, Partition: plan.Identity.Partition, DryRun: o.DryRun,
		Resources: plan.Reports(), env: env, user: user, Keyless: o.Keyless(),
	}
	s.res.key = s.res.report(resource.KindAccessKey)
	s.fill()
	return s, nil
}

// Questions are what the plan asks confirmation for: changes that take
// away what someone may still use.
func (s *Setup) Questions() []string { return append(s.dropQuestions(), s.plan.Questions()...) }

// Planned is the plan as a result, for a dry run: what would be done.
func (s *Setup) Planned() *Result { return s.res }

// Apply makes the planned changes; the steps that ask for confirmation run
// only when confirmed. It returns the result even when a step fails, so
// that a secret already created is not lost: render it, then report the
// error.
func (s *Setup) Apply(ctx context.Context, confirmed bool) (*Result, error) {
	res := s.res
	if confirmed {
		s.plan.Confirm()
	} else if err := s.plan.Unconfirmed(); err != nil {
		// A change that must not be made unasked, nor quietly left out:
		// nothing is changed, and the caller is told how to confirm.
		return nil, clierror.AsUsage(err)
	}
	s.plan.Apply(ctx)
	var errs []error
	for _, r := range res.Resources {
		if err := resource.FirstError(r); err != nil {
			r.Status, r.Err = resource.Failed, err
			errs = append(errs, err)
		}
	}
	var held, heldID string
	if s.ci != nil && s.user != nil && len(errs) > 0 {
		if id, secret := s.user.Key(); secret != "" {
			held, heldID = s.heldAfterFailure(id, s.user.ReplacedKey())
		}
	}
	if err := s.undeliveredKey(ctx); err != nil {
		errs = append(errs, err)
	}
	s.fill()
	if s.user == nil {
		return res, advise(errors.Join(errs...))
	}
	if held != "" {
		s.noteHeld(held, heldID)
	}
	if old := s.user.ReplacedKey(); old != "" {
		res.Rotation = &Rotation{User: s.o.User, OldKeyID: old, NewKeyID: res.Variables.AccessKeyID, DeleteCommand: resource.DeleteKeyCommand(s.o.User, old)}
		if len(errs) > 0 {
			res.key.Changes = []string{"old key " + old + " kept"}
			if held == "" {
				res.note("old access key %s of user %s is kept because setup failed; once CI uses the new key, delete it: %s", old, s.o.User, res.Rotation.DeleteCommand)
			}
			res.Rotation = nil
		}
	}
	return res, advise(errors.Join(errs...))
}

// fill copies what the resources know into the result.
func (s *Setup) fill() {
	res := s.res
	var id, secret string
	if s.user != nil {
		id, secret = s.user.Key()
	}
	res.Variables = Variables{AccessKeyID: id, SecretAccessKey: secret, RoleARN: s.role.ARN(), Region: s.o.Region, Keyless: s.o.Keyless()}
	if s.ci != nil && secret != "" {
		// The secret went to CircleCI, and goes nowhere else.
		res.Variables.SecretAccessKey, res.SecretIn = "", "CircleCI "+s.o.CircleCI.String()
		secret = ""
	}
	res.SecretAvailable = secret != ""
	res.Notes, res.Warnings = s.plan.Notes(), s.plan.Warnings()
}

// undeliveredKey deletes a key this run created whose secret did not reach
// CircleCI: nobody could use it, and a rerun (or the rotation again) then
// converges. A rotation's old key stays.
func (s *Setup) undeliveredKey(ctx context.Context) error {
	if s.ci == nil || s.user == nil || s.ci.SecretHeld() {
		return nil
	}
	if _, secret := s.user.Key(); secret == "" {
		return nil
	}
	if err := s.user.DiscardKey(ctx, s.env); err != nil {
		return advise(err)
	}
	key := s.res.key
	key.Status, key.Changes = resource.Failed, []string{"deleted again: its secret did not reach CircleCI"}
	return nil
}

// Run sets up the account, or with DryRun only plans it: Prepare, then
// Apply, confirmed when o.Confirmed or when o.Confirm says so.
func (p *Provisioner) Run(ctx context.Context, o Options) (*Result, error) {
	s, err := p.Prepare(ctx, o)
	if err != nil {
		return nil, err
	}
	if o.DryRun {
		return s.Planned(), nil
	}
	confirmed := o.Confirmed
	if qs := s.Questions(); len(qs) > 0 && !confirmed && o.Confirm != nil {
		if confirmed, err = o.Confirm(qs); err != nil {
			return nil, err
		}
	}
	if err := s.refuseUnconfirmedDrop(confirmed); err != nil {
		return nil, err
	}
	return s.Apply(ctx, confirmed)
}

func (r *Result) report(kind string) *resource.Report {
	for _, rep := range r.Resources {
		if rep.Kind == kind {
			return rep
		}
	}
	return nil
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, resource.Note{Text: fmt.Sprintf(format, args...)})
}

// Finish ends a rotation once the new key is delivered: with retire, the
// old key is deleted; without, it is kept and the result says how to
// delete it later. Without a pending rotation it does nothing.
func (p *Provisioner) Finish(ctx context.Context, res *Result, retire bool) error {
	rot := res.Rotation
	if rot == nil {
		return nil
	}
	res.Rotation = nil
	if !retire {
		res.key.Changes = []string{"old key " + rot.OldKeyID + " kept"}
		res.note("old access key %s of user %s is kept; once CI uses the new key, delete it: %s", rot.OldKeyID, rot.User, rot.DeleteCommand)
		return nil
	}
	if err := res.user.RetireKey(ctx, res.env); err != nil {
		res.key.Changes = []string{"old key " + rot.OldKeyID + " kept"}
		return advise(err)
	}
	res.key.Changes = []string{"replaces " + rot.OldKeyID + ", deleted"}
	return nil
}

// Discard deletes the key this run created, when its secret could not be
// delivered: nobody can use it, and it would count against AWS's two. A
// rotation's old key stays as it is.
func (p *Provisioner) Discard(ctx context.Context, res *Result) error {
	if !res.SecretAvailable {
		return nil
	}
	if err := res.user.DiscardKey(ctx, res.env); err != nil {
		return advise(err)
	}
	res.Variables.SecretAccessKey, res.SecretAvailable = "", false
	res.key.Status, res.key.Changes = resource.Failed, []string{"deleted again: its secret could not be delivered"}
	if res.Rotation != nil {
		res.key.Changes = append(res.key.Changes, "old key "+res.Rotation.OldKeyID+" kept")
		res.Variables.AccessKeyID = res.Rotation.OldKeyID
		res.Rotation = nil
	} else {
		res.Variables.AccessKeyID = ""
	}
	return nil
}

// advise gives every failed call that has no hint of its own setup's
// advice for its error.
func advise(err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			advise(e)
		}
		return err
	}
	var re *resource.Error
	if errors.As(err, &re) && re.Hint == "" {
		re.Hint, re.Next = adviceFor(re.Call, re.Err)
	}
	return err
}

func adviceFor(call string, err error) (string, hint.Next) {
	return resource.Advice(resource.SetupWrite, "", "", call, err)
}

package resource

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/containerise/containerise/internal/awsx"
	"github.com/containerise/containerise/internal/hint"
	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/policies"
)

// User is the IAM user whose access key CI holds, with that key. The user
// has no permissions of its own: it may only assume the role.
type User struct {
	Name string
	// RotateKey: create a new key although the user has one; the old key is
	// left for the caller to retire once the new one is delivered.
	RotateKey bool
	// NamedKey, when CI's variables are read (CircleCI), tells which of the
	// user's keys CI's key ID names ("" and why when it cannot tell): a
	// rotation that finds two keys deletes the other first.
	NamedKey func(keys []iamtypes.AccessKeyMetadata) (id, why string)

	report, keyReport Report

	// Observed.
	user *iamtypes.User
	keys []iamtypes.AccessKeyMetadata // oldest first
	// Teardown.
	loginProfile bool
	attached     []attachment
	inline       []string

	forTeardown bool

	// Setup.
	arn         string
	ready       *Step // creates the user
	keyStep     *Step // creates its access key
	initialKeys map[string]bool
	oldKey      string // the key a rotation replaces
	room        *Step  // deletes the key CI does not use, when there are two
	keyID       string
	secret      string
	// Teardown: detachments by policy ARN.
	detaches map[string]*Step
}

type attachment struct{ arn, name string }

// NewUser is the CI user called name.
func NewUser(name string, rotateKey bool) *User {
	return &User{Name: name, RotateKey: rotateKey,
		report:    Report{Kind: KindUser, Name: name},
		keyReport: Report{Kind: KindAccessKey},
	}
}

// Reports are the user's and, for setup, its access key's.
func (u *User) Reports() []*Report {
	if u.forTeardown { // the keys go with the user
		return []*Report{&u.report}
	}
	return []*Report{&u.report, &u.keyReport}
}

func (u *User) fail(doing, call string, err error) error {
	return fail(KindUser, u.Name, doing, call, err)
}

// Observe reads the user and its access keys; for a teardown, also what
// IAM wants removed before DeleteUser: a console password, attached and
// inline policies.
func (u *User) Observe(ctx context.Context, env *Env, purpose Purpose) error {
	u.forTeardown = purpose == ForTeardown
	var user *iamtypes.User
	var keys []iamtypes.AccessKeyMetadata
	var login bool
	var attached []attachment
	var inline []string
	parts := []func(context.Context) error{func(ctx context.Context) error {
		var err error
		keys, err = listKeys(ctx, env, u.Name)
		return u.fail("listing the access keys of IAM user "+u.Name, "iam:ListAccessKeys", err)
	}}
	if u.forTeardown {
		parts = append(parts, func(ctx context.Context) error {
			_, err := env.IAM.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String(u.Name)})
			switch {
			case err == nil:
				login = true
			case awsx.IsNotFound(err):
				// No console password (the usual case). The user's own
				// absence, should it vanish meanwhile, shows in the other
				// calls.
			default:
				return u.fail("reading the console password of IAM user "+u.Name, "iam:GetLoginProfile", err)
			}
			return nil
		}, func(ctx context.Context) error {
			p := iam.NewListAttachedUserPoliciesPaginator(env.IAM, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(u.Name)})
			err := awsx.Pages(ctx, p.HasMorePages, p.NextPage, func(page *iam.ListAttachedUserPoliciesOutput) {
				for _, a := range page.AttachedPolicies {
					attached = append(attached, attachment{arn: aws.ToString(a.PolicyArn), name: aws.ToString(a.PolicyName)})
				}
			})
			return u.fail("listing the policies attached to IAM user "+u.Name, "iam:ListAttachedUserPolicies", err)
		}, func(ctx context.Context) error {
			p := iam.NewListUserPoliciesPaginator(env.IAM, &iam.ListUserPoliciesInput{UserName: aws.String(u.Name)})
			err := awsx.Pages(ctx, p.HasMorePages, p.NextPage, func(page *iam.ListUserPoliciesOutput) {
				inline = append(inline, page.PolicyNames...)
			})
			return u.fail("listing the inline policies of IAM user "+u.Name, "iam:ListUserPolicies", err)
		})
	}
	found, err := readEntity(ctx, !u.forTeardown, func(ctx context.Context) error {
		out, err := env.IAM.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(u.Name)})
		if err == nil {
			user = out.User
		}
		return u.fail("reading IAM user "+u.Name, "iam:GetUser", err)
	}, parts...)
	if found {
		sortKeys(keys)
		u.user, u.keys, u.loginProfile, u.attached, u.inline = user, keys, login, attached, inline
	}
	return err
}

func listKeys(ctx context.Context, env *Env, user string) ([]iamtypes.AccessKeyMetadata, error) {
	var keys []iamtypes.AccessKeyMetadata
	p := iam.NewListAccessKeysPaginator(env.IAM, &iam.ListAccessKeysInput{UserName: aws.String(user)})
	err := awsx.Pages(ctx, p.HasMorePages, p.NextPage, func(page *iam.ListAccessKeysOutput) {
		keys = append(keys, page.AccessKeyMetadata...)
	})
	return keys, err
}

// ARN is the user's ARN, as found or as it will be.
func (u *User) ARN() string { return u.arn }

// TrustPolicy is the trust policy of a role only this user may assume.
func (u *User) TrustPolicy() policies.Document { return policies.Trust(u.arn) }

// KeyStep is the step that creates the user's access key, nil when the
// user keeps the key it has.
func (u *User) KeyStep() *Step { return u.keyStep }

// Ready is the step after which the user exists (none: it already does).
func (u *User) Ready() []*Step {
	if u.ready == nil {
		return nil
	}
	return []*Step{u.ready}
}

// Describe names the user for people.
func (u *User) Describe() string { return "user " + u.Name }

// Key is the access key CI uses: its ID, and its secret when this run
// created it (AWS shows a secret only then).
func (u *User) Key() (id, secret string) { return u.keyID, u.secret }

// ReplacedKey is the key a rotation replaces, still active until the caller
// retires it; "" when no rotation created a new key.
func (u *User) ReplacedKey() string {
	if u.oldKey == "" || u.secret == "" {
		return ""
	}
	return u.oldKey
}

// Reconcile creates the user when it is missing and gives it one access
// key: a new one when it has none, or when rotating.
func (u *User) Reconcile(p *Plan) {
	rep, key := &u.report, &u.keyReport
	u.arn = policies.UserARN(p.Identity.Partition, p.Identity.Account, u.Name)
	if u.user != nil && u.user.Arn != nil {
		u.arn = *u.user.Arn
	}
	rep.ARN, rep.Managed, rep.Status = u.arn, true, Unchanged
	switch {
	case u.user == nil:
		rep.Status = WouldCreate
		u.ready = p.Add(rep, &Step{Action: "create user " + u.Name, Call: "iam:CreateUser", Do: func(ctx context.Context) error {
			return u.create(ctx, p.Env)
		}})
	case !managed.IAM(u.user.Tags):
		rep.Status, rep.Managed = Unmanaged, false
	}

	key.Managed, key.Status = rep.Managed, Unchanged
	u.initialKeys = map[string]bool{}
	for _, k := range u.keys {
		u.initialKeys[aws.ToString(k.AccessKeyId)] = true
	}
	var confirm string
	switch {
	case len(u.keys) == 0:
		key.Status, key.Managed, key.Name = WouldCreate, true, "(new)"
		if u.user != nil && !rep.Managed {
			// A key is a change to a user containerise did not make.
			confirm = "create an access key for user " + u.Name + ", which containerise did not create"
		}
	case u.RotateKey && len(u.keys) >= 2:
		unused, why := u.unusedKey()
		if unused == "" {
			p.Refuse(&Error{Kind: KindUser, Name: u.Name,
				Doing: "rotating the access key of user " + u.Name,
				Err:   fmt.Errorf("the user already has %d access keys (%s), the most AWS allows%s", len(u.keys), keyList(u.keys), why),
				Hint:  fmt.Sprintf("delete the one CI no longer uses, e.g. '%s', then rerun", DeleteKeyCommand(u.Name, aws.ToString(u.keys[0].AccessKeyId))),
				Next:  hint.RotateKey,
			})
			return
		}
		u.oldKey = u.otherKey(unused)
		key.Status, key.Managed, key.Name = WouldCreate, true, "(new)"
		key.Changes = []string{fmt.Sprintf("first deletes %s, which CI's key ID does not name", unused),
			fmt.Sprintf("replaces %s, deleted after confirmation", u.oldKey)}
		u.room = p.Add(key, &Step{Action: fmt.Sprintf("delete access key %s of user %s, which CI's key ID does not name", unused, u.Name), Call: "iam:DeleteAccessKey",
			Do: func(ctx context.Context) error {
				p.Env.logf("deleting access key %s of IAM user %s: CI's key ID names %s, so no job can sign in with it", unused, u.Name, u.oldKey)
				_, err := p.Env.IAM.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(u.Name), AccessKeyId: aws.String(unused)})
				if err != nil && !awsx.IsNotFound(err) {
					return u.fail(fmt.Sprintf("deleting access key %s of user %s (unused by CI, to make room for a new key)", unused, u.Name), "iam:DeleteAccessKey", err)
				}
				return nil
			}})
	case u.RotateKey:
		u.oldKey = aws.ToString(u.keys[0].AccessKeyId)
		key.Status, key.Managed, key.Name = WouldCreate, true, "(new)"
		key.Changes = []string{fmt.Sprintf("replaces %s, deleted after confirmation", u.oldKey)}
	default:
		current := newestActive(u.keys)
		u.keyID = aws.ToString(current.AccessKeyId)
		key.Name = u.keyID
		note := fmt.Sprintf("access key %s of user %s exists; its secret was shown only when it was created", u.keyID, u.Name)
		if current.Status != iamtypes.StatusTypeActive {
			note = fmt.Sprintf("access key %s of user %s is %s, so CI cannot use it", u.keyID, u.Name, current.Status)
		}
		p.Note(Note{Text: note, Next: hint.RotateKey})
		if len(u.keys) > 1 {
			p.Note(Note{Text: fmt.Sprintf("user %s has %d access keys (%s); %s shows the newest active one", u.Name, len(u.keys), keyList(u.keys), "AWS_IAM_USER_ACCESS_KEY_ID")})
		}
		return
	}
	needs := stepsOf(u.ready, u.room)
	u.keyStep = p.Add(key, &Step{Action: "create an access key for user " + u.Name, Call: "iam:CreateAccessKey", Needs: needs,
		Confirm: confirm,
		Declined: func() {
			key.Status, key.Name = Skipped, ""
			key.Changes = []string{"not created: the user is not managed by containerise, and the key was not confirmed"}
			p.Note(Note{Text: fmt.Sprintf("user %s has no access key, and setup adds one to a user it did not create only when confirmed", u.Name), Next: hint.Confirm})
		},
		Do: func(ctx context.Context) error { return u.createKey(ctx, p) },
		Skipped: func(context.Context, *Step) error {
			key.Status, key.Name = Skipped, ""
			return nil
		}})
}

func (u *User) create(ctx context.Context, env *Env) error {
	rep := &u.report
	env.logf("creating IAM user %s", u.Name)
	out, err := env.IAM.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(u.Name), Tags: managed.IAMTags()})
	if awsx.IsAlreadyExists(err) {
		got, err := env.IAM.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(u.Name)})
		if err != nil {
			return u.fail("reading IAM user "+u.Name+" (it was created meanwhile)", "iam:GetUser", err)
		}
		rep.Status, rep.Managed, rep.ARN = Exists, managed.IAM(got.User.Tags), aws.ToString(got.User.Arn)
		if !rep.Managed {
			rep.Status = Unmanaged
		}
		return nil
	}
	if err != nil {
		return u.fail("creating IAM user "+u.Name, "iam:CreateUser", err)
	}
	rep.Status, rep.ARN = Created, aws.ToString(out.User.Arn)
	return nil
}

func (u *User) createKey(ctx context.Context, p *Plan) error {
	env, key := p.Env, &u.keyReport
	env.logf("creating an access key for IAM user %s", u.Name)
	var out *iam.CreateAccessKeyOutput
	err := env.once(ctx, func(noRetry func(*iam.Options)) error {
		var err error
		out, err = env.IAM.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(u.Name)}, noRetry)
		return err
	}, func(err error) (bool, error) { return false, u.deleteLostKeys(ctx, env, err) })
	if err != nil {
		e := &Error{Kind: KindAccessKey, Name: u.Name, Doing: "creating an access key for user " + u.Name, Call: "iam:CreateAccessKey", Err: err}
		var limit *iamtypes.LimitExceededException
		if errors.As(err, &limit) {
			e.Hint = "the user has the 2 keys AWS allows, created meanwhile; delete one with 'aws iam delete-access-key' and rerun"
		}
		if already, ok := err.(*Error); ok {
			return already
		}
		return e
	}
	id := aws.ToString(out.AccessKey.AccessKeyId)
	key.Status, key.Name, key.Managed = Created, id, true
	u.keyID, u.secret = id, aws.ToString(out.AccessKey.SecretAccessKey)

	// Two setups running at once would each create a key; the user must
	// keep one.
	keeper, err := u.settleKeyRace(ctx, env, id)
	if err != nil {
		env.logf("warning: could not check for an access key created at the same time by another setup: %v", err)
		return nil
	}
	if keeper == id {
		return nil
	}
	env.logf("another setup created access key %s for user %s at the same time; deleting this run's key %s", keeper, u.Name, id)
	if _, err := env.IAM.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(u.Name), AccessKeyId: aws.String(id)}); err != nil && !awsx.IsNotFound(err) {
		return u.fail(fmt.Sprintf("deleting access key %s of user %s (a concurrent setup created %s)", id, u.Name, keeper), "iam:DeleteAccessKey", err)
	}
	key.Status, key.Name, key.Changes = Exists, keeper, []string{"created at the same time by another setup, which showed its secret"}
	u.keyID, u.secret = keeper, ""
	p.Note(Note{Text: fmt.Sprintf("access key %s of user %s was created by another setup running at the same time, which showed its secret", keeper, u.Name), Next: hint.RotateKey})
	return nil
}

// deleteLostKeys deletes the keys that appeared since the user was read,
// after a CreateAccessKey whose answer was lost: without their secret they
// are of no use, and they would count against AWS's two.
func (u *User) deleteLostKeys(ctx context.Context, env *Env, cause error) error {
	env.logf("creating an access key for IAM user %s failed (%s); AWS may have created it anyway, so checking for a key whose secret was lost",
		u.Name, awsx.Describe(cause))
	keys, err := listKeys(ctx, env, u.Name)
	if err != nil {
		return cause
	}
	for _, k := range keys {
		id := aws.ToString(k.AccessKeyId)
		if u.initialKeys[id] {
			continue
		}
		env.logf("deleting access key %s of IAM user %s: its creation's answer was lost, so its secret is unknown", id, u.Name)
		if _, err := env.IAM.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(u.Name), AccessKeyId: aws.String(id)}); err != nil && !awsx.IsNotFound(err) {
			return u.fail(fmt.Sprintf("deleting access key %s of user %s (created by a call whose answer was lost)", id, u.Name), "iam:DeleteAccessKey", err)
		}
	}
	return nil
}

// settleKeyRace decides which key stays when another setup created a key
// for the user at the same time as this run created key mine, and returns
// it. Creation times tie (AWS has second resolution) and neither run knows
// whether the other saw its key, so: a run that sees another new key deletes
// its own, except the run whose key sorts first, which waits a while for the
// other key to go. If it goes, the other run saw both and deferred; if it
// stays, the other run never saw this one's key and kept its own, so this
// run deletes its own instead.
func (u *User) settleKeyRace(ctx context.Context, env *Env, mine string) (string, error) {
	fresh := func() ([]iamtypes.AccessKeyMetadata, error) {
		list, err := listKeys(ctx, env, u.Name)
		if err != nil {
			return nil, u.fail("listing the access keys of user "+u.Name, "iam:ListAccessKeys", err)
		}
		var out []iamtypes.AccessKeyMetadata
		for _, k := range list {
			if !u.initialKeys[aws.ToString(k.AccessKeyId)] {
				out = append(out, k)
			}
		}
		sortKeys(out)
		return out, nil
	}
	keys, err := fresh()
	if err != nil || len(keys) < 2 {
		return mine, err
	}
	other := ""
	for _, k := range keys {
		if id := aws.ToString(k.AccessKeyId); id != mine && other == "" {
			other = id
		}
	}
	if aws.ToString(keys[0].AccessKeyId) != mine {
		return other, nil
	}
	wait := env.RaceWait
	if wait == 0 {
		wait = 5 * time.Second
	}
	w := env.Wait
	w.Bound, w.First, w.Max = wait, wait/10, wait/10
	errOtherStays := errors.New("the other key is still there")
	err = w.Retry(ctx, func(err error) (string, bool) { return "the other setup's decision", err == errOtherStays }, nil, func() error {
		keys, err := fresh()
		if err == nil && len(keys) >= 2 {
			return errOtherStays
		}
		return err
	})
	var still *awsx.StillPending
	switch {
	case errors.As(err, &still):
		return other, nil
	case err != nil:
		return mine, err
	}
	return mine, nil
}

// unusedKey is, of the user's two keys, the one CI's key ID does not name,
// or "" and why that cannot be told.
func (u *User) unusedKey() (string, string) {
	if u.NamedKey == nil || len(u.keys) != 2 {
		return "", ""
	}
	named, why := u.NamedKey(u.keys)
	if named == "" {
		return "", ", and it cannot be told which one CI uses: " + why
	}
	return u.otherKey(named), ""
}

// otherKey is the one of the user's two keys that is not id.
func (u *User) otherKey(id string) string {
	for _, k := range u.keys {
		if other := aws.ToString(k.AccessKeyId); other != id {
			return other
		}
	}
	return ""
}

// DeleteKeyCommand is the aws CLI command deleting a key.
func DeleteKeyCommand(user, keyID string) string {
	return fmt.Sprintf("aws iam delete-access-key --user-name %s --access-key-id %s", user, keyID)
}

// RetireKey deletes the key a rotation replaced.
func (u *User) RetireKey(ctx context.Context, env *Env) error {
	old := u.ReplacedKey()
	if old == "" {
		return nil
	}
	env.logf("deleting old access key %s of IAM user %s", old, u.Name)
	_, err := env.IAM.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(u.Name), AccessKeyId: aws.String(old)})
	if err != nil && !awsx.IsNotFound(err) {
		return &Error{Kind: KindAccessKey, Name: u.Name, Doing: fmt.Sprintf("deleting old access key %s of user %s", old, u.Name), Call: "iam:DeleteAccessKey", Err: err}
	}
	return nil
}

// DiscardKey deletes the key this run created, whose secret could not be
// delivered.
func (u *User) DiscardKey(ctx context.Context, env *Env) error {
	if u.secret == "" {
		return nil
	}
	env.logf("deleting the new access key %s of IAM user %s: its secret could not be delivered", u.keyID, u.Name)
	_, err := env.IAM.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(u.Name), AccessKeyId: aws.String(u.keyID)})
	if err != nil && !awsx.IsNotFound(err) {
		return &Error{Kind: KindAccessKey, Name: u.Name, Doing: fmt.Sprintf("deleting the new access key %s of user %s, whose secret could not be delivered", u.keyID, u.Name),
			Call: "iam:DeleteAccessKey", Err: err}
	}
	u.secret = ""
	u.keyID = u.oldKey // a rotation's old key stays; a first key is gone
	return nil
}

// sortKeys orders keys oldest first (ties by ID).
func sortKeys(keys []iamtypes.AccessKeyMetadata) {
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := aws.ToTime(keys[i].CreateDate), aws.ToTime(keys[j].CreateDate)
		if !a.Equal(b) {
			return a.Before(b)
		}
		return aws.ToString(keys[i].AccessKeyId) < aws.ToString(keys[j].AccessKeyId)
	})
}

// newestActive returns the newest active key, or the newest one (keys sorted
// oldest first, not empty).
func newestActive(keys []iamtypes.AccessKeyMetadata) iamtypes.AccessKeyMetadata {
	for i := len(keys) - 1; i >= 0; i-- {
		if keys[i].Status == iamtypes.StatusTypeActive {
			return keys[i]
		}
	}
	return keys[len(keys)-1]
}

func keyList(keys []iamtypes.AccessKeyMetadata) string {
	var ids []string
	for _, k := range keys {
		s := aws.ToString(k.AccessKeyId)
		if k.CreateDate != nil {
			s += " created " + k.CreateDate.UTC().Format("2006-01-02")
		}
		ids = append(ids, s)
	}
	return strings.Join(ids, ", ")
}

// Delete removes the user, first what IAM refuses DeleteUser for: its
// access keys, its console password, attached and inline policies.
func (u *User) Delete(p *Plan) {
	rep := &u.report
	if u.user != nil {
		rep.ARN = aws.ToString(u.user.Arn)
	}
	if !p.decide(rep, u.user != nil, u.user != nil && managed.IAM(u.user.Tags), "") {
		return
	}
	add := p.chain(rep)
	iamc := p.Env.IAM
	for _, k := range u.keys {
		id := aws.ToString(k.AccessKeyId)
		add(&Step{Action: fmt.Sprintf("delete access key %s of user %s", id, u.Name), Call: "iam:DeleteAccessKey",
			Do: func(ctx context.Context) error {
				_, err := iamc.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(u.Name), AccessKeyId: aws.String(id)})
				return err
			}})
	}
	if u.loginProfile {
		add(&Step{Action: fmt.Sprintf("delete the console password of user %s", u.Name), Call: "iam:DeleteLoginProfile",
			Do: func(ctx context.Context) error {
				_, err := iamc.DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{UserName: aws.String(u.Name)})
				return err
			}})
	}
	u.detaches = map[string]*Step{}
	for _, a := range u.attached {
		u.detaches[a.arn] = add(&Step{Action: fmt.Sprintf("detach policy %s from user %s", a.name, u.Name), Call: "iam:DetachUserPolicy",
			Do: func(ctx context.Context) error {
				_, err := iamc.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: aws.String(u.Name), PolicyArn: aws.String(a.arn)})
				return err
			}})
	}
	for _, name := range u.inline {
		add(&Step{Action: fmt.Sprintf("delete inline policy %s of user %s", name, u.Name), Call: "iam:DeleteUserPolicy",
			Do: func(ctx context.Context) error {
				_, err := iamc.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(u.Name), PolicyName: aws.String(name)})
				return err
			}})
	}
	action := "delete user " + u.Name
	add(&Step{Action: action, Call: "iam:DeleteUser",
		Do: func(ctx context.Context) error {
			return p.Env.untilFree(ctx, action, func() error {
				_, err := iamc.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(u.Name)})
				return err
			})
		}})
}

// detachment is the teardown step detaching the policy from the user, nil
// when the user is not being deleted or does not hold it.
func (u *User) detachment(policyARN string) *Step { return u.detaches[policyARN] }

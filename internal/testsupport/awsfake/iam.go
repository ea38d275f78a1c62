package awsfake

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// IAM is the IAM fake. Its methods have the shapes of *iam.Client's.
type IAM struct{ a *Account }

// AWS limits the fake enforces.
const (
	MaxAccessKeys     = 2
	MaxPolicyVersions = 5
)

type user struct {
	name, id, arn string
	created       time.Time
	tags          []iamtypes.Tag
	keys          []*accessKey
	grants
	login *time.Time
}

type accessKey struct {
	id, secret, user string
	status           iamtypes.StatusType
	created          time.Time
}

type role struct {
	name, id, arn, description string
	trust                      string // as given
	created                    time.Time
	tags                       []iamtypes.Tag
	grants
}

type policy struct {
	name, id, arn, description, path string
	created, updated                 time.Time
	tags                             []iamtypes.Tag
	versions                         []*policyVersion // oldest first
	next                             int
}

type policyVersion struct {
	id, doc string
	created time.Time
	def     bool
}

type instanceProfile struct {
	name, id, arn string
	created       time.Time
	roles         []string
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func noSuchEntity(format string, args ...any) error {
	return &iamtypes.NoSuchEntityException{Message: aws.String(fmt.Sprintf(format, args...))}
}

func alreadyExists(format string, args ...any) error {
	return &iamtypes.EntityAlreadyExistsException{Message: aws.String(fmt.Sprintf(format, args...))}
}

func deleteConflict(format string, args ...any) error {
	return &iamtypes.DeleteConflictException{Message: aws.String(fmt.Sprintf(format, args...))}
}

func limitExceeded(format string, args ...any) error {
	return &iamtypes.LimitExceededException{Message: aws.String(fmt.Sprintf(format, args...))}
}

func malformed(format string, args ...any) error {
	return &iamtypes.MalformedPolicyDocumentException{Message: aws.String(fmt.Sprintf(format, args...))}
}

func invalidInput(format string, args ...any) error {
	return &iamtypes.InvalidInputException{Message: aws.String(fmt.Sprintf(format, args...))}
}

var iamNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)

func checkName(field, name string, max int) error {
	if name == "" || len(name) > max || !iamNameRE.MatchString(name) {
		return invalidInput("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and length %d at most", name, field, max)
	}
	return nil
}

func copyTags(tags []iamtypes.Tag) []iamtypes.Tag {
	out := make([]iamtypes.Tag, 0, len(tags))
	for _, t := range tags {
		out = append(out, iamtypes.Tag{Key: aws.String(str(t.Key)), Value: aws.String(str(t.Value))})
	}
	return out
}

// IAM's tag rules.
const maxTags = 50

var tagRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

// checkTags applies IAM's tag rules to tags being set over have: a key of
// 1 to 128 characters, a value of at most 256, both of letters, digits,
// white space and _.:/=+-@; no key starting with "aws:"; no key twice in
// one call; at most 50 tags on a resource.
func checkTags(have, set []iamtypes.Tag) error {
	seen := map[string]bool{}
	for i, t := range set {
		key, value := str(t.Key), str(t.Value)
		if n := utf8.RuneCountInString(key); n < 1 || n > 128 || !tagRE.MatchString(key) {
			return invalidInput("1 validation error detected: Value '%s' at 'tags.%d.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+ and length between 1 and 128", key, i+1)
		}
		if utf8.RuneCountInString(value) > 256 || !tagRE.MatchString(value) {
			return invalidInput("1 validation error detected: Value '%s' at 'tags.%d.member.value' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]* and length at most 256", value, i+1)
		}
		if strings.HasPrefix(strings.ToLower(key), "aws:") {
			return invalidInput("Tag keys starting with 'aws:' are reserved for internal use.")
		}
		if seen[strings.ToLower(key)] {
			return invalidInput("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		seen[strings.ToLower(key)] = true
	}
	if len(mergeTags(have, set)) > maxTags {
		return limitExceeded("The number of tags has reached the maximum limit.")
	}
	return nil
}

// addTags sets tags over *tags, by key, as IAM's Tag* calls do: all or
// none, under IAM's tag rules.
func addTags(tags *[]iamtypes.Tag, set []iamtypes.Tag) error {
	if err := checkTags(*tags, set); err != nil {
		return err
	}
	*tags = mergeTags(*tags, set)
	return nil
}

// mergeTags sets tags over existing ones, by key.
func mergeTags(have, set []iamtypes.Tag) []iamtypes.Tag {
	out := copyTags(have)
	for _, t := range set {
		replaced := false
		for i := range out {
			if *out[i].Key == str(t.Key) {
				out[i].Value = aws.String(str(t.Value))
				replaced = true
			}
		}
		if !replaced {
			out = append(out, iamtypes.Tag{Key: aws.String(str(t.Key)), Value: aws.String(str(t.Value))})
		}
	}
	return out
}

// urlEncode encodes a document the way IAM returns it (RFC 3986, %20 for space).
func urlEncode(doc string) string {
	return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20")
}

func tp(t time.Time) *time.Time { return &t }

// --- users ---------------------------------------------------------------

func (u *user) out() *iamtypes.User {
	return &iamtypes.User{
		UserName: aws.String(u.name), UserId: aws.String(u.id), Arn: aws.String(u.arn),
		Path: aws.String("/"), CreateDate: tp(u.created), Tags: copyTags(u.tags),
	}
}

func (a *Account) user(name string) (*user, error) {
	u, ok := a.users[name]
	if !ok {
		return nil, noSuchEntity("The user with name %s cannot be found.", name)
	}
	return u, nil
}

// CreateUser creates a user.
func (f *IAM) CreateUser(ctx context.Context, in *iam.CreateUserInput, _ ...func(*iam.Options)) (*iam.CreateUserOutput, error) {
	var out *iam.CreateUserOutput
	err := f.a.call(ctx, "iam.CreateUser", func() error {
		name := str(in.UserName)
		if err := checkName("userName", name, 64); err != nil {
			return err
		}
		if _, ok := f.a.users[name]; ok {
			return alreadyExists("User with name %s already exists.", name)
		}
		if err := checkTags(nil, in.Tags); err != nil {
			return err
		}
		u := &user{
			name: name, id: f.a.newID("AIDA", 17), arn: fmt.Sprintf("arn:%s:iam::%s:user/%s", f.a.partition, f.a.id, name),
			created: f.a.now, tags: copyTags(in.Tags), grants: newGrants(),
		}
		f.a.users[name] = u
		out = &iam.CreateUserOutput{User: u.out()}
		return nil
	})
	return out, err
}

// GetUser returns a user with its tags.
func (f *IAM) GetUser(ctx context.Context, in *iam.GetUserInput, _ ...func(*iam.Options)) (*iam.GetUserOutput, error) {
	var out *iam.GetUserOutput
	err := f.a.call(ctx, "iam.GetUser", func() error {
		if in.UserName == nil {
			out = &iam.GetUserOutput{User: &iamtypes.User{
				UserName: aws.String(f.a.adminName), Arn: aws.String(f.a.AdminARN()), UserId: aws.String("AIDAADMIN"),
				Path: aws.String("/"), CreateDate: tp(time.Time{}),
			}}
			return nil
		}
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		out = &iam.GetUserOutput{User: u.out()}
		return nil
	})
	return out, err
}

// DeleteUser deletes a user that has no access keys, policies or login profile.
func (f *IAM) DeleteUser(ctx context.Context, in *iam.DeleteUserInput, _ ...func(*iam.Options)) (*iam.DeleteUserOutput, error) {
	err := f.a.call(ctx, "iam.DeleteUser", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		switch {
		case u.login != nil:
			return deleteConflict("Cannot delete entity, must delete login profile first.")
		case len(u.keys) > 0:
			return deleteConflict("Cannot delete entity, must delete access keys first.")
		case len(u.attached) > 0:
			return deleteConflict("Cannot delete entity, must detach all policies first.")
		case len(u.inline) > 0:
			return deleteConflict("Cannot delete entity, must delete policies first.")
		}
		delete(f.a.users, u.name)
		f.a.orphanPrincipal(u.arn, u.id)
		return nil
	})
	return &iam.DeleteUserOutput{}, err
}

// orphanPrincipal replaces a deleted principal's ARN by its unique ID in every
// trust policy, as IAM does: recreating the user does not restore the trust.
func (a *Account) orphanPrincipal(arn, id string) {
	for _, r := range a.roles {
		doc, err := parseDocument(r.trust)
		if err == nil && doc.replacePrincipal(arn, id) {
			r.trust = doc.JSON()
		}
	}
}

// TagUser adds or replaces tags on a user.
func (f *IAM) TagUser(ctx context.Context, in *iam.TagUserInput, _ ...func(*iam.Options)) (*iam.TagUserOutput, error) {
	err := f.a.call(ctx, "iam.TagUser", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		return addTags(&u.tags, in.Tags)
	})
	return &iam.TagUserOutput{}, err
}

// ListUserTags lists a user's tags.
func (f *IAM) ListUserTags(ctx context.Context, in *iam.ListUserTagsInput, _ ...func(*iam.Options)) (*iam.ListUserTagsOutput, error) {
	var out *iam.ListUserTagsOutput
	err := f.a.call(ctx, "iam.ListUserTags", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		out = &iam.ListUserTagsOutput{Tags: copyTags(u.tags)}
		return nil
	})
	return out, err
}

// --- access keys ---------------------------------------------------------

// CreateAccessKey creates a key, at most two per user. The secret is in this
// answer only.
func (f *IAM) CreateAccessKey(ctx context.Context, in *iam.CreateAccessKeyInput, _ ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error) {
	var out *iam.CreateAccessKeyOutput
	err := f.a.call(ctx, "iam.CreateAccessKey", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		if len(u.keys) >= MaxAccessKeys {
			return limitExceeded("Cannot exceed quota for AccessKeysPerUser: %d", MaxAccessKeys)
		}
		k := &accessKey{id: f.a.newID("AKIA", 16), secret: newSecret(), user: u.name, status: iamtypes.StatusTypeActive, created: f.a.now}
		u.keys = append(u.keys, k)
		out = &iam.CreateAccessKeyOutput{AccessKey: &iamtypes.AccessKey{
			AccessKeyId: aws.String(k.id), SecretAccessKey: aws.String(k.secret), Status: k.status,
			UserName: aws.String(u.name), CreateDate: tp(k.created),
		}}
		return nil
	})
	return out, err
}

// ListAccessKeys lists a user's keys (never their secrets).
func (f *IAM) ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, _ ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error) {
	var out *iam.ListAccessKeysOutput
	err := f.a.call(ctx, "iam.ListAccessKeys", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		out = &iam.ListAccessKeysOutput{}
		for _, k := range u.keys {
			out.AccessKeyMetadata = append(out.AccessKeyMetadata, iamtypes.AccessKeyMetadata{
				AccessKeyId: aws.String(k.id), Status: k.status, UserName: aws.String(u.name), CreateDate: tp(k.created),
			})
		}
		return nil
	})
	return out, err
}

func (u *user) key(id string) (int, error) {
	for i, k := range u.keys {
		if k.id == id {
			return i, nil
		}
	}
	return -1, noSuchEntity("The Access Key with id %s cannot be found.", id)
}

// DeleteAccessKey deletes a key.
func (f *IAM) DeleteAccessKey(ctx context.Context, in *iam.DeleteAccessKeyInput, _ ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error) {
	err := f.a.call(ctx, "iam.DeleteAccessKey", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		i, err := u.key(str(in.AccessKeyId))
		if err != nil {
			return err
		}
		u.keys = append(u.keys[:i], u.keys[i+1:]...)
		return nil
	})
	return &iam.DeleteAccessKeyOutput{}, err
}

// UpdateAccessKey makes a key Active or Inactive.
func (f *IAM) UpdateAccessKey(ctx context.Context, in *iam.UpdateAccessKeyInput, _ ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error) {
	err := f.a.call(ctx, "iam.UpdateAccessKey", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		i, err := u.key(str(in.AccessKeyId))
		if err != nil {
			return err
		}
		if in.Status != iamtypes.StatusTypeActive && in.Status != iamtypes.StatusTypeInactive {
			return invalidInput("Status must be Active or Inactive")
		}
		u.keys[i].status = in.Status
		return nil
	})
	return &iam.UpdateAccessKeyOutput{}, err
}

// --- user policies and login profile ------------------------------------

// AttachUserPolicy attaches a managed policy to a user.
func (f *IAM) AttachUserPolicy(ctx context.Context, in *iam.AttachUserPolicyInput, _ ...func(*iam.Options)) (*iam.AttachUserPolicyOutput, error) {
	err := f.a.call(ctx, "iam.AttachUserPolicy", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		return f.a.attach(&u.grants, str(in.PolicyArn))
	})
	return &iam.AttachUserPolicyOutput{}, err
}

// DetachUserPolicy detaches a managed policy from a user.
func (f *IAM) DetachUserPolicy(ctx context.Context, in *iam.DetachUserPolicyInput, _ ...func(*iam.Options)) (*iam.DetachUserPolicyOutput, error) {
	err := f.a.call(ctx, "iam.DetachUserPolicy", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		return u.detach(str(in.PolicyArn))
	})
	return &iam.DetachUserPolicyOutput{}, err
}

// ListAttachedUserPolicies lists the managed policies attached to a user.
func (f *IAM) ListAttachedUserPolicies(ctx context.Context, in *iam.ListAttachedUserPoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error) {
	var out *iam.ListAttachedUserPoliciesOutput
	err := f.a.call(ctx, "iam.ListAttachedUserPolicies", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		out = &iam.ListAttachedUserPoliciesOutput{AttachedPolicies: f.a.attachedOut(u.attached)}
		return nil
	})
	return out, err
}

// PutUserPolicy adds or replaces an inline user policy.
func (f *IAM) PutUserPolicy(ctx context.Context, in *iam.PutUserPolicyInput, _ ...func(*iam.Options)) (*iam.PutUserPolicyOutput, error) {
	err := f.a.call(ctx, "iam.PutUserPolicy", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		return u.putInline(str(in.PolicyName), str(in.PolicyDocument))
	})
	return &iam.PutUserPolicyOutput{}, err
}

// ListUserPolicies lists a user's inline policy names.
func (f *IAM) ListUserPolicies(ctx context.Context, in *iam.ListUserPoliciesInput, _ ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error) {
	var out *iam.ListUserPoliciesOutput
	err := f.a.call(ctx, "iam.ListUserPolicies", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		out = &iam.ListUserPoliciesOutput{PolicyNames: sortedKeys(u.inline)}
		return nil
	})
	return out, err
}

// DeleteUserPolicy deletes an inline user policy.
func (f *IAM) DeleteUserPolicy(ctx context.Context, in *iam.DeleteUserPolicyInput, _ ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error) {
	err := f.a.call(ctx, "iam.DeleteUserPolicy", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		return u.deleteInline("user", str(in.PolicyName))
	})
	return &iam.DeleteUserPolicyOutput{}, err
}

// CreateLoginProfile gives a user a console password.
func (f *IAM) CreateLoginProfile(ctx context.Context, in *iam.CreateLoginProfileInput, _ ...func(*iam.Options)) (*iam.CreateLoginProfileOutput, error) {
	var out *iam.CreateLoginProfileOutput
	err := f.a.call(ctx, "iam.CreateLoginProfile", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		if u.login != nil {
			return alreadyExists("Login Profile for user %s already exists.", u.name)
		}
		u.login = tp(f.a.now)
		out = &iam.CreateLoginProfileOutput{LoginProfile: &iamtypes.LoginProfile{UserName: aws.String(u.name), CreateDate: tp(*u.login), PasswordResetRequired: in.PasswordResetRequired}}
		return nil
	})
	return out, err
}

// GetLoginProfile returns a user's login profile.
func (f *IAM) GetLoginProfile(ctx context.Context, in *iam.GetLoginProfileInput, _ ...func(*iam.Options)) (*iam.GetLoginProfileOutput, error) {
	var out *iam.GetLoginProfileOutput
	err := f.a.call(ctx, "iam.GetLoginProfile", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		if u.login == nil {
			return noSuchEntity("Login Profile for User %s cannot be found.", u.name)
		}
		out = &iam.GetLoginProfileOutput{LoginProfile: &iamtypes.LoginProfile{UserName: aws.String(u.name), CreateDate: tp(*u.login)}}
		return nil
	})
	return out, err
}

// DeleteLoginProfile removes a user's console password.
func (f *IAM) DeleteLoginProfile(ctx context.Context, in *iam.DeleteLoginProfileInput, _ ...func(*iam.Options)) (*iam.DeleteLoginProfileOutput, error) {
	err := f.a.call(ctx, "iam.DeleteLoginProfile", func() error {
		u, err := f.a.user(str(in.UserName))
		if err != nil {
			return err
		}
		if u.login == nil {
			return noSuchEntity("Login Profile for User %s cannot be found.", u.name)
		}
		u.login = nil
		return nil
	})
	return &iam.DeleteLoginProfileOutput{}, err
}

// --- roles ---------------------------------------------------------------

func (r *role) out() *iamtypes.Role {
	out := &iamtypes.Role{
		RoleName: aws.String(r.name), RoleId: aws.String(r.id), Arn: aws.String(r.arn), Path: aws.String("/"),
		CreateDate: tp(r.created), AssumeRolePolicyDocument: aws.String(urlEncode(r.trust)),
		Tags: copyTags(r.tags), MaxSessionDuration: aws.Int32(3600),
	}
	if r.description != "" {
		out.Description = aws.String(r.description)
	}
	return out
}

func (a *Account) role(name string) (*role, error) {
	r, ok := a.roles[name]
	if !ok {
		return nil, noSuchEntity("The role with name %s cannot be found.", name)
	}
	return r, nil
}

func parseDoc(doc string) (document, error) {
	if strings.TrimSpace(doc) == "" {
		return document{}, malformed("Syntax errors in policy.")
	}
	d, err := parseDocument(doc)
	if err != nil {
		return document{}, malformed("This policy contains invalid Json")
	}
	if len(d.statements) == 0 {
		return document{}, malformed("Syntax errors in policy.")
	}
	return d, nil
}

// checkTrust validates a trust policy as IAM does, including that every AWS
// principal of this account exists and has propagated.
func (a *Account) checkTrust(doc string) error {
	d, err := parseDoc(doc)
	if err != nil {
		return err
	}
	prefix := fmt.Sprintf("arn:%s:iam::%s:", a.partition, a.id)
	for _, s := range d.statements {
		if len(s.principals) == 0 {
			return malformed("AssumeRolepolicy contained an invalid principal element.")
		}
		for _, p := range s.principals["Federated"] {
			if err := a.checkFederated(p); err != nil {
				return err
			}
		}
		for _, p := range s.principals["AWS"] {
			if p == "*" || p == a.id || p == prefix+"root" || !strings.HasPrefix(p, prefix) {
				continue
			}
			rest := strings.TrimPrefix(p, prefix)
			var created time.Time
			found := false
			switch {
			case strings.HasPrefix(rest, "user/"):
				if u, ok := a.users[rest[strings.LastIndexByte(rest, '/')+1:]]; ok {
					created, found = u.created, true
				}
			case strings.HasPrefix(rest, "role/"):
				if r, ok := a.roles[rest[strings.LastIndexByte(rest, '/')+1:]]; ok {
					created, found = r.created, true
				}
			default:
				found, created = true, time.Time{}
			}
			if !found || a.now.Sub(created) < a.principalDelay {
				return malformed("Invalid principal in policy: \"AWS\":\"%s\"", p)
			}
		}
	}
	return nil
}

// CreateRole creates a role after validating its trust policy.
func (f *IAM) CreateRole(ctx context.Context, in *iam.CreateRoleInput, _ ...func(*iam.Options)) (*iam.CreateRoleOutput, error) {
	var out *iam.CreateRoleOutput
	err := f.a.call(ctx, "iam.CreateRole", func() error {
		name := str(in.RoleName)
		if err := checkName("roleName", name, 64); err != nil {
			return err
		}
		if _, ok := f.a.roles[name]; ok {
			return alreadyExists("Role with name %s already exists.", name)
		}
		if err := f.a.checkTrust(str(in.AssumeRolePolicyDocument)); err != nil {
			return err
		}
		if err := checkTags(nil, in.Tags); err != nil {
			return err
		}
		r := &role{
			name: name, id: f.a.newID("AROA", 17), arn: fmt.Sprintf("arn:%s:iam::%s:role/%s", f.a.partition, f.a.id, name),
			description: str(in.Description), trust: str(in.AssumeRolePolicyDocument), created: f.a.now,
			tags: copyTags(in.Tags), grants: newGrants(),
		}
		f.a.roles[name] = r
		out = &iam.CreateRoleOutput{Role: r.out()}
		return nil
	})
	return out, err
}

// GetRole returns a role, its trust policy URL-encoded, and its tags.
func (f *IAM) GetRole(ctx context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	var out *iam.GetRoleOutput
	err := f.a.call(ctx, "iam.GetRole", func() error {
		r, err := f.a.role(str(in.RoleName))
		if err != nil {
			return err
		}
		out = &iam.GetRoleOutput{Role: r.out()}
		return nil
	})
	return out, err
}

// DeleteRole deletes a role with nothing attached, no inline policy and in
// no instance profile.
func (f *IAM) DeleteRole(ctx context.Context, in *iam.DeleteRoleInput, _ ...func(*iam.Options)) (*iam.DeleteRoleOutput, error) {
	err := f.a.call(ctx, "iam.DeleteRole", func() error {
		r, err := f.a.role(str(in.RoleName))
		if err != nil {
			return err
		}
		switch {
		case len(r.attached) > 0:
			return deleteConflict("Cannot delete entity, must detach all policies first.")
		case len(r.inline) > 0:
			return deleteConflict("Cannot delete entity, must delete policies first.")
		case len(f.a.profilesOf(r.name)) > 0:
			return deleteConflict("Cannot delete entity, must remove roles from instance profile first.")
		}
		delete(f.a.roles, r.name)
		f.a.orphanPrincipal(r.arn, r.id)
		return nil
	})
	return &iam.DeleteRoleOutput{}, err
}

// UpdateAssumeRolePolicy replaces a role's trust policy.
func (f *IAM) UpdateAssumeRolePolicy(ctx context.Context, in *iam.UpdateAssumeRolePolicyInput, _ ...func(*iam.Options)) (*iam.UpdateAssumeRolePolicyOutput, error) {
	err := f.a.call(ctx, "iam.UpdateAssumeRolePolicy", func() error {
		r, err := f.a.role(str(in.RoleName))
		if err != nil {
			return err
		}
		if err := f.a.checkTrust(str(in.PolicyDocument)); err != nil {
			return err
		}
		r.trust = str(in.PolicyDocument)
		return nil
	})
	return &iam.UpdateAssumeRolePolicyOutput{}, err
}

// TagRole adds or replaces tags on a role.
func (f *IAM) TagRole(ctx context.Context, in *iam.TagRoleInput, _ ...func(*iam.Options)) (*iam.TagRoleOutput, error) {
	err := f.a.call(ctx, "iam.TagRole", func() error {
		r, err := f.a.role(str(in.RoleName))
		if err != nil {
			return err
		}
		return addTags(&r.tags, in.Tags)
	})
	return &iam.TagRoleOutput{}, err
}

// ListRoleTags lists a role's tags.
func (f *IAM) ListRoleTags(ctx context.Context, in *iam.ListRoleTagsInput, _ ...func(*iam.Options)) (*iam.ListRoleTagsOutput, error) {
	var out *iam.ListRoleTagsOutput
	err := f.a.call(ctx, "iam.ListRoleTags", func() error {
		r, err := f.a.role(str(in.RoleName))
		if err != nil {
			return err
		}
		out = &iam.ListRoleTagsOutput{Tags: copyTags(r.tags)}
		return nil
	})
	return out, err
}

// grants are the policies a user or a role holds: IAM keeps both by the
// same rules.
type grants struct {
	attached []string          // managed policy ARNs, in attachment order
	inline   map[string]string // policy name to document
}

func newGrants() grants { return grants{inline: map[string]string{}} }

// attach attaches an existing managed policy; attaching twice is not an
// error.
func (a *Account) attach(g *grants, arn string) error {
	if _, err := a.attachable(arn); err != nil {
		return err
	}
	for _, x := range g.attached {
		if x == arn {
			return nil
		}
	}
	g.attached = append(g.attached, arn)
	return nil
}

func (g *grants) detach(arn string) error {
	var ok bool
	if g.attached, ok = detach(g.attached, arn); !ok {
		return noSuchEntity("Policy %s was not found.", arn)
	}
	return nil
}

func (g *grants) putInline(name, doc string) error {
	if err := checkName("policyName", name, 128); err != nil {
		return err
	}
	if _, err := parseDoc(doc); err != nil {
		return err
	}
	g.inline[name] = doc
	return nil
}

// deleteInline deletes an inline policy; holder ("user" or "role") words
// the error as IAM does.
func (g *grants) deleteInline(holder, name string) error {
	if _, ok := g.inline[name]; !ok {
		return noSuchEntity("The %s policy with name %s cannot be found.", holder, name)
	}
	delete(g.inline, name)
	return nil
}

func detach(list []string, arn string) ([]string, bool) {
	for i, a := range list {
		if a == arn {
			return append(list[:i:i], list[i+1:]...), true
		}
	}
	return list, false
}

func (a *Account) attachable(arn string) (*policy, error) {
	p, ok := a.policies[arn]
	if !ok {
		return nil, noSuchEntity("Policy %s does not exist or is not attachable.", arn)
	}
	return p, nil
}

func (a *Account) attachedOut(arns []string) []iamtypes.AttachedPolicy {
	out := []iamtypes.AttachedPolicy{}
	for _, arn := range arns {
		name := arn[strings.LastIndexByte(arn, '/')+1:]
		if p, ok := a.policies[arn]; ok {
			name = p.name
		}
		out = append(out, iamtypes.AttachedPolicy{PolicyArn: aws.String(arn), PolicyName: aws.String(name)})
	}
	return out
}

// AttachRolePolicy attaches a managed policy to a role (attaching twice is
// not an error).
func (f *IAM) AttachRolePolicy(ctx context.Context, in *iam.AttachRolePolicyInput, _ ...func(*iam.Options)) (*iam.AttachRolePolicyOutput, error) {
	err := f.a.call(ctx, "iam.AttachRolePolicy", func() error {
		r, err := f.a.role(str(in.RoleName))
		if err != nil {
			return err
		}
		return f.a.attach(&r.grants, str(in.PolicyArn))
	})
	return &iam.AttachRolePolicyOutput{}, err
}

// DetachRolePolicy detaches a managed policy from a role.
func (f *IAM) DetachRolePolicy(ctx context.Context, in *iam.DetachRolePolicyInput, _ ...func(*iam.Options)) (*iam.DetachRolePolicyOutput, error) {
	err := f.a.call(ctx, "iam.DetachRolePolicy", func() error {
		r, err := f.a.role(str(in.RoleName))
		if err != nil {
			return err
		}
		return r.detach(str(in.PolicyArn))
	})
	return &iam.DetachRolePolicyOutput{}, err
}

// ListAttachedRolePolicies lists the managed policies attached to a role.
func (f *IAM) ListAttachedRolePolicies(ctx context.Context, in *iam.ListAttachedRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error) {
	var out *iam.ListAttachedRolePoliciesOutput
	err := f.a.call(ctx, "iam.ListAttachedRolePolicies", func() error {
		r, err := f.a.role(str(in.RoleName))
		if err != nil {
			return err
		}
		out = &iam.ListAttachedRolePoliciesOutput{AttachedPolicies: f.a.attachedOut(r.attached)}
		return nil
	})
	return out, err
}

// PutRolePolicy adds or replaces an inline role policy.
func (f *IAM) PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, _ ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error) {
	err := f.a.call(ctx, "iam.PutRolePolicy", func() error {
		r, err := f.a.role(str(in.RoleName))
		if err != nil {
			return err
		}
		return r.putInline(str(in.PolicyName), str(in.PolicyDocument))
	})
	return &iam.PutRolePolicyOutput{}, err
}

// ListRolePolicies lists a role's inline policy names.
func (f *IAM) ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error) {
	var out *iam.ListRolePoliciesOutput
	err := f.a.call(ctx, "iam.ListRolePolicies", func() error {
		r, err := f.a.role(str(in.RoleName))
		if err != nil {
			return err
		}
		out = &iam.ListRolePoliciesOutput{PolicyNames: sortedKeys(r.inline)}
		return nil
	})
	return out, err
}

// DeleteRolePolicy deletes an inline role policy.
func (f *IAM) DeleteRolePolicy(ctx context.Context, in *iam.DeleteRolePolicyInput, _ ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error) {
	err := f.a.call(ctx, "iam.DeleteRolePolicy", func() error {
		r, err := f.a.role(str(in.RoleName))
		if err != nil {
			return err
		}
		return r.deleteInline("role", str(in.PolicyName))
	})
	return &iam.DeleteRolePolicyOutput{}, err
}

func sortedKeys(m map[string]string) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// --- instance profiles ---------------------------------------------------

// AddInstanceProfile puts a role into an instance profile (created if
// needed), as an admin might have done by hand. It is not a recorded call.
func (a *Account) AddInstanceProfile(profileName, roleName string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.role(roleName); err != nil {
		return err
	}
	p, ok := a.instanceProfiles[profileName]
	if !ok {
		p = &instanceProfile{
			name: profileName, id: a.newID("AIPA", 17), created: a.now,
			arn: fmt.Sprintf("arn:%s:iam::%s:instance-profile/%s", a.partition, a.id, profileName),
		}
		a.instanceProfiles[profileName] = p
	}
	if len(p.roles) > 0 {
		return limitExceeded("Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
	}
	p.roles = append(p.roles, roleName)
	return nil
}

func (a *Account) profilesOf(roleName string) []*instanceProfile {
	var out []*instanceProfile
	for _, p := range a.instanceProfiles {
		for _, r := range p.roles {
			if r == roleName {
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// ListInstanceProfilesForRole lists the instance profiles holding a role.
func (f *IAM) ListInstanceProfilesForRole(ctx context.Context, in *iam.ListInstanceProfilesForRoleInput, _ ...func(*iam.Options)) (*iam.ListInstanceProfilesForRoleOutput, error) {
	var out *iam.ListInstanceProfilesForRoleOutput
	err := f.a.call(ctx, "iam.ListInstanceProfilesForRole", func() error {
		r, err := f.a.role(str(in.RoleName))
		if err != nil {
			return err
		}
		out = &iam.ListInstanceProfilesForRoleOutput{InstanceProfiles: []iamtypes.InstanceProfile{}}
		for _, p := range f.a.profilesOf(r.name) {
			out.InstanceProfiles = append(out.InstanceProfiles, iamtypes.InstanceProfile{
				InstanceProfileName: aws.String(p.name), InstanceProfileId: aws.String(p.id), Arn: aws.String(p.arn),
				Path: aws.String("/"), CreateDate: tp(p.created), Roles: []iamtypes.Role{*r.out()},
			})
		}
		return nil
	})
	return out, err
}

// RemoveRoleFromInstanceProfile takes a role out of an instance profile.
func (f *IAM) RemoveRoleFromInstanceProfile(ctx context.Context, in *iam.RemoveRoleFromInstanceProfileInput, _ ...func(*iam.Options)) (*iam.RemoveRoleFromInstanceProfileOutput, error) {
	err := f.a.call(ctx, "iam.RemoveRoleFromInstanceProfile", func() error {
		p, ok := f.a.instanceProfiles[str(in.InstanceProfileName)]
		if !ok {
			return noSuchEntity("Instance Profile %s cannot be found.", str(in.InstanceProfileName))
		}
		if _, err := f.a.role(str(in.RoleName)); err != nil {
			return err
		}
		var found bool
		if p.roles, found = detach(p.roles, str(in.RoleName)); !found {
			return noSuchEntity("The role with name %s cannot be found in instance profile %s.", str(in.RoleName), p.name)
		}
		return nil
	})
	return &iam.RemoveRoleFromInstanceProfileOutput{}, err
}

// --- managed policies ----------------------------------------------------

func (a *Account) policy(arn string) (*policy, error) {
	p, ok := a.policies[arn]
	if !ok {
		return nil, noSuchEntity("Policy %s was not found.", arn)
	}
	return p, nil
}

func (a *Account) attachments(arn string) (roles, users []string) {
	for _, r := range a.roles {
		for _, x := range r.attached {
			if x == arn {
				roles = append(roles, r.name)
			}
		}
	}
	for _, u := range a.users {
		for _, x := range u.attached {
			if x == arn {
				users = append(users, u.name)
			}
		}
	}
	sort.Strings(roles)
	sort.Strings(users)
	return roles, users
}

func (p *policy) defaultVersion() *policyVersion {
	for _, v := range p.versions {
		if v.def {
			return v
		}
	}
	return nil
}

func (a *Account) policyOut(p *policy) *iamtypes.Policy {
	roles, users := a.attachments(p.arn)
	out := &iamtypes.Policy{
		PolicyName: aws.String(p.name), PolicyId: aws.String(p.id), Arn: aws.String(p.arn), Path: aws.String(p.path),
		DefaultVersionId: aws.String(p.defaultVersion().id), AttachmentCount: aws.Int32(int32(len(roles) + len(users))),
		PermissionsBoundaryUsageCount: aws.Int32(0), IsAttachable: true,
		CreateDate: tp(p.created), UpdateDate: tp(p.updated), Tags: copyTags(p.tags),
	}
	if p.description != "" {
		out.Description = aws.String(p.description)
	}
	return out
}

// CreatePolicy creates a customer managed policy with version v1.
func (f *IAM) CreatePolicy(ctx context.Context, in *iam.CreatePolicyInput, _ ...func(*iam.Options)) (*iam.CreatePolicyOutput, error) {
	var out *iam.CreatePolicyOutput
	err := f.a.call(ctx, "iam.CreatePolicy", func() error {
		name := str(in.PolicyName)
		if err := checkName("policyName", name, 128); err != nil {
			return err
		}
		path := str(in.Path)
		if path == "" {
			path = "/"
		}
		arn := fmt.Sprintf("arn:%s:iam::%s:policy%s%s", f.a.partition, f.a.id, path, name)
		if _, ok := f.a.policies[arn]; ok {
			return alreadyExists("A policy called %s already exists. Duplicate names are not allowed.", name)
		}
		if _, err := parseDoc(str(in.PolicyDocument)); err != nil {
			return err
		}
		if err := checkTags(nil, in.Tags); err != nil {
			return err
		}
		p := &policy{
			name: name, id: f.a.newID("ANPA", 17), arn: arn, path: path, description: str(in.Description),
			created: f.a.now, updated: f.a.now, tags: copyTags(in.Tags), next: 2,
			versions: []*policyVersion{{id: "v1", doc: str(in.PolicyDocument), created: f.a.now, def: true}},
		}
		f.a.policies[arn] = p
		out = &iam.CreatePolicyOutput{Policy: f.a.policyOut(p)}
		return nil
	})
	return out, err
}

// GetPolicy returns a managed policy with its default version ID,
// attachment count and tags.
func (f *IAM) GetPolicy(ctx context.Context, in *iam.GetPolicyInput, _ ...func(*iam.Options)) (*iam.GetPolicyOutput, error) {
	var out *iam.GetPolicyOutput
	err := f.a.call(ctx, "iam.GetPolicy", func() error {
		p, err := f.a.policy(str(in.PolicyArn))
		if err != nil {
			return err
		}
		out = &iam.GetPolicyOutput{Policy: f.a.policyOut(p)}
		return nil
	})
	return out, err
}

// DeletePolicy deletes a managed policy that is attached to nothing and has
// only its default version.
func (f *IAM) DeletePolicy(ctx context.Context, in *iam.DeletePolicyInput, _ ...func(*iam.Options)) (*iam.DeletePolicyOutput, error) {
	err := f.a.call(ctx, "iam.DeletePolicy", func() error {
		p, err := f.a.policy(str(in.PolicyArn))
		if err != nil {
			return err
		}
		if roles, users := f.a.attachments(p.arn); len(roles)+len(users) > 0 {
			return deleteConflict("Cannot delete a policy attached to entities.")
		}
		if len(p.versions) > 1 {
			return deleteConflict("This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.")
		}
		delete(f.a.policies, p.arn)
		return nil
	})
	return &iam.DeletePolicyOutput{}, err
}

func (p *policy) version(id string) (*policyVersion, int, error) {
	for i, v := range p.versions {
		if v.id == id {
			return v, i, nil
		}
	}
	return nil, -1, noSuchEntity("Policy %s version %s does not exist or is not attachable.", p.arn, id)
}

func versionOut(v *policyVersion, withDoc bool) iamtypes.PolicyVersion {
	out := iamtypes.PolicyVersion{VersionId: aws.String(v.id), IsDefaultVersion: v.def, CreateDate: tp(v.created)}
	if withDoc {
		out.Document = aws.String(urlEncode(v.doc))
	}
	return out
}

// GetPolicyVersion returns one version, its document URL-encoded.
func (f *IAM) GetPolicyVersion(ctx context.Context, in *iam.GetPolicyVersionInput, _ ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error) {
	var out *iam.GetPolicyVersionOutput
	err := f.a.call(ctx, "iam.GetPolicyVersion", func() error {
		p, err := f.a.policy(str(in.PolicyArn))
		if err != nil {
			return err
		}
		v, _, err := p.version(str(in.VersionId))
		if err != nil {
			return err
		}
		pv := versionOut(v, true)
		out = &iam.GetPolicyVersionOutput{PolicyVersion: &pv}
		return nil
	})
	return out, err
}

// CreatePolicyVersion adds a version, at most five per policy.
func (f *IAM) CreatePolicyVersion(ctx context.Context, in *iam.CreatePolicyVersionInput, _ ...func(*iam.Options)) (*iam.CreatePolicyVersionOutput, error) {
	var out *iam.CreatePolicyVersionOutput
	err := f.a.call(ctx, "iam.CreatePolicyVersion", func() error {
		p, err := f.a.policy(str(in.PolicyArn))
		if err != nil {
			return err
		}
		if len(p.versions) >= MaxPolicyVersions {
			return limitExceeded("A managed policy can have up to %d versions. Before you create a new version, you must delete an existing version.", MaxPolicyVersions)
		}
		if _, err := parseDoc(str(in.PolicyDocument)); err != nil {
			return err
		}
		v := &policyVersion{id: fmt.Sprintf("v%d", p.next), doc: str(in.PolicyDocument), created: f.a.now}
		p.next++
		if in.SetAsDefault {
			for _, o := range p.versions {
				o.def = false
			}
			v.def = true
		}
		p.versions = append(p.versions, v)
		p.updated = f.a.now
		pv := versionOut(v, false)
		out = &iam.CreatePolicyVersionOutput{PolicyVersion: &pv}
		return nil
	})
	return out, err
}

// ListPolicyVersions lists a policy's versions, newest first, without documents.
func (f *IAM) ListPolicyVersions(ctx context.Context, in *iam.ListPolicyVersionsInput, _ ...func(*iam.Options)) (*iam.ListPolicyVersionsOutput, error) {
	var out *iam.ListPolicyVersionsOutput
	err := f.a.call(ctx, "iam.ListPolicyVersions", func() error {
		p, err := f.a.policy(str(in.PolicyArn))
		if err != nil {
			return err
		}
		out = &iam.ListPolicyVersionsOutput{}
		for i := len(p.versions) - 1; i >= 0; i-- {
			out.Versions = append(out.Versions, versionOut(p.versions[i], false))
		}
		return nil
	})
	return out, err
}

// DeletePolicyVersion deletes a non-default version.
func (f *IAM) DeletePolicyVersion(ctx context.Context, in *iam.DeletePolicyVersionInput, _ ...func(*iam.Options)) (*iam.DeletePolicyVersionOutput, error) {
	err := f.a.call(ctx, "iam.DeletePolicyVersion", func() error {
		p, err := f.a.policy(str(in.PolicyArn))
		if err != nil {
			return err
		}
		v, i, err := p.version(str(in.VersionId))
		if err != nil {
			return err
		}
		if v.def {
			return deleteConflict("Cannot delete the default version of a policy.")
		}
		p.versions = append(p.versions[:i], p.versions[i+1:]...)
		return nil
	})
	return &iam.DeletePolicyVersionOutput{}, err
}

// SetDefaultPolicyVersion makes a version the default.
func (f *IAM) SetDefaultPolicyVersion(ctx context.Context, in *iam.SetDefaultPolicyVersionInput, _ ...func(*iam.Options)) (*iam.SetDefaultPolicyVersionOutput, error) {
	err := f.a.call(ctx, "iam.SetDefaultPolicyVersion", func() error {
		p, err := f.a.policy(str(in.PolicyArn))
		if err != nil {
			return err
		}
		v, _, err := p.version(str(in.VersionId))
		if err != nil {
			return err
		}
		for _, o := range p.versions {
			o.def = false
		}
		v.def = true
		return nil
	})
	return &iam.SetDefaultPolicyVersionOutput{}, err
}

// ListEntitiesForPolicy lists the roles and users a policy is attached to.
func (f *IAM) ListEntitiesForPolicy(ctx context.Context, in *iam.ListEntitiesForPolicyInput, _ ...func(*iam.Options)) (*iam.ListEntitiesForPolicyOutput, error) {
	var out *iam.ListEntitiesForPolicyOutput
	err := f.a.call(ctx, "iam.ListEntitiesForPolicy", func() error {
		p, err := f.a.policy(str(in.PolicyArn))
		if err != nil {
			return err
		}
		roles, users := f.a.attachments(p.arn)
		out = &iam.ListEntitiesForPolicyOutput{PolicyGroups: []iamtypes.PolicyGroup{}, PolicyRoles: []iamtypes.PolicyRole{}, PolicyUsers: []iamtypes.PolicyUser{}}
		if in.EntityFilter == "" || in.EntityFilter == iamtypes.EntityTypeRole {
			for _, name := range roles {
				r := f.a.roles[name]
				out.PolicyRoles = append(out.PolicyRoles, iamtypes.PolicyRole{RoleName: aws.String(r.name), RoleId: aws.String(r.id)})
			}
		}
		if in.EntityFilter == "" || in.EntityFilter == iamtypes.EntityTypeUser {
			for _, name := range users {
				u := f.a.users[name]
				out.PolicyUsers = append(out.PolicyUsers, iamtypes.PolicyUser{UserName: aws.String(u.name), UserId: aws.String(u.id)})
			}
		}
		return nil
	})
	return out, err
}

// TagPolicy adds or replaces tags on a managed policy.
func (f *IAM) TagPolicy(ctx context.Context, in *iam.TagPolicyInput, _ ...func(*iam.Options)) (*iam.TagPolicyOutput, error) {
	err := f.a.call(ctx, "iam.TagPolicy", func() error {
		p, err := f.a.policy(str(in.PolicyArn))
		if err != nil {
			return err
		}
		return addTags(&p.tags, in.Tags)
	})
	return &iam.TagPolicyOutput{}, err
}

// ListPolicyTags lists a managed policy's tags.
func (f *IAM) ListPolicyTags(ctx context.Context, in *iam.ListPolicyTagsInput, _ ...func(*iam.Options)) (*iam.ListPolicyTagsOutput, error) {
	var out *iam.ListPolicyTagsOutput
	err := f.a.call(ctx, "iam.ListPolicyTags", func() error {
		p, err := f.a.policy(str(in.PolicyArn))
		if err != nil {
			return err
		}
		out = &iam.ListPolicyTagsOutput{Tags: copyTags(p.tags)}
		return nil
	})
	return out, err
}

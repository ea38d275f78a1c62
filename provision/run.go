package provision

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/containerise/containerise/internal/managed"
	"github.com/containerise/containerise/policies"
)

// plan is what setup will do, decided from the state read.
type plan struct {
	res *Result

	repoARN, policyARN, userARN, roleARN string
	perms, trust                         policies.Document

	createRepo, createPolicy, updatePolicy, createUser bool
	createKey                                          bool
	oldKey                                             string // the key a rotation replaces
	createRole, updateTrust, attach                    bool
	initialKeys                                        map[string]bool

	// retagVersion: the policy's default version, read and found right, is
	// not the one its tags name: record it (see versionTags).
	retagVersion string
}

// Indices of the resources in Result.Resources.
const (
	iRepo = iota
	iPolicy
	iUser
	iKey
	iRole
)

// Run sets up the account, or with DryRun only plans it. It returns the
// result even when a step fails, so that a secret already created is not
// lost: render it, then report the error.
func (p *Provisioner) Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s, err := p.read(ctx, o)
	if err != nil {
		return nil, err
	}
	pl, err := p.plan(o, s)
	if err != nil {
		return nil, err
	}
	if o.DryRun {
		return pl.res, nil
	}
	return pl.res, p.apply(ctx, o, pl)
}

func (p *Provisioner) plan(o Options, s *state) (*plan, error) {
	pl := &plan{
		res:         &Result{Account: s.account, Region: o.Region, Partition: s.partition, DryRun: o.DryRun},
		repoARN:     policies.RepositoryARN(s.partition, o.Region, s.account, o.Repository),
		policyARN:   policies.PolicyARN(s.partition, s.account, o.Policy),
		userARN:     policies.UserARN(s.partition, s.account, o.User),
		roleARN:     policies.RoleARN(s.partition, s.account, o.Role),
		initialKeys: map[string]bool{},
	}
	pl.perms = wantPermissions(o, s.partition, s.account)
	if s.user != nil && s.user.Arn != nil {
		pl.userARN = *s.user.Arn
	}
	if s.role != nil && s.role.Arn != nil {
		pl.roleARN = *s.role.Arn
	}
	if s.repo != nil && s.repo.RepositoryArn != nil {
		pl.repoARN = *s.repo.RepositoryArn
	}
	pl.trust = policies.Trust(pl.userARN)
	would := func(create bool) Status {
		if create {
			return WouldCreate
		}
		return WouldUpdate
	}
	r := pl.res
	r.Resources = make([]Resource, 5)

	// The repository.
	repo := Resource{Kind: KindRepository, Name: o.Repository, ARN: pl.repoARN, Managed: true, Status: Unchanged}
	switch {
	case s.repo == nil:
		pl.createRepo = true
		repo.Status = would(true)
	case !s.repoManaged:
		repo.Status, repo.Managed = Unmanaged, false
	}
	r.Resources[iRepo] = repo

	// The policy.
	pol := Resource{Kind: KindPolicy, Name: o.Policy, ARN: pl.policyARN, Managed: true, Status: Unchanged}
	if s.policy == nil {
		pl.createPolicy = true
		pol.Status = would(true)
	} else {
		pol.Managed = managed.IAM(s.policy.Tags)
		same := s.policyCurrent
		var diffs []string
		if !same {
			var err error
			if same, err = policies.Equivalent(s.policyDoc, pl.perms); err != nil {
				same = false
			}
			diffs = differences(s.policyDoc, pl.perms)
		}
		switch {
		case !pol.Managed:
			pol.Status = Unmanaged
			if !same {
				pol.Changes = diffs
				if len(diffs) == 0 {
					pol.Changes = []string{"same permissions, written differently"}
				} else {
					r.Warnings = append(r.Warnings, fmt.Sprintf("policy %s is not managed by containerise and its document differs from what setup makes: %s; left as is (compare with 'containerise policies')",
						o.Policy, strings.Join(diffs, "; ")))
				}
			}
		case !same:
			pl.updatePolicy = true
			pol.Status = would(false)
			pol.Changes = append([]string{"new default version"}, diffs...)
		case !s.policyCurrent:
			// Right, but its tags do not say so (made by an earlier
			// containerise, a failed TagPolicy, a default version set by
			// hand to an equivalent one): the status stays unchanged.
			pl.retagVersion = aws.ToString(s.policy.DefaultVersionId)
		}
	}
	r.Resources[iPolicy] = pol

	// The user.
	usr := Resource{Kind: KindUser, Name: o.User, ARN: pl.userARN, Managed: true, Status: Unchanged}
	switch {
	case s.user == nil:
		pl.createUser = true
		usr.Status = would(true)
	case !managed.IAM(s.user.Tags):
		usr.Status, usr.Managed = Unmanaged, false
	}
	r.Resources[iUser] = usr

	// The access key.
	key := Resource{Kind: KindAccessKey, Managed: usr.Managed, Status: Unchanged}
	keys := append([]iamtypes.AccessKeyMetadata(nil), s.keys...)
	sortKeys(keys)
	for _, k := range keys {
		pl.initialKeys[aws.ToString(k.AccessKeyId)] = true
	}
	switch {
	case len(keys) == 0:
		pl.createKey = true
		key.Status, key.Managed = would(true), true
		key.Name = "(new)"
	case o.RotateKey && len(keys) >= 2:
		return nil, &StepError{
			What: "rotating the access key of user " + o.User,
			Err:  fmt.Errorf("the user already has %d access keys (%s), the most AWS allows", len(keys), keyList(keys)),
			Hint: fmt.Sprintf("delete the one CI no longer uses, e.g. '%s', then rerun with --rotate-key",
				deleteKeyCommand(o.User, aws.ToString(keys[0].AccessKeyId))),
		}
	case o.RotateKey:
		pl.createKey = true
		pl.oldKey = aws.ToString(keys[0].AccessKeyId)
		key.Status, key.Managed, key.Name = would(true), true, "(new)"
		key.Changes = []string{fmt.Sprintf("replaces %s, deleted after confirmation", pl.oldKey)}
	default:
		current := newestActive(keys)
		key.Name = aws.ToString(current.AccessKeyId)
		r.Variables.AccessKeyID = key.Name
		note := fmt.Sprintf("access key %s of user %s exists; its secret was shown only when it was created. For a new key: %s", key.Name, o.User, o.rotateCommand())
		if current.Status != iamtypes.StatusTypeActive {
			note = fmt.Sprintf("access key %s of user %s is %s, so CI cannot use it; for a new key: %s", key.Name, o.User, current.Status, o.rotateCommand())
		}
		r.Notes = append(r.Notes, note)
		if len(keys) > 1 {
			r.Notes = append(r.Notes, fmt.Sprintf("user %s has %d access keys (%s); %s shows the newest active one", o.User, len(keys), keyList(keys), VarAccessKeyID))
		}
	}
	r.Resources[iKey] = key

	// The role.
	rol := Resource{Kind: KindRole, Name: o.Role, ARN: pl.roleARN, Managed: true, Status: Unchanged}
	if s.role == nil {
		pl.createRole, pl.attach = true, true
		rol.Status = would(true)
		rol.Changes = []string{"trusts user " + o.User, "policy " + o.Policy + " attached"}
	} else {
		rol.Managed = managed.IAM(s.role.Tags)
		trustOK, err := policies.Equivalent(aws.ToString(s.role.AssumeRolePolicyDocument), pl.trust)
		if err != nil {
			trustOK = false
		}
		attached := attachedTo(s.roleAttached, pl.policyARN)
		var changes []string
		if !trustOK {
			if rol.Managed {
				changes = append(changes, "trust policy restored: only user "+o.User+" may assume the role")
			} else {
				changes = append(changes, "trust policy does not let exactly user "+o.User+" assume the role")
			}
			changes = append(changes, differences(aws.ToString(s.role.AssumeRolePolicyDocument), pl.trust)...)
		}
		if !attached {
			if rol.Managed {
				changes = append(changes, "policy "+o.Policy+" re-attached")
			} else {
				changes = append(changes, "policy "+o.Policy+" is not attached")
			}
		}
		switch {
		case !rol.Managed:
			rol.Status = Unmanaged
			rol.Changes = changes
			if len(changes) > 0 {
				r.Warnings = append(r.Warnings, fmt.Sprintf("role %s is not managed by containerise and differs from what setup makes (%s); left as is, so CI may not be able to push",
					o.Role, strings.Join(changes, "; ")))
			}
		case len(changes) > 0:
			pl.updateTrust, pl.attach = !trustOK, !attached
			rol.Status = would(false)
			rol.Changes = changes
		}
	}
	r.Resources[iRole] = rol
	r.Variables.RoleARN = pl.roleARN
	r.Variables.Region = o.Region
	return pl, nil
}

// wantPermissions is the policy document setup makes.
func wantPermissions(o Options, partition, account string) policies.Document {
	return policies.Permissions(policies.Target{Partition: partition, Region: o.Region, AccountID: account, Repository: o.Repository},
		policies.PermissionOptions{AllowDescribeImages: o.AllowDescribeImages})
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

// Package awsfake is an in-memory AWS account for unit tests: IAM, ECR and
// STS with the SDK v2 method shapes, so that a value of *IAM, *ECR or *STS
// satisfies the narrow interfaces the provision and teardown packages declare
// over *iam.Client, *ecr.Client and *sts.Client.
//
// The fakes follow AWS's rules, not just its shapes, and fail with the SDK's
// real typed errors (iamtypes.NoSuchEntityException, DeleteConflictException,
// ecrtypes.RepositoryNotEmptyException, ...), so code under test takes the
// same branches it takes against AWS:
//
//   - IAM: a user has at most 2 access keys (LimitExceeded); a managed policy
//     keeps at most 5 versions (LimitExceeded) and its default version cannot
//     be deleted; DeletePolicy refuses while the policy is attached or has
//     non-default versions; DeleteRole refuses while policies are attached,
//     inline policies exist or the role is in an instance profile; DeleteUser
//     refuses while the user has access keys, policies or a login profile
//     (all DeleteConflict). GetRole and GetPolicyVersion return documents
//     URL-encoded, as IAM does. Tags follow IAM's rules (key 1-128
//     characters, value at most 256, letters, digits, white space and
//     _.:/=+-@, no "aws:" prefix: InvalidInput; at most 50: LimitExceeded).
//   - IAM is eventually consistent: with PrincipalDelay set, a trust policy
//     naming a user or role created less than that long ago (or one that does
//     not exist) is refused with MalformedPolicyDocument "Invalid principal in
//     policy".
//   - ECR: DeleteRepository refuses a repository with images unless Force.
//     GetAuthorizationToken returns base64("AWS:<token>") and the proxy
//     endpoint https://<account>.dkr.ecr.<region>.amazonaws.com. Repository
//     settings follow ECR's rules: scanning on push, tag mutability (the
//     *_WITH_EXCLUSION values take 1-5 WILDCARD filters of
//     [0-9a-zA-Z._*-], the others none: InvalidParameter), encryption fixed
//     at creation (AES256 unless KMS with a key), a lifecycle policy
//     (LifecyclePolicyNotFound when there is none). StartImageScan allows
//     one scan per image every 24 hours (LimitExceeded); a repository that
//     scans on push scans what AddImage adds; DescribeImageScanFindings
//     answers ScanNotFound before a scan, IN_PROGRESS while it runs, then
//     the status and findings SetScanResult chose.
//   - KMS: DescribeKey finds keys made with AddKMSKey by ID, ARN, alias or
//     alias ARN (NotFoundException otherwise).
//   - STS: Account.STS is the admin; Account.STSAs(keyID, secret) calls as the
//     IAM user owning that access key, refused with InvalidClientTokenId while
//     the key is younger than KeyDelay (or unknown, or inactive), and with
//     SignatureDoesNotMatch for a wrong secret ("" skips that check). AssumeRole checks that the role exists and
//     that its trust policy names the caller (AccessDenied otherwise), and
//     refuses a role younger than RoleDelay.
//   - OIDC federation (oidc.go): IAM's OpenID Connect providers (client IDs
//     as audiences; thumbprints optional; tags), ListRoles with trust
//     policies, and a trust policy naming a provider that does not exist or
//     is younger than PrincipalDelay refused as an invalid principal.
//     STS.AssumeRoleWithWebIdentity checks a token's issuer (a provider older
//     than ProviderDelay, else InvalidIdentityToken), audience, expiry
//     (ExpiredTokenException) and the trust policy's conditions on its aud
//     and sub (AccessDenied), but not its signature: tests mint tokens.
//
// Knobs (all safe to change while calls run):
//
//   - New(Config{...}): account ID, region, partition, start time and the
//     three delays above (all zero by default: no eventual consistency).
//   - Clock: Now, Advance(d) and SetNow(t). The clock is frozen at the start
//     time and moves only when told, so propagation delays are waited out by
//     advancing it, not by sleeping.
//   - SetLatency(d): every call sleeps d (honouring its context) before it
//     runs, so concurrency shows in wall time; Rounds reports the longest chain
//     of calls each started after the previous one ended.
//   - Faults: FailCall(n, err) fails the nth call (1-based, counting every
//     operation); FailOperation(op, err) fails every call of "iam.CreateRole";
//     FailOperationTimes(op, n, err) only the next n of them; FailAfter(k, err)
//     every call after the kth. Fault.Applied makes the call take effect and
//     still report the error (a lost response). ClearFaults removes them.
//     Throttling, ServerError and AccessDenied build the errors AWS sends.
//   - Record: Calls lists every operation ("iam.CreateRole") with whether it
//     mutates and its error; Mutating lists the mutating ones; ResetCalls
//     starts a new record.
//   - Seeding state: AddImage puts an image in a repository, AddInstanceProfile
//     puts a role in an instance profile, AddKMSKey makes a key with aliases,
//     SetScanResult chooses what scans report (status, counts by severity,
//     basic or enhanced findings, how long they run on the fake clock);
//     everything else is made through the
//     fakes' own API, as an admin would (untagged, like the blog's
//     hand-made resources).
package awsfake

import (
	"context"
	"crypto/rand"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aws/smithy-go"

	"github.com/containerise/containerise/internal/awsx"
)

// Config sets up an account. Zero values take the defaults shown.
type Config struct {
	AccountID string    // 123456789012
	Region    string    // us-east-1
	Partition string    // aws
	Start     time.Time // 2024-01-01T00:00:00Z: the frozen clock's first value
	// PrincipalDelay: a trust policy may name a user or role only once it is
	// this old (IAM's propagation of new principals).
	PrincipalDelay time.Duration
	// KeyDelay: STS refuses an access key younger than this.
	KeyDelay time.Duration
	// RoleDelay: STS refuses AssumeRole on a role younger than this.
	RoleDelay time.Duration
	// ProviderDelay: STS does not find an OIDC provider younger than this
	// (InvalidIdentityToken "No OpenIDConnect provider found").
	ProviderDelay time.Duration
	// AdminName is the IAM user name GetCallerIdentity reports for the admin
	// (the caller of IAM, ECR and STS); it need not exist. Default "admin".
	AdminName string
}

// Account is the state behind the three fakes. It is safe for concurrent use.
type Account struct {
	mu sync.Mutex

	id, region, partition, adminName string
	now                              time.Time
	principalDelay, keyDelay         time.Duration
	roleDelay, latency               time.Duration
	providerDelay                    time.Duration

	users            map[string]*user
	roles            map[string]*role
	policies         map[string]*policy // by ARN
	repos            map[string]*repo
	instanceProfiles map[string]*instanceProfile
	oidcProviders    map[string]*oidcProvider // by ARN
	kmsKeys          []*kmsKey
	registry         registryConfig // ECR's registry-wide configurations

	calls  []Call
	faults []*Fault
	seq    int
}

// New returns an empty account.
func New(c Config) *Account {
	a := &Account{
		id: c.AccountID, region: c.Region, partition: c.Partition, adminName: c.AdminName,
		now:            c.Start,
		principalDelay: c.PrincipalDelay, keyDelay: c.KeyDelay, roleDelay: c.RoleDelay, providerDelay: c.ProviderDelay,
		users:            map[string]*user{},
		roles:            map[string]*role{},
		policies:         map[string]*policy{},
		repos:            map[string]*repo{},
		instanceProfiles: map[string]*instanceProfile{},
		oidcProviders:    map[string]*oidcProvider{},
	}
	if a.id == "" {
		a.id = "123456789012"
	}
	if a.region == "" {
		a.region = "us-east-1"
	}
	if a.partition == "" {
		a.partition = "aws"
	}
	if a.adminName == "" {
		a.adminName = "admin"
	}
	if a.now.IsZero() {
		a.now = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return a
}

// ID is the account ID.
func (a *Account) ID() string { return a.id }

// Region is the account's region (ECR's and the STS endpoint's).
func (a *Account) Region() string { return a.region }

// Partition is the ARN partition.
func (a *Account) Partition() string { return a.partition }

// AdminARN is the ARN GetCallerIdentity returns for the admin.
func (a *Account) AdminARN() string {
	return fmt.Sprintf("arn:%s:iam::%s:user/%s", a.partition, a.id, a.adminName)
}

// IAM returns the IAM fake, called by the admin.
func (a *Account) IAM() *IAM { return &IAM{a: a} }

// ECR returns the ECR fake, called by the admin.
func (a *Account) ECR() *ECR { return &ECR{a: a} }

// STS returns the STS fake, called by the admin.
func (a *Account) STS() *STS { return &STS{a: a} }

// STSAs returns an STS fake called with an IAM user's access key. An empty
// secret skips the signature check.
func (a *Account) STSAs(keyID, secret string) *STS { return &STS{a: a, keyID: keyID, secret: secret} }

// Now returns the fake clock's time.
func (a *Account) Now() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.now
}

// Advance moves the clock forward by d.
func (a *Account) Advance(d time.Duration) {
	a.mu.Lock()
	a.now = a.now.Add(d)
	a.mu.Unlock()
}

// SetNow sets the clock.
func (a *Account) SetNow(t time.Time) {
	a.mu.Lock()
	a.now = t
	a.mu.Unlock()
}

// SetPrincipalDelay changes Config.PrincipalDelay.
func (a *Account) SetPrincipalDelay(d time.Duration) {
	a.mu.Lock()
	a.principalDelay = d
	a.mu.Unlock()
}

// SetKeyDelay changes Config.KeyDelay.
func (a *Account) SetKeyDelay(d time.Duration) {
	a.mu.Lock()
	a.keyDelay = d
	a.mu.Unlock()
}

// SetRoleDelay changes Config.RoleDelay.
func (a *Account) SetRoleDelay(d time.Duration) {
	a.mu.Lock()
	a.roleDelay = d
	a.mu.Unlock()
}

// SetProviderDelay changes Config.ProviderDelay.
func (a *Account) SetProviderDelay(d time.Duration) {
	a.mu.Lock()
	a.providerDelay = d
	a.mu.Unlock()
}

// SetLatency makes every call take d of wall time before it runs.
func (a *Account) SetLatency(d time.Duration) {
	a.mu.Lock()
	a.latency = d
	a.mu.Unlock()
}

// Call is one recorded operation.
type Call struct {
	Op       string // "iam.CreateRole"
	Mutating bool
	Err      error // what the caller got (nil on success)
	// Start and End are wall-clock times, for Rounds.
	Start, End time.Time
}

// Calls returns every operation called so far, in the order they started.
func (a *Account) Calls() []Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := append([]Call(nil), a.calls...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Ops returns the names of every operation called so far.
func (a *Account) Ops() []string {
	var ops []string
	for _, c := range a.Calls() {
		ops = append(ops, c.Op)
	}
	return ops
}

// Mutating returns the names of the mutating operations called so far.
func (a *Account) Mutating() []string {
	var ops []string
	for _, c := range a.Calls() {
		if c.Mutating {
			ops = append(ops, c.Op)
		}
	}
	return ops
}

// ResetCalls clears the record of calls (faults counting calls restart too).
func (a *Account) ResetCalls() {
	a.mu.Lock()
	a.calls = nil
	a.mu.Unlock()
}

// Rounds returns the number of sequential rounds the recorded calls took:
// the longest chain of calls in which each started after the previous one
// ended. Calls made concurrently count once. Meaningful with SetLatency.
func (a *Account) Rounds() int {
	calls := a.Calls()
	depth := make([]int, len(calls))
	best := 0
	for i, c := range calls {
		depth[i] = 1
		for j := 0; j < i; j++ {
			if !calls[j].End.After(c.Start) && depth[j]+1 > depth[i] {
				depth[i] = depth[j] + 1
			}
		}
		if depth[i] > best {
			best = depth[i]
		}
	}
	return best
}

// Fault makes matching calls fail with Err.
type Fault struct {
	Op    string // operation ("iam.CreateRole"); empty matches any
	Call  int    // fail only the Call-th call overall (1-based); 0: any
	After int    // fail only calls after the After-th; 0: any
	Times int    // fail this many matching calls, then stop; 0: unlimited
	// Applied makes the call take effect before failing, as when AWS did
	// the work but the response was lost.
	Applied bool
	Err     error
}

// Inject adds a fault.
func (a *Account) Inject(f Fault) {
	a.mu.Lock()
	a.faults = append(a.faults, &f)
	a.mu.Unlock()
}

// FailCall fails the nth call (1-based, counting every operation).
func (a *Account) FailCall(n int, err error) { a.Inject(Fault{Call: n, Err: err}) }

// FailOperation fails every call of op, e.g. "iam.CreateRole".
func (a *Account) FailOperation(op string, err error) { a.Inject(Fault{Op: op, Err: err}) }

// FailOperationTimes fails the next n calls of op.
func (a *Account) FailOperationTimes(op string, n int, err error) {
	a.Inject(Fault{Op: op, Times: n, Err: err})
}

// FailAfter fails every call after the kth.
func (a *Account) FailAfter(k int, err error) { a.Inject(Fault{After: k, Err: err}) }

// ClearFaults removes every fault.
func (a *Account) ClearFaults() {
	a.mu.Lock()
	a.faults = nil
	a.mu.Unlock()
}

// Throttling is the error AWS returns when calls come too fast.
func Throttling() error {
	return &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}
}

// ServerError is a 5xx from the service.
func ServerError() error {
	return &smithy.GenericAPIError{Code: "ServiceUnavailable", Message: "Service is unavailable. Please try again later.", Fault: smithy.FaultServer}
}

// AccessDenied is IAM's refusal of an operation ("iam:CreateRole").
func (a *Account) AccessDenied(action string) error {
	return &smithy.GenericAPIError{Code: "AccessDenied", Message: fmt.Sprintf(
		"User: %s is not authorized to perform: %s because no identity-based policy allows the %s action",
		a.AdminARN(), action, action)}
}

// call runs one operation: latency, faults, then fn under the lock, and
// records it.
func (a *Account) call(ctx context.Context, op string, fn func() error) error {
	a.mu.Lock()
	latency := a.latency
	a.mu.Unlock()
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return err
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.calls) + 1
	fault := a.matchFault(op, n)
	var err error
	switch {
	case fault == nil:
		err = fn()
	case fault.Applied:
		_ = fn()
		err = fault.Err
	default:
		err = fault.Err
	}
	a.calls = append(a.calls, Call{Op: op, Mutating: awsx.IsMutating(op), Err: err, Start: start, End: time.Now()})
	return err
}

func (a *Account) matchFault(op string, n int) *Fault {
	for _, f := range a.faults {
		if f.Op != "" && f.Op != op {
			continue
		}
		if f.Call != 0 && f.Call != n {
			continue
		}
		if f.After != 0 && n <= f.After {
			continue
		}
		if f.Times < 0 {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				f.Times = -1 // spent
			}
		}
		return f
	}
	return nil
}

// newID returns a new identifier of n uppercase letters and digits after prefix.
func (a *Account) newID(prefix string, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

// newSecret returns a new 40-character secret access key.
func newSecret() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
	b := make([]byte, 40)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

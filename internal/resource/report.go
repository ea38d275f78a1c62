package resource

import "github.com/containerise/containerise/internal/hint"

// Kinds of resources, as reports name them.
const (
	KindRepository = "repository"
	KindPolicy     = "policy"
	KindUser       = "user"
	KindAccessKey  = "access-key"
	KindRole       = "role"
	// KindOIDCProvider is an IAM OpenID Connect provider.
	KindOIDCProvider = "oidc-provider"
	KindSettings     = "settings" // the repository's settings
)

// Status is what setup did, or would do, to a resource.
type Status string

// Statuses.
const (
	Created     Status = "created"
	Updated     Status = "updated"
	Unchanged   Status = "unchanged"
	Exists      Status = "exists" // created meanwhile by another setup
	Unmanaged   Status = "unmanaged"
	WouldCreate Status = "would-create"
	WouldUpdate Status = "would-update"
	Failed      Status = "failed"
	Skipped     Status = "skipped" // not attempted because a step it needs failed
	// A resource setup no longer wants (the CI user, once CI uses OIDC):
	// deleted after confirmation, or kept without it.
	WouldDelete Status = "would-delete"
	Deleted     Status = "deleted"
	Kept        Status = "kept"
)

// State is what a teardown plan does with a resource.
type State string

// States.
const (
	// StateGone: the resource does not exist; nothing to do.
	StateGone State = "gone"
	// StateDelete: the resource will be deleted through its steps.
	StateDelete State = "delete"
	// StateUnmanaged: the resource lacks the tag managed-by=containerise and
	// is left alone (unless unmanaged resources are included).
	StateUnmanaged State = "unmanaged"
	// StateBlocked: something containerise did not make holds the
	// resource; it is not touched, and the report says what holds it.
	StateBlocked State = "blocked"
	// StateInUse: something else still uses the resource (another role
	// trusts the OIDC provider): it is kept, which is no failure, and the
	// report says what uses it.
	StateInUse State = "in-use"
)

// Outcome is what a teardown did with a resource.
type Outcome string

// Outcomes.
const (
	OutcomeDeleted   Outcome = "deleted"
	OutcomeGone      Outcome = "gone"
	OutcomeLeftAlone Outcome = "left-alone"
	OutcomeFailed    Outcome = "failed"
)

// Report is what a run found and did with one resource: the data every
// output format is rendered from.
type Report struct {
	Kind string
	Name string
	// Region is where a regional resource (a repository, its settings) is;
	// empty for IAM's, which are global.
	Region string
	ARN    string
	// Exists: the resource was found (teardown).
	Exists bool
	// Managed: the resource carries managed-by=containerise, or will.
	Managed bool

	// Setup: what was (or would be) done, and what changed or, for an
	// unmanaged resource, what differs from what setup would make.
	Status  Status
	Changes []string

	// Teardown: what the plan does, why a resource is blocked or in use
	// (with the commands that remove what holds it), the steps, what
	// happened.
	State   State
	Blocker string
	Images  *int // the repository's image count, when it exists
	Steps   []*Step
	Outcome Outcome

	// Settings are the repository's settings as they are (or will be)
	// once the run is done; only the settings' report has them.
	Settings *SettingsState

	// Err is why the resource failed, if it did.
	Err error
}

// Label names the resource as people see it: region/name for a regional
// one (a repository's region is part of its identity), the name otherwise.
func (r *Report) Label() string {
	if r.Region != "" {
		return r.Region + "/" + r.Name
	}
	return r.Name
}

// Note is something the user should know or do next.
type Note struct {
	Text string
	Next hint.Next
}

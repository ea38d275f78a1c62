package policies

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/containerise/containerise/internal/managed"
)

// Lifecycle is an ECR lifecycle policy document: rules that expire images
// or move them to the archive storage class, each evaluated in the order of
// its priority.
type Lifecycle struct {
	Rules []LifecycleRule `json:"rules"`
}

// LifecycleRule is one rule of a lifecycle policy.
type LifecycleRule struct {
	RulePriority int                `json:"rulePriority"`
	Description  string             `json:"description,omitempty"`
	Selection    LifecycleSelection `json:"selection"`
	Action       LifecycleAction    `json:"action"`
}

// LifecycleSelection says which images a rule expires.
type LifecycleSelection struct {
	TagStatus      string   `json:"tagStatus"`
	TagPrefixList  []string `json:"tagPrefixList,omitempty"`
	TagPatternList []string `json:"tagPatternList,omitempty"`
	// StorageClass is the class a rule selects from ("standard", the
	// default, or "archive").
	StorageClass string `json:"storageClass,omitempty"`
	CountType    string `json:"countType"`
	CountUnit    string `json:"countUnit,omitempty"`
	CountNumber  int    `json:"countNumber"`
}

// LifecycleAction is what a rule does with the images it selects.
type LifecycleAction struct {
	Type string `json:"type"` // "expire" or "transition"
	// TargetStorageClass is where a transition moves images: "archive".
	TargetStorageClass string `json:"targetStorageClass,omitempty"`
}

// Retention is what setup's lifecycle rules keep. Zero means no such rule.
type Retention struct {
	// KeepImages keeps the N most recently pushed images and expires the
	// others, tagged or not.
	KeepImages int
	// ExpireUntaggedDays expires untagged images D days after their push.
	ExpireUntaggedDays int
	// ArchiveAfterDays moves tagged images not pulled for D days to ECR's
	// archive storage class; an archived image cannot be pulled until it
	// is restored.
	ArchiveAfterDays int
}

// Setup's rules are recognised by this start of their description, so that
// setup changes or removes only what it wrote: lifecycle rules take no tags.
const lifecycleMark = managed.Described

// ECR evaluates rules by ascending priority, and a rule whose tagStatus is
// "any" must have the highest priority number of all, and be the only
// one: the untagged rule comes first, the archive rule (which selects
// tagged images, so that the keep rule stays the one "any" rule) next, the
// keep rule last. Without an archive rule the keep rule keeps the priority
// it always had, so that policies written before are not rewritten.
const (
	untaggedPriority = 1
	keepPriority     = 2
	archivePriority  = 2
)

func untaggedRule(days int) LifecycleRule {
	return LifecycleRule{
		RulePriority: untaggedPriority,
		Description:  lifecycleMark.On(fmt.Sprintf("expire untagged images %s after their push", plural(days, "day"))),
		Selection:    LifecycleSelection{TagStatus: "untagged", CountType: "sinceImagePushed", CountUnit: "days", CountNumber: days},
		Action:       LifecycleAction{Type: "expire"},
	}
}

func keepRule(n int) LifecycleRule {
	return LifecycleRule{
		RulePriority: keepPriority,
		Description:  lifecycleMark.On(fmt.Sprintf("keep the %s most recently pushed", plural(n, "image"))),
		Selection:    LifecycleSelection{TagStatus: "any", CountType: "imageCountMoreThan", CountNumber: n},
		Action:       LifecycleAction{Type: "expire"},
	}
}

// archiveRule moves tagged images nobody pulled for days to the archive
// storage class. ECR counts an image never pulled from its push.
func archiveRule(days int) LifecycleRule {
	return LifecycleRule{
		RulePriority: archivePriority,
		Description:  lifecycleMark.On(fmt.Sprintf("archive images not pulled for %s", plural(days, "day"))),
		Selection:    LifecycleSelection{TagStatus: "tagged", TagPatternList: []string{"*"}, CountType: "sinceImagePulled", CountUnit: "days", CountNumber: days},
		Action:       LifecycleAction{Type: "transition", TargetStorageClass: "archive"},
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// LifecyclePolicy is the policy setup writes for r; ok is false when r asks
// for no rule, and the repository then has no policy of setup's.
func LifecyclePolicy(r Retention) (doc Lifecycle, ok bool) {
	if r.ExpireUntaggedDays > 0 {
		doc.Rules = append(doc.Rules, untaggedRule(r.ExpireUntaggedDays))
	}
	if r.ArchiveAfterDays > 0 {
		doc.Rules = append(doc.Rules, archiveRule(r.ArchiveAfterDays))
	}
	if r.KeepImages > 0 {
		keep := keepRule(r.KeepImages)
		if r.ArchiveAfterDays > 0 {
			keep.RulePriority = archivePriority + 1
		}
		doc.Rules = append(doc.Rules, keep)
	}
	return doc, len(doc.Rules) > 0
}

// JSON returns the policy indented, as ECR stores and shows it.
func (l Lifecycle) JSON() string {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		// Lifecycle holds only strings and numbers; marshalling cannot fail.
		panic(err)
	}
	return string(b)
}

// ParseLifecycle reads a lifecycle policy as ECR returns it. A field this
// package does not know (a newer kind of rule) is an error, so that such a
// policy is never taken for one of setup's.
func ParseLifecycle(text string) (Lifecycle, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	var l Lifecycle
	if err := dec.Decode(&l); err != nil {
		return Lifecycle{}, fmt.Errorf("parsing lifecycle policy: %w", err)
	}
	return l, nil
}

// SetupRetention reads what the policy keeps when every rule in it is one
// setup writes (recognised by its description and shape, whatever the
// numbers); ours is false when the policy holds any other rule, or cannot
// be read: setup then leaves it alone.
func SetupRetention(text string) (r Retention, ours bool) {
	l, err := ParseLifecycle(text)
	if err != nil {
		return Retention{}, false
	}
	for _, rule := range l.Rules {
		s, a := rule.Selection, rule.Action
		if !lifecycleMark.Made(rule.Description) || s.CountNumber <= 0 || len(s.TagPrefixList) > 0 || (s.StorageClass != "" && s.StorageClass != "standard") {
			return Retention{}, false
		}
		expire := a.Type == "expire" && a.TargetStorageClass == ""
		switch {
		case expire && s.TagStatus == "untagged" && len(s.TagPatternList) == 0 && s.CountType == "sinceImagePushed" && s.CountUnit == "days" && r.ExpireUntaggedDays == 0:
			r.ExpireUntaggedDays = s.CountNumber
		case expire && s.TagStatus == "any" && len(s.TagPatternList) == 0 && s.CountType == "imageCountMoreThan" && s.CountUnit == "" && r.KeepImages == 0:
			r.KeepImages = s.CountNumber
		case a.Type == "transition" && a.TargetStorageClass == "archive" && s.TagStatus == "tagged" && len(s.TagPatternList) == 1 && s.TagPatternList[0] == "*" &&
			s.CountType == "sinceImagePulled" && s.CountUnit == "days" && r.ArchiveAfterDays == 0:
			r.ArchiveAfterDays = s.CountNumber
		default:
			return Retention{}, false
		}
	}
	return r, true
}

// LifecycleEquivalent reports whether the policy text ECR holds says the
// same as want: the same rules and values, whatever the layout, key order
// or order of the rules (ECR orders them by priority).
func LifecycleEquivalent(have string, want Lifecycle) (bool, error) {
	h, err := canonicalLifecycle([]byte(have))
	if err != nil {
		return false, err
	}
	w, err := canonicalLifecycle([]byte(want.JSON()))
	if err != nil {
		return false, err
	}
	return h == w, nil
}

// canonicalLifecycle re-encodes a policy with its rules sorted by priority
// and its keys sorted (encoding/json sorts map keys), keeping every field,
// known or not.
func canonicalLifecycle(text []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return "", fmt.Errorf("parsing lifecycle policy: %w", err)
	}
	if rules, ok := doc["rules"].([]any); ok {
		sort.SliceStable(rules, func(i, j int) bool { return priority(rules[i]) < priority(rules[j]) })
	}
	b, err := json.Marshal(doc)
	return string(b), err
}

func priority(rule any) float64 {
	m, _ := rule.(map[string]any)
	n, _ := m["rulePriority"].(json.Number)
	f, _ := n.Float64()
	return f
}

// Describe says what r keeps in words: "keep the 10 most recently pushed
// images; expire untagged images 7 days after their push".
func (r Retention) Describe() string {
	var parts []string
	if r.KeepImages > 0 {
		parts = append(parts, "keep the "+plural(r.KeepImages, "image")+" most recently pushed")
	}
	if r.ExpireUntaggedDays > 0 {
		parts = append(parts, "expire untagged images "+plural(r.ExpireUntaggedDays, "day")+" after their push")
	}
	if r.ArchiveAfterDays > 0 {
		parts = append(parts, "archive images not pulled for "+plural(r.ArchiveAfterDays, "day"))
	}
	if len(parts) == 0 {
		return "no lifecycle rules"
	}
	return strings.Join(parts, "; ")
}

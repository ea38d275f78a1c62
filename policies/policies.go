// Package policies builds the IAM documents containerise manages, as data
// serialised with encoding/json: the permissions policy that lets a role push
// to one ECR repository, and the trust policy that lets one IAM user, or
// CircleCI jobs with their OIDC token (circleci.go), assume that role. It
// also compares documents the way IAM does, ignoring layout.
//
// The permissions are least privilege by default: what a push needs, plus
// the read actions of the features asked for. The blog's broader statements
// (which also let CI delete the repository or change its settings) are
// kept for those who ask for them.
package policies

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Version is the IAM policy language version.
const Version = "2012-10-17"

// Document is an IAM policy document.
type Document struct {
	Version   string     `json:"Version"`
	Statement Statements `json:"Statement"`
}

// Statement is one IAM policy statement.
type Statement struct {
	Sid       string     `json:"Sid,omitempty"`
	Effect    string     `json:"Effect"`
	Principal *Principal `json:"Principal,omitempty"`
	Action    Values     `json:"Action"`
	Resource  Values     `json:"Resource,omitempty"`
	Condition Condition  `json:"Condition,omitempty"`
}

// Principal names who a trust policy lets in.
type Principal struct {
	AWS       Values `json:"AWS,omitempty"`
	Service   Values `json:"Service,omitempty"`
	Federated Values `json:"Federated,omitempty"`
}

// Condition maps an operator ("StringEquals", "StringLike") to the context
// keys it tests and the values each may take.
type Condition map[string]map[string]Values

// Values is a list that IAM writes as a bare string when it has one element.
type Values []string

// MarshalJSON writes one value as a string, as IAM does.
func (v Values) MarshalJSON() ([]byte, error) {
	if len(v) == 1 {
		return json.Marshal(v[0])
	}
	return json.Marshal([]string(v))
}

// pushActions are what a push needs on the repository: upload the layers
// (after checking which it already has) and put the image manifest.
var pushActions = []string{
	"ecr:BatchCheckLayerAvailability",
	"ecr:InitiateLayerUpload",
	"ecr:UploadLayerPart",
	"ecr:CompleteLayerUpload",
	"ecr:PutImage",
}

// blogActions are the blog's ECRContainerise actions on the repository.
var blogActions = []string{
	"ecr:PutLifecyclePolicy",
	"ecr:PutImageTagMutability",
	"ecr:StartImageScan",
	"ecr:CreateRepository",
	"ecr:PutImageScanningConfiguration",
	"ecr:UploadLayerPart",
	"ecr:BatchDeleteImage",
	"ecr:DeleteLifecyclePolicy",
	"ecr:DeleteRepository",
	"ecr:PutImage",
	"ecr:CompleteLayerUpload",
	"ecr:StartLifecyclePolicyPreview",
	"ecr:InitiateLayerUpload",
	"ecr:DeleteRepositoryPolicy",
}

// PushActions returns the repository actions a push needs.
func PushActions() []string { return append([]string(nil), pushActions...) }

// BlogActions returns the blog's repository-scoped actions.
func BlogActions() []string { return append([]string(nil), blogActions...) }

// Read actions the features add to the policy.
var (
	// skipExistingActions let push see which tags ECR already has.
	skipExistingActions = []string{"ecr:DescribeImages"}
	// cacheActions let the build pull the repository's layers as a cache.
	cacheActions = []string{"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}
	// scanReadActions let the scan gate read what ECR's scan found;
	// scanStartActions also let it start a scan the repository did not run
	// on push.
	scanReadActions  = []string{"ecr:DescribeImageScanFindings"}
	scanStartActions = []string{"ecr:DescribeImageScanFindings", "ecr:StartImageScan"}
)

// Target names the AWS location the documents refer to.
type Target struct {
	Partition  string // "aws" unless in China or GovCloud; empty means PartitionOf(Region)
	Region     string
	AccountID  string
	Repository string
	// Repositories, when set, are every repository the role may push to
	// (in Region); Repository is then ignored.
	Repositories []string
}

// repositoryARNs are the ARNs of the target's repositories, in order.
func (t Target) repositoryARNs() Values {
	names := t.Repositories
	if len(names) == 0 {
		names = []string{t.Repository}
	}
	var out Values
	for _, n := range names {
		out = append(out, RepositoryARN(t.partition(), t.Region, t.AccountID, n))
	}
	return out
}

func (t Target) partition() string {
	if t.Partition != "" {
		return t.Partition
	}
	return PartitionOf(t.Region)
}

// Set names a set of permissions for the role.
type Set string

// Permission sets.
const (
	// LeastPrivilege is what a push needs, and no more.
	LeastPrivilege Set = "least"
	// Blog is the blog post's ECRContainerise statements, word for word.
	Blog Set = "blog"
)

// PermissionOptions choose the statements.
type PermissionOptions struct {
	// Set is the base: LeastPrivilege (the default when empty) or Blog.
	Set Set
	// AllowDescribeImages adds ecr:DescribeImages on the repository so that
	// push can leave out the tags that already exist.
	AllowDescribeImages bool
	// RegistryCache adds ecr:BatchGetImage and ecr:GetDownloadUrlForLayer
	// on the repository, so that a build reads the layers it pushed before.
	RegistryCache bool
	// ScanFindings adds ecr:DescribeImageScanFindings on the repository, so
	// that the scan gate reads what the repository's scans found.
	ScanFindings bool
	// StartScan adds ecr:DescribeImageScanFindings and ecr:StartImageScan,
	// so that the scan gate may also start a scan of an image that has
	// none (a repository that does not scan on push).
	StartScan bool
	// EnhancedFindings adds inspector2:ListFindings, which reading the
	// findings of ECR's enhanced scanning (Amazon Inspector) also needs.
	// It takes no resource: its statement is on "*".
	EnhancedFindings bool
	// SigningProfile, when set, adds signer:SignPayload on that AWS Signer
	// profile, which ECR's managed signing of the role's pushes needs, and
	// ecr:DescribeImageSigningStatus, for the gate's --require-signature.
	SigningProfile string
}

// Permissions returns the policy attached to the role: the base set's
// statements, then one statement per feature asked for.
//
// The least-privilege base pushes to the repository only
// (BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart,
// CompleteLayerUpload, PutImage) and gets a registry token
// (ecr:GetAuthorizationToken, on "*" since that action has no resource).
// The blog's base is its three statements: its fourteen actions scoped to
// the repository, ecr:GetAuthorizationToken on "*", and
// ecr:BatchCheckLayerAvailability on the repository.
//
// With several repositories, each statement on "the repository" lists them
// all as its resources: one list to read, the same grants on each.
func Permissions(t Target, opts PermissionOptions) Document {
	arns := t.repositoryARNs()
	repo := func() Values { return append(Values(nil), arns...) }
	token := Statement{Sid: "GetAuthorizationToken", Effect: "Allow", Action: Values{"ecr:GetAuthorizationToken"}, Resource: Values{"*"}}
	doc := Document{Version: Version}
	if opts.Set == Blog {
		doc.Statement = []Statement{
			{Sid: "PushToRepository", Effect: "Allow", Action: BlogActions(), Resource: repo()},
			token,
			{Sid: "CheckLayerAvailability", Effect: "Allow", Action: Values{"ecr:BatchCheckLayerAvailability"}, Resource: repo()},
		}
	} else {
		doc.Statement = []Statement{
			{Sid: "PushToRepository", Effect: "Allow", Action: PushActions(), Resource: repo()},
			token,
		}
	}
	if opts.AllowDescribeImages {
		doc.Statement = append(doc.Statement, Statement{Sid: "DescribeImages", Effect: "Allow", Action: skipExistingActions, Resource: repo()})
	}
	if opts.RegistryCache {
		doc.Statement = append(doc.Statement, Statement{Sid: "ReadLayersForCache", Effect: "Allow", Action: cacheActions, Resource: repo()})
	}
	switch {
	case opts.StartScan:
		doc.Statement = append(doc.Statement, Statement{Sid: "ScanGate", Effect: "Allow", Action: scanStartActions, Resource: repo()})
	case opts.ScanFindings:
		doc.Statement = append(doc.Statement, Statement{Sid: "ScanGate", Effect: "Allow", Action: scanReadActions, Resource: repo()})
	}
	if opts.EnhancedFindings {
		doc.Statement = append(doc.Statement, Statement{Sid: "ReadEnhancedFindings", Effect: "Allow", Action: Values{"inspector2:ListFindings"}, Resource: Values{"*"}})
	}
	if opts.SigningProfile != "" {
		doc.Statement = append(doc.Statement,
			Statement{Sid: "SignPushedImages", Effect: "Allow", Action: Values{"signer:SignPayload"}, Resource: Values{opts.SigningProfile}},
			Statement{Sid: "ReadSigningStatus", Effect: "Allow", Action: Values{"ecr:DescribeImageSigningStatus"}, Resource: repo()})
	}
	return doc
}

// ParseSet reads a permission set's name, as users spell it.
func ParseSet(name string) (Set, error) {
	switch Set(name) {
	case LeastPrivilege, Blog:
		return Set(name), nil
	}
	return "", fmt.Errorf("unknown permission set %q: use %s or %s", name, LeastPrivilege, Blog)
}

// Trust returns the role's trust policy: exactly one IAM user may assume it.
func Trust(userARN string) Document {
	return Document{
		Version: Version,
		Statement: []Statement{{
			Effect:    "Allow",
			Principal: &Principal{AWS: Values{userARN}},
			Action:    Values{"sts:AssumeRole"},
		}},
	}
}

// JSON returns the document indented for people and for IAM.
func (d Document) JSON() string {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		// Document holds only strings; marshalling cannot fail.
		panic(err)
	}
	return string(b)
}

// Parse reads a document as IAM returns it: plain JSON, or URL-encoded JSON
// (GetRole and GetPolicyVersion return the latter).
func Parse(text string) (Document, error) {
	if !strings.HasPrefix(strings.TrimSpace(text), "{") {
		decoded, err := url.QueryUnescape(text)
		if err != nil {
			return Document{}, fmt.Errorf("policy document is neither JSON nor URL-encoded JSON: %w", err)
		}
		text = decoded
	}
	var d Document
	if err := json.Unmarshal([]byte(text), &d); err != nil {
		return Document{}, fmt.Errorf("parsing policy document: %w", err)
	}
	return d, nil
}

// canonical returns d with every list sorted, so that documents differing only
// in order or in string-versus-list form compare equal.
func (d Document) canonical() string {
	stmts := make([]string, 0, len(d.Statement))
	for _, s := range d.Statement {
		s.Action = sorted(s.Action)
		s.Resource = sorted(s.Resource)
		if s.Principal != nil {
			p := Principal{AWS: sorted(s.Principal.AWS), Service: sorted(s.Principal.Service), Federated: sorted(s.Principal.Federated)}
			s.Principal = &p
		}
		if len(s.Condition) > 0 {
			c := Condition{}
			for op, keys := range s.Condition {
				c[op] = map[string]Values{}
				for k, v := range keys {
					c[op][k] = sorted(v)
				}
			}
			s.Condition = c // encoding/json writes map keys sorted
		}
		b, _ := json.Marshal(s)
		stmts = append(stmts, string(b))
	}
	sort.Strings(stmts)
	return d.Version + "\n" + strings.Join(stmts, "\n")
}

func sorted(v Values) Values {
	if v == nil {
		return nil
	}
	out := append(Values(nil), v...)
	sort.Strings(out)
	return out
}

// Equivalent reports whether the document IAM holds (plain or URL-encoded
// JSON) grants the same as want.
func Equivalent(have string, want Document) (bool, error) {
	d, err := Parse(have)
	if err != nil {
		return false, err
	}
	return d.canonical() == want.canonical(), nil
}

// Digest returns the hex SHA-256 of d's canonical form: the same for every
// document Equivalent finds equal to d (statements or list elements in
// another order, a one-element list written as a string), different when
// what it grants differs. Setup records it in the policy's tags so that a
// rerun can tell the default version is the wanted document without reading
// it.
func (d Document) Digest() string {
	sum := sha256.Sum256([]byte(d.canonical()))
	return hex.EncodeToString(sum[:])
}

// PartitionOf returns the ARN partition of a region.
func PartitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	default:
		return "aws"
	}
}

// RepositoryARN returns the ARN of an ECR repository.
func RepositoryARN(partition, region, account, repository string) string {
	return fmt.Sprintf("arn:%s:ecr:%s:%s:repository/%s", partition, region, account, repository)
}

// UserARN returns the ARN of an IAM user at the root path.
func UserARN(partition, account, user string) string {
	return fmt.Sprintf("arn:%s:iam::%s:user/%s", partition, account, user)
}

// RoleARN returns the ARN of an IAM role at the root path.
func RoleARN(partition, account, role string) string {
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, role)
}

// PolicyARN returns the ARN of a customer managed policy at the root path.
func PolicyARN(partition, account, policy string) string {
	return fmt.Sprintf("arn:%s:iam::%s:policy/%s", partition, account, policy)
}

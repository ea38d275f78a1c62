// Package validate checks names and values against AWS's and Docker's rules
// before any API call, so bad input fails fast with a message naming the flag
// (or variable) and the rule it breaks.
package validate

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/containerise/containerise/internal/clierror"
)

var (
	// ECR: lowercase path components separated by '/', each made of
	// alphanumerics joined by single '.', '_' or '-'; 2 to 256 characters.
	repositoryRE = lazyRegexp(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	// IAM user, role and policy names: letters, digits and +=,.@_-
	iamNameRE = lazyRegexp(`^[A-Za-z0-9+=,.@_-]+$`)
	regionRE  = lazyRegexp(`^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$`)
	accountRE = lazyRegexp(`^[0-9]{12}$`)
	// arn:partition:iam::account:role/[path/]name
	roleARNRE = lazyRegexp(`^arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/(?:[\x21-\x7e]*/)?[A-Za-z0-9+=,.@_-]{1,64}$`)
	// Docker tags: word characters, '.', '-'; not starting with '.' or '-'.
	tagRE         = lazyRegexp(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	accessKeyIDRE = lazyRegexp(`^[A-Z0-9]{16,128}$`)
	// ECR's tag mutability exclusion filters: tag characters and '*'.
	tagFilterRE = lazyRegexp(`^[0-9a-zA-Z._*-]{1,128}$`)
	// KMS: alias/NAME, or the ARN of a key or an alias.
	kmsAliasRE = lazyRegexp(`^alias/[a-zA-Z0-9/_-]{1,250}$`)
	kmsARNRE   = lazyRegexp(`^arn:aws(?:-[a-z]+)*:kms:([a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}):[0-9]{12}:(?:key/(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})|alias/[a-zA-Z0-9/_-]{1,250})$`)
)

// MaxTagFilters is how many tag mutability exclusion filters ECR takes.
const MaxTagFilters = 5

// TagFilter checks a pattern of tags that stay mutable in an immutable ECR
// repository (an exclusion filter): tag characters, with '*' as wildcard.
func TagFilter(flag, pattern string) error {
	if !tagFilterRE.MatchString(pattern) {
		return bad(flag, pattern, "a tag pattern is 1-128 letters, digits, '.', '_', '-' and '*' (any characters), such as latest or dev-*")
	}
	return nil
}

// KMSKey checks a KMS key as ECR takes it for encryption: alias/NAME, or
// the ARN of a key or alias. A key ARN must be in region, when region is
// given: ECR uses keys of the repository's region only.
func KMSKey(flag, key, region string) error {
	const rule = "give the key's ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), an alias ARN, or alias/NAME"
	if kmsAliasRE.MatchString(key) {
		return nil
	}
	m := kmsARNRE.FindStringSubmatch(key)
	if m == nil {
		return bad(flag, key, rule)
	}
	if region != "" && m[1] != region {
		return bad(flag, key, "the key is in "+m[1]+", the repository in "+region+": ECR encrypts with a key of the repository's own region")
	}
	return nil
}

func bad(flag, value, rule string) error {
	if value == "" {
		return clierror.Usagef("%s is empty: %s", flag, rule)
	}
	return clierror.Usagef("%s %q is invalid: %s", flag, value, rule)
}

// Repository checks an ECR repository name.
func Repository(flag, name string) error {
	const rule = "an ECR repository name is 2-256 lowercase letters, digits and '.', '_', '-', '/' separators, starting and ending with a letter or digit"
	if len(name) < 2 || len(name) > 256 || !repositoryRE.MatchString(name) {
		return bad(flag, name, rule)
	}
	return nil
}

func iamName(flag, name, kind string, max int) error {
	rule := fmt.Sprintf("an IAM %s name is 1-%d letters, digits and + = , . @ _ -", kind, max)
	if name == "" || utf8.RuneCountInString(name) > max || !iamNameRE.MatchString(name) {
		return bad(flag, name, rule)
	}
	return nil
}

// UserName checks an IAM user name.
func UserName(flag, name string) error { return iamName(flag, name, "user", 64) }

// RoleName checks an IAM role name.
func RoleName(flag, name string) error { return iamName(flag, name, "role", 64) }

// PolicyName checks an IAM managed policy name.
func PolicyName(flag, name string) error { return iamName(flag, name, "policy", 128) }

// Region checks the shape of an AWS region name such as us-east-1.
func Region(flag, region string) error {
	if !regionRE.MatchString(region) {
		return bad(flag, region, "an AWS region looks like us-east-1 or eu-west-2")
	}
	return nil
}

// AccountID checks a 12-digit AWS account ID.
func AccountID(flag, id string) error {
	if !accountRE.MatchString(id) {
		return bad(flag, id, "an AWS account ID is 12 digits")
	}
	return nil
}

// RoleARN checks an IAM role ARN such as arn:aws:iam::123456789012:role/containerise.
func RoleARN(flag, arn string) error {
	if !roleARNRE.MatchString(arn) {
		return bad(flag, arn, "expected an IAM role ARN like arn:aws:iam::123456789012:role/containerise")
	}
	return nil
}

// Tag checks a Docker image tag.
func Tag(flag, tag string) error {
	if !tagRE.MatchString(tag) {
		return bad(flag, tag, "a tag is 1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-'")
	}
	return nil
}

// AccessKeyID checks the shape of an IAM access key ID.
func AccessKeyID(flag, id string) error {
	if !accessKeyIDRE.MatchString(id) {
		return bad(flag, id, "an access key ID is 16-128 uppercase letters and digits, like AKIAIOSFODNN7EXAMPLE")
	}
	return nil
}

// NotEmpty checks that a required value is set.
func NotEmpty(flag, value, hint string) error {
	if strings.TrimSpace(value) == "" {
		return clierror.Usagef("%s is not set: %s", flag, hint)
	}
	return nil
}

// First returns the first non-nil error, so callers can list checks in order.
func First(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// lazyRE compiles its expression on first use: compiling every rule at
// start-up would cost each run of the binary, including --version.
type lazyRE struct {
	re func() *regexp.Regexp
}

func lazyRegexp(expr string) *lazyRE {
	return &lazyRE{re: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })}
}

func (l *lazyRE) MatchString(s string) bool { return l.re().MatchString(s) }

func (l *lazyRE) FindStringSubmatch(s string) []string { return l.re().FindStringSubmatch(s) }

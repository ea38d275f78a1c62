package awsfake

// OpenID Connect federation: IAM's OIDC providers, ListRoles (to find the
// roles whose trust names a provider), and STS's AssumeRoleWithWebIdentity,
// which checks a token as AWS does, except its signature: the fake has no
// issuer keys to check it with, so tests mint their own tokens.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
)

type oidcProvider struct {
	url, arn    string // url without its scheme, as IAM keeps it
	clientIDs   []string
	thumbprints []string
	created     time.Time
	tags        []iamtypes.Tag
}

const maxClientIDs = 100

var thumbprintRE = regexp.MustCompile(`^[0-9A-Fa-f]{40}$`)

func (a *Account) oidcProvider(arn string) (*oidcProvider, error) {
	p, ok := a.oidcProviders[arn]
	if !ok {
		return nil, noSuchEntity("OpenIDConnect Provider not found for arn %s", arn)
	}
	return p, nil
}

// CreateOpenIDConnectProvider registers an issuer URL (https, no query, no
// port) with its client IDs (audiences). Thumbprints are optional: AWS
// fetches and trusts the issuer's certificate itself.
func (f *IAM) CreateOpenIDConnectProvider(ctx context.Context, in *iam.CreateOpenIDConnectProviderInput, _ ...func(*iam.Options)) (*iam.CreateOpenIDConnectProviderOutput, error) {
	var out *iam.CreateOpenIDConnectProviderOutput
	err := f.a.call(ctx, "iam.CreateOpenIDConnectProvider", func() error {
		raw := str(in.Url)
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Port() != "" || len(raw) > 255 {
			return invalidInput("Invalid Open ID Connect Provider URL: %s", raw)
		}
		if len(in.ClientIDList) > maxClientIDs {
			return limitExceeded("Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: %d", maxClientIDs)
		}
		for _, id := range in.ClientIDList {
			if id == "" || len(id) > 255 {
				return invalidInput("1 validation error detected: Value at 'clientIDList' failed to satisfy constraint: Member must have length between 1 and 255")
			}
		}
		if len(in.ThumbprintList) > 5 {
			return invalidInput("Thumbprint list must contain fewer than 5 entries.")
		}
		for _, t := range in.ThumbprintList {
			if !thumbprintRE.MatchString(t) {
				return invalidInput("1 validation error detected: Value at 'thumbprintList' failed to satisfy constraint: Member must have length 40")
			}
		}
		if err := checkTags(nil, in.Tags); err != nil {
			return err
		}
		hostPath := strings.TrimSuffix(u.Host+u.Path, "/")
		arn := fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", f.a.partition, f.a.id, hostPath)
		if _, ok := f.a.oidcProviders[arn]; ok {
			return alreadyExists("Provider with url %s already exists.", raw)
		}
		f.a.oidcProviders[arn] = &oidcProvider{
			url: hostPath, arn: arn, created: f.a.now, tags: copyTags(in.Tags),
			clientIDs: append([]string(nil), in.ClientIDList...), thumbprints: append([]string(nil), in.ThumbprintList...),
		}
		out = &iam.CreateOpenIDConnectProviderOutput{OpenIDConnectProviderArn: aws.String(arn), Tags: copyTags(in.Tags)}
		return nil
	})
	return out, err
}

// GetOpenIDConnectProvider returns a provider's URL (without its scheme),
// client IDs, thumbprints and tags.
func (f *IAM) GetOpenIDConnectProvider(ctx context.Context, in *iam.GetOpenIDConnectProviderInput, _ ...func(*iam.Options)) (*iam.GetOpenIDConnectProviderOutput, error) {
	var out *iam.GetOpenIDConnectProviderOutput
	err := f.a.call(ctx, "iam.GetOpenIDConnectProvider", func() error {
		p, err := f.a.oidcProvider(str(in.OpenIDConnectProviderArn))
		if err != nil {
			return err
		}
		out = &iam.GetOpenIDConnectProviderOutput{
			Url: aws.String(p.url), ClientIDList: append([]string{}, p.clientIDs...), ThumbprintList: append([]string{}, p.thumbprints...),
			CreateDate: tp(p.created), Tags: copyTags(p.tags),
		}
		return nil
	})
	return out, err
}

// ListOpenIDConnectProviders lists every provider's ARN.
func (f *IAM) ListOpenIDConnectProviders(ctx context.Context, _ *iam.ListOpenIDConnectProvidersInput, _ ...func(*iam.Options)) (*iam.ListOpenIDConnectProvidersOutput, error) {
	var out *iam.ListOpenIDConnectProvidersOutput
	err := f.a.call(ctx, "iam.ListOpenIDConnectProviders", func() error {
		out = &iam.ListOpenIDConnectProvidersOutput{OpenIDConnectProviderList: []iamtypes.OpenIDConnectProviderListEntry{}}
		var arns []string
		for arn := range f.a.oidcProviders {
			arns = append(arns, arn)
		}
		sort.Strings(arns)
		for _, arn := range arns {
			out.OpenIDConnectProviderList = append(out.OpenIDConnectProviderList, iamtypes.OpenIDConnectProviderListEntry{Arn: aws.String(arn)})
		}
		return nil
	})
	return out, err
}

// AddClientIDToOpenIDConnectProvider adds an audience; adding one the
// provider has is no error.
func (f *IAM) AddClientIDToOpenIDConnectProvider(ctx context.Context, in *iam.AddClientIDToOpenIDConnectProviderInput, _ ...func(*iam.Options)) (*iam.AddClientIDToOpenIDConnectProviderOutput, error) {
	err := f.a.call(ctx, "iam.AddClientIDToOpenIDConnectProvider", func() error {
		p, err := f.a.oidcProvider(str(in.OpenIDConnectProviderArn))
		if err != nil {
			return err
		}
		id := str(in.ClientID)
		if id == "" || len(id) > 255 {
			return invalidInput("1 validation error detected: Value at 'clientID' failed to satisfy constraint: Member must have length between 1 and 255")
		}
		for _, have := range p.clientIDs {
			if have == id {
				return nil
			}
		}
		if len(p.clientIDs) >= maxClientIDs {
			return limitExceeded("Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: %d", maxClientIDs)
		}
		p.clientIDs = append(p.clientIDs, id)
		return nil
	})
	return &iam.AddClientIDToOpenIDConnectProviderOutput{}, err
}

// DeleteOpenIDConnectProvider deletes a provider. Like IAM, it does not
// fail for one that does not exist, nor for one that trust policies still
// name.
func (f *IAM) DeleteOpenIDConnectProvider(ctx context.Context, in *iam.DeleteOpenIDConnectProviderInput, _ ...func(*iam.Options)) (*iam.DeleteOpenIDConnectProviderOutput, error) {
	err := f.a.call(ctx, "iam.DeleteOpenIDConnectProvider", func() error {
		delete(f.a.oidcProviders, str(in.OpenIDConnectProviderArn))
		return nil
	})
	return &iam.DeleteOpenIDConnectProviderOutput{}, err
}

// TagOpenIDConnectProvider adds or replaces tags on a provider.
func (f *IAM) TagOpenIDConnectProvider(ctx context.Context, in *iam.TagOpenIDConnectProviderInput, _ ...func(*iam.Options)) (*iam.TagOpenIDConnectProviderOutput, error) {
	err := f.a.call(ctx, "iam.TagOpenIDConnectProvider", func() error {
		p, err := f.a.oidcProvider(str(in.OpenIDConnectProviderArn))
		if err != nil {
			return err
		}
		return addTags(&p.tags, in.Tags)
	})
	return &iam.TagOpenIDConnectProviderOutput{}, err
}

// ListRoles lists the roles with their trust policies (URL-encoded), by
// name, MaxItems (default 100) at a time.
func (f *IAM) ListRoles(ctx context.Context, in *iam.ListRolesInput, _ ...func(*iam.Options)) (*iam.ListRolesOutput, error) {
	var out *iam.ListRolesOutput
	err := f.a.call(ctx, "iam.ListRoles", func() error {
		var names []string
		for name := range f.a.roles {
			names = append(names, name)
		}
		sort.Strings(names)
		start := 0
		if m := str(in.Marker); m != "" {
			n, err := strconv.Atoi(m)
			if err != nil || n < 0 || n > len(names) {
				return invalidInput("Invalid Marker.")
			}
			start = n
		}
		max := 100
		if in.MaxItems != nil {
			max = int(*in.MaxItems)
		}
		end := min(start+max, len(names))
		out = &iam.ListRolesOutput{Roles: []iamtypes.Role{}}
		for _, name := range names[start:end] {
			r := *f.a.roles[name].out()
			r.Tags = nil // ListRoles does not return tags
			out.Roles = append(out.Roles, r)
		}
		if end < len(names) {
			out.IsTruncated, out.Marker = true, aws.String(strconv.Itoa(end))
		}
		return nil
	})
	return out, err
}

// checkFederated refuses a trust policy naming an OIDC provider of this
// account that does not exist, or was created less than the principal
// delay ago, as IAM does.
func (a *Account) checkFederated(p string) error {
	prefix := fmt.Sprintf("arn:%s:iam::%s:oidc-provider/", a.partition, a.id)
	if !strings.HasPrefix(p, prefix) {
		return nil
	}
	prov, ok := a.oidcProviders[p]
	if !ok || a.now.Sub(prov.created) < a.principalDelay {
		return malformed("Invalid principal in policy: \"Federated\":\"%s\"", p)
	}
	return nil
}

// --- STS -----------------------------------------------------------------

func invalidIdentityToken(format string, args ...any) error {
	return &ststypes.InvalidIdentityTokenException{Message: aws.String(fmt.Sprintf(format, args...))}
}

// tokenClaims reads a JWT's claims without checking its signature.
func tokenClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// AssumeRoleWithWebIdentity returns a role's credentials for a token whose
// issuer is an OIDC provider of the account that has propagated (else
// InvalidIdentityToken "No OpenIDConnect provider found"), whose audience
// is one of the provider's client IDs, which has not expired
// (ExpiredTokenException), and whose claims satisfy the conditions of a
// statement of the role's trust policy naming that provider (else
// AccessDenied). The call is unsigned: the token is the credential.
func (f *STS) AssumeRoleWithWebIdentity(ctx context.Context, in *sts.AssumeRoleWithWebIdentityInput, _ ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	var out *sts.AssumeRoleWithWebIdentityOutput
	err := f.a.call(ctx, "sts.AssumeRoleWithWebIdentity", func() error {
		session := str(in.RoleSessionName)
		if !sessionNameRE.MatchString(session) {
			return &smithy.GenericAPIError{Code: "ValidationError", Message: fmt.Sprintf(
				"1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", session)}
		}
		claims, err := tokenClaims(str(in.WebIdentityToken))
		if err != nil {
			return invalidIdentityToken("The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
		}
		iss, _ := claims["iss"].(string)
		arn := fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", f.a.partition, f.a.id, strings.TrimSuffix(strings.TrimPrefix(iss, "https://"), "/"))
		prov, ok := f.a.oidcProviders[arn]
		if !ok || f.a.now.Sub(prov.created) < f.a.providerDelay {
			return invalidIdentityToken("No OpenIDConnect provider found in your account for %s", iss)
		}
		aud := strs(claims["aud"])
		if !overlaps(aud, prov.clientIDs) {
			return invalidIdentityToken("Incorrect token audience")
		}
		if exp, ok := claims["exp"].(float64); !ok || !f.a.now.Before(time.Unix(int64(exp), 0)) {
			return &ststypes.ExpiredTokenException{Message: aws.String("Token expired: current date/time " + f.a.now.UTC().Format(time.RFC3339) + " must be before the expiration date/time")}
		}
		roleARN := str(in.RoleArn)
		denied := &smithy.GenericAPIError{Code: "AccessDenied", Message: "Not authorized to perform sts:AssumeRoleWithWebIdentity"}
		name := roleARN[strings.LastIndexByte(roleARN, '/')+1:]
		r, ok := f.a.roles[name]
		if !ok || r.arn != roleARN || f.a.now.Sub(r.created) < f.a.roleDelay || !trustsToken(r.trust, arn, prov.url, claims) {
			return denied
		}
		duration := time.Hour
		if in.DurationSeconds != nil {
			duration = time.Duration(*in.DurationSeconds) * time.Second
		}
		sub, _ := claims["sub"].(string)
		out = &sts.AssumeRoleWithWebIdentityOutput{
			AssumedRoleUser: &ststypes.AssumedRoleUser{
				Arn:           aws.String(fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", f.a.partition, f.a.id, r.name, session)),
				AssumedRoleId: aws.String(r.id + ":" + session),
			},
			Credentials: &ststypes.Credentials{
				AccessKeyId: aws.String(f.a.newID("ASIA", 16)), SecretAccessKey: aws.String(newSecret()),
				SessionToken: aws.String(f.a.newID("FQoGZXIvYXdzE", 64)), Expiration: tp(f.a.now.Add(duration)),
			},
			Audience: aws.String(strings.Join(aud, ",")), Provider: aws.String(prov.url), SubjectFromWebIdentityToken: aws.String(sub),
		}
		return nil
	})
	return out, err
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// trustsToken reports whether a trust policy lets a token of the provider
// assume the role: an Allow statement for sts:AssumeRoleWithWebIdentity
// naming the provider, whose conditions the token's claims satisfy.
func trustsToken(trust, providerARN, providerURL string, claims map[string]any) bool {
	d, err := parseDocument(trust)
	if err != nil {
		return false
	}
	for _, s := range d.statements {
		if s.effect != "Allow" || !slices.Contains(s.actions, "sts:AssumeRoleWithWebIdentity") || !slices.Contains(s.principals["Federated"], providerARN) {
			continue
		}
		if conditionsHold(s.conditions, providerURL, claims) {
			return true
		}
	}
	return false
}

// conditionsHold evaluates the string operators IAM applies to a token's
// <provider>:aud and <provider>:sub keys. An operator the fake does not
// know fails, so a test cannot pass on a condition nobody checked.
func conditionsHold(conds map[string]map[string][]string, providerURL string, claims map[string]any) bool {
	value := func(key string) ([]string, bool) {
		claim, ok := strings.CutPrefix(key, providerURL+":")
		if !ok || (claim != "aud" && claim != "sub") {
			return nil, false
		}
		v := strs(claims[claim])
		return v, len(v) > 0
	}
	for op, keys := range conds {
		for key, patterns := range keys {
			have, present := value(key)
			var match func(v, pattern string) bool
			negate := false
			switch op {
			case "StringEquals":
				match = func(v, p string) bool { return v == unescapeIAM(p) }
			case "StringLike":
				match = iamLike
			case "StringNotLike":
				match, negate = iamLike, true
			default:
				return false
			}
			matched := false
			for _, v := range have {
				for _, p := range patterns {
					if match(v, p) {
						matched = true
					}
				}
			}
			if !present {
				matched = false
			}
			if matched == negate {
				return false
			}
		}
	}
	return true
}

// unescapeIAM reads IAM's escapes of its special characters.
func unescapeIAM(s string) string {
	return strings.NewReplacer("${$}", "$", "${*}", "*", "${?}", "?").Replace(s)
}

// iamLike matches v against an IAM StringLike pattern: '*' any run of
// characters ('/' included), '?' one character, ${$} ${*} ${?} literals.
func iamLike(v, pattern string) bool {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch {
		case strings.HasPrefix(pattern[i:], "${$}"), strings.HasPrefix(pattern[i:], "${*}"), strings.HasPrefix(pattern[i:], "${?}"):
			b.WriteString(regexp.QuoteMeta(pattern[i+2 : i+3]))
			i += 3
		case pattern[i] == '*':
			b.WriteString("(?s:.*)")
		case pattern[i] == '?':
			b.WriteString("(?s:.)")
		default:
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	return err == nil && re.MatchString(v)
}

package push

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
)

// cacheSources lists the images a build may reuse layers from: the tags it
// is about to push, as the registry has them now, then every --cache-from.
func cacheSources(o Options, reg registryAuth, tags []string) []string {
	var refs []string
	seen := map[string]bool{}
	add := func(ref string) {
		if !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	for _, tag := range tags {
		add(reg.ref(o.Repository, tag))
	}
	for _, ref := range o.CacheFrom {
		add(ref)
	}
	return refs
}

// cacheSourcesOnEngine returns the cache sources the engine has already (a
// warm engine: a persistent CI runner, a developer's machine), named with
// the registry host that ECR will give: <account>.dkr.ecr.<region>.<suffix>.
// Those are used as they are, without asking the registry; none means a
// cold engine.
func (p *Pusher) cacheSourcesOnEngine(ctx context.Context, o Options) []string {
	host := predictedRegistry(o.RoleARN, o.Region)
	if host == "" {
		return nil
	}
	var local []string
	for _, ref := range cacheSources(o, registryAuth{Host: host}, o.Tags) {
		if _, err := p.Engine.ImageInspect(ctx, ref); err == nil {
			local = append(local, ref)
		}
	}
	if len(local) > 0 {
		p.logf("cache: the engine has %s already: building from it without pulling", strings.Join(local, ", "))
	}
	return local
}

// predictedRegistry is the ECR registry host of the role's account in
// region, "" when the role ARN does not name an account.
func predictedRegistry(roleARN, region string) string {
	a, err := arn.Parse(roleARN)
	if err != nil || a.AccountID == "" || region == "" {
		return ""
	}
	suffix := "amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		suffix = "amazonaws.com.cn"
	}
	return a.AccountID + ".dkr.ecr." + region + "." + suffix
}

// pullCacheSources brings each cache source into the engine, with the ECR
// token for ECR's registry and anonymously elsewhere, and returns those it
// could pull. A source that is missing, refused or broken is left out with
// one line on stderr: a cache never fails a push.
//
// Why pull rather than let BuildKit import the cache from the registry: on
// a cold engine (a fresh CI machine), an image built from a registry import
// carries no cache records for the layers it reused (moby/buildkit#1981), so
// the next build misses and they alternate. From a pulled image, the
// engine's BuildKit reads the cache records in the image store, and every
// build writes them all again: the cache holds run after run. The classic
// builder reuses pulled images' layers the same way.
func (p *Pusher) pullCacheSources(ctx context.Context, refs []string, reg registryAuth, platforms []string) ([]string, error) {
	var pulled []string
	platform := ""
	if len(platforms) == 1 {
		platform = platforms[0]
	}
	for _, ref := range refs {
		var auth string
		if registryHost(ref) == reg.Host {
			auth = reg.Encoded
		}
		p.logf("cache: pulling %s to reuse its layers", ref)
		body, err := p.Engine.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth, Platform: platform})
		if err == nil {
			err = p.display(body, p.Err, nil)
			body.Close()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			p.logf("%s", cacheWarning(ref, err))
			continue
		}
		pulled = append(pulled, ref)
	}
	return pulled, nil
}

// cacheWarning says why a cache source is left out, and what to do if it
// should not be.
func cacheWarning(ref string, err error) string {
	msg := err.Error()
	var jerr *jsonmessage.JSONError
	if errors.As(err, &jerr) {
		msg = jerr.Message
	}
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "manifest unknown") || strings.Contains(lower, "not found"):
		return "cache: " + ref + " is not in the registry (yet): building without it"
	case isAuthFailure(lower) || strings.Contains(lower, "forbidden"):
		return "warning: cache: the registry refused " + ref + " (" + msg + "): building without it; to reuse its layers the role needs ecr:BatchGetImage and ecr:GetDownloadUrlForLayer (rerun setup)"
	default:
		return "warning: cache: could not pull " + ref + " (" + msg + "): building without it"
	}
}

// registryHost is the registry part of an image reference ("docker.io" for
// Docker Hub's short names).
func registryHost(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	return reference.Domain(named)
}

// Package ecrfront is the test stack's registry front: it stands at the ECR
// registry's host name, passes registry traffic to a Distribution registry,
// and tells ECR's API (moto) about what was pushed, as ECR's own registry
// is one with its API. So DescribeImages, BatchGetImage, scans and
// teardown's image count see the images push really pushed.
//
// What it does beside passing requests on:
//
//   - a manifest stored by the registry (PUT /v2/<name>/manifests/<ref>,
//     answered 201) is recorded with ecr:PutImage: the same bytes, digest,
//     media type and, when <ref> is a tag, the tag; then, when the
//     repository scans on push, a scan is started (ecr:StartImageScan), as
//     ECR does;
//
//   - a manifest deleted by digest (answered 202) is removed with
//     ecr:BatchDeleteImage;
//
//   - before a push with the registry's credentials overwrites a tag that
//     ECR holds immutable, it refuses as ECR does: 400 TAG_INVALID, even
//     for the same image, and the registry never sees the push.
//
//   - a push with the registry's credentials to a repository that ECR does
//     not know is refused as ECR refuses it, 404 NAME_UNKNOWN, at its first
//     blob upload or manifest; pulls pass, so a base image kept in the
//     registry outlives a reset of moto.
//
// The account and region come from the host name the client used
// (<account>.dkr.ecr.<region>.amazonaws.com), as ECR's do.
package ecrfront

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// ECR is the part of *ecr.Client the front calls.
type ECR interface {
	DescribeRepositories(context.Context, *ecr.DescribeRepositoriesInput, ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	DescribeImages(context.Context, *ecr.DescribeImagesInput, ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
	PutImage(context.Context, *ecr.PutImageInput, ...func(*ecr.Options)) (*ecr.PutImageOutput, error)
	BatchDeleteImage(context.Context, *ecr.BatchDeleteImageInput, ...func(*ecr.Options)) (*ecr.BatchDeleteImageOutput, error)
	StartImageScan(context.Context, *ecr.StartImageScanInput, ...func(*ecr.Options)) (*ecr.StartImageScanOutput, error)
}

var _ ECR = (*ecr.Client)(nil)

// Front passes registry traffic to a registry and records manifests in ECR.
type Front struct {
	// ECR returns the ECR API of an account and region, nil for one the
	// front does not record in.
	ECR func(account, region string) ECR
	// User and Password are the registry's credentials: only a push
	// carrying them is checked against tag immutability (the registry
	// itself refuses the others).
	User, Password string
	// Logf receives a line per recorded change; never a credential.
	Logf func(format string, args ...any)

	proxy *httputil.ReverseProxy
}

// New is a front for the registry at registry (http://127.0.0.1:5001).
func New(registry *url.URL, transport http.RoundTripper) *Front {
	f := &Front{}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(registry)
			// The registry builds upload URLs from the Host and the
			// forwarded scheme: keep the name the client used, so that
			// they lead back through the front.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:      transport,
		FlushInterval:  -1, // stream blobs
		ModifyResponse: f.afterResponse,
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	return f
}

func (f *Front) logf(format string, args ...any) {
	if f.Logf != nil {
		f.Logf(format, args...)
	}
}

var (
	hostRE     = regexp.MustCompile(`^([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?(?::[0-9]+)?$`)
	manifestRE = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)
	uploadRE   = regexp.MustCompile(`^/v2/(.+)/blobs/uploads/?$`)
)

// ECR's registries accept manifests up to 4 MiB.
const maxManifest = 4 << 20

type afterKey struct{}

// after is what to do once the registry answered a request.
type after func(resp *http.Response)

func (f *Front) afterResponse(resp *http.Response) error {
	if fn, ok := resp.Request.Context().Value(afterKey{}).(after); ok {
		fn(resp)
	}
	return nil
}

func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := manifestRE.FindStringSubmatch(r.URL.Path)
	var api ECR
	var region string
	if h := hostRE.FindStringSubmatch(r.Host); h != nil && f.ECR != nil {
		api, region = f.ECR(h[1], h[2]), h[2]
	}
	if repo := pushTarget(r, m); repo != "" && api != nil && f.authorised(r) && !f.exists(r.Context(), api, repo) {
		registryError(w, http.StatusNotFound, "NAME_UNKNOWN", fmt.Sprintf(
			"The repository with name '%s' does not exist in the registry with id '%s'", repo, hostRE.FindStringSubmatch(r.Host)[1]))
		f.logf("refused a push to %s: ECR %s has no such repository", repo, region)
		return
	}
	if m == nil || api == nil || (r.Method != http.MethodPut && r.Method != http.MethodDelete) {
		f.proxy.ServeHTTP(w, r)
		return
	}
	repo, ref := m[1], m[2]
	if r.Method == http.MethodDelete {
		f.deleteManifest(w, r, api, region, repo, ref)
		return
	}
	f.putManifest(w, r, api, region, repo, ref)
}

func isDigest(ref string) bool { return strings.Contains(ref, ":") }

// pushTarget is the repository a request starts writing to: a blob upload
// or a manifest; "" for anything else.
func pushTarget(r *http.Request, manifest []string) string {
	if r.Method == http.MethodPut && manifest != nil {
		return manifest[1]
	}
	if u := uploadRE.FindStringSubmatch(r.URL.Path); u != nil && r.Method == http.MethodPost {
		return u[1]
	}
	return ""
}

// exists reports whether ECR knows repo; when ECR cannot say, the push is
// let through for the registry to judge.
func (f *Front) exists(ctx context.Context, api ECR, repo string) bool {
	_, err := api.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
	var noRepo *ecrtypes.RepositoryNotFoundException
	return !errors.As(err, &noRepo)
}

func (f *Front) putManifest(w http.ResponseWriter, r *http.Request, api ECR, region, repo, ref string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifest+1))
	if err != nil {
		registryError(w, http.StatusBadRequest, "MANIFEST_INVALID", "reading the manifest: "+err.Error())
		return
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	ctx := r.Context()
	desc := f.describe(ctx, api, repo)
	if desc != nil && !isDigest(ref) && f.authorised(r) && tagImmutable(desc, ref) && f.tagExists(ctx, api, repo, ref) {
		registryError(w, http.StatusBadRequest, "TAG_INVALID", fmt.Sprintf(
			"The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the tag is immutable.", ref, repo))
		f.logf("refused %s:%s: the tag is immutable in ECR %s", repo, ref, region)
		return
	}
	record := after(func(resp *http.Response) {
		if resp.StatusCode != http.StatusCreated {
			return
		}
		digest := resp.Header.Get("Docker-Content-Digest")
		if digest == "" {
			sum := sha256.Sum256(body)
			digest = "sha256:" + hex.EncodeToString(sum[:])
		}
		f.record(context.WithoutCancel(ctx), api, region, desc, repo, ref, digest, body, r.Header.Get("Content-Type"))
	})
	f.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, afterKey{}, record)))
}

// record tells ECR about a manifest the registry stored, then starts its
// scan when the repository scans on push.
func (f *Front) record(ctx context.Context, api ECR, region string, desc *ecrtypes.Repository, repo, ref, digest string, manifest []byte, mediaType string) {
	in := &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: aws.String(string(manifest)), ImageDigest: aws.String(digest)}
	if !isDigest(ref) {
		in.ImageTag = aws.String(ref)
	}
	if mediaType != "" {
		in.ImageManifestMediaType = aws.String(mediaType)
	}
	_, err := api.PutImage(ctx, in)
	var exists *ecrtypes.ImageAlreadyExistsException
	var noRepo *ecrtypes.RepositoryNotFoundException
	switch {
	case errors.As(err, &exists):
		return // the same image pushed again under the same tag
	case errors.As(err, &noRepo):
		f.logf("stored %s:%s (%s) without recording it: ECR %s has no repository %s", repo, ref, digest, region, repo)
		return
	case err != nil:
		f.logf("stored %s:%s (%s), but recording it in ECR %s failed: %v", repo, ref, digest, region, err)
		return
	}
	f.logf("recorded %s:%s (%s) in ECR %s", repo, ref, digest, region)
	if desc == nil || desc.ImageScanningConfiguration == nil || !desc.ImageScanningConfiguration.ScanOnPush {
		return
	}
	_, err = api.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: aws.String(repo), ImageId: &ecrtypes.ImageIdentifier{ImageDigest: aws.String(digest)}})
	var limit *ecrtypes.LimitExceededException
	switch {
	case errors.As(err, &limit):
		// Already scanned today: ECR does not scan an image twice for a new tag.
	case err != nil:
		f.logf("scan on push of %s:%s failed to start: %v", repo, ref, err)
	default:
		f.logf("started the scan on push of %s:%s", repo, ref)
	}
}

func (f *Front) deleteManifest(w http.ResponseWriter, r *http.Request, api ECR, region, repo, ref string) {
	ctx := r.Context()
	remove := after(func(resp *http.Response) {
		if resp.StatusCode != http.StatusAccepted || !isDigest(ref) {
			return
		}
		out, err := api.BatchDeleteImage(context.WithoutCancel(ctx), &ecr.BatchDeleteImageInput{RepositoryName: aws.String(repo),
			ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(ref)}}})
		if err == nil && len(out.Failures) > 0 {
			err = fmt.Errorf("%s", aws.ToString(out.Failures[0].FailureReason))
		}
		if err != nil {
			f.logf("deleted %s@%s, but not from ECR %s: %v", repo, ref, region, err)
			return
		}
		f.logf("deleted %s@%s from ECR %s", repo, ref, region)
	})
	f.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, afterKey{}, remove)))
}

func (f *Front) describe(ctx context.Context, api ECR, repo string) *ecrtypes.Repository {
	out, err := api.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
	if err != nil || len(out.Repositories) == 0 {
		return nil
	}
	return &out.Repositories[0]
}

func (f *Front) tagExists(ctx context.Context, api ECR, repo, tag string) bool {
	out, err := api.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}}})
	return err == nil && len(out.ImageDetails) > 0
}

// authorised reports whether the request carries the registry's
// credentials: only then may the front answer for the registry.
func (f *Front) authorised(r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	return ok && f.User != "" && user == f.User && password == f.Password
}

// tagImmutable applies ECR's tag mutability, with its wildcard exclusion
// filters ('*' matches any characters).
func tagImmutable(d *ecrtypes.Repository, tag string) bool {
	excluded := false
	for _, x := range d.ImageTagMutabilityExclusionFilters {
		if ok, _ := path.Match(aws.ToString(x.Filter), tag); ok {
			excluded = true
		}
	}
	switch d.ImageTagMutability {
	case ecrtypes.ImageTagMutabilityImmutable:
		return true
	case ecrtypes.ImageTagMutabilityImmutableWithExclusion:
		return !excluded
	case ecrtypes.ImageTagMutabilityMutableWithExclusion:
		return excluded
	}
	return false
}

// registryError answers as a Distribution registry does.
func registryError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
}

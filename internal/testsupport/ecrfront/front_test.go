package ecrfront

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

const host = "123456789012.dkr.ecr.us-west-2.amazonaws.com"

// fakeRegistry answers as Distribution does: 401 without the password,
// 201 with the digest for a manifest, 202 for a delete or an upload.
type fakeRegistry struct {
	mu   sync.Mutex
	seen []string // "METHOD path host"
}

func (g *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.seen = append(g.seen, r.Method+" "+r.URL.Path+" "+r.Host+" "+r.Header.Get("X-Forwarded-Proto"))
	g.mu.Unlock()
	if _, pw, _ := r.BasicAuth(); pw != "secret" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/"):
		sum := sha256.Sum256(body)
		w.Header().Set("Docker-Content-Digest", "sha256:"+hex.EncodeToString(sum[:]))
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodPost:
		w.Header().Set("Location", "https://"+r.Host+"/v2/app/blobs/uploads/u1")
		w.WriteHeader(http.StatusAccepted)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

func (g *fakeRegistry) requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.seen...)
}

// fakeECR records the calls the front makes.
type fakeECR struct {
	mu       sync.Mutex
	calls    []string
	repo     *ecrtypes.Repository
	tags     map[string]bool
	putErr   error
	lastPut  *ecr.PutImageInput
	accounts []string
}

func (e *fakeECR) note(s string) { e.mu.Lock(); e.calls = append(e.calls, s); e.mu.Unlock() }

func (e *fakeECR) DescribeRepositories(_ context.Context, in *ecr.DescribeRepositoriesInput, _ ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error) {
	e.note("DescribeRepositories")
	if e.repo == nil {
		return nil, &ecrtypes.RepositoryNotFoundException{Message: aws.String("no")}
	}
	return &ecr.DescribeRepositoriesOutput{Repositories: []ecrtypes.Repository{*e.repo}}, nil
}

func (e *fakeECR) DescribeImages(_ context.Context, in *ecr.DescribeImagesInput, _ ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	e.note("DescribeImages")
	tag := aws.ToString(in.ImageIds[0].ImageTag)
	if !e.tags[tag] {
		return nil, &ecrtypes.ImageNotFoundException{Message: aws.String("no")}
	}
	return &ecr.DescribeImagesOutput{ImageDetails: []ecrtypes.ImageDetail{{ImageTags: []string{tag}}}}, nil
}

func (e *fakeECR) PutImage(_ context.Context, in *ecr.PutImageInput, _ ...func(*ecr.Options)) (*ecr.PutImageOutput, error) {
	e.note("PutImage")
	e.mu.Lock()
	e.lastPut = in
	e.mu.Unlock()
	return &ecr.PutImageOutput{}, e.putErr
}

func (e *fakeECR) BatchDeleteImage(_ context.Context, in *ecr.BatchDeleteImageInput, _ ...func(*ecr.Options)) (*ecr.BatchDeleteImageOutput, error) {
	e.note("BatchDeleteImage " + aws.ToString(in.ImageIds[0].ImageDigest))
	return &ecr.BatchDeleteImageOutput{}, nil
}

func (e *fakeECR) StartImageScan(_ context.Context, in *ecr.StartImageScanInput, _ ...func(*ecr.Options)) (*ecr.StartImageScanOutput, error) {
	e.note("StartImageScan " + aws.ToString(in.ImageId.ImageDigest))
	return &ecr.StartImageScanOutput{}, nil
}

func (e *fakeECR) ops() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.calls, ", ")
}

func start(t *testing.T, api *fakeECR) (*fakeRegistry, *httptest.Server) {
	t.Helper()
	reg := &fakeRegistry{}
	backend := httptest.NewServer(reg)
	t.Cleanup(backend.Close)
	u, _ := url.Parse(backend.URL)
	f := New(u, http.DefaultTransport)
	f.User, f.Password = "AWS", "secret"
	f.ECR = func(account, region string) ECR {
		api.mu.Lock()
		api.accounts = append(api.accounts, account+"/"+region)
		api.mu.Unlock()
		if account != "123456789012" {
			return nil
		}
		return api
	}
	front := httptest.NewTLSServer(f)
	t.Cleanup(front.Close)
	return reg, front
}

func do(t *testing.T, front *httptest.Server, method, path, password, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, front.URL+path, strings.NewReader(body))
	req.Host = host
	req.SetBasicAuth("AWS", password)
	req.Header.Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

const manifest = `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","layers":[]}`

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestStoredManifestIsRecordedInECR(t *testing.T) {
	api := &fakeECR{repo: &ecrtypes.Repository{RepositoryName: aws.String("app")}}
	reg, front := start(t, api)
	resp := do(t, front, http.MethodPut, "/v2/app/manifests/v1", "secret", manifest)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != digestOf(manifest) {
		t.Fatalf("push answered %d %v", resp.StatusCode, resp.Header)
	}
	p := api.lastPut
	if p == nil || aws.ToString(p.ImageManifest) != manifest || aws.ToString(p.ImageTag) != "v1" || aws.ToString(p.ImageDigest) != digestOf(manifest) ||
		aws.ToString(p.ImageManifestMediaType) != "application/vnd.docker.distribution.manifest.v2+json" || aws.ToString(p.RepositoryName) != "app" {
		t.Errorf("PutImage %+v", p)
	}
	if got := api.accounts; len(got) != 1 || got[0] != "123456789012/us-west-2" {
		t.Errorf("ECR asked for %v: the account and region come from the host name", got)
	}
	// The registry saw the name the client used, and the scheme it used.
	if got := reg.requests(); len(got) != 1 || got[0] != "PUT /v2/app/manifests/v1 "+host+" https" {
		t.Errorf("registry saw %v", got)
	}
	// By digest: an untagged image.
	do(t, front, http.MethodPut, "/v2/app/manifests/"+digestOf(manifest), "secret", manifest)
	if api.lastPut.ImageTag != nil {
		t.Errorf("a push by digest was recorded with tag %q", aws.ToString(api.lastPut.ImageTag))
	}
}

func TestRefusedPushIsNotRecorded(t *testing.T) {
	api := &fakeECR{repo: &ecrtypes.Repository{RepositoryName: aws.String("app")}}
	_, front := start(t, api)
	if resp := do(t, front, http.MethodPut, "/v2/app/manifests/v1", "wrong", manifest); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("answered %d", resp.StatusCode)
	}
	if strings.Contains(api.ops(), "PutImage") {
		t.Errorf("recorded a refused push: %s", api.ops())
	}
}

func TestImmutableTagsAreRefusedAsECRDoes(t *testing.T) {
	api := &fakeECR{tags: map[string]bool{"v1": true, "latest": true}, repo: &ecrtypes.Repository{RepositoryName: aws.String("app"),
		ImageTagMutability:                 ecrtypes.ImageTagMutabilityImmutableWithExclusion,
		ImageTagMutabilityExclusionFilters: []ecrtypes.ImageTagMutabilityExclusionFilter{{Filter: aws.String("lat*"), FilterType: ecrtypes.ImageTagMutabilityExclusionFilterTypeWildcard}}}}
	reg, front := start(t, api)
	for _, c := range []struct {
		tag  string
		want int
	}{{"v1", http.StatusBadRequest}, {"latest", http.StatusCreated}, {"v2", http.StatusCreated}} {
		resp := do(t, front, http.MethodPut, "/v2/app/manifests/"+c.tag, "secret", manifest)
		if resp.StatusCode != c.want {
			t.Errorf("%s: answered %d, want %d", c.tag, resp.StatusCode, c.want)
		}
	}
	for _, r := range reg.requests() {
		if strings.Contains(r, "/manifests/v1") {
			t.Errorf("the registry saw the refused push: %s", r)
		}
	}
	// Without the registry's credentials the registry answers, not the front.
	if resp := do(t, front, http.MethodPut, "/v2/app/manifests/v1", "wrong", manifest); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated push to an immutable tag: %d", resp.StatusCode)
	}
}

func TestScanOnPushStartsAScan(t *testing.T) {
	api := &fakeECR{repo: &ecrtypes.Repository{RepositoryName: aws.String("app"), ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: true}}}
	_, front := start(t, api)
	do(t, front, http.MethodPut, "/v2/app/manifests/v1", "secret", manifest)
	if ops := api.ops(); !strings.HasSuffix(ops, "PutImage, StartImageScan "+digestOf(manifest)) {
		t.Errorf("calls: %s", ops)
	}
}

func TestDeletedManifestLeavesECR(t *testing.T) {
	api := &fakeECR{repo: &ecrtypes.Repository{RepositoryName: aws.String("app")}}
	_, front := start(t, api)
	d := digestOf(manifest)
	if resp := do(t, front, http.MethodDelete, "/v2/app/manifests/"+d, "secret", ""); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete answered %d", resp.StatusCode)
	}
	if ops := api.ops(); !strings.Contains(ops, "BatchDeleteImage "+d) {
		t.Errorf("calls: %s", ops)
	}
}

func TestPushToAnUnknownRepositoryIsRefusedAsECRDoes(t *testing.T) {
	api := &fakeECR{}
	reg, front := start(t, api)
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/v2/nope/blobs/uploads/"},
		{http.MethodPut, "/v2/nope/manifests/v1"},
	} {
		if resp := do(t, front, c.method, c.path, "secret", manifest); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s answered %d, want 404 NAME_UNKNOWN", c.method, c.path, resp.StatusCode)
		}
	}
	if len(reg.requests()) != 0 || strings.Contains(api.ops(), "PutImage") {
		t.Errorf("a refused push reached the registry %v or ECR %q", reg.requests(), api.ops())
	}
	// Pulls pass: the registry answers them.
	if resp := do(t, front, http.MethodGet, "/v2/nope/manifests/v1", "secret", ""); resp.StatusCode == http.StatusNotFound || len(reg.requests()) != 1 {
		t.Errorf("a pull was judged by the front: %d, %v", resp.StatusCode, reg.requests())
	}
}

func TestOtherTrafficPassesThrough(t *testing.T) {
	api := &fakeECR{repo: &ecrtypes.Repository{RepositoryName: aws.String("app")}}
	reg, front := start(t, api)
	resp := do(t, front, http.MethodPost, "/v2/app/blobs/uploads/", "secret", "")
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") != "https://"+host+"/v2/app/blobs/uploads/u1" {
		t.Errorf("upload answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if api.ops() != "DescribeRepositories" || len(reg.requests()) != 1 {
		t.Errorf("ECR calls %q, registry requests %v", api.ops(), reg.requests())
	}
	api.mu.Lock()
	api.calls = nil
	api.mu.Unlock()
	// Another account's registry: stored, not recorded.
	req, _ := http.NewRequest(http.MethodPut, front.URL+"/v2/app/manifests/v1", strings.NewReader(manifest))
	req.Host = strings.Replace(host, "123456789012", "111122223333", 1)
	req.SetBasicAuth("AWS", "secret")
	resp2, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusCreated || api.ops() != "" {
		t.Errorf("another account: %d, calls %q", resp2.StatusCode, api.ops())
	}
}

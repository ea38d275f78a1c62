package awsx

import (
	"context"
	"net"
	"time"

	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// isolate hides the developer's own AWS settings from the SDK chain.
func isolate(t *testing.T) {
	dir := t.TempDir()
	for _, kv := range [][2]string{
		{"AWS_CONFIG_FILE", filepath.Join(dir, "config")},
		{"AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials")},
		{"AWS_REGION", ""}, {"AWS_DEFAULT_REGION", ""}, {"AWS_PROFILE", ""},
		{"AWS_EC2_METADATA_DISABLED", "true"},
	} {
		t.Setenv(kv[0], kv[1])
	}
}

func TestRegionPrecedence(t *testing.T) {
	isolate(t)
	cfg, err := Load(context.Background(), Options{}, nil)
	if err != nil || cfg.Region != DefaultRegion {
		t.Fatalf("no region anywhere: got %q, %v; want the seed's %s", cfg.Region, err, DefaultRegion)
	}
	t.Setenv("AWS_REGION", "eu-west-2")
	if cfg, _ := Load(context.Background(), Options{}, nil); cfg.Region != "eu-west-2" {
		t.Errorf("AWS_REGION ignored: got %q", cfg.Region)
	}
	if cfg, _ := Load(context.Background(), Options{Region: "ap-south-1"}, nil); cfg.Region != "ap-south-1" {
		t.Errorf("--region should win over AWS_REGION: got %q", cfg.Region)
	}
}

func TestIsMutating(t *testing.T) {
	for op, want := range map[string]bool{
		"iam.GetUser": false, "ecr.DescribeRepositories": false, "iam.ListAccessKeys": false,
		"ecr.BatchCheckLayerAvailability": false, "sts.AssumeRole": false, "sts.GetCallerIdentity": false,
		"iam.CreateUser": true, "iam.AttachRolePolicy": true, "ecr.DeleteRepository": true, "iam.UpdateAssumeRolePolicy": true,
	} {
		if got := IsMutating(op); got != want {
			t.Errorf("IsMutating(%s) = %v, want %v", op, got, want)
		}
	}
	var c CallCounter
	c.add("iam.GetUser")
	c.add("iam.CreateUser")
	if c.Total() != 2 || c.Mutating() != 1 {
		t.Errorf("counter: %d total, %d mutating", c.Total(), c.Mutating())
	}
}

// TestSilentEndpointDoesNotHang: an endpoint that accepts the connection but
// never answers fails each attempt after ResponseTimeout instead of hanging.
func TestSilentEndpointDoesNotHang(t *testing.T) {
	isolate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // hold it open, say nothing
		}
	}()
	t.Setenv("AWS_ENDPOINT_URL", "http://"+ln.Addr().String())
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	cfg, err := Load(context.Background(), Options{ResponseTimeout: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The test's own deadline only detects a hang; the client must give up
	// long before it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err = sts.NewFromConfig(cfg, func(o *sts.Options) { o.RetryMaxAttempts = 2 }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("want a timeout error before the test's deadline, got %v after %v", err, time.Since(start))
	}
}

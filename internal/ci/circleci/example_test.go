package circleci_test

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/containerise/containerise/internal/ci/circleci"
	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
)

// Write only what differs, then read back what CircleCI shows and check it.
// A second run finds everything in place and writes nothing.
func Example() {
	srv, err := circlecitest.Start()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	const tok = "CCIPAT_example_0123456789abcdef"
	srv.AddToken(tok, "admin")
	srv.AddProject("gh/acme/app")

	c, err := circleci.New(circleci.Options{Host: srv.URL, Token: tok, HTTPClient: srv.Client()})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	want := map[string]string{
		"AWS_IAM_USER_ACCESS_KEY_ID":     "AKIAIOSFODNN7EXAMPLE",
		"AWS_IAM_USER_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
	}
	sync := func() {
		have, err := c.ListProjectEnvVars(ctx, "gh/acme/app")
		if err != nil {
			panic(err)
		}
		shown := map[string]string{}
		for _, v := range have {
			shown[v.Name] = v.MaskedValue
		}
		for _, name := range slices.Sorted(maps.Keys(want)) {
			if circleci.CompareMasked(want[name], shown[name]) == circleci.MaskMatches {
				fmt.Println(name, "unchanged")
				continue
			}
			if _, err := c.SetProjectEnvVar(ctx, "gh/acme/app", name, want[name]); err != nil {
				panic(err)
			}
			fmt.Println(name, "written")
		}
		// Read back: CircleCI must now show each value's last four.
		have, err = c.ListProjectEnvVars(ctx, "gh/acme/app")
		if err != nil {
			panic(err)
		}
		for _, v := range have {
			if circleci.CompareMasked(want[v.Name], v.MaskedValue) != circleci.MaskMatches {
				fmt.Println(v.Name, "does not hold what was written")
			}
		}
	}
	sync()
	sync()
	fmt.Println("writes:", len(srv.Writes()))
	// Output:
	// AWS_IAM_USER_ACCESS_KEY_ID written
	// AWS_IAM_USER_SECRET_ACCESS_KEY written
	// AWS_IAM_USER_ACCESS_KEY_ID unchanged
	// AWS_IAM_USER_SECRET_ACCESS_KEY unchanged
	// writes: 2
}

// The command layer turns an error's Kind into advice; the package names
// no flag or environment variable itself.
func ExampleKindOf() {
	srv, err := circlecitest.Start()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	c, err := circleci.New(circleci.Options{Host: srv.URL, Token: "CCIPAT_revoked_0123456789abcdef", HTTPClient: srv.Client()})
	if err != nil {
		panic(err)
	}
	_, err = c.ListProjectEnvVars(context.Background(), "gh/acme/app")
	kind, _ := circleci.KindOf(err)
	switch kind {
	case circleci.KindUnauthorized:
		fmt.Println(err, "- check the token in CIRCLECI_TOKEN")
	case circleci.KindNotFound:
		fmt.Println(err, "- check the project slug")
	case circleci.KindForbidden:
		fmt.Println(err, "- the token's user lacks the permission")
	}
	// Output:
	// CircleCI project gh/acme/app: list environment variables: 401 Unauthorized: You must log in first. - check the token in CIRCLECI_TOKEN
}

package clierror

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestCode(t *testing.T) {
	usage := Usagef("--tag %q is invalid", "a:b")
	cases := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("creating role: AccessDenied"), ExitFailure},
		{usage, ExitUsage},
		{fmt.Errorf("push: %w", usage), ExitUsage},
		{AsUsage(errors.New("unknown flag")), ExitUsage},
		{fmt.Errorf("building: %w", context.Canceled), ExitCancelled},
	}
	for _, c := range cases {
		if got := Code(c.err); got != c.want {
			t.Errorf("Code(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	if AsUsage(nil) != nil {
		t.Error("AsUsage(nil) should stay nil")
	}
}

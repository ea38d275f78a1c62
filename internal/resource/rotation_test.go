package resource

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/containerise/containerise/internal/names"
)

// Which key CircleCI's key ID names: a project by its last four
// characters; a context, which shows no value, by when each variable was
// last updated.
func TestNamedKey(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	keys := []iamtypes.AccessKeyMetadata{
		{AccessKeyId: aws.String("AKIAOLDOLDOLDOLD1111"), CreateDate: aws.Time(t0.Add(-24 * time.Hour))},
		{AccessKeyId: aws.String("AKIANEWNEWNEWNEW2222"), CreateDate: aws.Time(t0)},
	}
	project := CircleCITarget{Project: "gh/acme/app"}
	context := CircleCITarget{Context: "aws"}
	for _, c := range []struct {
		name    string
		target  CircleCITarget
		shown   map[string]string
		updated map[string]time.Time
		want    string
	}{
		{"project: the old key", project, map[string]string{names.EnvAccessKeyID: "xxxx1111"}, nil, "AKIAOLDOLDOLDOLD1111"},
		{"project: the new key", project, map[string]string{names.EnvAccessKeyID: "xxxx2222"}, nil, "AKIANEWNEWNEWNEW2222"},
		{"project: neither", project, map[string]string{names.EnvAccessKeyID: "xxxx3333"}, nil, ""},
		{"project: no ID", project, map[string]string{}, nil, ""},
		{"context: ID older than the secret", context, map[string]string{names.EnvAccessKeyID: "", names.EnvSecretAccessKey: ""},
			map[string]time.Time{names.EnvAccessKeyID: t0.Add(-time.Hour), names.EnvSecretAccessKey: t0.Add(time.Second)}, "AKIAOLDOLDOLDOLD1111"},
		{"context: ID well before the new key", context, map[string]string{names.EnvAccessKeyID: ""},
			map[string]time.Time{names.EnvAccessKeyID: t0.Add(-time.Hour)}, "AKIAOLDOLDOLDOLD1111"},
		{"context: ID after the secret and the new key", context, map[string]string{names.EnvAccessKeyID: "", names.EnvSecretAccessKey: ""},
			map[string]time.Time{names.EnvAccessKeyID: t0.Add(2 * time.Second), names.EnvSecretAccessKey: t0.Add(time.Second)}, "AKIANEWNEWNEWNEW2222"},
	} {
		v := &CircleCIVariables{Target: c.target, shown: c.shown, updated: c.updated}
		got, why := v.NamedKey(keys)
		if got != c.want || (got == "" && why == "") {
			t.Errorf("%s: got %q (%s), want %q", c.name, got, why, c.want)
		}
	}
}

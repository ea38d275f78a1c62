package commands

import (
	"github.com/spf13/pflag"
)

// addTeardownCircleCIFlags adds the flags naming where setup wrote the
// variables, for teardown to remove those naming what it deletes.
func addTeardownCircleCIFlags(fs *pflag.FlagSet, f *circleCIFlags) {
	fs.StringVar(&f.project, "circleci-project", "", "also remove, from this CircleCI project, the variables setup wrote that name the key and the role teardown deletes (token from CIRCLECI_TOKEN)")
	fs.StringVar(&f.context, "circleci-context", "", "look in this CircleCI context instead (with --circleci-org); CircleCI shows no values there, so a variable goes only when it was written after the key or role it names was made")
	fs.StringVar(&f.org, "circleci-org", "", "the organization owning --circleci-context: its slug (gh/ORG, bb/ORG, circleci/ORG_ID) or its ID")
	fs.StringVar(&f.contextID, "circleci-context-id", "", "look in the CircleCI context with this ID")
	fs.StringVar(&f.host, "circleci-host", "", "CircleCI's address, https only (default: CIRCLECI_HOST, else https://circleci.com)")
}

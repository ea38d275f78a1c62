// Command containerise sets up and runs a least-privilege path from a CI job
// to Amazon ECR: setup (admin, once), push (CI), teardown (clean-up).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/containerise/containerise/internal/buildinfo"
	"github.com/containerise/containerise/internal/commands"
)

// A release build stamps these with -ldflags "-X main.version=..." (see
// .goreleaser.yaml); a `go install` leaves them empty and the toolchain's
// build information says the module version instead.
var version, commit, date string

func main() {
	// Ctrl-C or a CI cancel stops in-flight API calls and Docker streams
	// through the context instead of killing the process mid-write.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := commands.Execute(ctx, buildinfo.Read(version, commit, date), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

package commands

import (
	"strings"

	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/resource"
	"github.com/containerise/containerise/provision"
)

// registryFlags are setup's ECR features of 2025: the registry scanning
// rule that covers the repository, the archive lifecycle rule, and the
// registry's managed signing. setup.go adds them and calls apply; the
// policies command takes those that change the role's policy.
type registryFlags struct {
	scanning       string
	frequency      string
	archiveDays    int
	signingProfile string
}

const (
	scanningHelp = "keep a registry scanning rule covering the repository: basic (ECR's own scanner) or enhanced (Amazon Inspector, with fix versions); " +
		"it is merged into the registry's rules, never dropping another repository's; changing the registry's scan type changes it for every repository, " +
		"so setup asks first (or --yes); the role may then read the findings"
	signingHelp = "sign every image pushed to the repository with this AWS Signer profile (ECR managed signing), through a rule merged into the registry's signing configuration; " +
		"the role may then sign with it (signer:SignPayload), and 'scan --require-signature' checks the signature"
)

// add adds setup's flags.
func (r *registryFlags) add(f *pflag.FlagSet) {
	f.StringVar(&r.scanning, "scanning", "", scanningHelp)
	f.StringVar(&r.frequency, "scan-frequency", "on-push",
		"with --scanning, how often the rule scans: on-push, or continuous (enhanced only: rescans as new vulnerabilities are published)")
	f.IntVar(&r.archiveDays, "archive-after-days", 0,
		"a lifecycle rule moving tagged images not pulled for D days to ECR's archive storage class (cheaper storage); "+
			"an archived image cannot be pulled until it is restored (0 removes setup's rule; not given: left as it is)")
	f.StringVar(&r.signingProfile, "signing-profile", "", signingHelp)
}

// addForPolicies adds the flags that change what the role may do.
func (r *registryFlags) addForPolicies(f *pflag.FlagSet) {
	f.StringVar(&r.scanning, "scanning", "", "as for setup: with enhanced, the policy also lets CI read Amazon Inspector's findings (inspector2:ListFindings)")
	f.StringVar(&r.signingProfile, "signing-profile", "", "as for setup: the policy also lets CI sign with this AWS Signer profile (signer:SignPayload)")
}

// spec reads the flags given into what setup is to hold; bad values are
// usage errors, before any call.
func (r *registryFlags) spec(cmd *cobra.Command) (scanning *resource.Scanning, archiveDays *int, profile string, err error) {
	given := cmd.Flags().Changed
	if given("scanning") {
		t := ecrtypes.ScanType(strings.ToUpper(r.scanning))
		freq := ecrtypes.ScanFrequency("")
		switch r.frequency {
		case "on-push", "": // "": policies, which has no --scan-frequency
			freq = ecrtypes.ScanFrequencyScanOnPush
		case "continuous":
			freq = ecrtypes.ScanFrequencyContinuousScan
		default:
			return nil, nil, "", clierror.Usagef("--scan-frequency %q is invalid: use on-push or continuous", r.frequency)
		}
		scanning = &resource.Scanning{Type: t, Frequency: freq}
	} else if cmd.Flags().Lookup("scan-frequency") != nil && given("scan-frequency") {
		return nil, nil, "", clierror.Usagef("--scan-frequency needs --scanning: it is the frequency of the registry scanning rule")
	}
	if given("archive-after-days") {
		v := r.archiveDays
		archiveDays = &v
	}
	if given("signing-profile") {
		if r.signingProfile == "" {
			return nil, nil, "", clierror.Usagef("--signing-profile is empty: give the ARN of an AWS Signer signing profile")
		}
		profile = r.signingProfile
	}
	spec := resource.Spec{Scanning: scanning, SigningProfile: profile, Settings: resource.Settings{ArchiveAfterDays: archiveDays}}
	if err := spec.ValidateSettings(flagLabels); err != nil {
		return nil, nil, "", err
	}
	return scanning, archiveDays, profile, nil
}

// apply puts the flags given into setup's options.
func (r *registryFlags) apply(cmd *cobra.Command, o *provision.Options) error {
	scanning, archive, profile, err := r.spec(cmd)
	if err != nil {
		return err
	}
	o.Scanning, o.SigningProfile = scanning, profile
	if archive != nil {
		o.Settings.ArchiveAfterDays = archive
	}
	return nil
}

// registryArgs are the flags that ask setup for these again, so that a
// suggested command line acts on the same.
func registryArgs(o provision.Options) string {
	var args string
	if sc := o.Scanning; sc != nil {
		args += " --scanning " + strings.ToLower(string(sc.Type))
		if sc.Frequency == ecrtypes.ScanFrequencyContinuousScan {
			args += " --scan-frequency continuous"
		}
	}
	if o.SigningProfile != "" {
		args += " --signing-profile " + o.SigningProfile
	}
	return args
}

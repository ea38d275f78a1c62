package commands

import (
	"github.com/spf13/pflag"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/policies"
)

// grantFlags choose the role's permissions; setup and policies share them,
// so that policies prints what setup makes.
type grantFlags struct {
	set               string
	allowSkipExisting bool
	registryCache     bool
	// scanOnPush is also a repository setting (settings.go): a repository
	// that scans lets CI read what its scans found.
	scanOnPush bool
	allowScan  bool
}

func (g *grantFlags) add(f *pflag.FlagSet) {
	f.StringVar(&g.set, "permissions", string(policies.LeastPrivilege),
		"the policy's base: least (what a push needs) or blog (the blog's statements, which also let CI delete the repository and change its settings)")
	f.BoolVar(&g.allowSkipExisting, "allow-skip-existing", false, "add ecr:DescribeImages to the policy, for 'push --skip-existing'")
	f.BoolVar(&g.registryCache, "registry-cache", true,
		"add ecr:BatchGetImage and ecr:GetDownloadUrlForLayer to the policy, so push can use the repository's layers as its build cache")
	f.BoolVar(&g.scanOnPush, "scan-on-push", false,
		"turn on ECR's basic scanning on push for the repository (--scan-on-push=false turns it off; not given: left as it is); "+
			"while the repository scans, the policy lets CI read the findings (ecr:DescribeImageScanFindings) for 'containerise scan' and 'push --scan'")
	f.BoolVar(&g.allowScan, "allow-scan", false,
		"add ecr:DescribeImageScanFindings and ecr:StartImageScan to the policy, so the scan gate can also start a scan of an image the repository did not scan on push")
}

func (g *grantFlags) options() (policies.PermissionOptions, error) {
	set, err := policies.ParseSet(g.set)
	if err != nil {
		return policies.PermissionOptions{}, clierror.Usagef("--permissions %q is invalid: use least (what a push needs) or blog (the blog's statements)", g.set)
	}
	return policies.PermissionOptions{Set: set, AllowDescribeImages: g.allowSkipExisting, RegistryCache: g.registryCache,
		ScanFindings: g.scanOnPush, StartScan: g.allowScan}, nil
}

// grantArgs are the flags that ask setup for these grants again, when they
// are not the defaults.
func grantArgs(o policies.PermissionOptions) string {
	var args string
	if o.Set == policies.Blog {
		args += " --permissions blog"
	}
	if o.AllowDescribeImages {
		args += " --allow-skip-existing"
	}
	if !o.RegistryCache {
		args += " --registry-cache=false"
	}
	if o.ScanFindings {
		args += " --scan-on-push"
	}
	if o.StartScan {
		args += " --allow-scan"
	}
	return args
}

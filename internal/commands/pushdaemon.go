package commands

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/distribution/reference"
	"github.com/spf13/pflag"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/internal/validate"
	"github.com/containerise/containerise/push"
	"github.com/containerise/containerise/push/bkdaemon"
)

// envBuildKitHost is the daemon address buildctl reads too.
const envBuildKitHost = "BUILDKIT_HOST"

var daemonFlagNames = []string{"buildkit-host", "buildkit-ca", "buildkit-cert", "buildkit-key", "buildkit-image", "cache-tag"}

func addDaemonFlags(fl *pflag.FlagSet, f *pushFlags) {
	fl.StringVar(&f.BuildKitHost, "buildkit-host", "", "--builder remote: the daemon's address, unix:///PATH or tcp://HOST:PORT (default: "+envBuildKitHost+")")
	fl.StringVar(&f.BuildKitCA, "buildkit-ca", "", "--builder remote over tcp: CA certificate that signed the daemon's (PEM; default: the system's CAs)")
	fl.StringVar(&f.BuildKitCert, "buildkit-cert", "", "--builder remote over tcp: client certificate for mutual TLS (PEM, with --buildkit-key)")
	fl.StringVar(&f.BuildKitKey, "buildkit-key", "", "--builder remote over tcp: the client certificate's private key (PEM)")
	fl.StringVar(&f.BuildKitImage, "buildkit-image", "", "--builder container: the BuildKit image to run (default "+bkdaemon.DefaultImage+")")
	fl.StringVar(&f.CacheTag, "cache-tag", "", "--builder remote or container: the tag of the registry cache in the repository (default "+push.DefaultCacheTag+")")
}

// daemonOptions checks the --buildkit-* flags and --cache-tag before any
// call: each belongs to its builder, the address has a scheme push takes,
// and the TLS files exist and hold what their flags say.
func (f *pushFlags) daemonOptions(builder push.Builder, getenv func(string) string) (push.BuildKitOptions, string, error) {
	var k push.BuildKitOptions
	given := func(names ...string) string {
		values := map[string]string{"buildkit-host": f.BuildKitHost, "buildkit-ca": f.BuildKitCA, "buildkit-cert": f.BuildKitCert,
			"buildkit-key": f.BuildKitKey, "buildkit-image": f.BuildKitImage, "cache-tag": f.CacheTag}
		for _, n := range names {
			if values[n] != "" {
				return "--" + n
			}
		}
		return ""
	}
	if builder != push.BuilderRemote {
		if flag := given("buildkit-host", "buildkit-ca", "buildkit-cert", "buildkit-key"); flag != "" {
			return k, "", clierror.Usagef("%s is for --builder remote (a BuildKit daemon you run); add --builder remote, or drop %s", flag, flag)
		}
	}
	if builder != push.BuilderContainer && f.BuildKitImage != "" {
		return k, "", clierror.Usagef("--buildkit-image is for --builder container; add --builder container, or drop --buildkit-image")
	}
	if !builder.OnDaemon() && f.CacheTag != "" {
		return k, "", clierror.Usagef("--cache-tag names the registry cache of --builder remote or container (the engine's builders keep the cache in the pushed image); add one of them, or drop --cache-tag")
	}
	if f.CacheTag != "" {
		if err := validate.Tag("--cache-tag", f.CacheTag); err != nil {
			return k, "", err
		}
		for _, t := range f.Tags {
			if t == f.CacheTag {
				return k, "", clierror.Usagef("--cache-tag %s is also a --tag: the cache would overwrite the image; choose another cache tag", f.CacheTag)
			}
		}
	}
	switch builder {
	case push.BuilderRemote:
		k.Host, k.HostFrom = f.BuildKitHost, "--buildkit-host"
		if k.Host == "" {
			k.Host, k.HostFrom = strings.TrimSpace(getenv(envBuildKitHost)), envBuildKitHost
		}
		if k.Host == "" {
			return k, "", clierror.Usagef("--builder remote: no daemon address: pass --buildkit-host tcp://HOST:PORT or unix:///PATH, or set %s", envBuildKitHost)
		}
		if err := checkDaemonAddr(k.HostFrom, k.Host, f.BuildKitCA != "" || f.BuildKitCert != "" || f.BuildKitKey != ""); err != nil {
			return k, "", err
		}
		var err error
		if k.CA, k.Cert, k.Key, err = f.tlsFiles(); err != nil {
			return k, "", err
		}
	case push.BuilderContainer:
		k.Image = f.BuildKitImage
		if k.Image != "" {
			if _, err := reference.ParseNormalizedNamed(k.Image); err != nil {
				return k, "", clierror.Usagef("--buildkit-image %q: not an image reference (%v)", k.Image, err)
			}
		}
	}
	return k, f.CacheTag, nil
}

// checkDaemonAddr takes unix:///PATH and tcp://HOST:PORT; TLS only over
// tcp.
func checkDaemonAddr(from, addr string, tlsFiles bool) error {
	u, err := url.Parse(addr)
	if err != nil {
		return clierror.Usagef("%s %q: not an address (%v); want unix:///PATH or tcp://HOST:PORT", from, addr, err)
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" || u.Host != "" {
			return clierror.Usagef("%s %q: a unix socket needs an absolute path, as in unix:///run/buildkit/buildkitd.sock", from, addr)
		}
		if tlsFiles {
			return clierror.Usagef("%s %q: --buildkit-ca, --buildkit-cert and --buildkit-key apply to tcp:// addresses only", from, addr)
		}
	case "tcp":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" || (u.Path != "" && u.Path != "/") {
			return clierror.Usagef("%s %q: want tcp://HOST:PORT (e.g. tcp://buildkitd.internal:1234)", from, addr)
		}
	default:
		return clierror.Usagef("%s %q: want unix:///PATH or tcp://HOST:PORT", from, addr)
	}
	return nil
}

// tlsFiles checks --buildkit-ca (PEM certificates) and the client pair
// (both or neither, and they match).
func (f *pushFlags) tlsFiles() (ca, cert, key string, err error) {
	if f.BuildKitCA != "" {
		pem, err := readFlagFile("--buildkit-ca", f.BuildKitCA)
		if err != nil {
			return "", "", "", err
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return "", "", "", clierror.Usagef("--buildkit-ca %s holds no PEM certificate", f.BuildKitCA)
		}
	}
	switch {
	case f.BuildKitCert == "" && f.BuildKitKey == "":
	case f.BuildKitCert == "":
		return "", "", "", clierror.Usagef("--buildkit-key needs --buildkit-cert, the certificate it belongs to")
	case f.BuildKitKey == "":
		return "", "", "", clierror.Usagef("--buildkit-cert needs --buildkit-key, its private key")
	default:
		for flag, file := range map[string]string{"--buildkit-cert": f.BuildKitCert, "--buildkit-key": f.BuildKitKey} {
			if _, err := readFlagFile(flag, file); err != nil {
				return "", "", "", err
			}
		}
		if _, err := tls.LoadX509KeyPair(f.BuildKitCert, f.BuildKitKey); err != nil {
			return "", "", "", clierror.Usagef("--buildkit-cert %s and --buildkit-key %s are not a PEM certificate and its key (%v)", f.BuildKitCert, f.BuildKitKey, err)
		}
	}
	return f.BuildKitCA, f.BuildKitCert, f.BuildKitKey, nil
}

func readFlagFile(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, clierror.Usagef("%s: %s does not exist", flag, path)
	case err != nil:
		return nil, clierror.Usagef("%s %s: %v", flag, path, err)
	}
	return b, nil
}

package commands

import (
	"errors"
	"os"
	"strings"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"

	"github.com/containerise/containerise/internal/clierror"
	"github.com/containerise/containerise/push"
)

// buildFlags are push's build options once checked.
type buildFlags struct {
	Builder   push.Builder
	Secrets   []push.Secret
	SSH       []push.SSHAgent
	CacheFrom []string
	Network   string
	Platforms []string
	BuildKit  push.BuildKitOptions
	CacheTag  string
}

// buildOptions checks --builder, --secret, --ssh, --cache-from, --network
// and --platform before any call. A secret's value is never read here, nor
// shown in an error.
func (f *pushFlags) buildOptions(getenv func(string) string) (buildFlags, error) {
	var b buildFlags
	switch builder := push.Builder(f.Builder); builder {
	case "":
		b.Builder = push.BuilderAuto
	case push.BuilderAuto, push.BuilderBuildKit, push.BuilderClassic, push.BuilderRemote, push.BuilderContainer:
		b.Builder = builder
	default:
		return b, clierror.Usagef("--builder %q: want auto, buildkit, classic, remote or container", f.Builder)
	}
	var err error
	if b.BuildKit, b.CacheTag, err = f.daemonOptions(b.Builder, getenv); err != nil {
		return b, err
	}
	if b.Secrets, err = secrets(f.Secrets, getenv); err != nil {
		return b, err
	}
	if b.SSH, err = sshAgents(f.SSH, getenv); err != nil {
		return b, err
	}
	if b.CacheFrom, err = cacheFrom(f.CacheFrom); err != nil {
		return b, err
	}
	switch f.Network {
	case "", "default", "host", "none":
		b.Network = f.Network
	default:
		return b, clierror.Usagef("--network %q: want default, host or none", f.Network)
	}
	if b.Platforms, err = platformList(f.Platform); err != nil {
		return b, err
	}
	if b.Builder == push.BuilderClassic {
		if len(b.Secrets) > 0 || len(b.SSH) > 0 {
			return b, clierror.Usagef("--secret and --ssh need BuildKit: drop --builder classic")
		}
		if len(b.Platforms) > 1 {
			return b, clierror.Usagef("--platform %s: several platforms need BuildKit: drop --builder classic", f.Platform)
		}
	}
	return b, nil
}

// secrets parses --secret as `docker buildx build` spells it:
// id=ID,env=VAR, id=ID,src=FILE (or source=), type=env|file. With neither
// env nor src, the variable named ID is used if set, else the file ID.
func secrets(values []string, getenv func(string) string) ([]push.Secret, error) {
	var out []push.Secret
	seen := map[string]bool{}
	for _, v := range values {
		var s push.Secret
		var typ string
		for _, field := range strings.Split(v, ",") {
			key, value, ok := strings.Cut(field, "=")
			if !ok {
				return nil, clierror.Usagef("--secret %q: %q is not KEY=VALUE; want id=ID,env=VAR or id=ID,src=FILE", v, field)
			}
			switch strings.ToLower(strings.TrimSpace(key)) {
			case "id":
				s.ID = value
			case "env":
				s.Env = value
			case "src", "source":
				s.File = value
			case "type":
				if value != "env" && value != "file" {
					return nil, clierror.Usagef("--secret %q: type %q: want env or file", v, value)
				}
				typ = value
			default:
				return nil, clierror.Usagef("--secret %q: unknown key %q; want id, env, src or type", v, key)
			}
		}
		if typ == "env" && s.Env == "" {
			s.Env, s.File = s.File, ""
		}
		switch {
		case s.ID == "":
			return nil, clierror.Usagef("--secret %q: no id=; the Dockerfile names the secret by it (RUN --mount=type=secret,id=ID)", v)
		case seen[s.ID]:
			return nil, clierror.Usagef("--secret: id %q is given twice", s.ID)
		case s.Env != "" && s.File != "":
			return nil, clierror.Usagef("--secret %q: give env= or src=, not both", v)
		case s.Env == "" && s.File == "":
			if getenv(s.ID) != "" {
				s.Env = s.ID
			} else if _, err := os.Stat(s.ID); err == nil {
				s.File = s.ID
			} else {
				return nil, clierror.Usagef("--secret %q: say where its value is: id=%s,env=VAR or id=%s,src=FILE", v, s.ID, s.ID)
			}
		}
		seen[s.ID] = true
		if s.Env != "" && getenv(s.Env) == "" {
			return nil, clierror.Usagef("--secret id=%s: the variable %s is not set or empty", s.ID, s.Env)
		}
		if s.File != "" {
			st, err := os.Stat(s.File)
			switch {
			case errors.Is(err, os.ErrNotExist):
				return nil, clierror.Usagef("--secret id=%s: the file %s does not exist", s.ID, s.File)
			case err != nil:
				return nil, clierror.Usagef("--secret id=%s: %v", s.ID, err)
			case st.IsDir():
				return nil, clierror.Usagef("--secret id=%s: %s is a folder, not a file", s.ID, s.File)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// sshAgents parses --ssh as docker buildx build does: default (the agent
// at SSH_AUTH_SOCK), or ID=PATH[,PATH...] where a path is an agent socket
// or a private key file.
func sshAgents(values []string, getenv func(string) string) ([]push.SSHAgent, error) {
	var out []push.SSHAgent
	seen := map[string]bool{}
	for _, v := range values {
		id, paths, hasPaths := strings.Cut(v, "=")
		if id == "" || strings.ContainsAny(id, " ,") {
			return nil, clierror.Usagef("--ssh %q: want default, or ID=SOCKET or ID=KEYFILE", v)
		}
		if seen[id] {
			return nil, clierror.Usagef("--ssh: id %q is given twice", id)
		}
		seen[id] = true
		a := push.SSHAgent{ID: id}
		if hasPaths {
			for _, p := range strings.Split(paths, ",") {
				if _, err := os.Stat(p); err != nil {
					return nil, clierror.Usagef("--ssh %s: %s does not exist", id, p)
				}
				a.Paths = append(a.Paths, p)
			}
		} else if getenv("SSH_AUTH_SOCK") == "" {
			return nil, clierror.Usagef("--ssh %s: SSH_AUTH_SOCK is not set; start an SSH agent, or give its socket or a key file: --ssh %s=PATH", id, id)
		}
		out = append(out, a)
	}
	return out, nil
}

// cacheFrom parses --cache-from: an image reference, or
// type=registry,ref=REF as docker buildx build spells it.
func cacheFrom(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		ref := v
		if strings.Contains(v, "=") {
			ref = ""
			for _, field := range strings.Split(v, ",") {
				key, value, _ := strings.Cut(field, "=")
				switch key {
				case "type":
					if value != "registry" {
						return nil, clierror.Usagef("--cache-from %q: only registry images can be cache sources here", v)
					}
				case "ref":
					ref = value
				default:
					return nil, clierror.Usagef("--cache-from %q: unknown key %q; want an image reference", v, key)
				}
			}
		}
		if _, err := reference.ParseNormalizedNamed(ref); err != nil {
			return nil, clierror.Usagef("--cache-from %q: not an image reference (%v)", v, err)
		}
		out = append(out, ref)
	}
	return out, nil
}

// platformList parses --platform: one or more os/arch[/variant], separated
// by commas.
func platformList(value string) ([]string, error) {
	if strings.TrimSpace(value) == "" {
		return nil, nil
	}
	var out []string
	for _, p := range strings.Split(value, ",") {
		p = strings.TrimSpace(p)
		if _, err := platforms.Parse(p); err != nil || p == "" {
			return nil, clierror.Usagef("--platform %q: %q is not os/arch[/variant] (e.g. linux/amd64)", value, p)
		}
		out = append(out, p)
	}
	return out, nil
}

// Package trusteval judges IAM trust policies for tests with an evaluator
// the product does not share: @cloud-copilot/iam-simulate, an IAM policy
// simulator from npm, pinned by package-lock.json beside this file and
// installed with `npm ci` into node_modules here on first use.
//
// The simulator only knows condition keys AWS documents for
// sts:AssumeRoleWithWebIdentity. IAM gives every OIDC provider the keys
// <provider>:sub and <provider>:aud, but documents them only for a few
// issuers, so a statement's own provider's sub and aud are renamed, in the
// policy and in the request alike, to accounts.google.com:sub and
// accounts.google.com:aud (documented, of the same type). Keys of another
// provider are left alone, as IAM would find them absent. Any other claim
// is passed as <provider>:<claim> when the policy tests it; a policy that tests a claim the
// simulator does not know fails the test instead of judging it.
package trusteval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// The documented keys a statement's own provider's sub and aud become.
const (
	subKey = "accounts.google.com:sub"
	audKey = "accounts.google.com:aud"
)

// Token is one job's token, offered to a trust policy.
type Token struct {
	// Name says what the token stands for, in the verdict table.
	Name string
	// Provider is the ARN of the IAM OIDC provider the token is presented
	// through: the principal of the request.
	Provider string
	// Claims are the token's claims.
	Claims map[string]any
	// Want says whether the trust must admit the token.
	Want bool
}

// Verdict is the evaluator's judgement of one token.
type Verdict struct {
	Token
	Admitted bool
	// Decision is the simulator's word: Allowed, ImplicitlyDenied, ...
	Decision string
}

// Check judges every token against trust (a JSON policy document), logs
// the verdicts as a table (seen with go test -v), and fails the test for
// each verdict that is not the token's Want.
func Check(t testing.TB, trust string, tokens []Token) []Verdict {
	t.Helper()
	verdicts := Judge(t, trust, tokens)
	var b strings.Builder
	fmt.Fprintf(&b, "trust policy verdicts (%s):\n", Source)
	for _, v := range verdicts {
		mark := "ok"
		if v.Admitted != v.Want {
			mark = "WRONG"
		}
		fmt.Fprintf(&b, "  %-7s %-5s %s\n  %13s sub=%v aud=%v (%s)\n",
			word(v.Admitted), mark, v.Name, "", v.Claims["sub"], v.Claims["aud"], v.Decision)
	}
	t.Log(b.String())
	for _, v := range verdicts {
		if v.Admitted != v.Want {
			t.Errorf("%s: trust %s the token (sub %v), want %s", v.Name, word(v.Admitted), v.Claims["sub"], word(v.Want))
		}
	}
	return verdicts
}

// Source names the evaluator, for tables and reports.
const Source = "@cloud-copilot/iam-simulate, pinned in package-lock.json"

func word(admitted bool) string {
	if admitted {
		return "admits"
	}
	return "refuses"
}

// Judge asks the simulator whether trust admits each token to
// sts:AssumeRoleWithWebIdentity on a role of the providers' account.
func Judge(t testing.TB, trust string, tokens []Token) []Verdict {
	t.Helper()
	if len(tokens) == 0 {
		return nil
	}
	dir := install(t)
	policy, policyKeys := renamePolicy(t, trust)
	account := accountOf(t, tokens[0].Provider)
	type request struct {
		Principal string         `json:"principal"`
		Context   map[string]any `json:"context"`
	}
	in := struct {
		Policy   any       `json:"policy"`
		Role     string    `json:"role"`
		Account  string    `json:"account"`
		Requests []request `json:"requests"`
	}{Policy: policy, Role: "arn:aws:iam::" + account + ":role/ci", Account: account}
	for _, tok := range tokens {
		in.Requests = append(in.Requests, request{Principal: tok.Provider, Context: requestContext(tok, policyKeys)})
	}
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "eval.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("trust evaluator (node eval.mjs in %s): %v\n%s", dir, err, stderr.String())
	}
	var results []struct {
		Decision string   `json:"decision"`
		Ignored  []string `json:"ignored"`
		Error    string   `json:"error"`
	}
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(tokens) {
		t.Fatalf("trust evaluator answered %q (%v)", out, err)
	}
	verdicts := make([]Verdict, len(tokens))
	for i, r := range results {
		if r.Error != "" {
			t.Fatalf("trust evaluator refused the policy or request for %s: %s\npolicy: %s", tokens[i].Name, r.Error, trust)
		}
		for _, k := range r.Ignored {
			if policyKeys[strings.ToLower(k)] {
				t.Fatalf("the trust policy tests %s, a key the evaluator does not know, so it cannot judge %s", k, tokens[i].Name)
			}
		}
		verdicts[i] = Verdict{Token: tokens[i], Admitted: r.Decision == "Allowed", Decision: r.Decision}
	}
	return verdicts
}

// providerPath is the part of a provider ARN IAM prefixes its condition
// keys with: the issuer URL without its scheme.
func providerPath(arn string) string {
	if i := strings.Index(arn, ":oidc-provider/"); i >= 0 {
		return arn[i+len(":oidc-provider/"):]
	}
	return ""
}

func accountOf(t testing.TB, arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) < 6 || providerPath(arn) == "" {
		t.Fatalf("%q is not an OIDC provider ARN", arn)
	}
	return parts[4]
}

// requestContext is the request context IAM would build from the token,
// cut to the keys the policy tests (the simulator chokes on some keys it
// half-knows, and only those keys can change a verdict).
func requestContext(tok Token, policyKeys map[string]bool) map[string]any {
	prefix := providerPath(tok.Provider)
	ctx := map[string]any{}
	for claim, v := range tok.Claims {
		switch claim {
		case "sub":
			ctx[subKey] = v
		case "aud":
			ctx[audKey] = v
		default:
			key := prefix + ":" + claim
			if s, ok := v.(string); ok && policyKeys[strings.ToLower(key)] {
				ctx[key] = s
			}
		}
	}
	return ctx
}

// renamePolicy parses the policy and renames each statement's own
// provider's sub and aud keys. It returns the policy and the (lower-cased)
// condition keys it tests.
func renamePolicy(t testing.TB, trust string) (map[string]any, map[string]bool) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(trust), &doc); err != nil {
		t.Fatalf("trust policy is not JSON: %v\n%s", err, trust)
	}
	keys := map[string]bool{}
	var stmts []any
	switch s := doc["Statement"].(type) {
	case []any:
		stmts = s
	case map[string]any:
		stmts = []any{s}
	}
	for _, s := range stmts {
		stmt, _ := s.(map[string]any)
		own := map[string]bool{}
		if p, ok := stmt["Principal"].(map[string]any); ok {
			for _, arn := range strs(p["Federated"]) {
				own[providerPath(arn)] = true
			}
		}
		cond, _ := stmt["Condition"].(map[string]any)
		for op, m := range cond {
			block, _ := m.(map[string]any)
			renamed := map[string]any{}
			for key, v := range block {
				prefix, claim, _ := strings.Cut(key, ":")
				if own[prefix] && claim == "sub" {
					key = subKey
				} else if own[prefix] && claim == "aud" {
					key = audKey
				}
				if _, dup := renamed[key]; dup {
					t.Fatalf("renaming %s in operator %s collides with another key", key, op)
				}
				renamed[key] = v
				keys[strings.ToLower(key)] = true
			}
			cond[op] = renamed
		}
	}
	return doc, keys
}

func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

var (
	installOnce sync.Once
	installDir  string
	installErr  error
)

// install makes sure the pinned simulator is in node_modules, running
// `npm ci` when it is missing or another version, under a file lock so
// test packages running side by side install it once.
func install(t testing.TB) string {
	t.Helper()
	installOnce.Do(func() { installDir, installErr = doInstall() })
	if installErr != nil {
		t.Fatalf("installing the trust evaluator: %v", installErr)
	}
	return installDir
}

func doInstall() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s is not on PATH: install Node.js 18 or later with npm (Debian: apt-get install nodejs npm)", tool)
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	want, err := pinned(dir)
	if err != nil {
		return "", err
	}
	if installed(dir) == want {
		return dir, nil
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
	}
	if got := installed(dir); got != want {
		return "", fmt.Errorf("npm ci in %s installed iam-simulate %q, want %q", dir, got, want)
	}
	return dir, nil
}

const pkg = "@cloud-copilot/iam-simulate"

// pinned is the simulator's version in package-lock.json.
func pinned(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", err
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return "", fmt.Errorf("reading package-lock.json: %w", err)
	}
	v := lock.Packages["node_modules/"+pkg].Version
	if v == "" {
		return "", fmt.Errorf("package-lock.json pins no %s", pkg)
	}
	return v, nil
}

// installed is the version in node_modules, or "" when there is none.
func installed(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", pkg, "package.json"))
	if err != nil {
		return ""
	}
	var p struct {
		Version string `json:"version"`
	}
	_ = json.Unmarshal(b, &p)
	return p.Version
}

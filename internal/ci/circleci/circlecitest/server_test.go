package circlecitest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/containerise/containerise/internal/ci/circleci/circlecitest"
)

const token = "CCIPAT_fake_0123456789abcdef0123456789abcdef"

// call sends a raw request, as any client might, and decodes the JSON answer.
func call(t *testing.T, s *circlecitest.Server, method, path, tok, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Circle-Token", tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %d, body not JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

func newServer(t *testing.T) *circlecitest.Server {
	s := circlecitest.New(t)
	s.AddToken(token, "admin")
	s.AddProject("gh/acme/app")
	return s
}

func TestProjectVariableShapes(t *testing.T) {
	s := newServer(t)
	status, out := call(t, s, "POST", "/api/v2/project/gh/acme/app/envvar", token, `{"name":"KEY","value":"s3cr3t-value"}`)
	if status != 201 || out["name"] != "KEY" || out["value"] != "xxxxalue" {
		t.Errorf("POST: %d %v", status, out)
	}
	// Escaped slashes and the long VCS name reach the same project.
	status, out = call(t, s, "GET", "/api/v2/project/github%2Facme%2Fapp/envvar/KEY", token, "")
	if status != 200 || out["value"] != "xxxxalue" {
		t.Errorf("GET with an escaped slug: %d %v", status, out)
	}
	status, out = call(t, s, "GET", "/api/v2/project/gh/acme/app/envvar", token, "")
	items, _ := out["items"].([]any)
	if status != 200 || len(items) != 1 || out["next_page_token"] != nil {
		t.Errorf("list: %d %v", status, out)
	}
	if v, _ := s.ProjectVar("gh/acme/app", "KEY"); v != "s3cr3t-value" {
		t.Errorf("stored %q", v)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v2/project/gh/acme/app/envvar", `{"name":"BAD-NAME","value":"x"}`},
		{"POST", "/api/v2/project/gh/acme/app/envvar", `{"name":"OK"}`},
		{"GET", "/api/v2/project/gh/acme/app/envvar?page-token=garbage", ""},
	} {
		if status, out := call(t, s, c.method, c.path, token, c.body); status != 400 || out["message"] == "" {
			t.Errorf("%s %s %s: %d %v, want 400 with a message", c.method, c.path, c.body, status, out)
		}
	}
	if status, out := call(t, s, "DELETE", "/api/v2/project/gh/acme/app/envvar/NOPE", token, ""); status != 404 || out["message"] == nil {
		t.Errorf("delete absent: %d %v", status, out)
	}
	if status, _ := call(t, s, "GET", "/api/v2/project/gh/acme/other/envvar", token, ""); status != 404 {
		t.Errorf("unknown project: %d", status)
	}
}

func TestContextVariablesShowNoValue(t *testing.T) {
	s := newServer(t)
	id := s.AddContext("gh/acme", "aws")
	status, out := call(t, s, "PUT", "/api/v2/context/"+id+"/environment-variable/KEY", token, `{"value":"s3cr3t-value"}`)
	if status != 200 || out["variable"] != "KEY" || out["context_id"] != id || out["created_at"] == nil || out["updated_at"] == nil {
		t.Errorf("PUT: %d %v", status, out)
	}
	_, out = call(t, s, "GET", "/api/v2/context/"+id+"/environment-variable", token, "")
	raw, _ := json.Marshal(out)
	if strings.Contains(string(raw), "alue") || strings.Contains(string(raw), "value") {
		t.Errorf("a context variable's value shows: %s", raw)
	}
	status, out = call(t, s, "POST", "/api/v2/context", token, `{"name":"ci","owner":{"slug":"gh/acme","type":"organization"}}`)
	if status != 200 || out["name"] != "ci" || out["id"] == "" {
		t.Errorf("create context: %d %v", status, out)
	}
	if status, _ := call(t, s, "POST", "/api/v2/context", token, `{"name":"ci","owner":{"slug":"gh/acme"}}`); status != 409 {
		t.Errorf("the same name again: %d", status)
	}
	if status, _ := call(t, s, "GET", "/api/v2/context?owner-slug=gh/acme&owner-id=x", token, ""); status != 400 {
		t.Errorf("both owner forms: %d", status)
	}
}

func TestAuthAndPermissions(t *testing.T) {
	s := newServer(t)
	const other = "CCIPAT_other_fedcba9876543210fedcba98765432"
	s.AddToken(other, "intern")
	s.Forbid(other, "gh/acme")
	id := s.AddContext("gh/acme", "aws")

	if status, out := call(t, s, "GET", "/api/v2/me", "", ""); status != 401 || out["message"] == "" {
		t.Errorf("no token: %d %v", status, out)
	}
	if status, _ := call(t, s, "GET", "/api/v2/me", "wrong-token-value", ""); status != 401 {
		t.Errorf("wrong token: %d", status)
	}
	if status, out := call(t, s, "GET", "/api/v2/me", other, ""); status != 200 || out["login"] != "intern" {
		t.Errorf("me: %d %v", status, out)
	}
	for _, p := range []string{"/api/v2/project/gh/acme/app/envvar", "/api/v2/context/" + id, "/api/v2/context?owner-slug=gh/acme"} {
		if status, _ := call(t, s, "GET", p, other, ""); status != 403 {
			t.Errorf("forbidden organisation, GET %s: %d", p, status)
		}
	}
	s.RemoveToken(other)
	if status, _ := call(t, s, "GET", "/api/v2/me", other, ""); status != 401 {
		t.Errorf("revoked token: %d", status)
	}
}

// The log spots a token sent anywhere but the Circle-Token header, and
// never holds one itself.
func TestRequestLogSpotsTokensElsewhere(t *testing.T) {
	s := newServer(t)
	call(t, s, "GET", "/api/v2/me?circle-token="+token, "", "")
	call(t, s, "GET", "/api/v2/me", token, "", "Authorization", "Bearer "+token)
	call(t, s, "POST", "/api/v2/project/gh/acme/app/envvar", token, `{"name":"T","value":"`+token+`"}`)
	call(t, s, "GET", "/api/v2/me", token, "")
	log := s.Requests()
	if len(log) != 4 {
		t.Fatalf("log %v", log)
	}
	if log[0].Authorized || !log[0].TokenElsewhere || log[0].Query != "circle-token=[token]" {
		t.Errorf("token in the query: %+v", log[0])
	}
	if !log[1].TokenElsewhere || !log[2].TokenElsewhere || log[3].TokenElsewhere || !log[3].Authorized {
		t.Errorf("log %+v", log)
	}
	for _, r := range log {
		if strings.Contains(r.String(), token) {
			t.Errorf("the log holds the token: %s", r)
		}
	}
	if w := s.Writes(); len(w) != 1 || w[0].Method != "POST" || w[0].Status != 201 {
		t.Errorf("writes %v", w)
	}
}

func TestFaults(t *testing.T) {
	s := newServer(t)
	s.Inject(circlecitest.Fault{Method: "GET", Path: "/api/v2/project/*/*/*/envvar", Status: 429, RetryAfter: "3", Message: "slow down", Times: 2})
	for i := range 3 {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL+"/api/v2/project/gh/acme/app/envvar", nil)
		req.Header.Set("Circle-Token", token)
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if i < 2 && (resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || !strings.Contains(string(body), "slow down")) {
			t.Errorf("request %d: %d %q %s", i, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if i == 2 && resp.StatusCode != 200 {
			t.Errorf("the fault outlived its count: %d", resp.StatusCode)
		}
	}
	// A lost answer: the change is made, the client hears nothing.
	s.Inject(circlecitest.Fault{Method: "POST", DropAfter: true})
	req, _ := http.NewRequestWithContext(t.Context(), "POST", s.URL+"/api/v2/project/gh/acme/app/envvar", strings.NewReader(`{"name":"K","value":"v"}`))
	req.Header.Set("Circle-Token", token)
	if resp, err := s.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("a dropped answer arrived: %d", resp.StatusCode)
	}
	if _, ok := s.ProjectVar("gh/acme/app", "K"); !ok {
		t.Error("DropAfter did not make the change")
	}
}

// A fault can aim at one variable's write, after letting others through.
func TestFaultOnOneVariable(t *testing.T) {
	s := newServer(t)
	s.Inject(circlecitest.Fault{Variable: "SECRET", Status: 500})
	s.Inject(circlecitest.Fault{Method: "POST", After: 2, Status: 503})
	post := func(name string) int {
		status, _ := call(t, s, "POST", "/api/v2/project/gh/acme/app/envvar", token, `{"name":"`+name+`","value":"value"}`)
		return status
	}
	got := []int{post("A"), post("SECRET"), post("SECRET"), post("B"), post("C")}
	// A passes as the After fault's 1st; SECRET meets its own fault,
	// injected first, so the After fault does not count it; SECRET
	// passes as the After fault's 2nd; B is its 3rd and fails.
	if want := []int{201, 500, 201, 503, 201}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	s.Inject(circlecitest.Fault{Variable: "KEY", Status: 502})
	id := s.AddContext("gh/acme", "aws")
	if status, _ := call(t, s, "PUT", "/api/v2/context/"+id+"/environment-variable/OTHER", token, `{"value":"v"}`); status != 200 {
		t.Errorf("another variable's PUT: %d", status)
	}
	if status, _ := call(t, s, "PUT", "/api/v2/context/"+id+"/environment-variable/KEY", token, `{"value":"v"}`); status != 502 {
		t.Errorf("KEY's PUT: %d", status)
	}
}

func TestForbidWrites(t *testing.T) {
	s := newServer(t)
	const reader = "CCIPAT_reader_fedcba9876543210fedcba9876543"
	s.AddToken(reader, "reader")
	s.ForbidWrites(reader, "gh/acme/app")
	if status, _ := call(t, s, "GET", "/api/v2/project/gh/acme/app/envvar", reader, ""); status != 200 {
		t.Errorf("read: %d", status)
	}
	if status, _ := call(t, s, "POST", "/api/v2/project/gh/acme/app/envvar", reader, `{"name":"A","value":"b"}`); status != 403 {
		t.Errorf("write: %d", status)
	}
}

func TestStartWithoutTestingTB(t *testing.T) {
	s, err := circlecitest.Start()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // twice is fine
}

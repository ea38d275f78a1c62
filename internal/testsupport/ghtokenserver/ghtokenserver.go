// Package ghtokenserver is a local HTTPS stand-in for GitHub Actions'
// token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL): it answers a GET with the
// job's request token as a bearer credential with {"value": <token>},
// minted for the audience asked for, and records what it was asked.
package ghtokenserver

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/containerise/containerise/internal/testsupport/citoken"
)

// Server is the stand-in.
type Server struct {
	*httptest.Server
	// RequestToken is the bearer credential a job must present.
	RequestToken string
	// CertFile is the server's certificate as PEM, for a process that
	// trusts it through SSL_CERT_FILE.
	CertFile string

	mu        sync.Mutex
	job       citoken.GitHub
	audiences []string
	refusals  int
}

// Start serves the job's tokens until the test ends.
func Start(t testing.TB, job citoken.GitHub) *Server {
	t.Helper()
	s := &Server{RequestToken: "ghs_requesttoken0123456789abcdef", job: job}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	s.CertFile = filepath.Join(t.TempDir(), "github-token-endpoint.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(s.CertFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// Env is the job's environment as GitHub sets it when the workflow grants
// id-token: write.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"GITHUB_ACTIONS":                 "true",
		"GITHUB_REPOSITORY":              s.job.Repo,
		"GITHUB_RUN_ID":                  "9876543210",
		"GITHUB_RUN_ATTEMPT":             "1",
		"GITHUB_SERVER_URL":              "https://github.com",
		"ACTIONS_ID_TOKEN_REQUEST_URL":   s.URL + "/_apis/distributedtask/hubs/build/plans/1/jobs/2/idtoken?api-version=2.0",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": s.RequestToken,
	}
}

// Audiences are the audiences tokens were requested for, in order.
func (s *Server) Audiences() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.audiences...)
}

// Refusals counts requests refused for a wrong or missing bearer token.
func (s *Server) Refusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusals
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Query().Get("api-version") == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if r.Header.Get("Authorization") != "bearer "+s.RequestToken {
		s.refusals++
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	aud := r.URL.Query().Get("audience")
	s.audiences = append(s.audiences, aud)
	job := s.job
	if aud != "" {
		job.Audience = aud
	} else {
		// GitHub's default audience is the owner's URL.
		job.Audience = "https://github.com/" + job.Claims()["repository_owner"].(string)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"value": job.Mint()})
}

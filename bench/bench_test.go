package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestLatencyProxyAddsLatencyToEveryExchange(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer upstream.Close()
	p, err := startLatencyProxy(upstream.URL, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client := &http.Client{} // keep-alive: the second request reuses the connection
	for i := range 2 {
		start := time.Now()
		resp, err := client.Get(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if string(body) != "ok" {
			t.Fatalf("request %d: body %q", i, body)
		}
		if took < 100*time.Millisecond || took > 300*time.Millisecond {
			t.Errorf("request %d took %s, want about 100 ms", i, took)
		}
	}
}

func TestMedianAndRatio(t *testing.T) {
	s := series{5 * time.Millisecond, 1 * time.Millisecond, 3 * time.Millisecond, 100 * time.Millisecond}
	if got := s.median(); got != 4*time.Millisecond {
		t.Errorf("median %s, want 4ms", got)
	}
	if got := ratio(50*time.Millisecond, 100*time.Millisecond); got != "0.50x" {
		t.Errorf("ratio %q", got)
	}
	if got := medianInt([]int64{7, 1, 3}); got != 3 {
		t.Errorf("medianInt %d", got)
	}
}

func TestParseDotenvAndCalls(t *testing.T) {
	vars := parseDotenv("AWS_REGION=us-east-1\nAWS_IAM_ROLE_ARN=\"arn:aws:iam::1:role/r\"\n\n# c\n")
	if vars["AWS_REGION"] != "us-east-1" || vars["AWS_IAM_ROLE_ARN"] != "arn:aws:iam::1:role/r" {
		t.Errorf("parseDotenv: %v", vars)
	}
	stderr := "aws: iam.GetUser 12ms ok\naws: ecr.CreateRepository 1.2s ok\nother\naws: 2 calls, 1 mutating\n"
	if got := awsTime(stderr); got != 1212*time.Millisecond {
		t.Errorf("awsTime %s", got)
	}
	if m := callSummary.FindStringSubmatch(stderr); m == nil || m[1] != "2" || m[2] != "1" {
		t.Errorf("callSummary: %v", m)
	}
}

func TestTableAligns(t *testing.T) {
	var b strings.Builder
	tb := newTable("name", "value")
	tb.add("a", "1 ms")
	tb.add("longer", "100 ms")
	tb.write(&b)
	want := "  name     value\n  ------  ------\n  a         1 ms\n  longer  100 ms\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

// Against the stack's moto (skipped without it): an AWS CLI call through the
// proxy takes about 100 ms more than the same call straight to moto.
func TestLatencyProxyInFrontOfMoto(t *testing.T) {
	moto, cli := os.Getenv("STACK_MOTO_URL"), os.Getenv("STACK_AWS_CLI")
	if moto == "" || cli == "" {
		t.Skip("no stack: run with the env of scripts/stack.sh")
	}
	p, err := startLatencyProxy(moto, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	call := func(endpoint string) time.Duration {
		var best time.Duration
		for range 3 {
			start := time.Now()
			out, err := exec.Command(cli, "--endpoint-url", endpoint, "iam", "list-users").CombinedOutput()
			if err != nil {
				t.Fatalf("aws iam list-users via %s: %v\n%s", endpoint, err, out)
			}
			if d := time.Since(start); best == 0 || d < best {
				best = d
			}
		}
		return best
	}
	direct, slow := call(moto), call(p.URL)
	t.Logf("aws iam list-users: direct %s, through the proxy %s", direct, slow)
	// Only the lower bound is certain: the toxic holds every exchange for
	// 100 ms, whatever else the machine is doing.
	if slow < 100*time.Millisecond {
		t.Errorf("a call through the proxy took %s; the latency toxic should hold it at least 100 ms", slow)
	}
}

func TestCallLevelsGroupsCallsByRoundTrip(t *testing.T) {
	ms := time.Millisecond
	lines := []stampedLine{
		{212 * ms, "aws: iam.GetUser 104ms ok"}, // a slow start still makes level 1
		{218 * ms, "aws: sts.GetCallerIdentity 110ms ok"},
		{240 * ms, "aws: iam.GetRole 130ms ok"},
		{241 * ms, "creating IAM user circleci"},
		{345 * ms, "aws: iam.GetPolicy 102ms ok"},
		{450 * ms, "aws: iam.GetPolicyVersion 103ms ok"},
		{451 * ms, "aws: 5 calls, 0 mutating"},
	}
	got := callLevels(lines, 100*ms)
	want := [][]string{{"iam.GetUser", "sts.GetCallerIdentity", "iam.GetRole"}, {"iam.GetPolicy"}, {"iam.GetPolicyVersion"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("callLevels = %v, want %v", got, want)
	}
}

func TestRoundOrderBalancesPlacesAndPredecessors(t *testing.T) {
	cs := []*contender{{name: "A"}, {name: "B"}, {name: "C"}}
	places := map[string]int{}
	follows := map[string]int{}
	for round := range 6 {
		order := roundOrder(cs, round)
		for i, c := range order {
			places[fmt.Sprint(c.name, i)]++
			if i > 0 {
				follows[order[i-1].name+c.name]++
			}
		}
	}
	for _, n := range places {
		if n != 2 {
			t.Fatalf("places not balanced over 6 rounds: %v", places)
		}
	}
	for _, pair := range []string{"AB", "BA", "AC", "CA", "BC", "CB"} {
		if follows[pair] != 2 {
			t.Fatalf("predecessors not balanced over 6 rounds: %v", follows)
		}
	}
}

func TestContextSent(t *testing.T) {
	out := "#5 [internal] load build context\n#5 transferring context: 656.64MB 5.1s\n#5 transferring context: 1.07GB 8.7s done\n#5 DONE 8.8s\n"
	if got := contextSent(out); got != 1_070_000_000 {
		t.Errorf("contextSent = %d", got)
	}
	if got := contextSent("#1 transferring dockerfile: 138B done\n"); got != 0 {
		t.Errorf("a Dockerfile counted as context: %d", got)
	}
}

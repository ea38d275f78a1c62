package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// latencyProxy is a toxiproxy TCP proxy, run in this process, from a free
// local port to an upstream, that holds back every chunk of every response
// by a fixed latency: each request-response exchange with the upstream costs
// one extra round trip of that length, whatever the client does.
type latencyProxy struct {
	proxy *toxiproxy.Proxy
	URL   string // http://127.0.0.1:<port>, for AWS_ENDPOINT_URL
}

// startLatencyProxy proxies to upstreamURL's host:port with latency added on
// the downstream (response) stream.
func startLatencyProxy(upstreamURL string, latency time.Duration) (*latencyProxy, error) {
	u, err := url.Parse(upstreamURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("latency proxy: bad upstream URL %q", upstreamURL)
	}
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(server, "aws", "127.0.0.1:0", u.Host)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("latency proxy: %w", err)
	}
	toxic := fmt.Sprintf(`{"name":"latency","type":"latency","stream":"downstream","toxicity":1,`+
		`"attributes":{"latency":%d,"jitter":0}}`, latency.Milliseconds())
	if _, err := p.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
		p.Stop()
		return nil, fmt.Errorf("latency proxy: adding the latency toxic: %w", err)
	}
	return &latencyProxy{proxy: p, URL: "http://" + p.Listen}, nil
}

func (l *latencyProxy) Close() { l.proxy.Stop() }

// serveLatencyProxy runs a latency proxy until SIGINT or SIGTERM, its URL on stdout.
func serveLatencyProxy(upstream string, latency time.Duration) error {
	if upstream == "" {
		return fmt.Errorf("STACK_MOTO_URL is not set: source the stack's env first")
	}
	p, err := startLatencyProxy(upstream, latency)
	if err != nil {
		return err
	}
	defer p.Close()
	fmt.Println(p.URL)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

// Command ecrfront runs the test stack's registry front (package ecrfront)
// at the ECR host name: TLS on -listen, the registry behind it on
// -registry, moto's ECR API at -moto with the stack's admin credentials
// (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY). scripts/stack.sh builds
// and starts it; it is test tooling, never part of containerise.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/containerise/containerise/internal/testsupport/ecrfront"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:443", "address to serve TLS on")
	cert := flag.String("cert", "", "TLS certificate (PEM) for the ECR host name")
	key := flag.String("key", "", "its private key (PEM)")
	registry := flag.String("registry", "http://127.0.0.1:5001", "the Distribution registry behind the front")
	moto := flag.String("moto", "http://127.0.0.1:5000", "moto's endpoint, for ECR's API")
	account := flag.String("account", "123456789012", "the account whose registry the front records pushes for")
	user := flag.String("user", "AWS", "the registry's user")
	flag.Parse()
	password := os.Getenv("ECRFRONT_REGISTRY_PASSWORD") // never on the command line
	logger := log.New(os.Stderr, "ecrfront: ", log.LstdFlags)

	target, err := url.Parse(*registry)
	if err != nil || *cert == "" || *key == "" {
		fmt.Fprintln(os.Stderr, "usage: ecrfront -cert FILE -key FILE [-listen ADDR] [-registry URL] [-moto URL] [-account ID]")
		os.Exit(2)
	}
	creds := credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), "")
	var mu sync.Mutex
	clients := map[string]*ecr.Client{}
	front := ecrfront.New(target, &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: time.Minute})
	front.User, front.Password, front.Logf = *user, password, logger.Printf
	front.ECR = func(acct, region string) ecrfront.ECR {
		if acct != *account {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		c, ok := clients[region]
		if !ok {
			c = ecr.New(ecr.Options{Region: region, BaseEndpoint: aws.String(*moto), Credentials: creds})
			clients[region] = c
		}
		return c
	}

	srv := &http.Server{Addr: *listen, Handler: front, ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: log.New(os.Stderr, "ecrfront: http: ", log.LstdFlags)}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	logger.Printf("serving %s for %s's registry, in front of %s; recording in ECR at %s", *listen, *account, *registry, *moto)
	if err := srv.ListenAndServeTLS(*cert, *key); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Fatal(err)
	}
}

// Command serverload is the agent-side client of bench/server.ts for the GetAuthorizedEntries
// row: grpc-go with the spire-api-sdk stubs over mTLS with an attested agent's SVID, the same
// binary for SPIRE's server and ztwim's, so that the client's own decoding (fast in Go) does not
// hide the servers' difference the way a Node client did.
//
//	serverload -addr 127.0.0.1:8081 -cert agent.pem -key agent-key.pem -bundle bundle.pem \
//	           -td example.org -want 1000 -calls 50
//
// The calls are sequential (one connection, one call at a time), after 5 warm-up calls. It prints
// one JSON object: every latency in milliseconds, their median and p99.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	entryv1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/entry/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "serverload: "+format+"\n", args...)
	os.Exit(1)
}

type result struct {
	Calls       int       `json:"calls"`
	Entries     int       `json:"entries"`
	LatenciesMs []float64 `json:"latenciesMs"`
	MedianMs    float64   `json:"medianMs"`
	P99Ms       float64   `json:"p99Ms"`
}

func main() {
	addr := flag.String("addr", "", "server agent endpoint host:port")
	certFile := flag.String("cert", "", "agent SVID chain (PEM, leaf first)")
	keyFile := flag.String("key", "", "agent SVID key (PEM)")
	bundleFile := flag.String("bundle", "", "trust domain's X.509 authorities (PEM)")
	td := flag.String("td", "", "trust domain; the server must present spiffe://<td>/spire/server")
	want := flag.Int("want", 0, "entries every answer must hold")
	calls := flag.Int("calls", 50, "timed calls")
	flag.Parse()
	if *addr == "" || *certFile == "" || *keyFile == "" || *bundleFile == "" || *td == "" {
		die("-addr, -cert, -key, -bundle and -td are required")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		die("agent SVID: %v", err)
	}
	pem, err := os.ReadFile(*bundleFile)
	if err != nil {
		die("bundle: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		die("bundle %s holds no certificate", *bundleFile)
	}
	serverID := "spiffe://" + *td + "/spire/server"
	cfg := &tls.Config{
		Certificates:       []tls.Certificate{cert},
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified below: chain to the bundle and the server's SPIFFE ID, not a host name
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return fmt.Errorf("server presented no certificate")
			}
			certs := make([]*x509.Certificate, 0, len(raw))
			for _, r := range raw {
				c, err := x509.ParseCertificate(r)
				if err != nil {
					return err
				}
				certs = append(certs, c)
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				return err
			}
			for _, u := range certs[0].URIs {
				if u.String() == serverID {
					return nil
				}
			}
			return fmt.Errorf("server certificate is not %s", serverID)
		},
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		die("dial %s: %v", *addr, err)
	}
	defer conn.Close()
	client := entryv1.NewEntryClient(conn)
	call := func() (int, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		t0 := time.Now()
		r, err := client.GetAuthorizedEntries(ctx, &entryv1.GetAuthorizedEntriesRequest{})
		d := time.Since(t0)
		if err != nil {
			die("GetAuthorizedEntries: %v", err)
		}
		if *want > 0 && len(r.Entries) != *want {
			die("GetAuthorizedEntries returned %d entries, expected %d", len(r.Entries), *want)
		}
		return len(r.Entries), d
	}
	for i := 0; i < 5; i++ {
		call()
	}
	res := result{Calls: *calls}
	for i := 0; i < *calls; i++ {
		n, d := call()
		res.Entries = n
		res.LatenciesMs = append(res.LatenciesMs, float64(d.Microseconds())/1000)
	}
	sorted := append([]float64(nil), res.LatenciesMs...)
	sort.Float64s(sorted)
	if len(sorted) > 0 {
		res.MedianMs = sorted[len(sorted)/2]
		res.P99Ms = sorted[(len(sorted)*99)/100]
		if len(sorted)%2 == 0 {
			res.MedianMs = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		die("encode: %v", err)
	}
}

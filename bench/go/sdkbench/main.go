// Command sdkbench is go-spiffe v2.9.0's side of bench/sdk.ts: the same operations the bench
// runs through @ztwim/spiffe, on the same keys, tokens, chains and Workload API socket.
//
// It runs as one long-lived process. It loads the fixtures bench/sdk.ts wrote to -dir, then reads
// one command per line on stdin and answers each with one JSON line on stdout:
//
//	crypto KIND MS WORKERS PROCS   KIND = jwt-es256 | jwt-rs256 | x509-root | x509-inter; runs KIND in
//	                               WORKERS goroutines for MS ms with runtime.GOMAXPROCS(PROCS) (0 = all
//	                               cores): {"ops":N,"wallMs":W,"cpuMs":C}
//	fetch KIND N                   KIND = x509 | jwt; N sequential calls through one workloadapi.Client
//	                               (-socket): {"latMs":[...],"cpuMs":C}
//
// One JWT-SVID validation is jwtsvid.ParseAndValidate(token, bundle, audience); one chain
// verification is x509.ParseCertificate of each DER certificate plus x509svid.Verify, as a
// workload does with a peer chain received over the wire. The bundles are parsed once.
package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "sdkbench: "+format+"\n", args...)
	os.Exit(1)
}

func read(dir, name string) []byte {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		die("read fixture: %v", err)
	}
	return b
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// fixtures as bench/sdk.ts writes them: the tokens as text, chains as DER certificates one per
// line in base64, the X.509 bundle as PEM, the JWT bundle as a JWKS.
type fixtures struct {
	tokens   map[string]string
	chains   map[string][][]byte
	audience []string
	x509     *x509bundle.Bundle
	jwt      *jwtbundle.Bundle
}

func load(dir string) *fixtures {
	var meta struct {
		TrustDomain string              `json:"trustDomain"`
		Audience    string              `json:"audience"`
		Tokens      map[string]string   `json:"tokens"`
		Chains      map[string][]string `json:"chains"`
	}
	if err := json.Unmarshal(read(dir, "fixtures.json"), &meta); err != nil {
		die("fixtures.json: %v", err)
	}
	td, err := spiffeid.TrustDomainFromString(meta.TrustDomain)
	if err != nil {
		die("trust domain: %v", err)
	}
	xb, err := x509bundle.Parse(td, read(dir, "bundle.pem"))
	if err != nil {
		die("x509 bundle: %v", err)
	}
	jb, err := jwtbundle.Parse(td, read(dir, "jwks.json"))
	if err != nil {
		die("jwt bundle: %v", err)
	}
	f := &fixtures{tokens: meta.Tokens, chains: map[string][][]byte{}, audience: []string{meta.Audience}, x509: xb, jwt: jb}
	for k, list := range meta.Chains {
		for _, s := range list {
			der, err := base64Std(s)
			if err != nil {
				die("chain %s: %v", k, err)
			}
			f.chains[k] = append(f.chains[k], der)
		}
	}
	return f
}

// op returns one operation of KIND; it fails the process on the first error (the bench's inputs
// are valid, so an error is a broken bench, not a figure).
func (f *fixtures) op(kind string) func() {
	switch kind {
	case "jwt-es256", "jwt-rs256":
		token, ok := f.tokens[kind]
		if !ok {
			die("no token %s", kind)
		}
		return func() {
			if _, err := jwtsvid.ParseAndValidate(token, f.jwt, f.audience); err != nil {
				die("%s: %v", kind, err)
			}
		}
	case "x509-root", "x509-inter":
		ders, ok := f.chains[kind]
		if !ok {
			die("no chain %s", kind)
		}
		return func() {
			certs := make([]*x509.Certificate, 0, len(ders))
			for _, der := range ders {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					die("%s: parse: %v", kind, err)
				}
				certs = append(certs, c)
			}
			if _, _, err := x509svid.Verify(certs, f.x509); err != nil {
				die("%s: %v", kind, err)
			}
		}
	}
	die("unknown crypto kind %q", kind)
	return nil
}

func runCrypto(f *fixtures, kind string, d time.Duration, workers, procs int) map[string]any {
	if procs <= 0 {
		procs = runtime.NumCPU()
	}
	runtime.GOMAXPROCS(procs)
	fn := f.op(kind)
	var ops atomic.Int64
	var wg sync.WaitGroup
	cpu0 := selfCPU()
	t0 := time.Now()
	deadline := t0.Add(d)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int64
			for time.Now().Before(deadline) {
				for i := 0; i < 4; i++ {
					fn()
				}
				n += 4
			}
			ops.Add(n)
		}()
	}
	wg.Wait()
	return map[string]any{"ops": ops.Load(), "wallMs": ms(time.Since(t0)), "cpuMs": ms(selfCPU() - cpu0)}
}

func runFetch(client *workloadapi.Client, kind string, n int) map[string]any {
	runtime.GOMAXPROCS(runtime.NumCPU())
	lat := make([]float64, 0, n)
	cpu0 := selfCPU()
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t0 := time.Now()
		var err error
		switch kind {
		case "x509":
			_, err = client.FetchX509SVID(ctx)
		case "jwt":
			_, err = client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "spiffe://example.org/bench-audience"})
		default:
			err = fmt.Errorf("unknown fetch kind %q", kind)
		}
		lat = append(lat, ms(time.Since(t0)))
		cancel()
		if err != nil {
			die("fetch %s: %v", kind, err)
		}
	}
	return map[string]any{"latMs": lat, "cpuMs": ms(selfCPU() - cpu0)}
}

func main() {
	var dir, socket string
	for i := 1; i+1 < len(os.Args); i += 2 {
		switch os.Args[i] {
		case "-dir":
			dir = os.Args[i+1]
		case "-socket":
			socket = os.Args[i+1]
		default:
			die("unknown flag %s", os.Args[i])
		}
	}
	if dir == "" {
		die("usage: sdkbench -dir DIR [-socket SOCK]")
	}
	f := load(dir)
	var client *workloadapi.Client
	if socket != "" {
		c, err := workloadapi.New(context.Background(), workloadapi.WithAddr("unix://"+socket))
		if err != nil {
			die("workloadapi.New: %v", err)
		}
		defer c.Close()
		client = c
	}
	enc := json.NewEncoder(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		w := strings.Fields(in.Text())
		if len(w) == 0 {
			continue
		}
		var out map[string]any
		switch {
		case w[0] == "crypto" && len(w) == 5:
			msArg, _ := strconv.Atoi(w[2])
			workers, _ := strconv.Atoi(w[3])
			procs, _ := strconv.Atoi(w[4])
			out = runCrypto(f, w[1], time.Duration(msArg)*time.Millisecond, max(workers, 1), procs)
		case w[0] == "fetch" && len(w) == 3:
			if client == nil {
				die("fetch needs -socket")
			}
			n, _ := strconv.Atoi(w[2])
			out = runFetch(client, w[1], n)
		default:
			die("bad command %q", in.Text())
		}
		if err := enc.Encode(out); err != nil {
			die("encode: %v", err)
		}
	}
}

func base64Std(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

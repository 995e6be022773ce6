// gospiffeclient drives a Workload API with go-spiffe v2 the way applications do:
// FetchX509SVID, FetchJWTSVID, ValidateJWTSVID, then an mTLS exchange between a spiffetls
// server and client that both use SVIDs from an X509Source. It prints one JSON object.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

type result struct {
	X509ID       string `json:"x509_id"`
	JWTID        string `json:"jwt_id"`
	ValidatedID  string `json:"validated_id"`
	WrongAudErr  string `json:"wrong_aud_error"`
	MTLSEcho     string `json:"mtls_echo"`
	MTLSDeniedOK bool   `json:"mtls_denied_ok"`
}

func fail(step string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", step, err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 3 {
		fail("usage", fmt.Errorf("gospiffeclient <unix:///socket> <audience>"))
	}
	addr, aud := os.Args[1], os.Args[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := workloadapi.New(ctx, workloadapi.WithAddr(addr))
	if err != nil {
		fail("new client", err)
	}
	defer client.Close()
	var r result
	x, err := client.FetchX509SVID(ctx)
	if err != nil {
		fail("FetchX509SVID", err)
	}
	r.X509ID = x.ID.String()
	j, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: aud})
	if err != nil {
		fail("FetchJWTSVID", err)
	}
	r.JWTID = j.ID.String()
	v, err := client.ValidateJWTSVID(ctx, j.Marshal(), aud)
	if err != nil {
		fail("ValidateJWTSVID", err)
	}
	r.ValidatedID = v.ID.String()
	if _, err := client.ValidateJWTSVID(ctx, j.Marshal(), "not-"+aud); err != nil {
		r.WrongAudErr = err.Error()
	}

	source, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(addr)))
	if err != nil {
		fail("NewX509Source", err)
	}
	defer source.Close()
	ln, err := spiffetls.ListenWithMode(ctx, "tcp", "127.0.0.1:0", spiffetls.MTLSServerWithSource(tlsconfig.AuthorizeID(x.ID), source))
	if err != nil {
		fail("listen", err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 5)
				if _, err := io.ReadFull(conn, buf); err == nil {
					_, _ = conn.Write(append([]byte("echo:"), buf...))
				}
			}()
		}
	}()
	conn, err := spiffetls.DialWithMode(ctx, "tcp", ln.Addr().String(), spiffetls.MTLSClientWithSource(tlsconfig.AuthorizeID(x.ID), source))
	if err != nil {
		fail("dial", err)
	}
	if _, err := conn.Write([]byte("hello")); err != nil {
		fail("write", err)
	}
	out := make([]byte, 10)
	if _, err := io.ReadFull(conn, out); err != nil {
		fail("read", err)
	}
	conn.Close()
	r.MTLSEcho = string(out)
	// A client that expects another server identity must refuse the connection.
	other := spiffeid.RequireFromString("spiffe://" + x.ID.TrustDomain().Name() + "/someone-else")
	if c2, err := spiffetls.DialWithMode(ctx, "tcp", ln.Addr().String(), spiffetls.MTLSClientWithSource(tlsconfig.AuthorizeID(other), source)); err != nil {
		r.MTLSDeniedOK = true
	} else {
		c2.Close()
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

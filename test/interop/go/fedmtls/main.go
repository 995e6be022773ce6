// fedmtls: a go-spiffe spiffetls server on one Workload API (trust domain B) and a client on
// another (trust domain A) complete mTLS, each authenticating the other with the federated
// bundle its Workload API serves. Usage: fedmtls <server unix://addr> <client unix://addr>.
// Prints one JSON object: the IDs each side saw and the echoed line.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

type result struct {
	ServerID     string `json:"server_id"`
	ClientID     string `json:"client_id"`
	ServerSawID  string `json:"server_saw_id"`
	Echo         string `json:"echo"`
	WrongPeerErr string `json:"wrong_peer_error"`
}

func fail(step string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", step, err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 3 {
		fail("usage", fmt.Errorf("fedmtls <server addr> <client addr>"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srvSrc, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(os.Args[1])))
	if err != nil {
		fail("server source", err)
	}
	defer srvSrc.Close()
	cliSrc, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(os.Args[2])))
	if err != nil {
		fail("client source", err)
	}
	defer cliSrc.Close()
	srvSVID, err := srvSrc.GetX509SVID()
	if err != nil {
		fail("server svid", err)
	}
	cliSVID, err := cliSrc.GetX509SVID()
	if err != nil {
		fail("client svid", err)
	}
	var r result
	r.ServerID, r.ClientID = srvSVID.ID.String(), cliSVID.ID.String()

	ln, err := spiffetls.ListenWithMode(ctx, "tcp", "127.0.0.1:0", spiffetls.MTLSServerWithSource(tlsconfig.AuthorizeID(cliSVID.ID), srvSrc))
	if err != nil {
		fail("listen", err)
	}
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				if id, err := spiffetls.PeerIDFromConn(c); err == nil {
					seen <- id.String()
				}
				_, _ = c.Write([]byte("echo " + line))
			}()
		}
	}()
	conn, err := spiffetls.DialWithMode(ctx, "tcp", ln.Addr().String(), spiffetls.MTLSClientWithSource(tlsconfig.AuthorizeID(srvSVID.ID), cliSrc))
	if err != nil {
		fail("dial", err)
	}
	if _, err := conn.Write([]byte("hello from A\n")); err != nil {
		fail("write", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		fail("read", err)
	}
	conn.Close()
	r.Echo = line
	r.ServerSawID = <-seen
	// The client refuses a server that is not the expected ID, even from the federated domain.
	wrong := cliSVID.ID
	if c2, err := spiffetls.DialWithMode(ctx, "tcp", ln.Addr().String(), spiffetls.MTLSClientWithSource(tlsconfig.AuthorizeID(wrong), cliSrc)); err != nil {
		r.WrongPeerErr = err.Error()
	} else {
		_, err = c2.Write([]byte("x\n"))
		if err == nil {
			_, err = bufio.NewReader(c2).ReadString('\n')
		}
		if err != nil {
			r.WrongPeerErr = err.Error()
		}
		c2.Close()
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

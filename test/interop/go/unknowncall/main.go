// unknowncall makes grpc-go calls to methods a server may not serve and prints, as JSON, the
// status each got: what spire-controller-manager (or any grpc-go client) sees when it calls a
// service or method the server does not have.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

type result struct {
	Method  string `json:"method"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func main() {
	socket := flag.String("socket", "", "unix socket path of the server")
	tlsAddr := flag.String("tls-addr", "", "host:port of a TLS endpoint (server certificate not verified)")
	methods := flag.String("methods", "", "comma-separated full method names, e.g. /pkg.Service/Method")
	flag.Parse()
	if err := run(*socket, *tlsAddr, strings.Split(*methods, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "unknowncall:", err)
		os.Exit(1)
	}
}

func run(socket, tlsAddr string, methods []string) error {
	var target string
	var creds credentials.TransportCredentials
	switch {
	case socket != "":
		target, creds = "unix://"+socket, insecure.NewCredentials()
	case tlsAddr != "":
		// Only the call's status matters here; the agent port's identity is tested elsewhere.
		target, creds = tlsAddr, credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec
	default:
		return fmt.Errorf("-socket or -tls-addr is required")
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	out := []result{}
	for _, m := range methods {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// The Workload API's security header, so the call is refused for its method alone.
		ctx = metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "true")
		err := conn.Invoke(ctx, m, &emptypb.Empty{}, &emptypb.Empty{})
		cancel()
		st := status.Convert(err)
		out = append(out, result{Method: m, Code: st.Code().String(), Message: st.Message()})
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

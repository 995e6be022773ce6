// wlcodes asks a Workload API the questions whose answer is an error code, the way go-spiffe
// v2.9.0 applications ask them (workloadapi.Client) and, where that client cannot express the
// request (an empty audience list, a bad spiffe_id), with go-spiffe's generated Workload API stub.
// It prints one JSON object: case name -> {"code": "<gRPC code name>", "message": "..."}.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type answer struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func answerOf(err error) answer {
	if err == nil {
		return answer{Code: "OK"}
	}
	s, _ := status.FromError(err)
	return answer{Code: s.Code().String(), Message: s.Message()}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: wlcodes <unix:///socket>")
		os.Exit(2)
	}
	addr := os.Args[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := workloadapi.New(ctx, workloadapi.WithAddr(addr))
	if err != nil {
		fmt.Fprintln(os.Stderr, "new client:", err)
		os.Exit(1)
	}
	defer client.Close()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc client:", err)
		os.Exit(1)
	}
	defer conn.Close()
	stub := workload.NewSpiffeWorkloadAPIClient(conn)
	hdr := metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "true")

	out := map[string]answer{}
	// go-spiffe sends []string{params.Audience} + extras: an empty audience is [""].
	_, err = client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: ""})
	out["fetch_jwt_audience_empty_string"] = answerOf(err)
	_, err = stub.FetchJWTSVID(hdr, &workload.JWTSVIDRequest{})
	out["fetch_jwt_no_audience"] = answerOf(err)
	_, err = stub.FetchJWTSVID(hdr, &workload.JWTSVIDRequest{Audience: []string{"a"}, SpiffeId: "not a spiffe id"})
	out["fetch_jwt_bad_spiffe_id"] = answerOf(err)
	_, err = client.ValidateJWTSVID(ctx, "x.y.z", "")
	out["validate_audience_empty"] = answerOf(err)
	_, err = client.ValidateJWTSVID(ctx, "", "a")
	out["validate_token_empty"] = answerOf(err)
	_, err = client.ValidateJWTSVID(ctx, "", "")
	out["validate_both_empty"] = answerOf(err)
	_, err = client.ValidateJWTSVID(ctx, "not-a-jwt", "a")
	out["validate_token_malformed"] = answerOf(err)
	_, err = client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "a"})
	out["fetch_jwt_ok"] = answerOf(err)
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}

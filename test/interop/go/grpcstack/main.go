// Command grpcstack drives a ztwim (connect-node) gRPC server over a Unix socket
// with grpc-go and go-spiffe, and prints what it observed as one JSON object.
// It exits non-zero when a call fails in a way the interop test did not expect.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"github.com/spiffe/spire-api-sdk/proto/spire/api/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type report struct {
	BundleTrustDomains []string `json:"bundleTrustDomains"`
	BundleKeyIDs       []string `json:"bundleKeyIds"`
	SVIDID             string   `json:"svidId"`
	SVIDAudience       []string `json:"svidAudience"`
	SVIDHint           string   `json:"svidHint"`
	ValidatedID        string   `json:"validatedId"`
	NoHeaderCode       string   `json:"noHeaderCode"`
	NoHeaderMessage    string   `json:"noHeaderMessage"`
	DeniedCode         string   `json:"deniedCode"`
	DeniedReason       string   `json:"deniedReason"`
	OddCode            string   `json:"oddCode"`
	OddMessage         string   `json:"oddMessage"`
	StreamMessages     int      `json:"streamMessages"`
	StreamCancelCode   string   `json:"streamCancelCode"`
	HealthStatus       string   `json:"healthStatus"`
	UnimplementedCode  string   `json:"unimplementedCode"`
	TLSHealthStatus    string   `json:"tlsHealthStatus,omitempty"`
	TLSPeerWithCert    string   `json:"tlsPeerWithCert,omitempty"`
	TLSPeerAnonymous   string   `json:"tlsPeerAnonymous,omitempty"`
}

func main() {
	socket := flag.String("socket", "", "unix socket path of the server")
	audience := flag.String("audience", "", "JWT audience to request")
	tlsAddr := flag.String("tls-addr", "", "host:port of the same server over TCP+TLS (optional)")
	tlsDir := flag.String("tls-dir", "", "directory with ca.pem, client.pem, client.key")
	flag.Parse()
	if err := run(*socket, *audience, *tlsAddr, *tlsDir); err != nil {
		fmt.Fprintln(os.Stderr, "grpcstack:", err)
		os.Exit(1)
	}
}

func run(socket, audience, tlsAddr, tlsDir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var r report

	// 1. go-spiffe's Workload API client (sets the security header itself).
	client, err := workloadapi.New(ctx, workloadapi.WithAddr("unix://"+socket))
	if err != nil {
		return fmt.Errorf("workloadapi.New: %w", err)
	}
	defer client.Close()
	bundles, err := client.FetchJWTBundles(ctx)
	if err != nil {
		return fmt.Errorf("FetchJWTBundles: %w", err)
	}
	for _, b := range bundles.Bundles() {
		r.BundleTrustDomains = append(r.BundleTrustDomains, b.TrustDomain().IDString())
		for kid := range b.JWTAuthorities() {
			r.BundleKeyIDs = append(r.BundleKeyIDs, kid)
		}
	}
	sort.Strings(r.BundleTrustDomains)
	sort.Strings(r.BundleKeyIDs)
	svid, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: audience})
	if err != nil {
		return fmt.Errorf("FetchJWTSVID: %w", err)
	}
	r.SVIDID = svid.ID.String()
	r.SVIDAudience = svid.Audience
	r.SVIDHint = svid.Hint
	// Full validation: signature against the JWKS we were served.
	validated, err := jwtsvid.ParseAndValidate(svid.Marshal(), bundles, []string{audience})
	if err != nil {
		return fmt.Errorf("ParseAndValidate: %w", err)
	}
	r.ValidatedID = validated.ID.String()

	// 2. Raw grpc-go calls.
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("grpc.NewClient: %w", err)
	}
	defer conn.Close()
	wl := workload.NewSpiffeWorkloadAPIClient(conn)

	_, err = wl.FetchJWTSVID(ctx, &workload.JWTSVIDRequest{Audience: []string{audience}})
	st, _ := status.FromError(err)
	r.NoHeaderCode, r.NoHeaderMessage = st.Code().String(), st.Message()

	hctx := metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "true")
	_, err = wl.FetchJWTSVID(hctx, &workload.JWTSVIDRequest{Audience: []string{"denied"}})
	st, _ = status.FromError(err)
	r.DeniedCode = st.Code().String()
	for _, d := range st.Details() {
		if pd, ok := d.(*types.PermissionDeniedDetails); ok {
			r.DeniedReason = pd.Reason.String()
		}
	}

	_, err = wl.FetchJWTSVID(hctx, &workload.JWTSVIDRequest{Audience: []string{"odd-message"}})
	st, _ = status.FromError(err)
	r.OddCode, r.OddMessage = st.Code().String(), st.Message()

	sctx, scancel := context.WithCancel(hctx)
	stream, err := wl.FetchJWTBundles(sctx, &workload.JWTBundlesRequest{})
	if err != nil {
		scancel()
		return fmt.Errorf("FetchJWTBundles stream: %w", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := stream.Recv(); err != nil {
			scancel()
			return fmt.Errorf("stream Recv %d: %w", i, err)
		}
		r.StreamMessages++
	}
	scancel()
	for {
		_, err = stream.Recv()
		if err != nil {
			break
		}
		r.StreamMessages++
	}
	if errors.Is(err, io.EOF) {
		r.StreamCancelCode = "EOF"
	} else {
		r.StreamCancelCode = status.Code(err).String()
	}

	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("health Check: %w", err)
	}
	r.HealthStatus = h.Status.String()

	wit, err := wl.FetchX509Bundles(hctx, &workload.X509BundlesRequest{})
	if err == nil {
		_, err = wit.Recv()
	}
	r.UnimplementedCode = status.Code(err).String()
	if status.Code(err) == codes.OK {
		return errors.New("FetchX509Bundles unexpectedly succeeded")
	}

	if tlsAddr != "" {
		if err := runTLS(ctx, &r, tlsAddr, tlsDir); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// runTLS dials the server the way a SPIRE agent does: TLS with ALPN h2 (grpc-go
// enforces it), the chain verified against the trust bundle and the server's SPIFFE
// ID authorised, no hostname check; once with an X509-SVID client certificate, once without.
func runTLS(ctx context.Context, r *report, addr, dir string) error {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	bundle, err := x509bundle.Load(td, filepath.Join(dir, "ca.pem"))
	if err != nil {
		return fmt.Errorf("load bundle: %w", err)
	}
	svid, err := x509svid.Load(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"))
	if err != nil {
		return fmt.Errorf("load client svid: %w", err)
	}
	authorize := tlsconfig.AuthorizeID(spiffeid.RequireFromString("spiffe://example.org/spire/server"))
	peerOf := func(cfg *tls.Config) (string, *grpc.ClientConn, error) {
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			return "", nil, err
		}
		hctx := metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "true")
		res, err := workload.NewSpiffeWorkloadAPIClient(conn).FetchJWTSVID(hctx, &workload.JWTSVIDRequest{Audience: []string{"tls"}})
		if err != nil {
			conn.Close()
			return "", nil, err
		}
		return res.Svids[0].Hint, conn, nil
	}
	hint, conn, err := peerOf(tlsconfig.MTLSClientConfig(svid, bundle, authorize))
	if err != nil {
		return fmt.Errorf("mTLS FetchJWTSVID: %w", err)
	}
	r.TLSPeerWithCert = hint
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	conn.Close()
	if err != nil {
		return fmt.Errorf("TLS health Check: %w", err)
	}
	r.TLSHealthStatus = h.Status.String()
	hint, conn, err = peerOf(tlsconfig.TLSClientConfig(bundle, authorize))
	if err != nil {
		return fmt.Errorf("TLS FetchJWTSVID: %w", err)
	}
	conn.Close()
	r.TLSPeerAnonymous = hint
	return nil
}

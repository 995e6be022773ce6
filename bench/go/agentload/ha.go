package main

// ha: the load of bench/ha.ts (the HA kill bench), run until SIGTERM, every call recorded with
// its wall-clock start so that the bench can cut the record into its event windows:
//
//	ha -sockets A,B,C -jwt-clients N -x509-streams M -admin S1,S2,S3 -creators K -parent ID -out FILE
//
// On every Workload API socket: N closed-loop clients fetching JWT-SVIDs for a new audience per
// call (uncached: each one is a NewJWTSVID to a server) and M FetchX509SVID streams kept open
// (reopened when they break). On the servers' admin sockets: K clients creating entries one at a
// time (moving to the next server when one fails) and a probe per server (CountEntries every
// -probe-interval). Lines of FILE (times in Unix ms):
//
//	J <start> <latency ms> <gRPC code> [message]                 a JWT-SVID call
//	X <at> <stream> upd <notAfter>                               an X509-SVID response (the SVID's NotAfter)
//	X <at> <stream> err <gRPC code> [message]                    a stream that broke
//	C <start> <latency ms> <gRPC code> <server> <id> [message]   an entry create (id "-" unless acknowledged)
//	P <start> <server> <gRPC code>                               a probe of one server
//
// Prints {"started":true} once every client made one successful call, and a summary at the end.

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	entryv1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/entry/v1"
	"github.com/spiffe/spire-api-sdk/proto/spire/api/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

type recorder struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (r *recorder) line(format string, args ...any) {
	r.mu.Lock()
	fmt.Fprintf(r.w, format+"\n", args...)
	r.mu.Unlock()
}

func unixMs(t time.Time) int64 { return t.UnixMilli() }

// errText is " <message>" for an error (one line), "" for none.
func errText(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
	}
	return " " + strings.Join(strings.Fields(msg), " ")
}

func codeOf(err error) string {
	if err == nil {
		return codes.OK.String()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return codes.DeadlineExceeded.String()
	}
	return status.Code(err).String()
}

// dialAdmin connects to a server's admin socket, reconnecting every 100-200 ms while the server is
// away (grpc-go's default backoff grows to 2 min, which would hide a server that is back).
func dialAdmin(socket string) *grpc.ClientConn {
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.2, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		die("dial %s: %v", socket, err)
	}
	conn.Connect()
	return conn
}

func cmdHA(args []string) {
	fs := flag.NewFlagSet("ha", flag.ExitOnError)
	sockets := fs.String("sockets", "", "Workload API sockets, comma-separated (one per agent)")
	jwtClients := fs.Int("jwt-clients", 10, "JWT-SVID clients per socket (one connection each)")
	x509Streams := fs.Int("x509-streams", 2, "FetchX509SVID streams per socket")
	admins := fs.String("admin", "", "server admin sockets, comma-separated")
	creators := fs.Int("creators", 2, "admin clients creating entries")
	createPause := fs.Duration("create-pause", 100*time.Millisecond, "pause of each creator between two creates")
	parent := fs.String("parent", "", "parent SPIFFE ID of the created entries (no agent: nothing mints for them)")
	probeEvery := fs.Duration("probe-interval", 250*time.Millisecond, "probe period per server")
	callTimeout := fs.Duration("call-timeout", 30*time.Second, "deadline of each JWT-SVID call and entry create")
	out := fs.String("out", "", "record file")
	_ = fs.Parse(args)

	f, err := os.Create(*out)
	if err != nil {
		die("create %s: %v", *out, err)
	}
	rec := &recorder{w: bufio.NewWriterSize(f, 1<<20)}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var wg sync.WaitGroup
	var startedWG sync.WaitGroup
	run := time.Now().UnixNano()
	var seq atomic.Int64
	var jwtCalls, jwtErrs, x509Upd, x509Errs, acked, createErrs atomic.Int64

	// client runs body on a connection of its own to the socket, until the stop.
	client := func(sock string, body func(cl workload.SpiffeWorkloadAPIClient)) {
		conn := dial(sock)
		startedWG.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			body(workload.NewSpiffeWorkloadAPIClient(conn))
		}()
	}
	sockList := strings.Split(*sockets, ",")
	for si, sock := range sockList {
		for c := 0; c < *jwtClients; c++ {
			client(sock, func(cl workload.SpiffeWorkloadAPIClient) {
				first := true
				for ctx.Err() == nil {
					aud := fmt.Sprintf("ha-%d-%d-%d-%d", run, si, c, seq.Add(1))
					cctx, cancel := context.WithTimeout(ctx, *callTimeout)
					t := time.Now()
					res, err := cl.FetchJWTSVID(workloadCtx(cctx), &workload.JWTSVIDRequest{Audience: []string{aud}})
					d := time.Since(t)
					cancel()
					if ctx.Err() != nil {
						return // stopping: a call cut short by the stop is not the agent's
					}
					if err == nil && len(res.Svids) == 0 {
						err = status.Error(codes.Unknown, "no JWT-SVID")
					}
					if first {
						if err != nil {
							time.Sleep(200 * time.Millisecond)
							continue
						}
						first = false
						startedWG.Done()
					}
					jwtCalls.Add(1)
					rec.line("J %d %.3f %s%s", unixMs(t), ms(d), codeOf(err), errText(err))
					if err != nil {
						jwtErrs.Add(1)
						// A failed call is not retried at once: a client that hammers a failing agent
						// would count one outage as thousands of errors.
						time.Sleep(100 * time.Millisecond)
					}
				}
			})
		}
		for s := 0; s < *x509Streams; s++ {
			id := fmt.Sprintf("%d.%d", si, s)
			client(sock, func(cl workload.SpiffeWorkloadAPIClient) {
				first := true
				for ctx.Err() == nil {
					st, err := cl.FetchX509SVID(workloadCtx(ctx), &workload.X509SVIDRequest{})
					for err == nil {
						var res *workload.X509SVIDResponse
						res, err = st.Recv()
						if err != nil || len(res.Svids) == 0 {
							break
						}
						certs, perr := x509.ParseCertificates(res.Svids[0].X509Svid)
						if perr == nil && len(certs) == 0 {
							perr = errors.New("no certificate")
						}
						if perr != nil {
							die("stream %s: bad X509-SVID: %v", id, perr)
						}
						if first {
							first = false
							startedWG.Done()
						}
						x509Upd.Add(1)
						rec.line("X %d %s upd %d", unixMs(time.Now()), id, unixMs(certs[0].NotAfter))
					}
					if ctx.Err() != nil {
						return
					}
					if !first {
						x509Errs.Add(1)
						rec.line("X %d %s err %s%s", unixMs(time.Now()), id, codeOf(err), errText(err))
					}
					time.Sleep(100 * time.Millisecond)
				}
			})
		}
	}

	adminList := strings.Split(*admins, ",")
	adminConns := make([]*grpc.ClientConn, len(adminList))
	for i, a := range adminList {
		adminConns[i] = dialAdmin(a)
	}
	defer func() {
		for _, c := range adminConns {
			c.Close()
		}
	}()
	for i := range adminConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := entryv1.NewEntryClient(adminConns[i])
			tick := time.NewTicker(*probeEvery)
			defer tick.Stop()
			for {
				t := time.Now()
				cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := cl.CountEntries(cctx, &entryv1.CountEntriesRequest{})
				cancel()
				rec.line("P %d %d %s", unixMs(t), i, codeOf(err))
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}

	// Creators start once the workloads run.
	startedWG.Wait()
	emit(map[string]any{"started": true})
	p := parseID(*parent)
	for k := 0; k < *creators; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			server := k % len(adminConns)
			for n := 0; ctx.Err() == nil; n++ {
				e := &types.Entry{
					ParentId:  p,
					SpiffeId:  &types.SPIFFEID{TrustDomain: p.TrustDomain, Path: fmt.Sprintf("/ha/created/%d/%d/%d", run, k, n)},
					Selectors: []*types.Selector{{Type: "unix", Value: fmt.Sprintf("uid:%d", 3000000+n)}},
				}
				cctx, cancel := context.WithTimeout(ctx, *callTimeout)
				t := time.Now()
				res, err := entryv1.NewEntryClient(adminConns[server]).BatchCreateEntry(cctx, &entryv1.BatchCreateEntryRequest{Entries: []*types.Entry{e}})
				d := time.Since(t)
				cancel()
				if ctx.Err() != nil {
					// Stopping: a create cut short may still have landed; it is not counted as acknowledged.
					return
				}
				id := "-"
				if err == nil {
					r := res.Results[0]
					if c := codes.Code(r.Status.GetCode()); c != codes.OK {
						err = status.Error(c, r.Status.GetMessage())
					} else {
						id = r.Entry.GetId()
					}
				}
				rec.line("C %d %.3f %s %d %s%s", unixMs(t), ms(d), codeOf(err), server, id, errText(err))
				if err != nil {
					createErrs.Add(1)
					server = (server + 1) % len(adminConns)
				} else {
					acked.Add(1)
				}
				time.Sleep(*createPause)
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
	rec.mu.Lock()
	if err := rec.w.Flush(); err != nil {
		die("write %s: %v", *out, err)
	}
	rec.mu.Unlock()
	if err := f.Close(); err != nil {
		die("close %s: %v", *out, err)
	}
	emit(map[string]any{
		"jwtCalls": jwtCalls.Load(), "jwtErrors": jwtErrs.Load(), "x509Updates": x509Upd.Load(), "x509Errors": x509Errs.Load(),
		"acked": acked.Load(), "createErrors": createErrs.Load(),
	})
}

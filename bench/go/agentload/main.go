// Command agentload is the load generator of bench/agent.ts. It talks to a Workload API socket
// (SPIRE agent or ztwim agent: the very same code for both) with grpc-go and the go-spiffe v2
// generated Workload API stubs, and to the server's admin socket with the spire-api-sdk stubs.
// It never parses SVIDs (the agent, not the client, must be the bottleneck); it compares bytes.
//
// Subcommands (each prints one JSON object on stdout):
//
//	seed   -admin SOCK -parent ID -uid N -n 1000      watched entry (unix:uid:N) + n-1 entries nobody matches
//	wait   -socket SOCK -spiffe-id ID                 until FetchX509SVID returns an SVID for ID
//	fetch  -socket SOCK -kind jwt-cached|jwt-uncached|x509 -clients N -duration D -warmup W [-pids P,...]
//	watch  -socket SOCK -admin SOCK -entry-id E -spiffe-id ID -streams 1000 -trials 3 -agent-pid P
//	create -socket SOCK -admin SOCK -parent ID -uid N -trials 5
//	hold   -socket SOCK -streams 1000 -duration D       open N FetchX509SVID streams, print {"open":N}, keep them D
//	ha     -sockets A,B,C -admin S1,S2,S3 -out FILE ... bench/ha.ts's load until SIGTERM (ha.go)
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	entryv1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/entry/v1"
	"github.com/spiffe/spire-api-sdk/proto/spire/api/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "agentload: "+format+"\n", args...)
	os.Exit(1)
}

func emit(v any) {
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(v); err != nil {
		die("encode: %v", err)
	}
}

func dial(socket string) *grpc.ClientConn {
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		die("dial %s: %v", socket, err)
	}
	conn.Connect()
	return conn
}

func workloadCtx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "true")
}

func parseID(id string) *types.SPIFFEID {
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok {
		die("not a SPIFFE ID: %q", id)
	}
	td, path, _ := strings.Cut(rest, "/")
	return &types.SPIFFEID{TrustDomain: td, Path: "/" + path}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// quantile of sorted durations (nearest rank).
func quantile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

// cpuTicks returns utime+stime of a process in clock ticks (USER_HZ, 100 on Linux).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+2:])
	// fields after ")": state(0) ppid(1) ... utime is field 14 overall => index 11 here.
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func procStatusKiB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		die("read /proc/%d/status: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	die("no %s in /proc/%d/status", field, pid)
	return 0
}

func parsePids(s string) []int {
	var out []int
	for _, p := range strings.Split(s, ",") {
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			die("bad pid %q", p)
		}
		out = append(out, n)
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// seed: the watched entry and n-1 entries for the same agent that no workload here matches.

func cmdSeed(args []string) {
	fs := flag.NewFlagSet("seed", flag.ExitOnError)
	admin := fs.String("admin", "", "server admin socket")
	parent := fs.String("parent", "", "agent SPIFFE ID (parent of every entry)")
	uid := fs.Int("uid", os.Getuid(), "uid the watched entry selects")
	n := fs.Int("n", 1000, "entries in total")
	_ = fs.Parse(args)
	conn := dial(*admin)
	defer conn.Close()
	cl := entryv1.NewEntryClient(conn)
	p := parseID(*parent)
	td := p.TrustDomain
	var all []*types.Entry
	all = append(all, &types.Entry{
		ParentId:  p,
		SpiffeId:  &types.SPIFFEID{TrustDomain: td, Path: "/bench/watched"},
		Selectors: []*types.Selector{{Type: "unix", Value: fmt.Sprintf("uid:%d", *uid)}},
		DnsNames:  []string{"watched.bench.example"},
	})
	for i := 1; i < *n; i++ {
		all = append(all, &types.Entry{
			ParentId:  p,
			SpiffeId:  &types.SPIFFEID{TrustDomain: td, Path: fmt.Sprintf("/bench/filler/%d", i)},
			Selectors: []*types.Selector{{Type: "unix", Value: fmt.Sprintf("uid:%d", 2000000+i)}},
		})
	}
	var watchedID string
	start := time.Now()
	for i := 0; i < len(all); i += 250 {
		end := min(i+250, len(all))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		res, err := cl.BatchCreateEntry(ctx, &entryv1.BatchCreateEntryRequest{Entries: all[i:end]})
		cancel()
		if err != nil {
			die("BatchCreateEntry: %v", err)
		}
		for j, r := range res.Results {
			if r.Status.GetCode() != 0 {
				die("BatchCreateEntry entry %d: %s", i+j, r.Status.GetMessage())
			}
			if i+j == 0 {
				watchedID = r.Entry.GetId()
			}
		}
	}
	emit(map[string]any{
		"watchedEntryId":  watchedID,
		"watchedSpiffeId": fmt.Sprintf("spiffe://%s/bench/watched", td),
		"created":         len(all),
		"seconds":         time.Since(start).Seconds(),
	})
}

// ---------------------------------------------------------------------------------------------
// wait: until the agent serves an X509-SVID for the given ID.

func firstX509(ctx context.Context, c workload.SpiffeWorkloadAPIClient) (*workload.X509SVIDResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.FetchX509SVID(workloadCtx(ctx), &workload.X509SVIDRequest{})
	if err != nil {
		return nil, err
	}
	return st.Recv()
}

func cmdWait(args []string) {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	socket := fs.String("socket", "", "Workload API socket")
	id := fs.String("spiffe-id", "", "SPIFFE ID to wait for")
	timeout := fs.Duration("timeout", 90*time.Second, "give up after")
	_ = fs.Parse(args)
	start := time.Now()
	var last error
	for time.Since(start) < *timeout {
		if _, err := os.Stat(*socket); err == nil {
			conn := dial(*socket)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res, err := firstX509(ctx, workload.NewSpiffeWorkloadAPIClient(conn))
			cancel()
			conn.Close()
			if err == nil {
				for _, s := range res.Svids {
					if s.SpiffeId == *id {
						emit(map[string]any{"seconds": time.Since(start).Seconds(), "svids": len(res.Svids)})
						return
					}
				}
				last = fmt.Errorf("%d SVIDs, none for %s", len(res.Svids), *id)
			} else {
				last = err
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	die("no X509-SVID for %s after %v (last: %v)", *id, *timeout, last)
}

// ---------------------------------------------------------------------------------------------
// fetch: closed-loop clients, each on its own connection, for a fixed duration.

type fetchResult struct {
	Kind       string    `json:"kind"`
	Clients    int       `json:"clients"`
	Count      int       `json:"count"`
	Errors     int64     `json:"errors"`
	FirstError string    `json:"firstError,omitempty"`
	Seconds    float64   `json:"seconds"`
	RPS        float64   `json:"rps"`
	P50Ms      float64   `json:"p50Ms"`
	P99Ms      float64   `json:"p99Ms"`
	MeanMs     float64   `json:"meanMs"`
	LoadgenCPU float64   `json:"loadgenCpu"` // cores used by this process
	PidCPU     []float64 `json:"pidCpu"`     // cores used by each -pids process
}

// AGENTLOAD_LAT_DUMP=FILE writes every measured call of `fetch` as "start (Unix ms) latency-ms" lines (experiments).
var dumpLat = os.Getenv("AGENTLOAD_LAT_DUMP") != ""

func cmdFetch(args []string) {
	fs := flag.NewFlagSet("fetch", flag.ExitOnError)
	socket := fs.String("socket", "", "Workload API socket")
	kind := fs.String("kind", "jwt-cached", "jwt-cached | jwt-uncached | x509")
	clients := fs.Int("clients", 1, "concurrent clients (one connection each)")
	duration := fs.Duration("duration", 5*time.Second, "measured duration")
	warmup := fs.Duration("warmup", time.Second, "unmeasured warm-up")
	pids := fs.String("pids", "", "comma-separated pids whose CPU use to report")
	_ = fs.Parse(args)
	watchPids := parsePids(*pids)

	type client struct {
		c   workload.SpiffeWorkloadAPIClient
		lat []time.Duration
		at  []time.Time
	}
	cls := make([]*client, *clients)
	conns := make([]*grpc.ClientConn, *clients)
	for i := range cls {
		conns[i] = dial(*socket)
		cls[i] = &client{c: workload.NewSpiffeWorkloadAPIClient(conns[i]), lat: make([]time.Duration, 0, 1<<15)}
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	run := time.Now().UnixNano()
	var seq atomic.Int64
	call := func(c workload.SpiffeWorkloadAPIClient, id int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		switch *kind {
		case "jwt-cached", "jwt-uncached":
			aud := "bench-cached"
			if *kind == "jwt-uncached" {
				aud = fmt.Sprintf("bench-%d-%d-%d", run, id, seq.Add(1))
			}
			res, err := c.FetchJWTSVID(workloadCtx(ctx), &workload.JWTSVIDRequest{Audience: []string{aud}})
			if err != nil {
				return err
			}
			if len(res.Svids) == 0 {
				return errors.New("no JWT-SVID")
			}
		case "x509":
			res, err := firstX509(ctx, c)
			if err != nil {
				return err
			}
			if len(res.Svids) == 0 {
				return errors.New("no X509-SVID")
			}
		default:
			die("unknown kind %q", *kind)
		}
		return nil
	}
	// One call per client first: connections are up and every client attested once.
	for i, c := range cls {
		if err := call(c.c, i); err != nil {
			die("first %s call: %v", *kind, err)
		}
	}
	var errs atomic.Int64
	var firstErr atomic.Value
	var measuring atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range cls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				t := time.Now()
				err := call(c.c, i)
				d := time.Since(t)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				c.lat = append(c.lat, d)
				if dumpLat {
					c.at = append(c.at, t)
				}
			}
		}()
	}
	time.Sleep(*warmup)
	ticks0 := make([]int64, len(watchPids))
	for i, p := range watchPids {
		ticks0[i], _ = cpuTicks(p)
	}
	cpu0 := selfCPU()
	t0 := time.Now()
	measuring.Store(true)
	time.Sleep(*duration)
	measuring.Store(false)
	elapsed := time.Since(t0)
	cpu1 := selfCPU()
	pidCPU := make([]float64, len(watchPids))
	for i, p := range watchPids {
		t1, _ := cpuTicks(p)
		pidCPU[i] = float64(t1-ticks0[i]) / 100 / elapsed.Seconds()
	}
	close(stop)
	wg.Wait()
	var all []time.Duration
	var sum time.Duration
	for _, c := range cls {
		all = append(all, c.lat...)
		for _, d := range c.lat {
			sum += d
		}
	}
	if dumpLat {
		var b strings.Builder
		for _, c := range cls {
			for j, d := range c.lat {
				fmt.Fprintf(&b, "%.3f %.3f\n", float64(c.at[j].UnixMicro())/1000, ms(d))
			}
		}
		_ = os.WriteFile(os.Getenv("AGENTLOAD_LAT_DUMP"), []byte(b.String()), 0o644)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	r := fetchResult{
		Kind: *kind, Clients: *clients, Count: len(all), Errors: errs.Load(), Seconds: elapsed.Seconds(),
		RPS:        float64(len(all)) / elapsed.Seconds(),
		P50Ms:      ms(quantile(all, 0.5)),
		P99Ms:      ms(quantile(all, 0.99)),
		LoadgenCPU: (cpu1 - cpu0).Seconds() / elapsed.Seconds(),
		PidCPU:     pidCPU,
	}
	if len(all) > 0 {
		r.MeanMs = ms(sum / time.Duration(len(all)))
	}
	if v, ok := firstErr.Load().(string); ok {
		r.FirstError = v
	}
	emit(r)
}

// ---------------------------------------------------------------------------------------------
// watch: N FetchX509SVID streams (one connection each); entry update -> new SVID on every stream.

type trial struct {
	start    time.Time // admin call sent
	t0       time.Time // admin call returned
	arrivals []time.Time
	got      atomic.Int64
	done     chan struct{}
}

func cmdWatch(args []string) {
	fs := flag.NewFlagSet("watch", flag.ExitOnError)
	socket := fs.String("socket", "", "Workload API socket")
	admin := fs.String("admin", "", "server admin socket")
	entryID := fs.String("entry-id", "", "watched entry id")
	spiffeID := fs.String("spiffe-id", "", "watched SPIFFE ID")
	streams := fs.Int("streams", 1000, "watching streams (one connection each)")
	trials := fs.Int("trials", 3, "rotations")
	cycle := fs.Duration("cycle", 5*time.Second, "the agents' sync interval, over which update times are spread")
	agentPid := fs.Int("agent-pid", 0, "agent pid (VmRSS)")
	timeout := fs.Duration("timeout", 40*time.Second, "per-rotation timeout")
	_ = fs.Parse(args)

	var mu sync.Mutex
	var cur *trial
	conns := make([]*grpc.ClientConn, *streams)
	ctx, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	ready := make(chan int, *streams)
	failed := make(chan error, *streams)
	openStart := time.Now()
	sem := make(chan struct{}, 32)
	for i := 0; i < *streams; i++ {
		sem <- struct{}{}
		conns[i] = dial(*socket)
		st, err := workload.NewSpiffeWorkloadAPIClient(conns[i]).FetchX509SVID(workloadCtx(ctx), &workload.X509SVIDRequest{})
		if err != nil {
			die("open stream %d: %v", i, err)
		}
		go func(i int) {
			var last []byte
			first := true
			for {
				res, err := st.Recv()
				if err != nil {
					if ctx.Err() == nil {
						failed <- fmt.Errorf("stream %d: %w", i, err)
					}
					if first {
						<-sem
					}
					return
				}
				now := time.Now()
				var cert []byte
				for _, s := range res.Svids {
					if s.SpiffeId == *spiffeID {
						cert = s.X509Svid
					}
				}
				if first {
					first = false
					last = cert
					<-sem
					ready <- i
					continue
				}
				if cert == nil || bytes.Equal(cert, last) {
					continue
				}
				last = cert
				mu.Lock()
				t := cur
				mu.Unlock()
				if t != nil && t.arrivals[i].IsZero() {
					t.arrivals[i] = now
					if t.got.Add(1) == int64(*streams) {
						close(t.done)
					}
				}
			}
		}(i)
	}
	awaitFirstResponses(*streams, ready, failed)
	openSeconds := time.Since(openStart).Seconds()
	time.Sleep(2 * time.Second)
	rssOpen := procStatusKiB(*agentPid, "VmRSS")

	conn := dial(*admin)
	defer conn.Close()
	ec := entryv1.NewEntryClient(conn)
	type trialOut struct {
		FirstMs  float64 `json:"firstMs"`
		MedianMs float64 `json:"medianMs"`
		LastMs   float64 `json:"lastMs"`
		FanoutMs float64 `json:"fanoutMs"`
		Got      int64   `json:"got"`
	}
	var outs []trialOut
	for k := 0; k < *trials; k++ {
		t := &trial{arrivals: make([]time.Time, *streams), done: make(chan struct{})}
		mu.Lock()
		cur = t
		mu.Unlock()
		t.start = time.Now()
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := ec.BatchUpdateEntry(cctx, &entryv1.BatchUpdateEntryRequest{
			Entries:   []*types.Entry{{Id: *entryID, DnsNames: []string{fmt.Sprintf("rot-%d-%d.bench.example", k, time.Now().UnixNano())}}},
			InputMask: &types.EntryMask{DnsNames: true},
		})
		cancel()
		t.t0 = time.Now()
		if err != nil {
			die("BatchUpdateEntry: %v", err)
		}
		if c := res.Results[0].Status.GetCode(); c != 0 {
			die("BatchUpdateEntry: %s", res.Results[0].Status.GetMessage())
		}
		select {
		case <-t.done:
		case err := <-failed:
			die("%v", err)
		case <-time.After(*timeout):
		}
		mu.Lock()
		cur = nil
		mu.Unlock()
		var ds []time.Duration
		for _, a := range t.arrivals {
			if !a.IsZero() {
				ds = append(ds, a.Sub(t.t0))
			}
		}
		sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
		if len(ds) < *streams {
			die("rotation %d: only %d of %d streams received the new SVID within %v", k, len(ds), *streams, *timeout)
		}
		outs = append(outs, trialOut{
			FirstMs: ms(ds[0]), MedianMs: ms(quantile(ds, 0.5)), LastMs: ms(ds[len(ds)-1]),
			FanoutMs: ms(ds[len(ds)-1] - ds[0]), Got: int64(len(ds)),
		})
		// The next update lands at an evenly spread phase of the agents' sync cycle: a trial ends
		// right after a sync, so waiting (j-½)/(n-1) of the cycle before update j spreads the
		// updates over the whole cycle (a fixed or clustered wait would favour or penalise one
		// agent's sync phase systematically).
		if k+1 < *trials {
			time.Sleep(time.Duration((float64(k)+0.5) / float64(*trials-1) * float64(*cycle)))
		}
	}
	time.Sleep(time.Second)
	rss := procStatusKiB(*agentPid, "VmRSS")
	hwm := procStatusKiB(*agentPid, "VmHWM")
	cancelAll()
	for _, c := range conns {
		c.Close()
	}
	emit(map[string]any{
		"streams": *streams, "openSeconds": openSeconds, "trials": outs,
		"rssOpenKiB": rssOpen, "rssKiB": rss, "hwmKiB": hwm,
	})
}

// ---------------------------------------------------------------------------------------------
// create: entry create (admin API) -> the new SVID on a watching stream.

func cmdCreate(args []string) {
	fs := flag.NewFlagSet("create", flag.ExitOnError)
	socket := fs.String("socket", "", "Workload API socket")
	admin := fs.String("admin", "", "server admin socket")
	parent := fs.String("parent", "", "agent SPIFFE ID")
	uid := fs.Int("uid", os.Getuid(), "uid the new entries select")
	trials := fs.Int("trials", 5, "entries to create, one at a time")
	timeout := fs.Duration("timeout", 40*time.Second, "per-entry timeout")
	_ = fs.Parse(args)

	ctx, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	wconn := dial(*socket)
	defer wconn.Close()
	st, err := workload.NewSpiffeWorkloadAPIClient(wconn).FetchX509SVID(workloadCtx(ctx), &workload.X509SVIDRequest{})
	if err != nil {
		die("open stream: %v", err)
	}
	type seen struct {
		ids map[string]bool
		at  time.Time
	}
	updates := make(chan seen, 64)
	errc := make(chan error, 1)
	go func() {
		for {
			res, err := st.Recv()
			if err != nil {
				if ctx.Err() == nil {
					errc <- err
				}
				return
			}
			now := time.Now()
			ids := map[string]bool{}
			for _, s := range res.Svids {
				ids[s.SpiffeId] = true
			}
			updates <- seen{ids, now}
		}
	}()
	select {
	case <-updates:
	case err := <-errc:
		die("stream: %v", err)
	case <-time.After(30 * time.Second):
		die("no first response")
	}
	conn := dial(*admin)
	defer conn.Close()
	ec := entryv1.NewEntryClient(conn)
	p := parseID(*parent)
	var lat []float64
	for k := 0; k < *trials; k++ {
		path := fmt.Sprintf("/bench/created/%d-%d", time.Now().UnixNano(), k)
		id := fmt.Sprintf("spiffe://%s%s", p.TrustDomain, path)
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := ec.BatchCreateEntry(cctx, &entryv1.BatchCreateEntryRequest{Entries: []*types.Entry{{
			ParentId:  p,
			SpiffeId:  &types.SPIFFEID{TrustDomain: p.TrustDomain, Path: path},
			Selectors: []*types.Selector{{Type: "unix", Value: fmt.Sprintf("uid:%d", *uid)}},
		}}})
		cancel()
		t0 := time.Now()
		if err != nil {
			die("BatchCreateEntry: %v", err)
		}
		if c := res.Results[0].Status.GetCode(); c != 0 {
			die("BatchCreateEntry: %s", res.Results[0].Status.GetMessage())
		}
		deadline := time.After(*timeout)
	wait:
		for {
			select {
			case u := <-updates:
				if u.ids[id] {
					lat = append(lat, ms(u.at.Sub(t0)))
					break wait
				}
			case err := <-errc:
				die("stream: %v", err)
			case <-deadline:
				die("entry %s: no SVID on the stream after %v", id, *timeout)
			}
		}
		time.Sleep(time.Duration(300+1100*k) * time.Millisecond % (5 * time.Second))
	}
	sorted := append([]float64(nil), lat...)
	sort.Float64s(sorted)
	emit(map[string]any{"latenciesMs": lat, "medianMs": sorted[len(sorted)/2], "minMs": sorted[0], "maxMs": sorted[len(sorted)-1]})
}

// awaitFirstResponses waits until n streams have reported their first response on ready; dies on
// the first failure, or if they take more than 60 s between two of them.
func awaitFirstResponses[T any](n int, ready <-chan T, failed <-chan error) {
	for i := 0; i < n; i++ {
		select {
		case <-ready:
		case err := <-failed:
			die("%v", err)
		case <-time.After(60 * time.Second):
			die("only %d of %d streams got their first response", i, n)
		}
	}
}

// cmdHold opens N FetchX509SVID streams (one connection each), waits for each one's first
// response, prints {"open":N,"openSeconds":S} and keeps them open for -duration (bench/agent-memory.ts
// samples the agent's memory meanwhile). Exits non-zero if a stream fails while held.
func cmdHold(args []string) {
	fs := flag.NewFlagSet("hold", flag.ExitOnError)
	socket := fs.String("socket", "", "Workload API socket")
	streams := fs.Int("streams", 1000, "streams (one connection each)")
	duration := fs.Duration("duration", time.Minute, "how long to keep them open once open")
	_ = fs.Parse(args)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{}, *streams)
	failed := make(chan error, *streams)
	start := time.Now()
	sem := make(chan struct{}, 32)
	for i := 0; i < *streams; i++ {
		sem <- struct{}{}
		st, err := workload.NewSpiffeWorkloadAPIClient(dial(*socket)).FetchX509SVID(workloadCtx(ctx), &workload.X509SVIDRequest{})
		if err != nil {
			die("open stream %d: %v", i, err)
		}
		go func(i int) {
			first := true
			for {
				if _, err := st.Recv(); err != nil {
					if ctx.Err() == nil {
						failed <- fmt.Errorf("stream %d: %w", i, err)
					}
					if first {
						<-sem
					}
					return
				}
				if first {
					first = false
					<-sem
					ready <- struct{}{}
				}
			}
		}(i)
	}
	awaitFirstResponses(*streams, ready, failed)
	emit(map[string]any{"open": *streams, "openSeconds": time.Since(start).Seconds()})
	select {
	case err := <-failed:
		die("%v", err)
	case <-time.After(*duration):
	}
}

func main() {
	if len(os.Args) < 2 {
		die("usage: agentload seed|wait|fetch|watch|create|hold|ha [flags]")
	}
	switch os.Args[1] {
	case "seed":
		cmdSeed(os.Args[2:])
	case "wait":
		cmdWait(os.Args[2:])
	case "fetch":
		cmdFetch(os.Args[2:])
	case "watch":
		cmdWatch(os.Args[2:])
	case "create":
		cmdCreate(os.Args[2:])
	case "hold":
		cmdHold(os.Args[2:])
	case "ha":
		cmdHA(os.Args[2:])
	default:
		die("unknown subcommand %q", os.Args[1])
	}
}

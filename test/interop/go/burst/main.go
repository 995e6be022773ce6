// burst opens many go-spiffe Workload API clients at the same instant, as a node full of
// workloads does when they all start together: X.509 watchers (each a connection with a
// FetchX509SVID stream) and JWT clients (each a connection fetching JWT-SVIDs in a loop). With
// -spread the watchers start evenly over that time instead (watcher i at i/N of it). It prints one
// JSON object: how many watchers got their first SVID and how long each took from its own start
// (p50, p99, max), the time from the first start to the last watcher served, and every error a
// client saw.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

type report struct {
	Watchers       int      `json:"watchers"`
	WatchersServed int      `json:"watchersServed"`
	FirstSvidP50Ms float64  `json:"firstSvidP50Ms"`
	FirstSvidP99Ms float64  `json:"firstSvidP99Ms"`
	FirstSvidMaxMs float64  `json:"firstSvidMaxMs"`
	AllServedMs    float64  `json:"allServedMs"`
	SpreadMs       float64  `json:"spreadMs"`
	WatchErrors    int64    `json:"watchErrors"`
	JWTClients     int      `json:"jwtClients"`
	JWTOK          int64    `json:"jwtOk"`
	JWTErrors      int64    `json:"jwtErrors"`
	SampleErrors   []string `json:"sampleErrors"`
}

type watcher struct {
	ctx     context.Context
	start   time.Time
	once    sync.Once
	first   chan time.Duration
	last    *atomic.Int64
	errs    *atomic.Int64
	onError func(error)
}

func (w *watcher) OnX509ContextUpdate(*workloadapi.X509Context) {
	w.once.Do(func() {
		now := time.Now()
		w.first <- now.Sub(w.start)
		for {
			prev := w.last.Load()
			if prev >= now.UnixNano() || w.last.CompareAndSwap(prev, now.UnixNano()) {
				return
			}
		}
	})
}

func (w *watcher) OnX509ContextWatchError(err error) {
	if w.ctx.Err() != nil {
		return // the hold time is over: the client is closing, not failing
	}
	w.errs.Add(1)
	w.onError(err)
}

func main() {
	addr := flag.String("addr", "", "unix:///path/to/api.sock")
	watchers := flag.Int("watchers", 1000, "X.509 watchers")
	jwts := flag.Int("jwt", 200, "JWT clients")
	audience := flag.String("audience", "burst", "JWT audience")
	hold := flag.Duration("hold", 10*time.Second, "how long every client stays connected, from the first start")
	spread := flag.Duration("spread", 0, "start the watchers evenly over this time instead of at once")
	flag.Parse()

	var mu sync.Mutex
	r := report{Watchers: *watchers, JWTClients: *jwts, SpreadMs: float64(spread.Milliseconds()), SampleErrors: []string{}}
	var watchErrs, jwtOK, jwtErrs atomic.Int64
	onError := func(err error) {
		mu.Lock()
		if len(r.SampleErrors) < 10 {
			r.SampleErrors = append(r.SampleErrors, err.Error())
		}
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), *hold)
	defer cancel()
	gate := make(chan struct{})
	first := make(chan time.Duration, *watchers)
	var lastServed atomic.Int64 // unix nanoseconds of the latest first SVID
	var t0 time.Time
	var wg sync.WaitGroup
	for i := 0; i < *watchers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			if *spread > 0 {
				time.Sleep(time.Duration(int64(*spread) * int64(i) / int64(*watchers)))
			}
			w := &watcher{ctx: ctx, start: time.Now(), first: first, last: &lastServed, errs: &watchErrs, onError: onError}
			c, err := workloadapi.New(ctx, workloadapi.WithAddr(*addr))
			if err != nil {
				watchErrs.Add(1)
				onError(err)
				return
			}
			defer c.Close()
			if err := c.WatchX509Context(ctx, w); err != nil && ctx.Err() == nil {
				watchErrs.Add(1)
				onError(err)
			}
		}()
	}
	for i := 0; i < *jwts; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			c, err := workloadapi.New(ctx, workloadapi.WithAddr(*addr))
			if err != nil {
				jwtErrs.Add(1)
				onError(err)
				return
			}
			defer c.Close()
			for ctx.Err() == nil {
				// Each call has its own deadline: with the hold's, a call in flight when the hold
				// ends could be answered DeadlineExceeded by the agent (which enforces the
				// grpc-timeout it is sent) a moment before ctx itself expires.
				callCtx, callCancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := c.FetchJWTSVID(callCtx, jwtsvid.Params{Audience: *audience})
				callCancel()
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					jwtErrs.Add(1)
					onError(err)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				jwtOK.Add(1)
			}
		}()
	}
	t0 = time.Now()
	close(gate)
	wg.Wait()
	close(first)
	var lat []float64
	for d := range first {
		lat = append(lat, float64(d.Microseconds())/1000)
	}
	sort.Float64s(lat)
	r.WatchersServed = len(lat)
	if len(lat) > 0 {
		r.FirstSvidP50Ms = lat[len(lat)/2]
		r.FirstSvidP99Ms = lat[(len(lat)*99+99)/100-1] // the ceil(0.99 n)-th
		r.FirstSvidMaxMs = lat[len(lat)-1]
		r.AllServedMs = float64(time.Duration(lastServed.Load()-t0.UnixNano()).Microseconds()) / 1000
	}
	r.WatchErrors, r.JWTOK, r.JWTErrors = watchErrs.Load(), jwtOK.Load(), jwtErrs.Load()
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

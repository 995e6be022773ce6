// burst opens many go-spiffe Workload API clients at the same instant, as a node full of
// workloads does when they all start together: X.509 watchers (each a connection with a
// FetchX509SVID stream) and JWT clients (each a connection fetching JWT-SVIDs in a loop). It
// prints one JSON object: how many watchers got their first SVID and how long it took, and every
// error a client saw.
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
	FirstSvidMaxMs float64  `json:"firstSvidMaxMs"`
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
	errs    *atomic.Int64
	onError func(error)
}

func (w *watcher) OnX509ContextUpdate(*workloadapi.X509Context) {
	w.once.Do(func() { w.first <- time.Since(w.start) })
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
	hold := flag.Duration("hold", 10*time.Second, "how long every client stays connected")
	flag.Parse()

	var mu sync.Mutex
	r := report{Watchers: *watchers, JWTClients: *jwts, SampleErrors: []string{}}
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
	var wg sync.WaitGroup
	for i := 0; i < *watchers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			w := &watcher{ctx: ctx, start: time.Now(), first: first, errs: &watchErrs, onError: onError}
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
				_, err := c.FetchJWTSVID(ctx, jwtsvid.Params{Audience: *audience})
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
		r.FirstSvidMaxMs = lat[len(lat)-1]
	}
	r.WatchErrors, r.JWTOK, r.JWTErrors = watchErrs.Load(), jwtOK.Load(), jwtErrs.Load()
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

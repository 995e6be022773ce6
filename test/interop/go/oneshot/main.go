// oneshot makes N sequential one-shot Workload API calls on ONE go-spiffe v2.9.0 client, the way
// an application that polls does: FetchX509SVID, FetchX509Bundles or FetchJWTBundles each open a
// server stream, take its first response and cancel the stream (RST_STREAM CANCEL), as fast as the
// agent answers. With -watch the same client also keeps a WatchX509Context stream open on its
// connection for the whole loop (a workload with a watcher that also polls), and with
// -concurrency the calls come from that many loops at once. It prints one JSON object: calls
// made, calls that failed (with the first few errors and the index of the first), errors the
// watcher saw, the connections the client dialled (a graceful GOAWAY makes grpc-go dial again for
// the next call) and the rate reached.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type report struct {
	Kind         string   `json:"kind"`
	Calls        int      `json:"calls"`
	OK           int      `json:"ok"`
	Errors       int      `json:"errors"`
	FirstErrorAt int      `json:"firstErrorAt"`
	SampleErrors []string `json:"sampleErrors"`
	WatchErrors  int      `json:"watchErrors"`
	Drained      float64  `json:"drained"`
	Dials        int64    `json:"dials"`
	PerSecond    float64  `json:"perSecond"`
}

// watcher reports its first update on ready and every error but the one its cancellation causes.
type watcher struct {
	once    sync.Once
	ready   chan struct{}
	onError func(error)
}

func (w *watcher) OnX509ContextUpdate(*workloadapi.X509Context) { w.once.Do(func() { close(w.ready) }) }

func (w *watcher) OnX509ContextWatchError(err error) {
	if status.Code(err) == codes.Canceled {
		return
	}
	w.onError(err)
}

func main() {
	addr := flag.String("addr", "", "unix:///path/to/api.sock")
	calls := flag.Int("calls", 2500, "sequential one-shot calls")
	kind := flag.String("kind", "x509svid", "x509svid | x509bundles | jwtbundles")
	watch := flag.Bool("watch", false, "keep a WatchX509Context stream open on the same client during the loop")
	concurrency := flag.Int("concurrency", 1, "loops making the calls at once")
	drain := flag.Float64("drain", 0, "stop before -calls once calls - 33/s x elapsed reaches this: the resets nghttp2's bucket (1,000, +33/s) would have lost")
	flag.Parse()

	var dials atomic.Int64
	dialer := func(ctx context.Context, target string) (net.Conn, error) {
		dials.Add(1)
		// grpc-go hands a custom dialer the target as given ("unix:///path").
		path := strings.TrimPrefix(strings.TrimPrefix(target, "unix://"), "unix:")
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
	ctx := context.Background()
	c, err := workloadapi.New(ctx, workloadapi.WithAddr(*addr), workloadapi.WithDialOptions(grpc.WithContextDialer(dialer)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	defer c.Close()

	call := func(ctx context.Context) error {
		switch *kind {
		case "x509svid":
			_, err := c.FetchX509SVID(ctx)
			return err
		case "x509bundles":
			_, err := c.FetchX509Bundles(ctx)
			return err
		case "jwtbundles":
			_, err := c.FetchJWTBundles(ctx)
			return err
		}
		fmt.Fprintln(os.Stderr, "unknown kind", *kind)
		os.Exit(2)
		return nil
	}

	r := report{Kind: *kind, FirstErrorAt: -1, SampleErrors: []string{}}
	var mu sync.Mutex
	var start time.Time
	record := func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		r.Calls++
		if d := float64(r.Calls) - 33*time.Since(start).Seconds(); d > r.Drained {
			r.Drained = d
		}
		if err == nil {
			r.OK++
			return
		}
		r.Errors++
		if r.FirstErrorAt < 0 || i < r.FirstErrorAt {
			r.FirstErrorAt = i
		}
		if len(r.SampleErrors) < 5 {
			r.SampleErrors = append(r.SampleErrors, err.Error())
		}
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	if *watch {
		w := &watcher{ready: make(chan struct{}), onError: func(err error) {
			if watchCtx.Err() != nil {
				return // the loop is over: the watch is being cancelled, not failing
			}
			mu.Lock()
			defer mu.Unlock()
			r.WatchErrors++
			if len(r.SampleErrors) < 5 {
				r.SampleErrors = append(r.SampleErrors, "watch: "+err.Error())
			}
		}}
		go func() {
			defer close(watchDone)
			_ = c.WatchX509Context(watchCtx, w)
		}()
		<-w.ready
	} else {
		close(watchDone)
	}

	start = time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < *concurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *calls {
					return
				}
				if *drain > 0 {
					mu.Lock()
					enough := r.Drained >= *drain
					mu.Unlock()
					if enough {
						return
					}
				}
				callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := call(callCtx)
				cancel()
				record(i, err)
			}
		}()
	}
	wg.Wait()
	stopWatch()
	<-watchDone
	r.PerSecond = float64(r.Calls) / time.Since(start).Seconds()
	r.Dials = dials.Load()
	mu.Lock()
	out, _ := json.Marshal(r)
	mu.Unlock()
	fmt.Println(string(out))
}

// Command etcd-load drives etcd with the load of `deno task bench:consensus`: concurrent
// closed-loop writers, each putting a 16-byte value under a random key among a fixed set, back
// to back, through etcd's native Go client (go.etcd.io/etcd/client/v3). It prints one JSON line:
// {"writes_s":N,"p50_ms":N,"p99_ms":N,"errors":N}.
//
// Built by bench/_etcd.ts into ~/.cache/cell/etcd-load; not part of the Deno workspace.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

type result struct {
	WritesS float64 `json:"writes_s"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	Errors  int     `json:"errors"`
	Conns   int     `json:"conns"`
}

func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted)) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return float64(sorted[rank-1].Microseconds()) / 1000
}

func main() {
	endpoints := flag.String("endpoints", "http://127.0.0.1:2379", "comma-separated client URLs; connections are spread over them round robin")
	concurrency := flag.Int("concurrency", 64, "writers, each with one write in flight")
	conns := flag.Int("conns", 1, "gRPC connections (clients) the writers share round robin")
	durationMs := flag.Int("duration-ms", 5000, "timed window")
	warmupMs := flag.Int("warmup-ms", 1000, "untimed warmup before the window")
	keys := flag.Int("keys", 1000, "distinct keys written")
	valueSize := flag.Int("value-size", 16, "bytes per value")
	timeoutMs := flag.Int("timeout-ms", 5000, "per-request timeout")
	flag.Parse()

	eps := strings.Split(*endpoints, ",")
	clients := make([]*clientv3.Client, *conns)
	for i := range clients {
		c, err := clientv3.New(clientv3.Config{
			// One endpoint per connection, so that the spread over members is the one asked for.
			Endpoints:   []string{eps[i%len(eps)]},
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcd-load:", err)
			os.Exit(1)
		}
		defer c.Close()
		clients[i] = c
	}

	value := make([]byte, *valueSize)
	_, _ = rand.Read(value)
	keyNames := make([]string, *keys)
	for i := range keyNames {
		keyNames[i] = fmt.Sprintf("bench/%04d", i)
	}

	start := time.Now()
	timedFrom := start.Add(time.Duration(*warmupMs) * time.Millisecond)
	end := timedFrom.Add(time.Duration(*durationMs) * time.Millisecond)
	samples := make([][]time.Duration, *concurrency)
	errs := make([]int, *concurrency)
	var wg sync.WaitGroup
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			kv := clients[w%len(clients)].KV
			own := make([]time.Duration, 0, 1<<14)
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*timeoutMs)*time.Millisecond)
				_, err := kv.Put(ctx, keyNames[mrand.IntN(len(keyNames))], string(value))
				cancel()
				t1 := time.Now()
				// Counted when it completes inside the window, as bench/_load.ts does.
				if t1.Before(timedFrom) || !t1.Before(end) {
					continue
				}
				if err != nil {
					errs[w]++
					continue
				}
				own = append(own, t1.Sub(t0))
			}
			samples[w] = own
		}(w)
	}
	wg.Wait()

	var all []time.Duration
	errors := 0
	for w := range samples {
		all = append(all, samples[w]...)
		errors += errs[w]
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r := result{
		WritesS: float64(len(all)) / (float64(*durationMs) / 1000),
		P50Ms:   percentile(all, 0.5),
		P99Ms:   percentile(all, 0.99),
		Errors:  errors,
		Conns:   *conns,
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

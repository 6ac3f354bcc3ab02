package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/bench"
)

func runBench(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench", stderr)
	addr := fs.String("addr", "http://127.0.0.1:8080", "gateway URL of the virtual server (running the kv guest)")
	clients := fs.Int("clients", 1, "concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "how long to run")
	size := fs.Int("value-size", 256, "bytes per value")
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	url := strings.TrimSuffix(*addr, "/")
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		url = "http://" + url
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := bench.Run(ctx, bench.Config{URL: url, Clients: *clients, Duration: *duration, ValueSize: *size})
	if err != nil {
		fmt.Fprintf(stderr, "ftvs bench: %v\n", err)
		return exitUsage
	}
	fmt.Fprintln(stdout, res)
	if res.OK == 0 {
		return exitFailure
	}
	return exitOK
}

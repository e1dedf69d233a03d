// Command fdload replays realistic deployments against a fastdeploy
// receiver and prints what was accepted and refused, throughput and
// latency percentiles; optionally it runs the OTLP sink the collector
// exports to and samples the collector's memory. See docs/BENCHMARKS.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fdload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fdload", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		target      = fs.String("target", "http://127.0.0.1:8088", "the fastdeploy receiver's base URL")
		senders     = fs.Int("senders", 1, "concurrent senders")
		rate        = fs.Float64("rate", 0, "deployments per second over all senders; 0 for as fast as possible")
		deployments = fs.Int("deployments", 0, "stop after this many deployments; 0 for no count bound")
		duration    = fs.Duration("duration", 10*time.Second, "stop starting deployments after this long; 0 for no time bound")
		timeout     = fs.Duration("request-timeout", 10*time.Second, "a request without an answer after this long counts as hung")
		retries     = fs.Int("retries", 0, "retries of a request answered 429 or 503, after its Retry-After")
		seed        = fs.Uint64("seed", 1, "seed of the generated deployments")
		runID       = fs.String("run", "", "prefix of the deployment ids (default: the start time)")
		sinkAddr    = fs.String("sink", "", "also run an OTLP/HTTP sink on this address (e.g. 127.0.0.1:4318) and report what reached it")
		drain       = fs.Duration("drain", 30*time.Second, "with -sink: how long to wait for the collector to export what was acknowledged")
		pid         = fs.Int("pid", 0, "the collector's process id, to report its peak RSS during the run")
	)
	fs.Usage = func() {
		fmt.Fprintln(out, "usage: fdload [flags]\n\nSends generated deployments (3 requests each: lifecycle events, an Ansible run, the rest) to the receiver.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *deployments <= 0 && *duration <= 0 {
		return errors.New("bound the run with -deployments or -duration")
	}
	if *runID == "" {
		*runID = "fdload-" + time.Now().UTC().Format("20060102T150405")
	}
	var sink *loadgen.Sink
	if *sinkAddr != "" {
		var err error
		if sink, err = loadgen.StartSink(*sinkAddr); err != nil {
			return fmt.Errorf("start sink: %w", err)
		}
		defer sink.Close()
	}
	w, err := loadgen.NewWorkload(*runID, *seed)
	if err != nil {
		return err
	}
	var sampler *loadgen.RSSSampler
	if *pid > 0 {
		if _, _, err := loadgen.ProcessMemory(*pid); err != nil {
			return err
		}
		sampler = loadgen.SampleRSS(*pid, 100*time.Millisecond)
	}
	res, err := loadgen.Run(ctx, w, loadgen.Options{
		Target: strings.TrimRight(*target, "/"), Senders: *senders, Rate: *rate,
		Deployments: *deployments, Duration: *duration, RequestTimeout: *timeout,
		Retries: *retries, RunID: *runID, Seed: *seed,
	})
	if err != nil {
		return err
	}
	var peak int64
	if sampler != nil {
		peak = sampler.Stop()
	}
	fmt.Fprintf(out, "senders %d\n%s", *senders, res)
	if sink != nil {
		acked := res.Acknowledged()
		want := res.AcknowledgedSpans()
		began := time.Now()
		sink.WaitFor(*drain, func() bool {
			missing, _ := sink.Missing(acked)
			return len(missing) == 0 && len(sink.MissingLogs(acked)) == 0
		})
		missing, repeated := sink.Missing(acked)
		c := sink.Counts()
		fmt.Fprintf(out, "sink: %d of %d acknowledged spans arrived (%d missing, %d more than once) within %s; %d span receipts, %d log records (%d acknowledged), %d deployments short of log records\n",
			want-len(missing), want, len(missing), repeated, time.Since(began).Round(time.Millisecond), c.SpanReceipts, c.LogRecords, res.Events, len(sink.MissingLogs(acked)))
	}
	if sampler != nil {
		fmt.Fprintf(out, "collector peak RSS during the run %.0f MiB\n", float64(peak)/(1<<20))
	}
	return nil
}

// Command fdsample prints sample files with their timestamps moved so that
// the latest one is now, keeping every interval inside them. The samples in
// testdata/ carry fixed times (right for goldens); a running collector
// refuses events older than five years or more than a day ahead, so what is
// posted to it is moved to the present first. Files named together are
// moved by one offset and stay aligned.
//
//	fdsample FILE                 the moved file on stdout
//	fdsample -o DIR FILE...       the moved files into DIR, same base names
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/timeshift"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "fdsample:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout io.Writer, now time.Time) error {
	fs := flag.NewFlagSet("fdsample", flag.ContinueOnError)
	dir := fs.String("o", "", "write the moved files into this directory instead of stdout")
	at := fs.String("now", "", "RFC 3339 time to move the latest timestamp to (default: the current time)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 || (*dir == "" && len(files) > 1) {
		return errors.New("usage: fdsample FILE | fdsample -o DIR FILE...")
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("-now: %w", err)
		}
		now = t
	}
	texts := make([][]byte, len(files))
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		texts[i] = b
	}
	moved, _ := timeshift.ToNow(now, texts...)
	if *dir == "" {
		_, err := stdout.Write(moved[0])
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	for i, f := range files {
		if err := os.WriteFile(filepath.Join(*dir, filepath.Base(f)), moved[i], 0o644); err != nil {
			return err
		}
	}
	return nil
}

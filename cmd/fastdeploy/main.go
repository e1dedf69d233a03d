// Command fastdeploy runs deployment plans and reports them to an
// OpenTelemetry collector with the fastdeploy receiver. The logic lives in
// internal/deployer; run "fastdeploy help".
package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/cli"
)

func main() {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	app := &cli.App{
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Getenv:   os.Getenv,
		Terminal: term.IsTerminal(int(os.Stdout.Fd())),
		Signals:  signals,
	}
	os.Exit(app.Main(os.Args[1:]))
}

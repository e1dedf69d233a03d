// Package progress shows a running deployment to a person: on a terminal a
// live status line (step N of M, name, spinner, elapsed time) under the
// step's output, elsewhere plain lines; then a summary table.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/runner"
)

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// Printer implements runner.Progress.
type Printer struct {
	mu       sync.Mutex
	w        io.Writer
	live     bool
	total    int
	current  int
	name     string
	started  time.Time
	frame    int
	shown    bool // a status line is on screen
	stop     chan struct{}
	stopped  chan struct{}
	interval time.Duration
}

// New returns a printer writing to w. live selects the terminal mode,
// which redraws a status line; Close must be called to stop it.
func New(w io.Writer, live bool) *Printer {
	return newPrinter(w, live, 100*time.Millisecond)
}

func newPrinter(w io.Writer, live bool, interval time.Duration) *Printer {
	p := &Printer{w: w, live: live, interval: interval}
	if live {
		p.stop = make(chan struct{})
		p.stopped = make(chan struct{})
		go p.tick()
	}
	return p
}

// Close stops the status line.
func (p *Printer) Close() {
	if p.live {
		select {
		case <-p.stop:
		default:
			close(p.stop)
			<-p.stopped
		}
	}
}

func (p *Printer) tick() {
	defer close(p.stopped)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			p.mu.Lock()
			p.clearLocked()
			p.mu.Unlock()
			return
		case <-t.C:
			p.mu.Lock()
			if p.name != "" {
				p.frame++
				p.drawLocked()
			}
			p.mu.Unlock()
		}
	}
}

func (p *Printer) clearLocked() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[2K")
		p.shown = false
	}
}

func (p *Printer) drawLocked() {
	if !p.live || p.name == "" {
		return
	}
	fmt.Fprintf(p.w, "\r\x1b[2K%s [%d/%d] %s  %s", spinner[p.frame%len(spinner)], p.current+1, p.total, p.name, formatDuration(time.Since(p.started)))
	p.shown = true
}

// println writes a whole line above the status line.
func (p *Printer) println(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	fmt.Fprintln(p.w, s)
	p.drawLocked()
}

// Write lets logs share the terminal with the status line: each write is
// printed above it.
func (p *Printer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	n, err := p.w.Write(b)
	p.drawLocked()
	return n, err
}

// StepStarted implements runner.Progress.
func (p *Printer) StepStarted(position, total int, name string) {
	p.mu.Lock()
	p.total, p.current, p.name, p.started = total, position, name, time.Now()
	p.mu.Unlock()
	if !p.live {
		p.println(fmt.Sprintf("[%d/%d] %s: started", position+1, total, name))
		return
	}
	p.mu.Lock()
	p.drawLocked()
	p.mu.Unlock()
}

// Output implements runner.Progress.
func (p *Printer) Output(position int, stream, line string) {
	prefix := "  │ "
	if !p.live {
		p.mu.Lock()
		prefix = fmt.Sprintf("[%d/%d] %s | ", position+1, p.total, p.name)
		p.mu.Unlock()
	}
	if stream == "stderr" {
		prefix += "! "
	}
	p.println(prefix + line)
}

// StepFinished implements runner.Progress.
func (p *Printer) StepFinished(r runner.StepResult, total int) {
	p.mu.Lock()
	p.name = ""
	p.mu.Unlock()
	line := fmt.Sprintf("[%d/%d] %s: %s", r.Position+1, total, r.Name, r.State)
	if r.State != "skipped" {
		line += " in " + formatDuration(r.Duration)
	}
	if r.Message != "" {
		line += " (" + r.Message + ")"
	}
	if p.live {
		line = mark(r.State) + " " + line
	}
	p.println(line)
}

func mark(state string) string {
	switch state {
	case "success":
		return "✔"
	case "skipped":
		return "–"
	case "cancelled":
		return "⊘"
	}
	return "✘"
}

// Finished implements runner.Progress: the summary table.
func (p *Printer) Finished(r runner.Result) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSTEP\tSTATE\tDURATION")
	for _, s := range r.Steps {
		d := "-"
		if s.State != "skipped" {
			d = formatDuration(s.Duration)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.State, d)
	}
	tw.Flush()
	fmt.Fprintf(&b, "\ndeployment %s: %s in %s (trace %s)", r.DeploymentID, r.Status, formatDuration(r.Finished.Sub(r.Started)), r.TraceID)
	p.println(b.String())
}

func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

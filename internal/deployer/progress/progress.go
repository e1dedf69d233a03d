// Package progress shows a running deployment to a person: on a terminal a
// live status line (step N of M, name, what it runs now, spinner, elapsed
// time) under the step's output, elsewhere plain lines; then a summary
// that names what failed and why.
//
// Layout: each step's output sits under a line naming the step, and the
// step's result line closes it, so no output appears under another step's
// line.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/runner"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
)

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// Printer implements runner.Progress and runner.ActivityReporter.
type Printer struct {
	// TraceURL, when set, turns a trace id into a link to a trace UI.
	TraceURL func(traceID string) string

	mu       sync.Mutex
	w        io.Writer
	live     bool
	total    int
	current  int
	name     string
	activity string
	headed   bool // the running step's header line is printed
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
	line := fmt.Sprintf("%s [%d/%d] %s  %s", spinner[p.frame%len(spinner)], p.current+1, p.total, p.name, formatDuration(time.Since(p.started)))
	if p.activity != "" {
		line += "  " + p.activity
	}
	fmt.Fprint(p.w, "\r\x1b[2K"+line)
	p.shown = true
}

// printlnLocked writes a whole line above the status line.
func (p *Printer) printlnLocked(s string) {
	p.clearLocked()
	fmt.Fprintln(p.w, s)
	p.drawLocked()
}

func (p *Printer) println(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.printlnLocked(s)
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

func stepLabel(position, total int, name string) string {
	return fmt.Sprintf("[%d/%d] %s", position+1, total, name)
}

// StepStarted implements runner.Progress.
func (p *Printer) StepStarted(position, total int, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.current, p.name, p.started, p.activity, p.headed = total, position, name, time.Now(), "", false
	if !p.live {
		p.printlnLocked(stepLabel(position, total, name) + ": started")
		return
	}
	p.drawLocked()
}

// Activity implements runner.ActivityReporter: the live line shows it.
func (p *Printer) Activity(position int, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if position != p.current || p.name == "" {
		return
	}
	p.activity = text
	p.drawLocked()
}

// Output implements runner.Progress. On a terminal the first line of a
// step's output is preceded by a line naming the step.
func (p *Printer) Output(position int, stream, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prefix := "  │ "
	if !p.live {
		prefix = stepLabel(position, p.total, p.name) + " | "
	} else if !p.headed {
		p.headed = true
		p.printlnLocked("▸ " + stepLabel(position, p.total, p.name))
	}
	if stream == "stderr" {
		prefix += "! "
	}
	p.printlnLocked(prefix + line)
}

// StepFinished implements runner.Progress.
func (p *Printer) StepFinished(r runner.StepResult, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.name, p.activity = "", ""
	line := stepLabel(r.Position, total, r.Name) + ": " + r.State
	if r.Ignored {
		line += " (ignored: continue_on_error)"
	}
	if !notRun(r) {
		line += " in " + formatDuration(r.Duration)
	}
	if r.Message != "" {
		line += " (" + r.Message + ")"
	}
	if p.live {
		line = mark(r) + " " + line
	}
	p.printlnLocked(line)
}

func mark(r runner.StepResult) string {
	switch {
	case r.State == deployevent.StatusSuccess:
		return "✔"
	case r.State == deployevent.StateSkipped:
		return "–"
	case r.State == deployevent.StatusCancelled:
		return "⊘"
	case r.Ignored:
		return "⚠"
	}
	return "✘"
}

// Finished implements runner.Progress: the summary table, and for a
// deployment that did not succeed, the step that ended it, how, the last
// lines of its stderr, and where its trace is.
func (p *Printer) Finished(r runner.Result) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSTEP\tSTATE\tDURATION")
	for _, s := range r.Steps {
		d := "-"
		if !notRun(s) {
			d = formatDuration(s.Duration)
		}
		state := s.State
		if s.Ignored {
			state += " (ignored)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, state, d)
	}
	tw.Flush()
	fmt.Fprintf(&b, "\ndeployment %s: %s in %s", r.DeploymentID, r.Status, formatDuration(r.Finished.Sub(r.Started)))
	f := r.FailedStep()
	if f != nil && r.Status != deployevent.StatusSuccess {
		fmt.Fprintf(&b, " at step %s", stepLabel(f.Position, len(r.Steps), f.Name))
	}
	fmt.Fprintf(&b, " (trace %s)", r.TraceID)
	if f != nil && r.Status != deployevent.StatusSuccess {
		if how := How(*f); how != "" {
			fmt.Fprintf(&b, "\n  %s: %s", f.Name, how)
		}
		if len(f.StderrTail) > 0 {
			fmt.Fprintf(&b, "\n  last lines of stderr:")
			for _, l := range f.StderrTail {
				fmt.Fprintf(&b, "\n    %s", l)
			}
		}
	}
	if p.TraceURL != nil {
		if u := p.TraceURL(r.TraceID); u != "" {
			fmt.Fprintf(&b, "\n  trace: %s", u)
		}
	}
	p.println(b.String())
}

func notRun(s runner.StepResult) bool { return s.NotRun || s.State == deployevent.StateSkipped }

// How says how a step ended: exit code, signal, or timeout.
func How(s runner.StepResult) string {
	var parts []string
	switch {
	case s.Signal != "":
		parts = append(parts, "killed by "+s.Signal)
	case s.ExitCode != nil:
		parts = append(parts, fmt.Sprintf("exit code %d", *s.ExitCode))
	}
	switch s.State {
	case deployevent.StatusTimeout, deployevent.StatusCancelled:
		parts = append([]string{s.Message}, parts...)
	case deployevent.StatusFailure:
		if s.ExitCode == nil && s.Signal == "" && s.Message != "" {
			parts = append(parts, s.Message) // it did not start
		} else if _, detail, ok := strings.Cut(s.Message, ": "); ok {
			parts = append(parts, detail) // the failed Ansible task
		}
	}
	return strings.Join(parts, ", ")
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

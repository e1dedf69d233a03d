package fakefastdeploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"
)

// maxStepMessage is MAX_STEP_MESSAGE_SIZE, in Python characters.
const maxStepMessage = 4096

// DeployTask sends what fastdeploy's deploy process (tasks.py DeployTask
// with its httpx.AsyncClient) sends: each step as POST steps_url with the
// deployment token, retried on a non-2xx answer up to Attempts times with
// SleepOnFail after every failed attempt and then dropped; a transport error
// is not retried and ends the deployment; the finish is one PUT with an
// empty body, no retry.
type DeployTask struct {
	StepsURL    string
	FinishURL   string
	AccessToken string
	// Attempts is DeployTask.attempts (3).
	Attempts int
	// SleepOnFail is DeployTask.sleep_on_fail (3 s); tests shorten it.
	SleepOnFail time.Duration
	// Client defaults to one that, like httpx, follows no redirect.
	Client *http.Client
	// Tz, when set, is applied to started/finished before sending; fastdeploy
	// itself always sends UTC.
	Tz *time.Location
}

// StepResult is one line of the deploy script's output, timed by the task.
type StepResult struct {
	Name     string
	State    string
	Message  string
	Started  time.Time
	Finished time.Time
}

// SendOutcome says what became of one step.
type SendOutcome struct {
	// Statuses are the answers, one per attempt.
	Statuses []int
	// Delivered is true when an attempt got a 2xx.
	Delivered bool
}

func (t *DeployTask) client() *http.Client {
	if t.Client != nil {
		return t.Client
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// headers are httpx's defaults plus the client's authorization header.
func (t *DeployTask) headers(h http.Header) {
	h.Set("Accept", "*/*")
	h.Set("Accept-Encoding", "gzip, deflate")
	h.Set("User-Agent", "python-httpx/0.28.1")
	h.Set("Authorization", "Bearer "+t.AccessToken)
}

// pyISO is datetime.isoformat() of an aware datetime.
func pyISO(t time.Time) string {
	layout := "2006-01-02T15:04:05"
	if t.Nanosecond()/1000 != 0 {
		layout += ".000000"
	}
	return t.Format(layout + "-07:00")
}

// StepBody is the body tasks.py posts: json.loads(step.json()) re-encoded by
// httpx (compact separators, non-ASCII kept), fields in Step.model_dump order.
func (t *DeployTask) StepBody(s StepResult) []byte {
	if utf8.RuneCountInString(s.Message) > maxStepMessage {
		s.Message = string([]rune(s.Message)[:maxStepMessage])
	}
	started, finished := s.Started.UTC(), s.Finished.UTC()
	if t.Tz != nil {
		started, finished = started.In(t.Tz), finished.In(t.Tz)
	}
	var b bytes.Buffer
	b.Write(marshalOrdered([]kv{
		{"id", nil}, {"name", s.Name}, {"started", pyISO(started)}, {"finished", pyISO(finished)},
		{"state", s.State}, {"deployment_id", nil}, {"message", s.Message},
	}))
	return b.Bytes()
}

// SendStep is send_step. A transport error returns at once, as httpx's
// exceptions other than HTTPStatusError escape the retry loop.
func (t *DeployTask) SendStep(ctx context.Context, s StepResult) (SendOutcome, error) {
	attempts := t.Attempts
	if attempts == 0 {
		attempts = 3
	}
	sleep := t.SleepOnFail
	if sleep == 0 {
		sleep = 3 * time.Second
	}
	body := t.StepBody(s)
	var out SendOutcome
	for range attempts {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.StepsURL, bytes.NewReader(body))
		if err != nil {
			return out, err
		}
		t.headers(req.Header)
		req.Header.Set("Content-Type", "application/json")
		resp, err := t.client().Do(req)
		if err != nil {
			return out, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		out.Statuses = append(out.Statuses, resp.StatusCode)
		if resp.StatusCode/100 == 2 {
			out.Delivered = true
			return out, nil
		}
		timer := time.NewTimer(sleep)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return out, ctx.Err()
		}
	}
	return out, nil
}

// ErrStatus is raise_for_status's HTTPStatusError.
var ErrStatus = errors.New("non-2xx answer")

// Finish is finish_deployment: PUT with no body (Content-Length: 0, no
// Content-Type), the status raised, never retried.
func (t *DeployTask) Finish(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, t.FinishURL, nil)
	if err != nil {
		return 0, err
	}
	t.headers(req.Header)
	resp, err := t.client().Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%w: %d", ErrStatus, resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// Run is run_deploy for a finished list of step results: steps in order, a
// transport error ends the steps (tasks.py then posts a "failed step",
// which fails the same way), the finish always follows.
func (t *DeployTask) Run(ctx context.Context, steps []StepResult) ([]SendOutcome, int, error) {
	var outcomes []SendOutcome
	var stepErr error
	for _, s := range steps {
		out, err := t.SendStep(ctx, s)
		outcomes = append(outcomes, out)
		if err != nil {
			stepErr = err
			failed := StepResult{Name: "failed step", State: "failure", Message: "deployment failed: " + err.Error(), Started: s.Started, Finished: s.Finished}
			out, _ := t.SendStep(ctx, failed)
			outcomes = append(outcomes, out)
			break
		}
	}
	status, err := t.Finish(ctx)
	return outcomes, status, errors.Join(stepErr, err)
}

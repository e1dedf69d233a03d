package fastdeployreceiver

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/valyala/fastjson"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
)

// Compatibility with existing fastdeploy installs: its deploy process posts
// steps to {API_URL}/steps/ and finishes with PUT {API_URL}/deployments/finish/,
// authenticated with the deployment's JWT, and its server publishes domain
// events. Pointing API_URL at the collector is enough.

// compatStep is the body of POST /steps/.
type compatStep struct {
	Name     string     `json:"name"`
	Started  *time.Time `json:"started"`
	Finished *time.Time `json:"finished"`
	State    string     `json:"state"`
	Message  string     `json:"message"`
}

// fastdeployStepInput is one POST /steps/ of the deployment its token names.
type fastdeployStepInput struct {
	deployment string
	step       compatStep
}

// fastdeployFinishInput is one PUT /deployments/finish/; it has no body.
type fastdeployFinishInput struct {
	deployment string
	at         time.Time
	// issued is when fastdeploy issued the deployment's token, read from
	// it (FastdeployConfig.DeploymentTokenLifetime); zero when unknown.
	issued time.Time
}

// domainEvent is one fastdeploy domain event: a deployment or a step.
type domainEvent struct {
	Type         string         `json:"type"`
	ID           json.Number    `json:"id"`
	ServiceID    json.Number    `json:"service_id"`
	Origin       string         `json:"origin"`
	User         string         `json:"user"`
	Started      *time.Time     `json:"started"`
	Finished     *time.Time     `json:"finished"`
	Context      map[string]any `json:"context"`
	Name         string         `json:"name"`
	State        string         `json:"state"`
	DeploymentID json.Number    `json:"deployment_id"`
	Message      string         `json:"message"`
	Deleted      bool           `json:"deleted"`
}

// domainInput is one decoded /v1/fastdeploy/events request.
type domainInput struct {
	events []domainEvent
	at     []itemAt
	// services names services by fastdeploy's service_id (config).
	services map[string]string
	// names are the names fastdeploy's services list gave, at decode.
	names map[string]string
}

var compatTimeFields = []string{"started", "finished"}

func decodeCompatStep(body []byte, p *fastjson.Parser, deployment string) (*fastdeployStepInput, *requestError) {
	in := &fastdeployStepInput{deployment: deployment}
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] != '{' {
		return nil, malformed(1, -1, "", "want one JSON object")
	}
	// One object, as fastdeploy sends it; jsonItems also checks its keys.
	rerr := jsonItems(body, p, func(raw []byte, line, index int) *requestError {
		if index > 0 {
			return malformed(line, index, "", "send one step per request")
		}
		if err := json.Unmarshal(raw, &in.step); err != nil {
			return typeError(raw, err, 1, -1, compatTimeFields)
		}
		return nil
	})
	if rerr != nil {
		return nil, rerr
	}
	return in, nil
}

func decodeDomainEvents(body []byte, p *fastjson.Parser, services map[string]string) (*domainInput, *requestError) {
	events, at, rerr := decodeItems[domainEvent](body, p, compatTimeFields)
	if rerr != nil {
		return nil, rerr
	}
	return &domainInput{events: events, at: at, services: services}, nil
}

// compatState maps fastdeploy step states onto ours; "" for pending and
// for what fastdeploy does not know.
func compatState(s string) string {
	switch s {
	case "success", "failure", "running", "cancelled", "skipped":
		return s
	case "failed":
		return deployevent.StatusFailure
	}
	return ""
}

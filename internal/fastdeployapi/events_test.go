package fastdeployapi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name    string
		frame   string
		check   func(t *testing.T, e Event)
		errPart string
		notDom  bool
	}{
		{name: "deployment started", frame: `{"type":"deployment","id":7,"service_id":2,"origin":"GitHub","user":"jochen","started":"2026-01-02T03:04:05.123456Z","finished":null,"context":{"env":{}}}`,
			check: func(t *testing.T, e Event) {
				require.NotNil(t, e.Deployment)
				assert.EqualValues(t, 7, e.Deployment.ID)
				assert.EqualValues(t, 2, e.Deployment.ServiceID)
				assert.True(t, e.Deployment.Finished.IsZero())
				assert.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), e.Deployment.Started.UTC())
			}},
		{name: "deployment finished with +00:00", frame: `{"type":"deployment","id":7,"service_id":2,"origin":"","user":"","started":"2026-01-02T03:04:05+00:00","finished":"2026-01-02T03:05:05+00:00","context":{}}`,
			check: func(t *testing.T, e Event) {
				assert.Equal(t, time.Minute, e.Deployment.Finished.Sub(e.Deployment.Started))
			}},
		{name: "naive time is UTC", frame: `{"type":"deployment","id":7,"service_id":2,"started":"2026-01-02T03:04:05.5"}`,
			check: func(t *testing.T, e Event) {
				assert.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC), e.Deployment.Started)
			}},
		{name: "step deleted", frame: `{"type":"step","id":3,"name":"deploy","state":"running","deployment_id":7,"message":"","started":null,"finished":null,"deleted":true}`,
			check: func(t *testing.T, e Event) {
				require.NotNil(t, e.Step)
				assert.True(t, e.Step.Deleted)
				assert.True(t, e.Step.Started.IsZero())
				assert.EqualValues(t, 7, e.Step.DeploymentID)
			}},
		{name: "service deleted", frame: `{"type":"service","id":4,"name":"web","data":{},"deleted":true}`,
			check: func(t *testing.T, e Event) { assert.True(t, e.Service.Deleted) }},
		{name: "authentication", frame: `{"type":"authentication","status":"success","detail":"x"}`, notDom: true},
		{name: "warning", frame: `{"type":"warning","detail":"Your session has expired."}`, notDom: true},
		{name: "client left", frame: `{"message":"Client left"}`, notDom: true},
		// near misses
		{name: "deployment without id", frame: `{"type":"deployment","service_id":2,"started":"2026-01-02T03:04:05Z"}`, errPart: "id"},
		{name: "deployment id a string", frame: `{"type":"deployment","id":"7","service_id":2,"started":"2026-01-02T03:04:05Z"}`, errPart: "id: must be an integer"},
		{name: "deployment id fractional", frame: `{"type":"deployment","id":7.5,"service_id":2,"started":"2026-01-02T03:04:05Z"}`, errPart: "id"},
		{name: "deployment without started", frame: `{"type":"deployment","id":7,"service_id":2,"started":null}`, errPart: "started"},
		{name: "step time not ISO", frame: `{"type":"step","id":3,"name":"a","deployment_id":7,"started":"yesterday"}`, errPart: "started"},
		{name: "step time a number", frame: `{"type":"step","id":3,"name":"a","deployment_id":7,"finished":1700000000}`, errPart: "finished"},
		{name: "step without name", frame: `{"type":"step","id":3,"deployment_id":7}`, errPart: "name"},
		{name: "step without deployment", frame: `{"type":"step","id":3,"name":"a"}`, errPart: "deployment_id"},
		{name: "not json", frame: `{"type":`, errPart: "event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := DecodeEvent([]byte(tt.frame))
			switch {
			case tt.notDom:
				assert.ErrorIs(t, err, ErrNotDomainEvent)
			case tt.errPart != "":
				require.Error(t, err)
				assert.NotErrorIs(t, err, ErrNotDomainEvent)
				assert.Contains(t, err.Error(), tt.errPart)
			default:
				require.NoError(t, err)
				tt.check(t, e)
			}
		})
	}
}

package fastdeployreceiver

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/fastdeploy/otelcol-fastdeploy/receiver/fastdeployreceiver/internal/metadata"
)

// NewFactory creates the fastdeploy receiver factory.
func NewFactory() receiver.Factory {
	// One receiver serves both signals of a config: traces and logs
	// pipelines that name the same receiver share its HTTP server. The map
	// lives in the factory, not in a package variable.
	shared := &sharedReceivers{byConfig: map[*Config]*fastdeployReceiver{}}
	return receiver.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		receiver.WithTraces(shared.createTraces, metadata.TracesStability),
		receiver.WithLogs(shared.createLogs, metadata.LogsStability),
	)
}

type sharedReceivers struct {
	mu       sync.Mutex
	byConfig map[*Config]*fastdeployReceiver
}

func (s *sharedReceivers) get(set receiver.Settings, cfg *Config) (*fastdeployReceiver, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.byConfig[cfg]; ok {
		return r, nil
	}
	r, err := newReceiver(set, cfg, func() {
		s.mu.Lock()
		delete(s.byConfig, cfg)
		s.mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	s.byConfig[cfg] = r
	return r, nil
}

func (s *sharedReceivers) createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := s.get(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.setTraces(next)
	return r, nil
}

func (s *sharedReceivers) createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := s.get(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.setLogs(next)
	return r, nil
}

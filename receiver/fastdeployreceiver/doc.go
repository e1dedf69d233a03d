// Package fastdeployreceiver receives deployment lifecycle webhooks and
// Ansible callback events over HTTP and turns them into one trace per
// deployment and correlated log records.
//
//go:generate go tool -modfile=../../internal/tools/go.mod mdatagen metadata.yaml
package fastdeployreceiver

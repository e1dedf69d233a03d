// Package deploytrace derives W3C trace and span ids from the identity of a
// deployment, its steps and its Ansible tasks.
//
// The ids are pure functions of their inputs so that events which arrive late,
// out of order, twice, or from different processes (the deployer, an Ansible
// callback, the collector after a restart) all land on the same trace and the
// same span. The receiver and the deployer share this package; changing a
// derivation splits traces between old and new clients.
package deploytrace

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TraceID is a W3C trace id.
type TraceID [16]byte

// SpanID is a W3C span id.
type SpanID [8]byte

// IsEmpty reports whether every byte is zero, which W3C treats as invalid.
func (t TraceID) IsEmpty() bool { return t == TraceID{} }

// IsEmpty reports whether every byte is zero, which W3C treats as invalid.
func (s SpanID) IsEmpty() bool { return s == SpanID{} }

func (t TraceID) String() string { return hex.EncodeToString(t[:]) }
func (s SpanID) String() string  { return hex.EncodeToString(s[:]) }

// Ids are text in hex, as in a traceparent, wherever they are encoded
// (the receiver's stored in-flight state).
func (t TraceID) MarshalText() ([]byte, error) { return hexText(t[:]), nil }
func (s SpanID) MarshalText() ([]byte, error)  { return hexText(s[:]), nil }

func (t *TraceID) UnmarshalText(b []byte) error { return fromHexText("trace id", b, t[:]) }
func (s *SpanID) UnmarshalText(b []byte) error  { return fromHexText("span id", b, s[:]) }

func hexText(id []byte) []byte {
	out := make([]byte, hex.EncodedLen(len(id)))
	hex.Encode(out, id)
	return out
}

func fromHexText(what string, b, dst []byte) error {
	if len(b) != hex.EncodedLen(len(dst)) {
		return fmt.Errorf("%s: want %d hex digits, got %d", what, hex.EncodedLen(len(dst)), len(b))
	}
	if _, err := hex.Decode(dst, b); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Version-tagged domain separators: a new derivation gets a new tag.
const (
	tagTrace      = "fastdeploy/v1/trace"
	tagDeployment = "fastdeploy/v1/deployment"
	tagStep       = "fastdeploy/v1/step"
	tagSubprocess = "fastdeploy/v1/subprocess"
	tagTask       = "fastdeploy/v1/task"
	tagTaskHost   = "fastdeploy/v1/task-host"
	tagPlaybook   = "fastdeploy/v1/playbook"
	tagAnsible    = "fastdeploy/v1/ansible"
)

// digest hashes length-prefixed parts, so that ("ab","c") and ("a","bc")
// never collide.
func digest(tag string, parts ...string) [sha256.Size]byte {
	// One buffer hashed at once: on the stack for the usual short parts,
	// where a streaming hash.Hash would copy each part to the heap.
	buf := make([]byte, 0, 256)
	buf = appendPart(buf, tag)
	for _, p := range parts {
		buf = appendPart(buf, p)
	}
	return sha256.Sum256(buf)
}

func appendPart(buf []byte, p string) []byte {
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(p)))
	return append(buf, p...)
}

func spanFrom(tag string, parts ...string) SpanID {
	d := digest(tag, parts...)
	var s SpanID
	copy(s[:], d[:8])
	if s.IsEmpty() {
		s[7] = 1
	}
	return s
}

// DeploymentTraceID is the trace id of a deployment that arrived without a
// traceparent.
func DeploymentTraceID(deploymentID string) TraceID {
	d := digest(tagTrace, deploymentID)
	var t TraceID
	copy(t[:], d[:16])
	if t.IsEmpty() {
		t[15] = 1
	}
	return t
}

// DeploymentSpanID is the id of the deployment's root span within trace.
func DeploymentSpanID(trace TraceID, deploymentID string) SpanID {
	return spanFrom(tagDeployment, string(trace[:]), deploymentID)
}

// StepSpanID is the id of a step span. Position keeps two steps of the same
// name apart.
func StepSpanID(trace TraceID, deploymentID, stepName string, position int) SpanID {
	return spanFrom(tagStep, string(trace[:]), deploymentID, stepName, strconv.Itoa(position))
}

// SubprocessSpanID is the id of the span of a step's subprocess.
func SubprocessSpanID(trace TraceID, deploymentID, stepName string, position int) SpanID {
	return spanFrom(tagSubprocess, string(trace[:]), deploymentID, stepName, strconv.Itoa(position))
}

// PlaybookStepSpanID is the id of the synthetic step that holds Ansible tasks
// posted for a deployment without a step.
func PlaybookStepSpanID(trace TraceID, deploymentID string) SpanID {
	return spanFrom(tagPlaybook, string(trace[:]), deploymentID)
}

// TaskSpanID is the id of an Ansible task under parent. Host is empty when
// the task's result is not per host.
func TaskSpanID(trace TraceID, parent SpanID, taskPosition int, host string) SpanID {
	if host == "" {
		return spanFrom(tagTask, string(trace[:]), string(parent[:]), strconv.Itoa(taskPosition))
	}
	return spanFrom(tagTaskHost, string(trace[:]), string(parent[:]), strconv.Itoa(taskPosition), host)
}

// AnsibleSpanID derives the ids of an ansible.posix.jsonl run under parent:
// ("playbook"), ("play", play uuid), ("task", task uuid) and
// ("host", task uuid, host). Ansible's uuids are unique per run, so a
// replayed run yields the same spans.
func AnsibleSpanID(trace TraceID, parent SpanID, parts ...string) SpanID {
	return spanFrom(tagAnsible, append([]string{string(trace[:]), string(parent[:])}, parts...)...)
}

// ErrTraceparent is wrapped by every traceparent parse error.
var ErrTraceparent = errors.New("invalid traceparent")

// ParseTraceparent parses a W3C traceparent header value
// ("00-<32 hex>-<16 hex>-<2 hex>"). Future versions are accepted as the
// specification asks, reading only the fields version 00 defines.
func ParseTraceparent(v string) (TraceID, SpanID, error) {
	var t TraceID
	var s SpanID
	v = strings.TrimSpace(v)
	parts := strings.Split(v, "-")
	if len(parts) < 4 || len(parts[0]) != 2 || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return t, s, fmt.Errorf("%w: want 00-<trace id>-<span id>-<flags>", ErrTraceparent)
	}
	if parts[0] == "ff" || (parts[0] == "00" && len(parts) != 4) {
		return t, s, fmt.Errorf("%w: bad version", ErrTraceparent)
	}
	if !isLowerHex(parts[0]) || !isLowerHex(parts[3]) {
		return t, s, fmt.Errorf("%w: version and flags must be lower-case hex", ErrTraceparent)
	}
	if !isLowerHex(parts[1]) || !isLowerHex(parts[2]) {
		return t, s, fmt.Errorf("%w: ids must be lower-case hex", ErrTraceparent)
	}
	_, _ = hex.Decode(t[:], []byte(parts[1]))
	_, _ = hex.Decode(s[:], []byte(parts[2]))
	if t.IsEmpty() || s.IsEmpty() {
		return t, s, fmt.Errorf("%w: all-zero id", ErrTraceparent)
	}
	return t, s, nil
}

// FormatTraceparent renders a sampled version-00 traceparent.
func FormatTraceparent(t TraceID, s SpanID) string {
	return "00-" + t.String() + "-" + s.String() + "-01"
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

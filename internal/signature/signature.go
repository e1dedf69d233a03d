// Package signature signs and verifies requests with the
// X-Fastdeploy-Signature header. It is the one definition of that wire
// format, for the receiver, the deployer and the tests.
//
// The header is "t=<unix seconds>,v2=<hex MAC>" (or, from old clients,
// ",v1=<hex MAC>"); several MACs of one scheme may be sent while a secret
// is rotated, and one matching is enough. Every MAC is HMAC-SHA256 under
// the shared secret.
//
// v2 covers everything that decides where data goes. Its MAC is over the
// canonical string, lines joined by "\n" with no newline at the end:
//
//	fastdeploy-v2
//	<t>
//	<METHOD>
//	<path as sent, percent-encoded, "/" if empty>
//	<raw query as sent, without "?"; empty line if none>
//	<name>:<value>   one line per routing header present, sorted by name
//	<hex SHA-256 of the raw body>
//
// Routing headers are traceparent and every X-Fastdeploy-* header except
// X-Fastdeploy-Signature, present with a non-empty value. Names are
// lowercased; values are trimmed of spaces and tabs, and a header sent
// more than once has its values joined by ",", in order. A routing header
// added, removed or changed on the way, or a changed method, path, query,
// timestamp or body, makes the MAC mismatch.
//
// v1 covers only "<t>.<raw body>": a v1 MAC says nothing about where the
// body goes. A Verifier therefore accepts v1 only for requests that carry
// no routing header and no query (V1WithoutRouting, the default), or never
// (V1Refused). When a header carries any v2 MAC, its v1 MACs are ignored:
// stripping the v2 values is the only way to get v1 considered, and then
// the routing rule applies.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Header is the HTTP header that carries the signature.
const Header = "X-Fastdeploy-Signature"

// Errors returned by Verify; none of them echoes the secret or the MAC.
var (
	ErrMissing   = errors.New("signature missing")
	ErrMalformed = errors.New("signature malformed")
	ErrExpired   = errors.New("signature timestamp outside tolerance")
	ErrMismatch  = errors.New("signature does not match")
	// ErrV1Routing: a v1 signature on a request whose routing it does not
	// cover, or v1 refused by configuration.
	ErrV1Routing = errors.New("v1 signature does not cover routing headers or query; sign with v2")
	ErrV1Refused = errors.New("v1 signatures are refused; sign with v2")
)

// Scheme names.
const (
	SchemeV1 = "v1"
	SchemeV2 = "v2"
)

// V1Policy says when a v1 signature is enough.
type V1Policy int

const (
	// V1WithoutRouting accepts v1 only on requests without routing
	// headers and without a query string.
	V1WithoutRouting V1Policy = iota
	// V1Refused accepts v2 only.
	V1Refused
)

// Request is what a v2 signature covers.
type Request struct {
	Method   string
	Path     string // as sent (percent-encoded)
	RawQuery string // as sent, without "?"
	Header   http.Header
	Body     []byte
}

// RequestOf returns what the signature of r covers; body is r's body.
// It works for requests built by a client and for requests a server
// received: both read the path and query as they are on the wire.
func RequestOf(r *http.Request, body []byte) Request {
	return Request{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header, Body: body}
}

// IsRouting reports whether a header (any case) is one v2 signs.
func IsRouting(name string) bool {
	n := strings.ToLower(name)
	if n == "traceparent" {
		return true
	}
	return strings.HasPrefix(n, "x-fastdeploy-") && n != "x-fastdeploy-signature"
}

// routingLines returns "name:value" for every routing header present with
// a non-empty value, sorted by name.
func routingLines(h http.Header) []string {
	var lines []string
	for name, values := range h {
		if !IsRouting(name) {
			continue
		}
		trimmed := make([]string, len(values))
		nonEmpty := false
		for i, v := range values {
			trimmed[i] = strings.Trim(v, " \t")
			nonEmpty = nonEmpty || trimmed[i] != ""
		}
		if nonEmpty {
			lines = append(lines, strings.ToLower(name)+":"+strings.Join(trimmed, ","))
		}
	}
	sort.Strings(lines)
	return lines
}

// hasRouting reports whether v1 would leave part of r's routing unsigned.
func hasRouting(r Request) bool {
	return r.RawQuery != "" || len(routingLines(r.Header)) > 0
}

// Canonical returns the v2 canonical string of r signed at timestamp ts.
func Canonical(ts string, r Request) []byte {
	path := r.Path
	if path == "" {
		path = "/"
	}
	sum := sha256.Sum256(r.Body)
	var b strings.Builder
	b.WriteString("fastdeploy-v2\n")
	b.WriteString(ts + "\n")
	b.WriteString(strings.ToUpper(r.Method) + "\n")
	b.WriteString(path + "\n")
	b.WriteString(r.RawQuery + "\n")
	for _, l := range routingLines(r.Header) {
		b.WriteString(l + "\n")
	}
	b.WriteString(hex.EncodeToString(sum[:]))
	return []byte(b.String())
}

// SignRequest returns the v2 header value for r signed at t. Set every
// routing header on the request before signing it.
func SignRequest(secret []byte, t time.Time, r Request) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v2=" + hex.EncodeToString(hmacOf(secret, Canonical(ts, r)))
}

// SignHTTP sets the v2 signature header on req, whose body is body.
func SignHTTP(secret []byte, t time.Time, req *http.Request, body []byte) {
	req.Header.Set(Header, SignRequest(secret, t, RequestOf(req, body)))
}

// Sign returns a v1 header value for body signed at t: the timestamp and
// body only. Kept for clients of requests without routing headers or
// query; use SignRequest for anything else.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(v1MAC(secret, ts, body))
}

func v1MAC(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

func hmacOf(secret, msg []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(msg)
	return m.Sum(nil)
}

// parsed is a header's timestamp and candidate MACs per scheme.
type parsed struct {
	ts     string
	v1, v2 [][]byte
}

const wantShape = "want t=<unix seconds>,v2=<hex>"

// maxCandidates bounds the MACs one header may carry: rotation needs two.
const maxCandidates = 8

// parse checks a header's shape and its timestamp against now, without the
// body: a request can be refused before its body is read.
func parse(header string, now time.Time, tolerance time.Duration) (parsed, error) {
	var p parsed
	if header == "" {
		return p, ErrMissing
	}
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return p, fmt.Errorf("%w: %s", ErrMalformed, wantShape)
		}
		switch k {
		case "t":
			p.ts = v
		case SchemeV1, SchemeV2:
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return p, fmt.Errorf("%w: %s must be 64 hex digits", ErrMalformed, k)
			}
			if k == SchemeV1 {
				p.v1 = append(p.v1, sig)
			} else {
				p.v2 = append(p.v2, sig)
			}
		}
	}
	if p.ts == "" || len(p.v1)+len(p.v2) == 0 {
		return p, fmt.Errorf("%w: %s", ErrMalformed, wantShape)
	}
	if len(p.v1)+len(p.v2) > maxCandidates {
		return p, fmt.Errorf("%w: more than %d MACs", ErrMalformed, maxCandidates)
	}
	sec, err := strconv.ParseInt(p.ts, 10, 64)
	if err != nil {
		return p, fmt.Errorf("%w: t must be unix seconds", ErrMalformed)
	}
	skew := now.Sub(time.Unix(sec, 0))
	if skew > tolerance || skew < -tolerance {
		return p, ErrExpired
	}
	return p, nil
}

// Verifier checks signatures under one secret.
type Verifier struct {
	Secret    []byte
	Tolerance time.Duration
	V1        V1Policy
}

// Verified describes an accepted signature.
type Verified struct {
	Scheme    string // SchemeV1 or SchemeV2
	Timestamp string
	// Key identifies what the MAC covers, whatever else the header
	// carries (padding, reordering, other candidates): the same signed
	// request always has the same key, for replay detection.
	Key string
}

// Precheck refuses a missing, malformed or stale header before the body
// is read, so unauthenticated clients cannot make the server buffer
// bodies, and a v1-only header on a request v1 cannot cover (its routing
// headers and query are known before the body). Verify still checks the MAC.
func (v *Verifier) Precheck(header string, r Request, now time.Time) error {
	p, err := parse(header, now, v.Tolerance)
	if err != nil {
		return err
	}
	if len(p.v2) == 0 {
		return v.v1Allowed(r)
	}
	return nil
}

func (v *Verifier) v1Allowed(r Request) error {
	if v.V1 == V1Refused {
		return ErrV1Refused
	}
	if hasRouting(r) {
		return ErrV1Routing
	}
	return nil
}

// Verify checks header against r at now. A timestamp more than the
// tolerance away from now, in either direction, is refused.
func (v *Verifier) Verify(header string, r Request, now time.Time) (Verified, error) {
	p, err := parse(header, now, v.Tolerance)
	if err != nil {
		return Verified{}, err
	}
	var candidates [][]byte
	var want []byte
	out := Verified{Timestamp: p.ts}
	if len(p.v2) > 0 {
		canonical := Canonical(p.ts, r)
		want = hmacOf(v.Secret, canonical)
		candidates = p.v2
		sum := sha256.Sum256(canonical)
		out.Scheme, out.Key = SchemeV2, SchemeV2+" "+hex.EncodeToString(sum[:])
	} else {
		if err := v.v1Allowed(r); err != nil {
			return Verified{}, err
		}
		want = v1MAC(v.Secret, p.ts, r.Body)
		candidates = p.v1
		sum := sha256.Sum256(r.Body)
		out.Scheme = SchemeV1
		out.Key = SchemeV1 + " " + strings.ToUpper(r.Method) + " " + r.Path + " " + p.ts + " " + hex.EncodeToString(sum[:])
	}
	if !anyEqual(candidates, want) {
		return Verified{}, ErrMismatch
	}
	return out, nil
}

// anyEqual compares want with every candidate in constant time and looks
// at all of them before answering, so neither timing nor the position of
// the matching value tells anything.
func anyEqual(candidates [][]byte, want []byte) bool {
	ok := 0
	for _, c := range candidates {
		ok |= boolInt(hmac.Equal(c, want))
	}
	return ok == 1
}

// Verify checks a v1-era header against body alone, as the receiver did
// before v2: for callers that know nothing of the request's routing. It
// accepts v1 MACs only and ignores v2 ones; new code uses a Verifier.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) (string, error) {
	p, err := parse(header, now, tolerance)
	if err != nil {
		return "", err
	}
	if len(p.v1) == 0 {
		return "", fmt.Errorf("%w: no v1 MAC", ErrMalformed)
	}
	if !anyEqual(p.v1, v1MAC(secret, p.ts, body)) {
		return "", ErrMismatch
	}
	return p.ts, nil
}

// Precheck is the v1-era shape and timestamp check, for callers that know
// nothing of the request's routing; new code uses Verifier.Precheck.
func Precheck(header string, now time.Time, tolerance time.Duration) error {
	_, err := parse(header, now, tolerance)
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Package signature signs and verifies request bodies with the
// X-Fastdeploy-Signature scheme: "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<raw body>">". The timestamp inside the MAC stops replays older than
// the tolerance; several v1 values may be sent while a secret is rotated.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
)

// Sign returns the header value for body signed at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// parsed is a header's timestamp and candidate MACs.
type parsed struct {
	ts         string
	candidates [][]byte
}

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
			return p, fmt.Errorf("%w: want t=<unix seconds>,v1=<hex>", ErrMalformed)
		}
		switch k {
		case "t":
			p.ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return p, fmt.Errorf("%w: v1 must be 64 hex digits", ErrMalformed)
			}
			p.candidates = append(p.candidates, sig)
		}
	}
	if p.ts == "" || len(p.candidates) == 0 {
		return p, fmt.Errorf("%w: want t=<unix seconds>,v1=<hex>", ErrMalformed)
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

// Precheck refuses a missing, malformed or stale header before the body
// is read, so unauthenticated clients cannot make the server buffer
// bodies. Verify still checks the MAC.
func Precheck(header string, now time.Time, tolerance time.Duration) error {
	_, err := parse(header, now, tolerance)
	return err
}

// Verify checks header against body at now. A timestamp more than tolerance
// away from now, in either direction, is refused. On success it returns the
// header's timestamp, which with the body identifies the signed request
// (for replay detection) whatever else the header carries.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) (string, error) {
	p, err := parse(header, now, tolerance)
	if err != nil {
		return "", err
	}
	want := mac(secret, p.ts, body)
	ok := 0
	for _, c := range p.candidates {
		ok |= boolInt(hmac.Equal(c, want))
	}
	if ok == 0 {
		return "", ErrMismatch
	}
	return p.ts, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

package fakefastdeploy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

var b64 = base64.RawURLEncoding

// signToken encodes claims as fastdeploy's create_access_token does: HS256,
// exp as whole seconds.
func signToken(secret []byte, claims map[string]any, exp time.Time) string {
	payload := map[string]any{}
	for k, v := range claims {
		payload[k] = v
	}
	payload["exp"] = exp.Unix()
	header := b64.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body, _ := json.Marshal(payload)
	signing := header + "." + b64.EncodeToString(body)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + b64.EncodeToString(mac.Sum(nil))
}

// SignToken makes a token the way fastdeploy's server does, for tests that
// need one the fake did not issue (an expired one, a wrong type).
func SignToken(secret []byte, claims map[string]any, exp time.Time) string {
	return signToken(secret, claims, exp)
}

// parseToken verifies a token as token_to_payload (python-jose) does:
// signature, algorithm HS256, not expired.
func parseToken(secret []byte, token string, now time.Time) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	rawHeader, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, errors.New("bad header")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(rawHeader, &header) != nil || header.Alg != "HS256" {
		return nil, errors.New("algorithm not allowed")
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("bad signature encoding")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errors.New("signature verification failed")
	}
	rawPayload, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, errors.New("bad payload")
	}
	var claims map[string]any
	dec := json.NewDecoder(strings.NewReader(string(rawPayload)))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return nil, errors.New("bad payload")
	}
	if exp, ok := claims["exp"]; ok {
		n, ok := exp.(json.Number)
		if !ok {
			return nil, errors.New("exp must be a number")
		}
		f, err := n.Float64()
		if err != nil {
			return nil, errors.New("exp must be a number")
		}
		if float64(now.Unix()) > f {
			return nil, errors.New("signature has expired")
		}
	}
	return claims, nil
}

package fastdeployreceiver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Errors of deployment token verification. None quotes the token.
var (
	errTokenMissing   = errors.New("bearer token missing")
	errTokenMalformed = errors.New("token malformed")
	errTokenAlgorithm = errors.New("token algorithm must be HS256")
	errTokenSignature = errors.New("token signature does not match")
	errTokenExpired   = errors.New("token expired")
	errTokenType      = errors.New("token is not a deployment token")
)

// deploymentClaims are the claims of a fastdeploy deployment JWT that
// matter here.
type deploymentClaims struct {
	Type       string      `json:"type"`
	Deployment json.Number `json:"deployment"`
	Exp        json.Number `json:"exp"`
}

// deploymentJWT is what a deployment JWT tells: the deployment (id in
// canonical decimal form) and when the token expires (zero when unsaid).
type deploymentJWT struct {
	id      string
	expires time.Time
}

// verifyDeploymentToken checks a fastdeploy deployment JWT (HS256, claims
// {"type": "deployment", "deployment": <int>, "exp": <unix seconds>}). A
// token without exp is refused: deployment tokens are meant to expire.
func verifyDeploymentToken(secret []byte, authorization string, now time.Time) (deploymentJWT, error) {
	parts, err := bearerTokenParts(authorization)
	if err != nil {
		return deploymentJWT{}, err
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return deploymentJWT{}, errTokenMalformed
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(header, &h) != nil {
		return deploymentJWT{}, errTokenMalformed
	}
	if h.Alg != "HS256" {
		return deploymentJWT{}, errTokenAlgorithm
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return deploymentJWT{}, errTokenMalformed
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return deploymentJWT{}, errTokenSignature
	}
	claims, id, err := decodeDeploymentClaims(parts[1])
	if err != nil {
		return deploymentJWT{}, err
	}
	exp, err := claims.Exp.Float64()
	if err != nil || claims.Exp == "" {
		return deploymentJWT{}, errTokenMalformed
	}
	expires := time.Unix(int64(exp), 0)
	if now.After(expires) {
		return deploymentJWT{}, errTokenExpired
	}
	return deploymentJWT{id: id, expires: expires}, nil
}

// deploymentTokenClaims reads a deployment JWT without verifying it. Only
// for a call fastdeploy's own server has already accepted, which verified
// the token.
func deploymentTokenClaims(authorization string) (deploymentJWT, error) {
	parts, err := bearerTokenParts(authorization)
	if err != nil {
		return deploymentJWT{}, err
	}
	claims, id, err := decodeDeploymentClaims(parts[1])
	if err != nil {
		return deploymentJWT{}, err
	}
	tok := deploymentJWT{id: id}
	if exp, err := claims.Exp.Float64(); err == nil {
		tok.expires = time.Unix(int64(exp), 0)
	}
	return tok, nil
}

// bearerTokenParts splits "Bearer <jwt>" into the JWT's three parts.
func bearerTokenParts(authorization string) ([]string, error) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, errTokenMissing
	}
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return nil, errTokenMalformed
	}
	return parts, nil
}

// decodeDeploymentClaims decodes a JWT payload and returns its claims and
// the deployment id in canonical decimal form.
func decodeDeploymentClaims(encodedPayload string) (deploymentClaims, string, error) {
	var claims deploymentClaims
	payload, err := base64.RawURLEncoding.DecodeString(encodedPayload)
	if err != nil {
		return claims, "", errTokenMalformed
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if dec.Decode(&claims) != nil {
		return claims, "", errTokenMalformed
	}
	if claims.Type != "deployment" {
		return claims, "", errTokenType
	}
	id, err := strconv.ParseInt(string(claims.Deployment), 10, 64)
	if err != nil {
		return claims, "", errTokenType
	}
	return claims, strconv.FormatInt(id, 10), nil
}

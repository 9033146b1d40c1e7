package sfsandbox

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	grantClientCredentials = "client_credentials"
	grantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

// parsePublicKey reads an RSA public key from an X.509 certificate, a PKIX
// public key or a PKCS#1 public key PEM block.
func parsePublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("jwt certificate: no PEM block found: give the connected app's X.509 certificate")
	}
	var key any
	var err error
	switch block.Type {
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			key = cert.PublicKey
		}
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("jwt certificate: PEM block %q is not a certificate or public key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("jwt certificate: %w", err)
	}
	rk, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("jwt certificate: key is not RSA: Salesforce's JWT bearer flow uses RS256")
	}
	return rk, nil
}

// oauthErr writes an OAuth error as Salesforce's token endpoint does.
func oauthErr(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// serveToken is POST /services/oauth2/token.
func (s *Sandbox) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		oauthErr(w, http.StatusBadRequest, "invalid_request", "must use HTTP POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthErr(w, http.StatusBadRequest, "invalid_request", "invalid request body")
		return
	}
	if s.outageRemaining() > 0 {
		writeErr(w, plainErr(http.StatusServiceUnavailable, "SERVER_UNAVAILABLE", "Server is temporarily unavailable. Please try again later."))
		return
	}
	switch r.PostForm.Get("grant_type") {
	case grantClientCredentials:
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if s.opts.ClientID == "" || !constEq(id, s.opts.ClientID) {
			oauthErr(w, http.StatusBadRequest, "invalid_client_id", "client identifier invalid")
			return
		}
		if !constEq(secret, s.opts.ClientSecret) {
			oauthErr(w, http.StatusBadRequest, "invalid_client", "invalid client credentials")
			return
		}
	case grantJWTBearer:
		if desc, code := s.verifyAssertion(r.PostForm.Get("assertion"), instanceURL(r)); desc != "" {
			oauthErr(w, http.StatusBadRequest, code, desc)
			return
		}
	case "":
		oauthErr(w, http.StatusBadRequest, "unsupported_grant_type", "grant type not supported")
		return
	default:
		oauthErr(w, http.StatusBadRequest, "unsupported_grant_type", "grant type not supported")
		return
	}
	token := s.newSession()
	inst := instanceURL(r)
	issued := strconv.FormatInt(time.Now().UnixMilli(), 10)
	idURL := inst + "/id/" + sandboxOrgID + "/" + sandboxUserID
	mac := hmac.New(sha256.New, []byte(s.opts.ClientSecret))
	mac.Write([]byte(idURL + issued))
	out := newOrdered()
	out.set("access_token", token)
	out.set("signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	out.set("scope", "api")
	out.set("instance_url", inst)
	out.set("id", idURL)
	out.set("token_type", "Bearer")
	out.set("issued_at", issued)
	writeJSON(w, http.StatusOK, out)
}

// verifyAssertion checks a JWT bearer assertion: RS256 signature by the
// configured certificate, iss = client ID, sub = the user, aud = a login
// URL, exp in the future. It returns Salesforce's error description and
// code, or "" when the assertion is good.
func (s *Sandbox) verifyAssertion(assertion, inst string) (desc, code string) {
	if s.rsaKey == nil {
		return "invalid assertion", "invalid_grant"
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(assertion, claims, func(*jwt.Token) (any, error) { return s.rsaKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired(), jwt.WithLeeway(0))
	if errors.Is(err, jwt.ErrTokenExpired) {
		return "expired authorization code", "invalid_grant"
	}
	if err != nil {
		return "invalid assertion", "invalid_grant"
	}
	iss, _ := claims.GetIssuer()
	if s.opts.ClientID == "" || iss != s.opts.ClientID {
		return "client identifier invalid", "invalid_client_id"
	}
	aud, _ := claims.GetAudience()
	okAud := false
	for _, a := range aud {
		a = strings.TrimSuffix(a, "/")
		if a == "https://login.salesforce.com" || a == "https://test.salesforce.com" || a == inst {
			okAud = true
		}
	}
	if !okAud {
		return "audience is invalid", "invalid_grant"
	}
	sub, _ := claims.GetSubject()
	if sub == "" || (s.opts.Username != "" && sub != s.opts.Username) {
		return "user hasn't approved this consumer", "invalid_grant"
	}
	return "", ""
}

func constEq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// instanceURL is the base URL the client reached the sandbox at.
func instanceURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Sandbox) newSession() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	token := sandboxOrgID[:15] + "!" + base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for t, exp := range s.sessions {
		if now.After(exp) {
			delete(s.sessions, t)
		}
	}
	s.sessions[token] = now.Add(s.opts.TokenTTL)
	return token
}

// validSession checks the Authorization header ("Bearer" or "OAuth").
func (s *Sandbox) validSession(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth")) {
		return false
	}
	token = strings.TrimSpace(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.sessions[token]
	return ok && time.Now().Before(exp)
}

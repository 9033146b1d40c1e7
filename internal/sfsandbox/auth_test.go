package sfsandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func selfSigned(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sandbox"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func postToken(t *testing.T, base string, form url.Values) (int, map[string]string) {
	t.Helper()
	resp, err := http.PostForm(base+"/services/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]string{}
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t, Options{})
	status, tok := postToken(t, e.srv.URL, url.Values{"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {testClientSecret}})
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	for _, k := range []string{"access_token", "instance_url", "id", "token_type", "issued_at"} {
		if tok[k] == "" {
			t.Errorf("token response lacks %s: %v", k, tok)
		}
	}
	if tok["instance_url"] != e.srv.URL || tok["token_type"] != "Bearer" {
		t.Errorf("instance_url %q token_type %q", tok["instance_url"], tok["token_type"])
	}
	status, out := postToken(t, e.srv.URL, url.Values{"grant_type": {"client_credentials"}, "client_id": {"other"}, "client_secret": {testClientSecret}})
	if status != 400 || out["error"] != "invalid_client_id" || out["error_description"] != "client identifier invalid" {
		t.Errorf("unknown client: %d %v", status, out)
	}
	status, out = postToken(t, e.srv.URL, url.Values{"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {"wrong"}})
	if status != 400 || out["error"] != "invalid_client" || out["error_description"] != "invalid client credentials" {
		t.Errorf("bad secret: %d %v", status, out)
	}
	status, out = postToken(t, e.srv.URL, url.Values{"grant_type": {"password"}})
	if status != 400 || out["error"] != "unsupported_grant_type" {
		t.Errorf("password grant: %d %v", status, out)
	}
}

func TestJWTBearer(t *testing.T) {
	key, cert := selfSigned(t)
	e := newEnv(t, Options{JWTCertificatePEM: cert, Username: "integration@example.com"})
	sign := func(k *rsa.PrivateKey, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": testClientID, "sub": "integration@example.com", "aud": "https://login.salesforce.com", "exp": time.Now().Add(3 * time.Minute).Unix()}
	}
	exchange := func(assertion string) (int, map[string]string) {
		return postToken(t, e.srv.URL, url.Values{"grant_type": {grantJWTBearer}, "assertion": {assertion}})
	}
	status, tok := exchange(sign(key, good()))
	if status != 200 || tok["access_token"] == "" || tok["instance_url"] != e.srv.URL {
		t.Fatalf("good assertion: %d %v", status, tok)
	}
	// The token works for API calls.
	e.token = tok["access_token"]
	e.expect(e.do("GET", v+"/limits", nil), 200, "")

	// The sandbox's own URL is an accepted audience too.
	c := good()
	c["aud"] = e.srv.URL
	if status, _ := exchange(sign(key, c)); status != 200 {
		t.Errorf("own audience: %d", status)
	}

	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	cases := []struct {
		name      string
		assertion string
		code      string
		desc      string
	}{
		{"wrong key", sign(otherKey, good()), "invalid_grant", "invalid assertion"},
		{"garbage", "not.a.jwt", "invalid_grant", "invalid assertion"},
		{"wrong issuer", sign(key, func() jwt.MapClaims { c := good(); c["iss"] = "x"; return c }()), "invalid_client_id", "client identifier invalid"},
		{"wrong audience", sign(key, func() jwt.MapClaims { c := good(); c["aud"] = "https://evil.example"; return c }()), "invalid_grant", "audience is invalid"},
		{"wrong subject", sign(key, func() jwt.MapClaims { c := good(); c["sub"] = "someone@else"; return c }()), "invalid_grant", "user hasn't approved this consumer"},
		{"expired", sign(key, func() jwt.MapClaims { c := good(); c["exp"] = time.Now().Add(-time.Hour).Unix(); return c }()), "invalid_grant", "expired authorization code"},
		{"no expiry", sign(key, func() jwt.MapClaims { c := good(); delete(c, "exp"); return c }()), "invalid_grant", "invalid assertion"},
	}
	for _, tc := range cases {
		status, out := exchange(tc.assertion)
		if status != 400 || out["error"] != tc.code || out["error_description"] != tc.desc {
			t.Errorf("%s: %d %v, want %s/%s", tc.name, status, out, tc.code, tc.desc)
		}
	}
	// HS256 must be refused even if signed with something key-like.
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, good()).SignedString([]byte("secret"))
	if status, out := exchange(hs); status != 400 || out["error_description"] != "invalid assertion" {
		t.Errorf("HS256: %d %v", status, out)
	}
}

func TestJWTDisabledWithoutCertificate(t *testing.T) {
	e := newEnv(t, Options{})
	status, out := postToken(t, e.srv.URL, url.Values{"grant_type": {grantJWTBearer}, "assertion": {"x.y.z"}})
	if status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("%d %v", status, out)
	}
}

func TestNewRejectsBadCertificate(t *testing.T) {
	if _, err := New(Options{JWTCertificatePEM: []byte("nope")}); err == nil || !strings.Contains(err.Error(), "PEM") {
		t.Fatalf("err = %v", err)
	}
}

func TestSessions(t *testing.T) {
	e := newEnv(t, Options{})
	const invalid = `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`
	e.expect(e.do("GET", v+"/limits", nil), 200, "")
	e.sb.ExpireSessions()
	e.expect(e.do("GET", v+"/limits", nil), 401, invalid)
	e.token = "00Dbogus!token"
	e.expect(e.do("GET", v+"/sobjects", nil), 401, invalid)
	e.token = e.login()
	e.expect(e.do("GET", v+"/limits", nil), 200, "")
}

func TestTokenTTL(t *testing.T) {
	e := newEnv(t, Options{TokenTTL: time.Nanosecond})
	// The token issued at login is already past its TTL.
	e.expect(e.do("GET", v+"/limits", nil), 401, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`)
}

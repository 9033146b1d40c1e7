package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/activities/crm/salesforce"
	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/mappings"
)

// TestSandboxCommandAcceptsJWTBearer starts `sandbox salesforce` with
// --jwt-cert and --jwt-username and logs in to it with webcaresync's
// Salesforce connector configured for the JWT bearer flow, as against a
// real org: the key matching the certificate is accepted, another key or
// another user is refused.
func TestSandboxCommandAcceptsJWTBearer(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // no ./webcaresync.yaml from elsewhere
	const user = "integration@acme.example"
	key, certPEM := selfSignedCert(t)
	certFile := filepath.Join(dir, "connected-app.crt")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := closedAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Execute(ctx, []string{"sandbox", "salesforce", "--data-dir", dir, "--addr", addr, "--jwt-cert", certFile, "--jwt-username", user}, &out, &errOut)
	}()
	stopped := false
	stop := func() int {
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { stop() })
	loginURL := "http://" + addr
	waitListening(t, loginURL, done)

	cfg := config.Defaults()
	cfg.DataDir = dir
	secrets, _, err := config.EnsureDevSecrets(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	login := func(k *rsa.PrivateKey, username string) error {
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
		conn, err := salesforce.New(salesforce.Config{LoginURL: loginURL, ClientID: secrets.SandboxClientID, Username: username, PrivateKeyPEM: keyPEM}, mappings.Default(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return conn.Probe(context.Background())
	}
	if err := login(key, user); err != nil {
		t.Fatalf("JWT bearer login with the certificate's key: %v", err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := login(other, user); crm.KindOf(err) != crm.Permanent || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("a key the sandbox does not trust: %v, want a permanent invalid_grant", err)
	}
	if err := login(key, "someone.else@acme.example"); crm.KindOf(err) != crm.Permanent || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("another user than --jwt-username: %v, want a permanent invalid_grant", err)
	}
	if code := stop(); code != 0 {
		t.Fatalf("the sandbox exited %d on stop; stderr %q", code, errOut.String())
	}
	if !strings.Contains(out.String(), "JWT bearer grant") || strings.Contains(out.String(), user) {
		t.Errorf("the start line should announce the JWT bearer grant without the username:\n%s", out.String())
	}
}

// TestSandboxCommandJWTFlagsNeedACertificate refuses a username without a
// certificate and a certificate file that holds none, with one line each.
func TestSandboxCommandJWTFlagsNeedACertificate(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	notACert := filepath.Join(dir, "not-a-cert.pem")
	if err := os.WriteFile(notACert, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--jwt-username", "integration@acme.example"}, "--jwt-username needs --jwt-cert"},
		{[]string{"--jwt-cert", filepath.Join(dir, "missing.crt")}, "cannot read the --jwt-cert file"},
		{[]string{"--jwt-cert", notACert}, "certificate"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"sandbox", "salesforce", "--data-dir", dir, "--addr", closedAddr(t)}, c.args...)
		// A sandbox that started anyway stops when the context ends and
		// exits 0, which fails the test instead of hanging it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code := Execute(ctx, args, &out, &errOut)
		cancel()
		msg := strings.TrimRight(errOut.String(), "\n")
		if code == 0 || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("%v: exit %d, stderr %q; want non-zero and one line saying %q", c.args, code, msg, c.want)
		}
	}
}

// waitListening waits until the sandbox answers its versions list, or
// fails the test when the command exits first.
func waitListening(t *testing.T, base string, done <-chan int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case code := <-done:
			t.Fatalf("the sandbox command exited %d before it listened", code)
		default:
		}
		resp, err := http.Get(base + "/services/data/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sandbox did not answer on %s: %v", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// selfSignedCert makes an RSA key and a self-signed certificate for it, as
// for a connected app's JWT bearer flow.
func selfSignedCert(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webcaresync"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

package privacy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

const codecToken = "tok-0123456789abcdef0123456789abcdef"

func codecServer(t *testing.T, tk *testKeys) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(CodecHandler(NewCodec(tk.kr), TokenAuth(codecToken)))
	t.Cleanup(srv.Close)
	return srv
}

func payloadsJSON(t *testing.T, ps ...*commonpb.Payload) []byte {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(t *testing.T, url string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func decodeResponse(t *testing.T, body []byte) []*commonpb.Payload {
	t.Helper()
	var ps commonpb.Payloads
	if err := protojson.Unmarshal(body, &ps); err != nil {
		t.Fatalf("response %s: %v", body, err)
	}
	return ps.Payloads
}

func TestCodecEndpoint(t *testing.T) {
	tk := newTestKeys(t)
	srv := codecServer(t, tk)
	dc := NewDataConverter(tk.kr)
	live, err := dc.WithKeyID("conv-live").ToPayload(pii)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.kr.DataKeyFor(context.Background(), "conv-gone", "subject-gone"); err != nil {
		t.Fatal(err)
	}
	gone, err := dc.WithKeyID("conv-gone").ToPayload(pii)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.kr.Destroy(context.Background(), "subject-gone"); err != nil {
		t.Fatal(err)
	}
	body := payloadsJSON(t, live, gone)

	for name, hdr := range map[string]map[string]string{
		"no auth":      nil,
		"wrong bearer": {"Authorization": "Bearer nope"},
		"wrong header": {TokenHeader: "nope"},
	} {
		resp, out := post(t, srv.URL+"/decode", body, hdr)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.StatusCode)
		}
		if bytes.Contains(out, []byte(pii.Email)) {
			t.Errorf("%s: 401 body leaks data", name)
		}
	}

	for name, tc := range map[string]struct {
		path string
		hdr  map[string]string
	}{
		"bearer":     {"/decode", map[string]string{"Authorization": "Bearer " + codecToken}},
		"header":     {"/decode", map[string]string{TokenHeader: codecToken}},
		"cookie":     {"/decode", map[string]string{"Cookie": TokenCookie + "=" + codecToken}},
		"path token": {"/codec/" + codecToken + "/decode", nil},
	} {
		resp, out := post(t, srv.URL+tc.path, body, tc.hdr)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", name, resp.StatusCode, out)
		}
		ps := decodeResponse(t, out)
		if len(ps) != 2 {
			t.Fatalf("%s: %d payloads back", name, len(ps))
		}
		var m message
		if err := converter.GetDefaultDataConverter().FromPayload(ps[0], &m); err != nil || m != pii {
			t.Fatalf("%s: live payload decoded to %+v, %v", name, m, err)
		}
		var marker ErasedMarker
		if err := json.Unmarshal(ps[1].Data, &marker); err != nil || !marker.Erased || marker.KeyID != "conv-gone" {
			t.Fatalf("%s: erased payload decoded to %s", name, ps[1].Data)
		}
	}

	// Encode through the endpoint, decode in process.
	plain, _ := converter.GetDefaultDataConverter().ToPayload("from the UI")
	resp, out := post(t, srv.URL+"/encode", payloadsJSON(t, plain), map[string]string{"Authorization": "Bearer " + codecToken})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("encode: status %d: %s", resp.StatusCode, out)
	}
	enc := decodeResponse(t, out)
	if len(enc) != 1 || !isEncrypted(enc[0]) || bytes.Contains(out, []byte("from the UI")) {
		t.Fatalf("encode returned %s", out)
	}
	var s string
	if err := dc.FromPayload(enc[0], &s); err != nil || s != "from the UI" {
		t.Fatalf("decode of endpoint-encoded payload = %q, %v", s, err)
	}
}

func TestCodecEndpointCORS(t *testing.T) {
	tk := newTestKeys(t)
	srv := codecServer(t, tk)

	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	req.Header.Set("Origin", "http://127.0.0.1:8233")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-namespace")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("preflight status %d, want 204", resp.StatusCode)
	}
	h := resp.Header
	if h.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" || h.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "X-Namespace") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight headers = %v", h)
	}

	req, _ = http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("foreign origin allowed: %q", got)
	}

	custom := httptest.NewServer(CodecHandler(NewCodec(tk.kr), TokenAuth(codecToken), WithAllowedOrigins("https://temporal.example.com")))
	defer custom.Close()
	resp, _ = post(t, custom.URL+"/decode", payloadsJSON(t), map[string]string{"Origin": "https://temporal.example.com", "Authorization": "Bearer " + codecToken})
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://temporal.example.com" {
		t.Fatalf("configured origin not allowed: %v", resp.Header)
	}
}

func TestUIOrigins(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"http://127.0.0.1:41234", []string{"http://127.0.0.1:41234", "http://localhost:41234", "http://[::1]:41234"}},
		{"http://localhost:8233/", []string{"http://localhost:8233", "http://127.0.0.1:8233", "http://[::1]:8233"}},
		{"http://[::1]:8233", []string{"http://[::1]:8233", "http://127.0.0.1:8233", "http://localhost:8233"}},
		{"http://127.0.0.1", []string{"http://127.0.0.1", "http://localhost", "http://[::1]"}},
		{"https://temporal.example.com", []string{"https://temporal.example.com"}},
		{"http://10.0.0.5:8233", []string{"http://10.0.0.5:8233"}},
	}
	for _, c := range cases {
		if got := UIOrigins(c.in); !slices.Equal(got, c.want) {
			t.Errorf("UIOrigins(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestCodecEndpointCORSLocalhost is the preflight a browser sends when a
// person opens the dev UI as http://localhost:PORT while the server printed
// http://127.0.0.1:PORT: both must be allowed, or the UI shows "Codec Server
// could not connect".
func TestCodecEndpointCORSLocalhost(t *testing.T) {
	tk := newTestKeys(t)
	srv := httptest.NewServer(CodecHandler(NewCodec(tk.kr), TokenAuth(codecToken), WithAllowedOrigins(UIOrigins("http://127.0.0.1:41234")...)))
	defer srv.Close()
	for _, origin := range []string{"http://127.0.0.1:41234", "http://localhost:41234"} {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/"+codecToken+"/decode?preserveStorageRefs=true", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("preflight from %s: Access-Control-Allow-Origin = %q", origin, got)
		}
	}
	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	req.Header.Set("Origin", "http://localhost:8233")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("an origin on another port was allowed: %q", got)
	}
}

func TestCodecEndpointRejectsBadInput(t *testing.T) {
	tk := newTestKeys(t)
	srv := codecServer(t, tk)
	auth := map[string]string{"Authorization": "Bearer " + codecToken}
	for name, body := range map[string]string{
		"not json":     "{",
		"bad key id":   `{"payloads":[{"metadata":{"encoding":"` + b64(EncodingEncrypted) + `","webcaresync-key-id":"` + b64("a b") + `"},"data":"AAAA"}]}`,
		"short cipher": `{"payloads":[{"metadata":{"encoding":"` + b64(EncodingEncrypted) + `","webcaresync-key-id":"` + b64(SystemKeyID) + `"},"data":"AAAA"}]}`,
	} {
		if name == "short cipher" {
			if _, err := tk.kr.DataKeyFor(context.Background(), SystemKeyID, ""); err != nil {
				t.Fatal(err)
			}
		}
		resp, out := post(t, srv.URL+"/decode", []byte(body), auth)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d (%s), want 400", name, resp.StatusCode, out)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/decode", nil)
	req.Header.Set("Authorization", "Bearer "+codecToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET status %d, want 405", resp.StatusCode)
	}
	if TokenAuth("")(httptest.NewRequest(http.MethodPost, "/decode", nil)) {
		t.Fatal("TokenAuth with no token accepted a request")
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

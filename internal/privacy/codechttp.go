package privacy

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// Token locations accepted by TokenAuth.
const (
	// TokenHeader is an alternative to "Authorization: Bearer" for scripts.
	TokenHeader = "X-Webcaresync-Token"
	// TokenCookie is the cookie TokenAuth accepts, for a Temporal UI
	// configured with codec.includeCredentials.
	TokenCookie = "webcaresync_codec_token"
)

// DefaultUIOrigins are the origins of the embedded Temporal Web UI in dev.
var DefaultUIOrigins = []string{"http://127.0.0.1:8233", "http://localhost:8233"}

// UIOrigins returns the browser origins of a Web UI served at uiAddress
// (such as "http://127.0.0.1:8233"), for WithAllowedOrigins. For a loopback
// host it returns the same scheme and port under 127.0.0.1, localhost and
// [::1] too: people open "localhost:8233" as often as the address the server
// printed, and the UI shows "Codec Server could not connect" for an origin
// the codec endpoint does not allow. Other hosts are returned as given.
func UIOrigins(uiAddress string) []string {
	u, err := url.Parse(strings.TrimRight(uiAddress, "/"))
	if err != nil || u.Host == "" {
		return []string{uiAddress}
	}
	origin := u.Scheme + "://" + u.Host
	host, port := u.Hostname(), u.Port()
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return []string{origin}
	}
	hostPort := func(h string) string {
		if port != "" {
			return net.JoinHostPort(h, port)
		}
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	out := []string{origin}
	for _, h := range []string{"127.0.0.1", "localhost", "::1"} {
		if o := u.Scheme + "://" + hostPort(h); !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// maxCodecBody bounds a codec request body. The SDK handler reads the whole
// body into memory.
const maxCodecBody = 8 << 20

// CodecHandlerOption configures CodecHandler.
type CodecHandlerOption func(*codecHandlerConfig)

type codecHandlerConfig struct {
	origins []string
}

// WithAllowedOrigins sets the browser origins (scheme://host:port of the
// Temporal Web UI) allowed to call the endpoint. Default: DefaultUIOrigins.
func WithAllowedOrigins(origins ...string) CodecHandlerOption {
	return func(c *codecHandlerConfig) { c.origins = origins }
}

// CodecHandler serves the Temporal codec server protocol (POST …/encode and
// POST …/decode, payloads as protobuf JSON) for the Temporal Web UI and CLI.
// Every request except a CORS preflight must pass authFn, or it gets 401.
// Mount it under any prefix: only the last path element is looked at.
//
// What the Temporal Web UI sends (documented in its configuration reference,
// keys codec.endpoint, codec.passAccessToken, codec.includeCredentials): a
// POST to <endpoint>/decode with Content-Type: application/json and
// X-Namespace; "Authorization: Bearer <the UI's OIDC access token>" only when
// passAccessToken is set (and the UI only does that for an https endpoint);
// and its cookies for the endpoint's site only when includeCredentials is
// set. The UI cannot add a query string (it appends "/decode" to the
// endpoint), so "?token=" does not work from the UI; a token as a path
// element does (see TokenAuth). The CLI sends --codec-auth as the
// Authorization header.
//
// Browsers call the endpoint cross-origin, so the handler answers CORS
// preflights and echoes an allowed Origin with credentials allowed.
func CodecHandler(codec converter.PayloadCodec, authFn func(*http.Request) bool, opts ...CodecHandlerOption) http.Handler {
	cfg := codecHandlerConfig{origins: DefaultUIOrigins}
	for _, o := range opts {
		o(&cfg)
	}
	inner := converter.NewPayloadCodecHTTPHandler(codec)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		if origin := r.Header.Get("Origin"); origin != "" && slices.Contains(cfg.origins, origin) {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace, "+TokenHeader)
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Set("Access-Control-Max-Age", "600")
		}
		h.Set("Cache-Control", "no-store")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if authFn == nil || !authFn(r) {
			h.Set("WWW-Authenticate", `Bearer realm="webcaresync codec"`)
			http.Error(w, "unauthorized: send the codec token as Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost {
			h.Set("Allow", "POST, OPTIONS")
			http.Error(w, "method not allowed: use POST", http.StatusMethodNotAllowed)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxCodecBody)
		inner.ServeHTTP(w, r)
	})
}

// TokenAuth returns an authFn for CodecHandler that accepts a request
// carrying one of the tokens as "Authorization: Bearer <token>", in the
// X-Webcaresync-Token header, in the webcaresync_codec_token cookie, or as a
// path element (an endpoint such as http://127.0.0.1:8080/codec/<token>, which
// the dev Temporal UI can use without any login; anyone who can open that UI
// can then read the token from its settings, which is acceptable only on
// loopback). Comparisons are constant-time. Empty tokens are ignored.
func TokenAuth(tokens ...string) func(*http.Request) bool {
	var valid [][]byte
	for _, t := range tokens {
		if t != "" {
			valid = append(valid, []byte(t))
		}
	}
	match := func(s string) bool {
		if s == "" {
			return false
		}
		ok := 0
		for _, v := range valid {
			ok |= subtle.ConstantTimeCompare([]byte(s), v)
		}
		return ok == 1
	}
	return func(r *http.Request) bool {
		if len(valid) == 0 {
			return false
		}
		if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") && match(strings.TrimSpace(a[7:])) {
			return true
		}
		if match(r.Header.Get(TokenHeader)) {
			return true
		}
		if c, err := r.Cookie(TokenCookie); err == nil && match(c.Value) {
			return true
		}
		for _, seg := range strings.Split(r.URL.Path, "/") {
			if match(seg) {
				return true
			}
		}
		return false
	}
}

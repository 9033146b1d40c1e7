package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/store"
)

// dialTemporal connects to the frontend at address with webcaresync's data
// converter (per-subject encryption), failure converter (encrypted error
// messages), key-id propagation and Prometheus metrics. It fails fast with
// a message that says what to fix when Temporal is unreachable.
func dialTemporal(ctx context.Context, cfg config.Config, address string, kr *privacy.Keyring, reg prometheus.Registerer, log *zap.Logger) (client.Client, error) {
	dc := privacy.NewDataConverter(kr)
	opts := client.Options{
		HostPort:           address,
		Namespace:          cfg.Temporal.Namespace,
		DataConverter:      dc,
		FailureConverter:   privacy.NewFailureConverter(dc, privacy.FailureConverterOptions{}),
		ContextPropagators: []workflow.ContextPropagator{privacy.NewKeyIDPropagator()},
		MetricsHandler:     metrics.NewSDKHandler(reg),
		Logger:             newSDKLogger(log.Named("sdk")),
	}
	if cfg.Temporal.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.Temporal.APIKey)
	}
	if tlsCfg, err := temporalTLS(cfg.Temporal.TLS, cfg.Temporal.APIKey != ""); err != nil {
		return nil, err
	} else if tlsCfg != nil {
		opts.ConnectionOptions.TLS = tlsCfg
	}
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(dialCtx, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s: start it or set WEBCARESYNC_TEMPORAL_ADDRESS (%v)", address, errors.Unwrap(err))
	}
	return c, nil
}

// temporalTLS builds the mTLS configuration, or nil for plain text. An API
// key implies TLS, as Temporal Cloud requires.
func temporalTLS(t config.TLS, apiKey bool) (*tls.Config, error) {
	if t.CertFile == "" && t.CAFile == "" && !apiKey {
		return nil, nil
	}
	out := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load the Temporal client certificate (temporal.tls.cert_file, key_file): %w", err)
		}
		out.Certificates = []tls.Certificate{cert}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read temporal.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("temporal.tls.ca_file holds no PEM certificate")
		}
		out.RootCAs = pool
	}
	return out, nil
}

// codecHandler serves the codec endpoint for the Temporal Web UI and CLI,
// behind the admin token. It decodes live data and shows an "erased"
// marker for data whose key was destroyed.
func (a *App) codecHandler() http.Handler {
	var tokens []string
	for _, t := range []string{a.Secrets.AdminToken, a.Secrets.CodecToken} {
		if t != "" {
			tokens = append(tokens, t)
		}
	}
	opts := []privacy.CodecHandlerOption{}
	if a.Temporal != nil && a.Temporal.UIAddress() != "" {
		opts = append(opts, privacy.WithAllowedOrigins(privacy.UIOrigins(a.Temporal.UIAddress())...))
	}
	return privacy.CodecHandler(privacy.NewCodec(a.Keyring), privacy.TokenAuth(tokens...), opts...)
}

// keyStore adapts the store's data keys to the keyring's KeyStore.
type keyStore struct{ s store.Store }

func toPrivacy(k store.DataKey) privacy.DataKey {
	return privacy.DataKey{ID: k.ID, SubjectID: k.SubjectID, Wrapped: k.Wrapped, MasterKeyID: k.MasterKeyID, CreatedAt: k.CreatedAt, DestroyedAt: k.DestroyedAt}
}

func (k keyStore) PutDataKey(ctx context.Context, d privacy.DataKey) error {
	return k.s.PutDataKey(ctx, store.DataKey{ID: d.ID, SubjectID: d.SubjectID, Wrapped: d.Wrapped, MasterKeyID: d.MasterKeyID, CreatedAt: d.CreatedAt, DestroyedAt: d.DestroyedAt})
}

func (k keyStore) GetDataKey(ctx context.Context, id string) (privacy.DataKey, error) {
	d, err := k.s.GetDataKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return privacy.DataKey{}, privacy.ErrKeyNotFound
	}
	return toPrivacy(d), err
}

func (k keyStore) DataKeysBySubject(ctx context.Context, subjectID string) ([]privacy.DataKey, error) {
	return convertKeys(k.s.DataKeysBySubject(ctx, subjectID))
}

func (k keyStore) AssignDataKeys(ctx context.Context, keyIDs []string, subjectID string) error {
	return k.s.AssignDataKeys(ctx, keyIDs, subjectID)
}

func (k keyStore) DestroyDataKeys(ctx context.Context, subjectID string) (int, error) {
	return k.s.DestroyDataKeys(ctx, subjectID)
}

func (k keyStore) DataKeysByMaster(ctx context.Context, masterKeyID string, limit int) ([]privacy.DataKey, error) {
	return convertKeys(k.s.DataKeysByMaster(ctx, masterKeyID, limit))
}

func (k keyStore) RewrapDataKey(ctx context.Context, id string, wrapped []byte, masterKeyID string) error {
	return k.s.RewrapDataKey(ctx, id, wrapped, masterKeyID)
}

func convertKeys(ks []store.DataKey, err error) ([]privacy.DataKey, error) {
	out := make([]privacy.DataKey, len(ks))
	for i, k := range ks {
		out[i] = toPrivacy(k)
	}
	return out, err
}

var _ privacy.KeyStore = keyStore{}

// sdkLogger adapts zap to the Temporal SDK's logger. The SDK logs workflow
// and activity IDs, which are opaque; webcaresync never logs payloads.
type sdkLogger struct{ s *zap.SugaredLogger }

func newSDKLogger(l *zap.Logger) sdkLogger {
	if l.Core().Enabled(zap.InfoLevel) {
		l = l.WithOptions(zap.IncreaseLevel(zap.WarnLevel))
	}
	return sdkLogger{l.Sugar()}
}

func (l sdkLogger) Debug(msg string, kv ...any) { l.s.Debugw(msg, kv...) }
func (l sdkLogger) Info(msg string, kv ...any)  { l.s.Infow(msg, kv...) }
func (l sdkLogger) Warn(msg string, kv ...any)  { l.s.Warnw(msg, kv...) }
func (l sdkLogger) Error(msg string, kv ...any) { l.s.Errorw(msg, kv...) }

// Package sfsandbox is a local server that speaks Salesforce's REST API
// for the objects webcaresync uses (Account, Contact, Case, Task,
// Individual, SocialPersona, SocialPost and declared custom fields), the
// way LocalStack speaks AWS. It validates what Salesforce validates, answers
// with Salesforce's status codes and error bodies, enforces API limits, and
// lets tests inject latency, 5xx errors, outages and limit exhaustion.
package sfsandbox

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Options configures a Sandbox.
type Options struct {
	// DataDir is where the data snapshot lives. Default: "" (in memory).
	DataDir string
	// Wipe starts with no data, discarding any snapshot in DataDir.
	Wipe bool
	// ClientID and ClientSecret are the connected app's credentials for the
	// client-credentials grant. The JWT bearer grant's iss must equal
	// ClientID.
	ClientID, ClientSecret string
	// JWTCertificatePEM is the X.509 certificate (or PKIX public key) whose
	// key verifies JWT bearer assertions. Default: nil (JWT bearer disabled).
	JWTCertificatePEM []byte
	// Username is the JWT sub that is accepted. Default: "" (any).
	Username string
	// TokenTTL is how long an access token stays valid. Default: 2h.
	TokenTTL time.Duration
	// DailyBudget is the DailyApiRequests limit. Default: 100000.
	DailyBudget int
	// ConcurrencyCap is how many API requests may be in flight at once.
	// Default: 25 (0 means the default, <0 unlimited).
	ConcurrencyCap int
	// Latency is added to every API call. Default: 0.
	Latency time.Duration
	// FailureRate is the fraction of API calls that fail with 500.
	// Default: 0.
	FailureRate float64
	// CustomFields declares custom fields (*__c) on the objects.
	CustomFields []CustomField
	// NoBulkHardDelete withholds the "Bulk API Hard Delete" permission
	// from the integration user, as Salesforce does by default: Bulk API
	// 2.0 ingest jobs with operation hardDelete answer 400
	// FEATURENOTENABLED. Default: false (granted).
	NoBulkHardDelete bool
	// NoEmptyRecycleBin makes emptyRecycleBin() refuse every record with
	// INSUFFICIENT_ACCESS_OR_READONLY, as Salesforce does for records in
	// another user's Recycle Bin when the user lacks "Modify All Data".
	// Default: false.
	NoEmptyRecycleBin bool
	// BulkJobDelay is how long a Bulk API 2.0 ingest job stays
	// InProgress after its upload completes. Default: 0 (processed when
	// it is closed).
	BulkJobDelay time.Duration
	// OnWrite, when set, is called for every record an API call leaves
	// created, updated or deleted, once the call's transaction is final and
	// while no other call can see the data: the record becomes visible to
	// readers when OnWrite returns. fields is the stored record (canonical
	// field names); OnWrite must not modify or keep it, and must be quick.
	// The bench uses it to timestamp when a message reaches the CRM.
	OnWrite func(object, id string, fields map[string]any)
	// Logger receives operator-relevant events only, never record data.
	// Default: nil (no logging).
	Logger *zap.Logger
}

// LoggedRequest is one entry of the sandbox's request log. It holds no
// query string, so SOQL filter values never appear in it.
type LoggedRequest struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
}

// Sandbox is a Salesforce-compatible REST API server. It is safe for
// concurrent use.
type Sandbox struct {
	opts     Options
	log      *zap.Logger
	objects  map[string]*objectDef // by lower-case name
	ordered  []*objectDef
	prefixes map[string]*objectDef
	st       *store
	stop     context.CancelFunc
	done     chan struct{}
	rsaKey   any

	mu          sync.Mutex
	sessions    map[string]time.Time
	latency     time.Duration
	failureRate float64
	outageUntil time.Time
	used        int
	usedDay     string
	inflight    int
	calls       map[string]int64
	total       int64
	reqLog      []LoggedRequest
	cursors     map[string]*cursor
	cursorOrder []string
	cursorSeq   uint64
	rnd         *rand.Rand

	noHardDelete bool
	noEmptyBin   bool
	jobDelay     time.Duration
	jobs         map[string]*ingestJob
	jobOrder     []string
	jobSeq       uint64
	deleteFaults map[string]*fieldError
}

const (
	minVersion     = 31
	maxVersion     = 62
	maxLoggedCalls = 10000
)

// New builds a sandbox from opts, loading persisted data from DataDir.
func New(opts Options) (*Sandbox, error) {
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 2 * time.Hour
	}
	if opts.DailyBudget <= 0 {
		opts.DailyBudget = 100000
	}
	if opts.ConcurrencyCap == 0 {
		opts.ConcurrencyCap = 25
	}
	if opts.FailureRate < 0 || opts.FailureRate > 1 {
		return nil, fmt.Errorf("sandbox failure rate %v: use a value between 0 and 1", opts.FailureRate)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Sandbox{
		opts:         opts,
		log:          log.Named("sfsandbox"),
		objects:      map[string]*objectDef{},
		prefixes:     map[string]*objectDef{},
		sessions:     map[string]time.Time{},
		latency:      opts.Latency,
		failureRate:  opts.FailureRate,
		calls:        map[string]int64{},
		cursors:      map[string]*cursor{},
		noHardDelete: opts.NoBulkHardDelete,
		noEmptyBin:   opts.NoEmptyRecycleBin,
		jobDelay:     max(opts.BulkJobDelay, 0),
		jobs:         map[string]*ingestJob{},
		deleteFaults: map[string]*fieldError{},
		rnd:          rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)),
		done:         make(chan struct{}),
	}
	s.ordered = standardObjects()
	for _, o := range s.ordered {
		s.objects[strings.ToLower(o.Name)] = o
		s.prefixes[o.KeyPrefix] = o
	}
	if err := addCustomFields(s.objects, opts.CustomFields); err != nil {
		return nil, err
	}
	if opts.JWTCertificatePEM != nil {
		key, err := parsePublicKey(opts.JWTCertificatePEM)
		if err != nil {
			return nil, err
		}
		s.rsaKey = key
	}
	st, err := newStore(opts.DataDir, opts.Wipe)
	if err != nil {
		return nil, err
	}
	s.st = st
	st.onWrite = opts.OnWrite
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go func() {
		defer close(s.done)
		// Flushing every second bounds what a SIGKILL can lose.
		st.run(ctx, time.Second, func(err error) { s.log.Error("snapshot failed", zap.Error(err)) })
	}()
	return s, nil
}

// Close stops the snapshot loop and writes a final snapshot.
func (s *Sandbox) Close() error {
	s.stopJobs()
	s.stop()
	<-s.done
	return s.st.flush()
}

func (s *Sandbox) object(name string) *objectDef { return s.objects[strings.ToLower(name)] }

// Handler returns the sandbox's HTTP handler: the OAuth endpoint, the REST
// API under /services/data and the admin API under /_sandbox.
func (s *Sandbox) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

// ListenAndServe serves on addr until ctx is done. instance_url in token
// responses is derived from each request's Host, so it always names the
// address the client reached.
func (s *Sandbox) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sandbox listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.log.Info("salesforce sandbox listening", zap.String("addr", ln.Addr().String()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Sandbox) serveHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	path := r.URL.Path
	defer func() { s.logRequest(r.Method, path, sw.status) }()
	switch {
	case path == "/services/oauth2/token":
		s.count(r.Method + " /services/oauth2/token")
		s.serveToken(sw, r)
	case path == "/services/data" || path == "/services/data/":
		s.count("GET /services/data/")
		s.serveVersions(sw, r)
	case strings.HasPrefix(path, "/services/data/"):
		s.serveAPI(sw, r)
	case strings.HasPrefix(path, "/services/Soap/u/"):
		s.serveSOAP(sw, r)
	case strings.HasPrefix(path, "/_sandbox/"):
		s.serveAdmin(sw, r)
	default:
		s.count(r.Method + " {unknown}")
		writeErr(sw, errNotFound)
	}
}

// serveAPI runs one REST API call through Salesforce's gates (session,
// version, daily limit, concurrency) and the injected faults.
func (s *Sandbox) serveAPI(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/services/data/")
	verSeg, sub, _ := strings.Cut(rest, "/")
	h, template, rerr := s.route(r.Method, verSeg, sub)
	s.count(r.Method + " /services/data/vXX.X" + template)
	w.Header().Set("Sforce-Limit-Info", s.limitInfo())

	if wait := s.outageRemaining(); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		writeErr(w, plainErr(http.StatusServiceUnavailable, "SERVER_UNAVAILABLE", "Server is temporarily unavailable. Please try again later."))
		return
	}
	if !s.validSession(r) {
		writeErr(w, errSession)
		return
	}
	version, verr := checkVersion(verSeg)
	if verr != nil {
		writeErr(w, verr)
		return
	}
	if !s.consume() {
		w.Header().Set("Sforce-Limit-Info", s.limitInfo())
		writeErr(w, errTotalRequests)
		return
	}
	w.Header().Set("Sforce-Limit-Info", s.limitInfo())
	switch s.admit(r) {
	case refusedConcurrent:
		writeErr(w, errConcurrent)
		return
	case refusedGone:
		return
	case refusedInjected:
		writeErr(w, plainErr(http.StatusInternalServerError, "UNKNOWN_EXCEPTION", injectedFailure))
		return
	}
	defer s.release()
	if rerr != nil {
		writeErr(w, rerr)
		return
	}
	ctx := context.WithValue(r.Context(), versionKey{}, version)
	h(w, r.WithContext(ctx))
}

type versionKey struct{}

// apiVersion returns the "vNN.N" of the call.
func apiVersion(r *http.Request) string {
	if v, ok := r.Context().Value(versionKey{}).(string); ok {
		return v
	}
	return fmt.Sprintf("v%d.0", maxVersion)
}

// checkVersion validates "vNN.N": retired versions answer 410, unknown
// ones 404.
func checkVersion(seg string) (string, *fieldError) {
	if !strings.HasPrefix(seg, "v") || !strings.HasSuffix(seg, ".0") {
		return "", errNotFound
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(seg, "v"), ".0"))
	if err != nil || n < 1 {
		return "", errNotFound
	}
	if n < minVersion {
		return "", plainErr(http.StatusGone, "API_VERSION_RETIRED", fmt.Sprintf("Version %d.0 of the REST API has been retired and is no longer available. Use API version %d.0 or later.", n, minVersion))
	}
	if n > maxVersion {
		return "", errNotFound
	}
	return seg, nil
}

// versionLabel names the Salesforce release of an API version.
func versionLabel(v int) string {
	k := maxVersion - v
	switch k % 3 {
	case 0:
		return fmt.Sprintf("Winter '%02d", 25-k/3)
	case 1:
		return fmt.Sprintf("Summer '%02d", 24-k/3)
	}
	return fmt.Sprintf("Spring '%02d", 24-k/3)
}

func (s *Sandbox) serveVersions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeErr(w, methodNotAllowed(r.Method, "GET", "HEAD"))
		return
	}
	out := []*ordered{}
	for v := minVersion; v <= maxVersion; v++ {
		o := newOrdered()
		o.set("label", versionLabel(v))
		o.set("url", fmt.Sprintf("/services/data/v%d.0", v))
		o.set("version", fmt.Sprintf("%d.0", v))
		out = append(out, o)
	}
	writeJSON(w, http.StatusOK, out)
}

func methodNotAllowed(method string, allowed ...string) *fieldError {
	return plainErr(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", fmt.Sprintf("HTTP Method '%s' not allowed. Allowed are %s", method, strings.Join(allowed, ",")))
}

type handlerFunc func(http.ResponseWriter, *http.Request)

// route maps a REST path below /services/data/vXX.X to its handler and the
// endpoint template used by the call counter.
func (s *Sandbox) route(method, version, sub string) (handlerFunc, string, *fieldError) {
	var segs []string
	for _, p := range strings.Split(strings.Trim(sub, "/"), "/") {
		if p == "" {
			continue
		}
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, "/{invalid}", errNotFound
		}
		segs = append(segs, u)
	}
	allow := func(tmpl string, hs map[string]handlerFunc) (handlerFunc, string, *fieldError) {
		if h, ok := hs[method]; ok {
			return h, tmpl, nil
		}
		var names []string
		for _, m := range []string{"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"} {
			if _, ok := hs[m]; ok {
				names = append(names, m)
			}
		}
		return nil, tmpl, methodNotAllowed(method, names...)
	}
	if len(segs) == 0 {
		return allow("/", map[string]handlerFunc{"GET": s.serveResources})
	}
	switch segs[0] {
	case "limits":
		if len(segs) == 1 {
			return allow("/limits", map[string]handlerFunc{"GET": s.serveLimits})
		}
	case "query", "queryAll":
		all := segs[0] == "queryAll"
		if len(segs) == 1 {
			return allow("/"+segs[0], map[string]handlerFunc{"GET": func(w http.ResponseWriter, r *http.Request) { s.serveQuery(w, r, all) }})
		}
		if len(segs) == 2 {
			loc := segs[1]
			return allow("/"+segs[0]+"/{locator}", map[string]handlerFunc{"GET": func(w http.ResponseWriter, r *http.Request) { s.serveQueryMore(w, r, loc) }})
		}
	case "jobs":
		if len(segs) < 2 || segs[1] != "ingest" {
			break
		}
		switch len(segs) {
		case 2:
			return allow("/jobs/ingest", map[string]handlerFunc{"POST": s.serveCreateJob})
		case 3:
			id := segs[2]
			return allow("/jobs/ingest/{jobId}", map[string]handlerFunc{
				"GET":    func(w http.ResponseWriter, r *http.Request) { s.serveJobInfo(w, r, id) },
				"PATCH":  func(w http.ResponseWriter, r *http.Request) { s.serveJobState(w, r, id) },
				"DELETE": func(w http.ResponseWriter, r *http.Request) { s.serveDeleteJob(w, r, id) },
			})
		case 4:
			id, kind := segs[2], segs[3]
			switch kind {
			case "batches":
				return allow("/jobs/ingest/{jobId}/batches", map[string]handlerFunc{"PUT": func(w http.ResponseWriter, r *http.Request) { s.serveUploadJobData(w, r, id) }})
			case "successfulResults", "failedResults", "unprocessedrecords":
				return allow("/jobs/ingest/{jobId}/"+kind, map[string]handlerFunc{"GET": func(w http.ResponseWriter, r *http.Request) { s.serveJobResults(w, r, id, kind) }})
			}
		}
	case "search":
		if len(segs) == 1 {
			return allow("/search", map[string]handlerFunc{"GET": s.serveSearch})
		}
	case "composite":
		if len(segs) == 1 {
			return allow("/composite", map[string]handlerFunc{"POST": s.serveComposite})
		}
		if segs[1] != "sobjects" {
			break
		}
		if len(segs) == 2 {
			return allow("/composite/sobjects", map[string]handlerFunc{
				"POST":   s.serveCollectionCreate,
				"PATCH":  s.serveCollectionUpdate,
				"DELETE": s.serveCollectionDelete,
			})
		}
		if len(segs) == 4 {
			obj := s.object(segs[2])
			if obj == nil {
				return nil, "/composite/sobjects/{sobject}/{field}", errNotFound
			}
			field := segs[3]
			return allow("/composite/sobjects/"+obj.Name+"/{field}", map[string]handlerFunc{
				"PATCH": func(w http.ResponseWriter, r *http.Request) { s.serveCollectionUpsert(w, r, obj, field) },
			})
		}
	case "sobjects":
		if len(segs) == 1 {
			return allow("/sobjects", map[string]handlerFunc{"GET": s.serveGlobalDescribe})
		}
		obj := s.object(segs[1])
		if obj == nil {
			return nil, "/sobjects/{sobject}", errNotFound
		}
		base := "/sobjects/" + obj.Name
		switch len(segs) {
		case 2:
			return allow(base, map[string]handlerFunc{
				"GET":  func(w http.ResponseWriter, r *http.Request) { s.serveObjectInfo(w, r, obj) },
				"POST": func(w http.ResponseWriter, r *http.Request) { s.serveCreate(w, r, obj) },
			})
		case 3:
			if segs[2] == "describe" {
				return allow(base+"/describe", map[string]handlerFunc{"GET": func(w http.ResponseWriter, r *http.Request) { s.serveDescribe(w, r, obj) }})
			}
			id := segs[2]
			return allow(base+"/{id}", map[string]handlerFunc{
				"GET":    func(w http.ResponseWriter, r *http.Request) { s.serveRetrieve(w, r, obj, id) },
				"PATCH":  func(w http.ResponseWriter, r *http.Request) { s.serveUpdate(w, r, obj, id) },
				"DELETE": func(w http.ResponseWriter, r *http.Request) { s.serveDelete(w, r, obj, id) },
			})
		case 4:
			field, value := segs[2], segs[3]
			return allow(base+"/{field}/{value}", map[string]handlerFunc{
				"GET":    func(w http.ResponseWriter, r *http.Request) { s.serveByExternalID(w, r, obj, field, value) },
				"PATCH":  func(w http.ResponseWriter, r *http.Request) { s.serveUpsert(w, r, obj, field, value) },
				"DELETE": func(w http.ResponseWriter, r *http.Request) { s.serveByExternalID(w, r, obj, field, value) },
			})
		}
	}
	return nil, "/{unknown}", errNotFound
}

func (s *Sandbox) serveResources(w http.ResponseWriter, r *http.Request) {
	v := "/services/data/" + apiVersion(r)
	out := newOrdered()
	for _, k := range []string{"composite", "jobs", "limits", "query", "queryAll", "search", "sobjects"} {
		out.set(k, v+"/"+k)
	}
	writeJSON(w, http.StatusOK, out)
}

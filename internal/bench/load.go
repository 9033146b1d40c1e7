package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webcaresync/webcaresync/activities/crm/salesforce"
	"github.com/webcaresync/webcaresync/internal/webhookclient"
	"github.com/webcaresync/webcaresync/schemas"
)

// postExtIDField is the SocialPost external id field of the default
// mapping, which the bench reads to tell its messages apart in the CRM.
const postExtIDField = "webcaresync_Id__c"

// load is one set of messages and what happened to each: sent, acked,
// visible in the CRM.
type load struct {
	convs, perConv int
	n              int
	extIdx         map[string]int // post external id -> message index

	sent    []int64 // unix nanos of the first attempt
	acked   []int64 // unix nanos of the 200, or 0
	visible []int64 // unix nanos the SocialPost was first visible, or 0
	failed  atomic.Int64

	mu        sync.Mutex
	records   map[int]map[string]bool // message index -> SocialPost record IDs
	nVisible  atomic.Int64
	nAcked    atomic.Int64
	firstSent atomic.Int64
}

// newLoad plans convs × perConv messages; run names the run so that the
// messages of two runs never share IDs.
func newLoad(run string, convs, perConv int) *load {
	l := &load{convs: convs, perConv: perConv, n: convs * perConv, records: map[int]map[string]bool{}}
	l.extIdx = make(map[string]int, l.n)
	l.sent = make([]int64, l.n)
	l.acked = make([]int64, l.n)
	l.visible = make([]int64, l.n)
	for k := range l.n {
		l.extIdx[salesforce.PostExternalID(schemas.ChannelGeneric, msgID(run, k))] = k
	}
	return l
}

func msgID(run string, k int) string { return run + "-m" + strconv.Itoa(k) }

// event is message k: messages are spread round-robin over the
// conversations, each conversation with its own customer. The text holds
// no contact details, so identity matching finds nothing to look up.
func event(run string, k, convs int) schemas.Event {
	c := k % convs
	return schemas.Event{
		Kind: schemas.KindMessage, Channel: schemas.ChannelGeneric,
		ConversationKey: run + "-c" + strconv.Itoa(c), Direction: schemas.Inbound, Visibility: schemas.Private,
		PlatformMessageID: msgID(run, k),
		Author:            schemas.Author{PlatformUserID: run + "-u" + strconv.Itoa(c)},
		Text:              "My parcel still has not arrived and the tracking page shows nothing new since Monday.",
		OccurredAt:        time.Now().UTC().Truncate(time.Second),
		Brand:             schemas.BrandAccount{ID: "bench-brand"},
	}
}

// onWrite is the sandbox observer: it timestamps the first time each
// message's SocialPost is visible and remembers every record ID written
// for it, to find duplicates.
func (l *load) onWrite(object, id string, fields map[string]any) {
	if object != "SocialPost" {
		return
	}
	ext, _ := fields[postExtIDField].(string)
	k, ok := l.extIdx[ext]
	if !ok {
		return
	}
	if deleted, _ := fields["IsDeleted"].(bool); deleted {
		return
	}
	now := time.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := l.records[k]
	if ids == nil {
		ids = map[string]bool{}
		l.records[k] = ids
		l.visible[k] = now
		l.nVisible.Add(1)
	}
	ids[id] = true
}

// send posts every message as its own signed webhook from senders
// goroutines, at rate messages a second (0: as fast as they can), and
// stops dispatching after maxDur (0: no limit). It returns how many
// messages were dispatched.
func (l *load) send(ctx context.Context, hooks *webhookclient.Client, run string, senders int, rate float64, maxDur time.Duration) int {
	jobs := make(chan int, senders)
	start := time.Now()
	l.firstSent.Store(start.UnixNano())
	dispatched := 0
	go func() {
		defer close(jobs)
		for k := range l.n {
			if rate > 0 {
				if d := time.Until(start.Add(time.Duration(float64(k) / rate * float64(time.Second)))); d > 0 {
					time.Sleep(d)
				}
			}
			if maxDur > 0 && time.Since(start) > maxDur {
				return
			}
			select {
			case jobs <- k:
				dispatched++
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				body, _ := json.Marshal(event(run, k, l.convs))
				l.sent[k] = time.Now().UnixNano()
				code, _, err := hooks.Post(ctx, "generic", body)
				if err != nil || code != http.StatusOK {
					l.failed.Add(1)
					continue
				}
				l.acked[k] = time.Now().UnixNano()
				l.nAcked.Add(1)
			}
		}()
	}
	wg.Wait()
	return dispatched
}

// progress prints acked and visible counts every interval until stop is
// closed.
func (l *load) progress(out io.Writer, every time.Duration, stop <-chan struct{}) {
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			fmt.Fprintf(out, "  %4.0fs: %d acked, %d visible in the CRM, %d failed\n", time.Since(start).Seconds(), l.nAcked.Load(), l.nVisible.Load(), l.failed.Load())
		}
	}
}

// waitVisible waits until every acked message is visible in the CRM, or
// timeout.
func (l *load) waitVisible(ctx context.Context, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for l.nVisible.Load() < l.nAcked.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// Figures are the measurements of one system under one load.
type Figures struct {
	// Messages is how many messages were sent.
	Messages int `json:"messages"`
	// MsgsPerS is messages made visible in the CRM per second, from the
	// first webhook sent to the last message visible (for the raw
	// SignalWithStart baseline: signals accepted per second).
	MsgsPerS float64 `json:"msgs_per_s"`
	// AckMsgsPerS is webhooks acknowledged per second.
	AckMsgsPerS float64 `json:"ack_msgs_per_s"`
	AckP50MS    float64 `json:"ack_p50_ms"`
	AckP99MS    float64 `json:"ack_p99_ms"`
	// E2E is webhook sent → SocialPost visible in the sandbox CRM.
	E2EP50MS float64 `json:"e2e_p50_ms,omitempty"`
	E2EP99MS float64 `json:"e2e_p99_ms,omitempty"`
	// ProcessedMsgsPerS is, for the raw SignalWithStart baseline, signals
	// processed by their workflows per second.
	ProcessedMsgsPerS float64 `json:"processed_msgs_per_s,omitempty"`
	CRMCalls          int64   `json:"crm_calls"`
	MsgsPerCRMCall    float64 `json:"msgs_per_crm_call"`
	RSSMB             float64 `json:"rss_mb"`
	// Failed counts webhooks that were not acknowledged after retries.
	Failed     int64 `json:"failed"`
	Lost       int   `json:"lost"`
	Duplicated int   `json:"duplicated"`
}

// figures computes the load's figures; dispatched is how many messages
// were sent.
func (l *load) figures(dispatched int, calls int64) Figures {
	f := Figures{Messages: dispatched, CRMCalls: calls, Failed: l.failed.Load()}
	first := l.firstSent.Load()
	var acks, e2e []float64
	var lastAck, lastVisible int64
	delivered := 0
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.n {
		if l.acked[k] != 0 {
			acks = append(acks, ms(l.acked[k]-l.sent[k]))
			lastAck = max(lastAck, l.acked[k])
			if l.visible[k] == 0 {
				f.Lost++
			}
		}
		if l.visible[k] != 0 {
			delivered++
			e2e = append(e2e, ms(max(l.visible[k]-l.sent[k], 0)))
			lastVisible = max(lastVisible, l.visible[k])
		}
		if len(l.records[k]) > 1 {
			f.Duplicated++
		}
	}
	if lastAck > first {
		f.AckMsgsPerS = round(float64(len(acks)) / (float64(lastAck-first) / 1e9))
	}
	if lastVisible > first {
		f.MsgsPerS = round(float64(delivered) / (float64(lastVisible-first) / 1e9))
	}
	f.AckP50MS, f.AckP99MS = percentile(acks, 50), percentile(acks, 99)
	f.E2EP50MS, f.E2EP99MS = percentile(e2e, 50), percentile(e2e, 99)
	if calls > 0 {
		f.MsgsPerCRMCall = round(float64(delivered) / float64(calls))
	}
	return f
}

// duplicatesIn counts the messages of l with more than one live
// SocialPost among records (the sandbox's Records), a check independent
// of the observer.
func (l *load) duplicatesIn(records []map[string]any) int {
	count := map[int]int{}
	for _, r := range records {
		ext, _ := r[postExtIDField].(string)
		if k, ok := l.extIdx[ext]; ok {
			count[k]++
		}
	}
	n := 0
	for _, c := range count {
		if c > 1 {
			n++
		}
	}
	return n
}

func ms(nanos int64) float64 { return float64(nanos) / 1e6 }

func round(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// percentile returns the p-th percentile (nearest rank) of vals, rounded
// to 0.1; 0 for none.
func percentile(vals []float64, p float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	i = min(max(i, 0), len(s)-1)
	return round(s[i])
}

// rssSampler records the process's peak resident set size while it runs
// and, given a path, writes a heap profile there at the peak.
type rssSampler struct {
	peak    atomic.Int64
	profile string
	err     error
	stop    chan struct{}
	done    chan struct{}
}

func startRSS(profile string) *rssSampler {
	s := &rssSampler{profile: profile, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		var profiled int64
		for {
			v := rssBytes()
			if v > s.peak.Load() {
				s.peak.Store(v)
			}
			if s.profile != "" && s.err == nil && v > profiled+profiled/10 {
				profiled = v
				s.err = writeHeapProfile(s.profile)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// peakMB stops the sampler and returns the peak in MiB, and the error of
// writing the heap profile, if any.
func (s *rssSampler) peakMB() (float64, error) {
	close(s.stop)
	<-s.done
	return round(float64(s.peak.Load()) / (1 << 20)), s.err
}

// rssBytes reads the resident set size from /proc (0 where there is none).
func rssBytes() int64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(raw))
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// machine describes where the bench ran.
func machine() string {
	model := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs", model, numCPU())
}

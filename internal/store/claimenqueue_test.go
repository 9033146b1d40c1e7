package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/store/storetest"
)

// entry builds an inbox entry whose payload lists its keys.
func entry(conv string, keys ...string) store.InboxEntry {
	e := store.InboxEntry{Item: store.InboxItem{ConversationID: conv, KeyID: conv, Payload: []byte(strings.Join(keys, ","))}}
	for _, k := range keys {
		e.Claims = append(e.Claims, store.EventClaim{Key: k, ConversationID: conv})
	}
	return e
}

// unclaimed reports whether none of the keys is claimed, claiming and
// releasing them to find out.
func unclaimed(t *testing.T, s store.Store, keys ...string) bool {
	t.Helper()
	fresh, err := s.ClaimEvents(ctx, keys)
	must(t, err)
	var mine []string
	for i, f := range fresh {
		if f {
			mine = append(mine, keys[i])
		}
	}
	must(t, s.ReleaseEvents(ctx, mine))
	return len(mine) == len(keys)
}

func drain(t *testing.T, s store.Store) []string {
	t.Helper()
	items, err := s.ClaimInbox(ctx, 1000)
	must(t, err)
	var out []string
	for _, it := range items {
		out = append(out, it.ConversationID+":"+string(it.Payload))
	}
	return out
}

func TestClaimEnqueueInbox(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		out, err := s.ClaimEnqueueInbox(ctx, []store.InboxEntry{entry("c1", "k1", "k2"), entry("c2", "k3")})
		must(t, err)
		want := [][]store.ClaimOutcome{{store.ClaimEnqueued, store.ClaimEnqueued}, {store.ClaimEnqueued}}
		if fmt.Sprint(out) != fmt.Sprint(want) {
			t.Fatalf("fresh entries: outcomes %v, want %v", out, want)
		}
		// A repeat is a duplicate and writes nothing; an entry with one
		// repeated key gives its fresh key back and writes nothing.
		out, err = s.ClaimEnqueueInbox(ctx, []store.InboxEntry{entry("c1", "k1"), entry("c2", "k3", "k4")})
		must(t, err)
		want = [][]store.ClaimOutcome{{store.ClaimDuplicate}, {store.ClaimDuplicate, store.ClaimRetry}}
		if fmt.Sprint(out) != fmt.Sprint(want) {
			t.Fatalf("repeats: outcomes %v, want %v", out, want)
		}
		if !unclaimed(t, s, "k4") {
			t.Fatal("the retry key k4 stayed claimed without its inbox item")
		}
		out, err = s.ClaimEnqueueInbox(ctx, []store.InboxEntry{entry("c2", "k4")})
		must(t, err)
		if out[0][0] != store.ClaimEnqueued {
			t.Fatalf("retry of k4: %v, want enqueued", out)
		}
		if got := drain(t, s); strings.Join(got, " ") != "c1:k1,k2 c2:k3 c2:k4" {
			t.Fatalf("inbox = %v, want c1:k1,k2 c2:k3 c2:k4", got)
		}
		if unclaimed(t, s, "k1") || unclaimed(t, s, "k4") {
			t.Fatal("enqueued keys are not claimed")
		}
		// The conversation is recorded with the claim, so ForgetEvents
		// erases it.
		if n, err := s.ForgetEvents(ctx, "c2"); err != nil || n != 2 {
			t.Fatalf("ForgetEvents(c2) = %d, %v; want 2", n, err)
		}
		if _, err := s.ClaimEnqueueInbox(ctx, []store.InboxEntry{entry("c", "")}); err == nil {
			t.Fatal("an empty key was accepted")
		}
		if out, err := s.ClaimEnqueueInbox(ctx, nil); err != nil || len(out) != 0 {
			t.Fatalf("no entries: %v, %v", out, err)
		}
	})
}

// TestClaimEnqueueInboxConcurrentDuplicates races callers whose entries
// share keys, each retrying what it is told to, and checks that every key
// ends up in exactly one inbox item and claimed once.
func TestClaimEnqueueInboxConcurrentDuplicates(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		for _, opts := range []store.Options{{}, {NoGroupCommit: true}} {
			s := b.Open(t, opts)
			// Both runs share the backend's data: keep their keys apart.
			p := fmt.Sprint(opts.NoGroupCommit)
			const callers = 12
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				enqueued = map[string]int{}
				errs     []error
			)
			for c := 0; c < callers; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Caller c sends k(c), k(c+1), k(c+2) of one conversation
					// and the shared key "all" in its own entry.
					pending := []store.InboxEntry{
						entry("g"+p, fmt.Sprint(p, "k", c), fmt.Sprint(p, "k", c+1), fmt.Sprint(p, "k", c+2)),
						entry("shared"+p, p+"all"),
					}
					for round := 0; len(pending) > 0 && round < 20; round++ {
						out, err := s.ClaimEnqueueInbox(ctx, pending)
						if err != nil {
							mu.Lock()
							errs = append(errs, err)
							mu.Unlock()
							return
						}
						var next []store.InboxEntry
						for i, e := range pending {
							var retry []string
							for j, o := range out[i] {
								switch o {
								case store.ClaimEnqueued:
									mu.Lock()
									enqueued[e.Claims[j].Key]++
									mu.Unlock()
								case store.ClaimRetry:
									retry = append(retry, e.Claims[j].Key)
								}
							}
							if len(retry) > 0 {
								next = append(next, entry(e.Item.ConversationID, retry...))
							}
						}
						pending = next
					}
				}()
			}
			wg.Wait()
			if len(errs) > 0 {
				t.Fatal(errs[0])
			}
			inInbox := map[string]int{}
			for _, it := range drain(t, s) {
				_, keys, _ := strings.Cut(it, ":")
				for _, k := range strings.Split(keys, ",") {
					inInbox[k]++
				}
			}
			var keys []string
			for c := 0; c < callers+2; c++ {
				keys = append(keys, fmt.Sprint(p, "k", c))
			}
			keys = append(keys, p+"all")
			for _, k := range keys {
				if enqueued[k] != 1 || inInbox[k] != 1 {
					t.Errorf("NoGroupCommit=%v: key %s reported enqueued %d times, in the inbox %d times; want 1 and 1", opts.NoGroupCommit, k, enqueued[k], inInbox[k])
				}
			}
			if len(inInbox) != len(keys) {
				t.Errorf("inbox holds keys %v", inInbox)
			}
			if fresh, _ := s.ClaimEvents(ctx, keys); slices.Contains(fresh, true) {
				t.Errorf("a key in the inbox is not claimed: %v", fresh)
			}
		}
	})
}

// TestClaimEnqueueInboxFailureLeavesNeither injects a crash between the
// claims and the inbox write, and a caller that gave up: in both cases
// neither the claims nor the items are stored, so the platform's retry is
// accepted.
func TestClaimEnqueueInboxFailureLeavesNeither(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		for _, noGroup := range []bool{false, true} {
			var crash sync.Once
			crashed := errors.New("injected crash")
			s := b.Open(t, store.Options{NoGroupCommit: noGroup, BeforeInboxWrite: func(context.Context) error {
				err := error(nil)
				crash.Do(func() { err = crashed })
				return err
			}})
			// Both runs share the backend's data: the first run's item is
			// leased by its drain, and the keys are told apart.
			base, _ := s.InboxDepth(ctx)
			x1, x2 := fmt.Sprint("x1", noGroup), fmt.Sprint("x2", noGroup)
			if _, err := s.ClaimEnqueueInbox(ctx, []store.InboxEntry{entry("c1", x1, x2)}); !errors.Is(err, crashed) {
				t.Fatalf("NoGroupCommit=%v: crash between claim and write: err = %v, want the injected crash", noGroup, err)
			}
			if n, _ := s.InboxDepth(ctx); n != base || !unclaimed(t, s, x1, x2) {
				t.Fatalf("NoGroupCommit=%v: after the crash depth = %d and the keys claimed = %v; want neither", noGroup, n, !unclaimed(t, s, x1, x2))
			}
			canceled, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := s.ClaimEnqueueInbox(canceled, []store.InboxEntry{entry("c1", x1, x2)}); !errors.Is(err, context.Canceled) {
				t.Fatalf("NoGroupCommit=%v: canceled caller: err = %v, want context.Canceled", noGroup, err)
			}
			if n, _ := s.InboxDepth(ctx); n != base || !unclaimed(t, s, x1, x2) {
				t.Fatalf("NoGroupCommit=%v: a canceled caller left depth %d or its keys claimed", noGroup, n)
			}
			// The retry is accepted as new.
			out, err := s.ClaimEnqueueInbox(ctx, []store.InboxEntry{entry("c1", x1, x2)})
			must(t, err)
			if out[0][0] != store.ClaimEnqueued || out[0][1] != store.ClaimEnqueued {
				t.Fatalf("NoGroupCommit=%v: retry after the crash: %v, want both enqueued", noGroup, out)
			}
			if got := drain(t, s); len(got) != 1 {
				t.Fatalf("NoGroupCommit=%v: inbox after the retry = %v, want one item", noGroup, got)
			}
		}
	})
}

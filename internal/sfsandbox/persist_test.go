package sfsandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	sb, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	id, err := sb.Seed("Contact", map[string]any{"LastName": "Kept"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}
	sb, err = New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	recs := sb.Records("Contact")
	if len(recs) != 1 || recs[0]["Id"] != id {
		t.Fatalf("after restart: %v", recs)
	}
	// New IDs continue after the persisted ones.
	id2, _ := sb.Seed("Contact", map[string]any{"LastName": "Next"})
	if id2 == id {
		t.Fatal("ID reused after restart")
	}
	sb.Close()

	sb, err = New(Options{DataDir: dir, Wipe: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(sb.Records("Contact")); n != 0 {
		t.Fatalf("wipe kept %d", n)
	}
	sb.Close()

	if err := os.WriteFile(filepath.Join(dir, "sfsandbox.json"), []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{DataDir: dir}); err == nil {
		t.Fatal("corrupt snapshot accepted")
	}
}

func TestSnapshotIsWrittenWhileRunning(t *testing.T) {
	dir := t.TempDir()
	sb, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if _, err := sb.Seed("Account", map[string]any{"Name": "Flushed"}); err != nil {
		t.Fatal(err)
	}
	// The background loop flushes within about a second; a process killed
	// after that keeps the record. Poll instead of sleeping a fixed time.
	path := filepath.Join(dir, "sfsandbox.json")
	for i := 0; ; i++ {
		b, err := os.ReadFile(path)
		if err == nil {
			var snap snapshot
			if json.Unmarshal(b, &snap) == nil && len(snap.Records) == 1 {
				return
			}
		}
		if i > 1000 {
			t.Fatal("no snapshot written")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestListenAndServeInstanceURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sb, err := New(Options{ClientID: "id", ClientSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.ListenAndServe(ctx, addr) }()
	var resp *http.Response
	for i := 0; ; i++ {
		resp, err = http.PostForm("http://"+addr+"/services/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}})
		if err == nil {
			break
		}
		if i > 500 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tok map[string]string
	_ = json.Unmarshal(b, &tok)
	if tok["instance_url"] != fmt.Sprintf("http://%s", addr) {
		t.Errorf("instance_url %q, want http://%s", tok["instance_url"], addr)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

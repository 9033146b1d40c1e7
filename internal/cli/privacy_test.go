package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrivacyScanFindsAndNeverPrints plants a person's details in a data
// dir: the scan exits 1 and names the file, without printing the values;
// after they are removed it exits 0.
func TestPrivacyScanFindsAndNeverPrints(t *testing.T) {
	dir := t.TempDir()
	const email, phone = "sanne.devries@example.nl", "+31612345678"
	db := filepath.Join(dir, "store.db")
	if err := os.WriteFile(db, []byte("header\x00"+email+"\x00bel 06-12345678 maar\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "clean.db"), []byte("nothing personal here"), 0o600); err != nil {
		t.Fatal(err)
	}
	scan := func() (int, string, string) {
		var out, errOut bytes.Buffer
		code := Execute(context.Background(), []string{"privacy", "scan", "--data-dir", dir, "--email", email, "--phone", phone}, &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, out, errOut := scan()
	if code != 1 {
		t.Fatalf("scan of a data dir holding the details exited %d, want 1; stdout %q stderr %q", code, out, errOut)
	}
	if !strings.Contains(out, "store.db @") || strings.Contains(out, "clean.db @") {
		t.Errorf("the report must place hits in store.db and only there:\n%s", out)
	}
	for _, v := range []string{email, strings.ToUpper(email), "devries", phone, "12345678"} {
		if strings.Contains(out+errOut, v) {
			t.Errorf("the scan printed the person's data (%q):\n%s%s", v, out, errOut)
		}
	}

	if err := os.WriteFile(db, []byte("header\x00erased\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := scan(); code != 0 {
		t.Fatalf("scan of a clean data dir exited %d; stdout %q stderr %q", code, out, errOut)
	}
}

// TestPrivacyScanNeedsSomethingToSearch refuses to run without a value.
func TestPrivacyScanNeedsSomethingToSearch(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Execute(context.Background(), []string{"privacy", "scan", "--data-dir", t.TempDir()}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "nothing to search for") {
		t.Fatalf("exit %d, stderr %q; want 1 and what to pass", code, errOut.String())
	}
}

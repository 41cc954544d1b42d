package runtime

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestStoredFilesNeverOverwritten: messages whose Message-IDs map to one file name (the
// same ID from two senders, or IDs that differ only in characters safeName drops) are
// each stored in a file of their own, and no temporary file is left beside them.
func TestStoredFilesNeverOverwritten(t *testing.T) {
	dir := t.TempDir()
	ids := []string{"abc.1", "abc1", "abc1", "../abc1"}
	want := map[string]string{}
	for i, id := range ids {
		f, err := createPartial(dir, safeName(id), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		body := "message " + string(rune('A'+i))
		if _, err := f.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
		name, err := f.commit()
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(name) != dir {
			t.Errorf("%q stored outside the store: %s", id, name)
		}
		want[name] = body
	}
	if len(want) != len(ids) {
		t.Fatalf("%d messages went to %d files: %v", len(ids), len(want), want)
	}
	for name, body := range want {
		got, err := os.ReadFile(name)
		if err != nil || string(got) != body {
			t.Errorf("%s holds %q (%v), want %q", name, got, err, body)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "abc1-4")); err != nil {
		t.Errorf("the fourth file is not abc1-4: %v", err)
	}
	// The mode a file created with 0644 has here (less the umask), not a temporary file's 0600.
	ref := filepath.Join(t.TempDir(), "ref")
	if err := os.WriteFile(ref, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	refInfo, _ := os.Stat(ref)
	if st, err := os.Stat(filepath.Join(dir, "abc1")); err != nil || st.Mode() != refInfo.Mode() {
		t.Errorf("abc1: mode %v (%v), want %v", st.Mode(), err, refInfo.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != len(ids) {
		t.Errorf("the store holds %d entries, want %d: %v", len(ents), len(ids), ents)
	}
}

// TestAbortedStoreLeavesNothing: a message written in part and then abandoned leaves no
// file in the store, under any name.
func TestAbortedStoreLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	f, err := createPartial(dir, "msg1", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("half a mess")); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() == "msg1" {
		t.Fatalf("while written, the store holds %v; want one temporary file, not msg1", ents)
	}
	f.abort(errors.New("the link failed"))
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("after the abort the store holds %v, want nothing", ents)
	}
}

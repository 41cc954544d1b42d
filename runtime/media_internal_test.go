package runtime

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStoredFilesNeverOverwritten: messages whose Message-IDs map to one file name (the
// same ID from two senders, or IDs that differ only in characters safeName drops) are
// each stored in a file of their own.
func TestStoredFilesNeverOverwritten(t *testing.T) {
	dir := t.TempDir()
	ids := []string{"abc.1", "abc1", "abc1", "../abc1"}
	want := map[string]string{}
	for i, id := range ids {
		f, err := createUnique(dir, safeName(id))
		if err != nil {
			t.Fatal(err)
		}
		body := "message " + string(rune('A'+i))
		if _, err := f.WriteString(body); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(f.Name()) != dir {
			t.Errorf("%q stored outside the store: %s", id, f.Name())
		}
		want[f.Name()] = body
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
}

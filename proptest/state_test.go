package proptest

import (
	"bytes"
	"testing"

	"github.com/cpmlink/cpmlink/fsm"
)

// TestSnapshotRoundTrip: at every step of a run, every role restored from its snapshot into
// a fresh instance snapshots the same, and the world restored from Save continues exactly
// as the original does.
func TestSnapshotRoundTrip(t *testing.T) {
	v, _ := fsm.VariantByName("fig5-cf-hop3")
	cfg := Config{Variant: v, Members: 3, PFBs: 2, Chunks: 2}
	w, err := NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	twin, _ := NewWorld(cfg)
	for step := 0; ; step++ {
		for i, r := range w.roles {
			snap := r.Snapshot(nil)
			fresh := fsm.New(r.Kind(), *r.Config(), v)
			if err := fresh.Restore(snap); err != nil {
				t.Fatalf("step %d, %s: %v", step, w.names[i], err)
			}
			if again := fresh.Snapshot(nil); !bytes.Equal(again, snap) {
				t.Fatalf("step %d, %s: snapshot does not survive a restore", step, w.names[i])
			}
		}
		if err := twin.Load(w.Save(nil)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(twin.Save(nil), w.Save(nil)) {
			t.Fatalf("step %d: the world does not survive Save/Load", step)
		}
		choices := w.Choices()
		if len(choices) == 0 {
			break
		}
		// Take the last choice in both: the same state must give the same successor.
		c := choices[len(choices)-1]
		if v1, v2 := w.Apply(c), twin.Apply(twin.Choices()[len(choices)-1]); v1 != nil || v2 != nil {
			t.Fatalf("step %d: %v / %v", step, v1, v2)
		}
		if !bytes.Equal(twin.Save(nil), w.Save(nil)) {
			t.Fatalf("step %d: the restored world went elsewhere", step)
		}
	}
	if v := w.quiescent(); v != nil {
		t.Fatal(v)
	}
}

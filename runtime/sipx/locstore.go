package sipx

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bindingsBucket holds one key per address of record; its value is the JSON
// list of the AOR's bindings.
var bindingsBucket = []byte("bindings")

// locationStore keeps a registrar's bindings in one bbolt file, so that a
// restarted registrar serves its users at once instead of answering 480 until
// each re-registers (RFC 3261 §10.3 leaves the location service's storage to
// the implementation).
type locationStore struct{ db *bolt.DB }

// storedBinding is a binding as written to the file.
type storedBinding struct {
	Contact string    `json:"contact"`
	Expires time.Time `json:"expires"`
	Updated time.Time `json:"updated"`
}

// openLocationStore opens (creating) the file and returns its unexpired
// bindings; expired ones are deleted from the file.
func openLocationStore(path string, now time.Time) (*locationStore, map[string][]binding, error) {
	// The timeout turns a file another registrar holds into an error rather
	// than a wait without end (bbolt locks the file).
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: location store %s: %w", ErrConfig, path, err)
	}
	out := map[string][]binding{}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bindingsBucket)
		if err != nil {
			return err
		}
		var drop [][]byte
		err = b.ForEach(func(k, v []byte) error {
			var sbs []storedBinding
			if err := json.Unmarshal(v, &sbs); err != nil {
				return fmt.Errorf("AOR %q: %w", k, err)
			}
			var live []binding
			for _, s := range sbs {
				if s.Expires.After(now) {
					live = append(live, binding{contact: s.Contact, expires: s.Expires, updated: s.Updated})
				}
			}
			if len(live) == 0 {
				drop = append(drop, append([]byte(nil), k...))
				return nil
			}
			out[string(k)] = live
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("%w: location store %s: %w", ErrConfig, path, err)
	}
	return &locationStore{db: db}, out, nil
}

// put replaces the bindings of aor (none: the AOR is deleted).
func (s *locationStore) put(aor string, bs []binding) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bindingsBucket)
		if len(bs) == 0 {
			return b.Delete([]byte(aor))
		}
		sbs := make([]storedBinding, len(bs))
		for i, x := range bs {
			sbs[i] = storedBinding{Contact: x.contact, Expires: x.expires, Updated: x.updated}
		}
		v, err := json.Marshal(sbs)
		if err != nil {
			return err
		}
		return b.Put([]byte(aor), v)
	})
}

func (e *Endpoint) closeStore() {
	if e.store != nil {
		e.storeMu.Lock()
		_ = e.store.db.Close()
		e.storeMu.Unlock()
	}
}

package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
)

// partialPrefix starts the name of a message being received. The file is renamed to its
// final name only once the whole message is in it and on disk, so that a name without
// the prefix always holds a complete message: a transfer cut halfway (the link dies,
// the node closes, the disk fills) leaves nothing that a reader of the store could take
// for a delivery. The leading dot keeps the file out of a plain ls while it grows.
const partialPrefix = ".partial-"

// storeFile is one message being written into a receiver's store.
type storeFile struct {
	f    *os.File
	dir  string
	base string
	log  *slog.Logger
}

// createPartial opens a new temporary file in dir for a message whose final name is base
// (or base-2, … when taken, see linkUnique).
func createPartial(dir, base string, log *slog.Logger) (*storeFile, error) {
	// Not os.CreateTemp, whose 0600 would outlive the rename: the stored message gets the
	// mode a file created in the store always had, 0644 less the umask.
	for range 100 {
		var r [8]byte
		rand.Read(r[:])
		name := filepath.Join(dir, partialPrefix+base+"-"+hex.EncodeToString(r[:]))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("runtime: creating the store file: %w", err)
		}
		return &storeFile{f: f, dir: dir, base: base, log: log}, nil
	}
	return nil, fmt.Errorf("runtime: creating the store file: no free temporary name in %s", dir)
}

func (s *storeFile) Write(p []byte) (int, error) { return s.f.Write(p) }

// commit makes the message durable and visible: fsync the data, give it its final name,
// and fsync the directory so that the name survives a crash too. It returns the final
// path. On error the temporary file is removed, as by abort.
func (s *storeFile) commit() (string, error) {
	tmp := s.f.Name()
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.remove(tmp, err)
		return "", fmt.Errorf("runtime: writing the store file: %w", err)
	}
	final, err := linkUnique(s.dir, s.base, tmp)
	if err != nil {
		s.remove(tmp, err)
		return "", err
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("stored message left a temporary file", "file", final, "temp", tmp, "err", err)
	}
	if d, err := os.Open(s.dir); err == nil {
		// Best effort: some file systems refuse to sync a directory, and the data is
		// already safe under its name on those that journal it.
		d.Sync()
		d.Close()
	}
	return final, nil
}

// abort removes what was written of a message that did not arrive whole, and says why.
func (s *storeFile) abort(why error) {
	s.f.Close()
	s.remove(s.f.Name(), why)
}

func (s *storeFile) remove(tmp string, why error) {
	err := os.Remove(tmp)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Error("message not stored; removing its partial file failed", "temp", tmp, "why", why, "err", err)
		return
	}
	s.log.Warn("message not stored: partial file removed", "temp", tmp, "why", why)
}

// linkUnique gives the complete file tmp the name base in dir, or base-2, base-3 … if that
// name is taken: a message never overwrites one stored before it, whatever Message-ID its
// sender chose (two senders may choose the same, and safeName maps several IDs to one
// name). A hard link fails when the name exists, so taking a name is atomic; the caller
// removes tmp afterwards. On a file system without hard links the name is reserved with
// an exclusive create and then replaced by the complete file.
func linkUnique(dir, base, tmp string) (string, error) {
	const most = 10000
	for i := 1; i <= most; i++ {
		name := base
		if i > 1 {
			name = base + "-" + strconv.Itoa(i)
		}
		path := filepath.Join(dir, name)
		err := os.Link(tmp, path)
		if err == nil {
			return path, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		// No hard links here: reserve the name, then rename the whole file over it.
		f, cerr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(cerr, fs.ErrExist) {
			continue
		}
		if cerr != nil {
			return "", fmt.Errorf("runtime: naming the stored message: %w", errors.Join(err, cerr))
		}
		f.Close()
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(path)
			return "", fmt.Errorf("runtime: naming the stored message: %w", err)
		}
		return path, nil
	}
	return "", fmt.Errorf("runtime: %d files named %s in %s already", most, base, dir)
}

// discardFile is a receiver's store when it keeps nothing (NodeConfig.Discard).
type discardFile struct{}

func (discardFile) Write(p []byte) (int, error) { return len(p), nil }
func (discardFile) commit() (string, error)     { return "", nil }
func (discardFile) abort(error)                 {}

// messageFile is where a delivery writes the message: a storeFile or a discardFile.
type messageFile interface {
	io.Writer
	commit() (string, error)
	abort(why error)
}

package main

import (
	"crypto/aes"
	"crypto/cipher"
	"io"
)

// benchPayload is the message a bench run sends: n reproducible pseudo-random bytes,
// the same for the same seed, so that the expected hash is computed without holding
// the message. They are an AES-CTR keystream (AES-NI on amd64 and arm64): generating
// them is part of what bench times, and this costs the sender about a sixth of what
// math/rand/v2's ChaCha8 did (docs/performance.md), leaving the time to cpmlink's path.
// Random, not a repeated pattern, so that nothing downstream may gain from repetition.
func benchPayload(seed uint64, n int64) io.Reader {
	var key [16]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // a 16-byte key is always valid: a broken internal invariant
	}
	return &keystream{s: cipher.NewCTR(block, make([]byte, aes.BlockSize)), left: n}
}

// keystream reads as a cipher's keystream: the encryption of zeros.
type keystream struct {
	s    cipher.Stream
	left int64
}

func (k *keystream) Read(p []byte) (int, error) {
	if k.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > k.left {
		p = p[:k.left]
	}
	clear(p)
	k.s.XORKeyStream(p, p)
	k.left -= int64(len(p))
	return len(p), nil
}

package msrp

import "math/rand/v2"

// idAlphabet is ALPHANUM: valid as the first and every later character of an
// ident (RFC 4975 §9), so ids need no escaping anywhere.
const idAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// idLen × log2(62) ≈ 95 bits of randomness: RFC 4975 §7.1 asks transaction
// ids for at least 64.
const idLen = 16

// NewTransactionID returns a fresh random transaction id. It uses the
// runtime's ChaCha8 generator, seeded from the operating system, which is
// unpredictable and safe for concurrent use.
func NewTransactionID() string {
	var b [idLen]byte
	fillID(b[:])
	return string(b[:])
}

// NewMessageID returns a fresh random Message-ID (RFC 4975 §7.1.1 wants it
// unique within the session; random ids make it unique everywhere).
func NewMessageID() string { return NewTransactionID() }

func fillID(b []byte) {
	for i := 0; i < len(b); {
		x := rand.Uint64()
		// Eight base-62 digits per 64-bit draw: 2^64 holds 62^8 about 84,000
		// times, so the digits are uniform to within 2^-16 and the 16
		// characters carry well over 90 bits.
		for k := 0; k < 8 && i < len(b); k++ {
			b[i] = idAlphabet[x%62]
			x /= 62
			i++
		}
	}
}

// validIdent reports whether s is an RFC 4975 ident: ALPHANUM followed by 3 to
// 31 of ALPHANUM . - + % =. Transaction ids and Message-IDs are idents.
func validIdent(s string) bool {
	if len(s) < 4 || len(s) > 32 || !isAlnumByte(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(isAlnumByte(c) || c == '.' || c == '-' || c == '+' || c == '%' || c == '=') {
			return false
		}
	}
	return true
}

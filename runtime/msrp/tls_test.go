package msrp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "msrp test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestMSRPS: an msrps URI is dialled over TLS (RFC 4975 §6), the passive
// side serves an injected tls.Listener, and without a TLS config the dial
// fails with ErrNoTLSConfig.
func TestMSRPS(t *testing.T) {
	ctx := testCtx(t)
	cert, pool := selfSigned(t)
	raw := listenLoopback(t)
	l := tls.NewListener(raw, &tls.Config{Certificates: []tls.Certificate{cert}})
	b := NewEndpoint(Config{})
	served := make(chan error, 1)
	go func() { served <- b.Serve(l) }()
	t.Cleanup(func() { _ = b.Close(); <-served })
	bURI := MustParseURI("msrps://" + raw.Addr().String() + "/secure;tcp")
	var got bytes.Buffer
	ws := NewWriterSink(&got, 0)
	mustSession(t, b, SessionConfig{Local: bURI, Accept: func(*IncomingMessage) (Sink, error) { return ws, nil }})

	plain := newTestEndpoint(t, Config{})
	s0 := mustSession(t, plain.Endpoint, SessionConfig{Local: MustParseURI("msrps://127.0.0.1:9/nocfg;tcp"), Remote: Path{bURI}})
	if _, err := s0.Connect(ctx); !errors.Is(err, ErrNoTLSConfig) {
		t.Fatalf("msrps without TLS config: %v", err)
	}

	a := newTestEndpoint(t, Config{TLSConfig: &tls.Config{RootCAs: pool}})
	s := mustSession(t, a.Endpoint, SessionConfig{Local: MustParseURI("msrps://127.0.0.1:9/client;tcp"), Remote: Path{bURI}})
	if _, err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, &Message{ContentType: "text/plain", Body: bytes.NewReader([]byte("over TLS")), ChunkSize: 3}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ws.Done():
	case <-ctx.Done():
		t.Fatal("message never completed")
	}
	if got.String() != "over TLS" {
		t.Fatalf("got %q", got.String())
	}
}

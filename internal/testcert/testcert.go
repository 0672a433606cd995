// Package testcert makes TLS certificates for tests: a certificate authority
// made for the test and a server certificate for 127.0.0.1 that it signs,
// valid for an hour around now, written as PEM files.
//
// # Use
//
//	pool, certFile, keyFile := testcert.Server(t, t.TempDir())
//
// A client that trusts pool (tls.Config.RootCAs) accepts a server that
// serves certFile and keyFile on 127.0.0.1; one that does not refuses it.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Server writes server.crt and server.key into dir: a certificate for
// 127.0.0.1 signed by a CA made for the test, and its key. It returns a
// pool holding that CA and the two files.
func Server(t testing.TB, dir string) (pool *x509.CertPool, certFile, keyFile string) {
	t.Helper()
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cairn test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	ca := create(t, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	cert := create(t, tmpl, ca, &key.PublicKey, caKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	write(t, certFile, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	write(t, keyFile, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return pool, certFile, keyFile
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func create(t testing.TB, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func write(t testing.TB, name string, b *pem.Block) {
	t.Helper()
	if err := os.WriteFile(name, pem.EncodeToMemory(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

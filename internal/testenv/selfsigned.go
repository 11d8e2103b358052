package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
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

// Throw-away certificates for the TLS cases (STARTTLS, implicit TLS,
// mailpit's --smtp-tls-cert).

// SelfSignedCert creates a throw-away ECDSA P-256 CA and a leaf certificate for
// 127.0.0.1, ::1 and localhost signed by it. certPEMFile (leaf, then CA) and
// keyPEMFile (PKCS#8 leaf key) are written into t.TempDir() and are suitable
// for mailpit's --smtp-tls-cert / --smtp-tls-key; caPEM is the CA certificate
// for a client's RootCAs. serverTLS serves the leaf (with chain).
func SelfSignedCert(t testing.TB) (serverTLS *tls.Config, caPEM []byte, certPEMFile, keyPEMFile string) {
	t.Helper()
	now := time.Now()

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("SelfSignedCert: %v", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          randSerial(t),
		Subject:               pkix.Name{CommonName: "emailotp test CA", Organization: []string{"emailotp tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("SelfSignedCert: create CA: %v", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("SelfSignedCert: parse CA: %v", err)
	}

	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("SelfSignedCert: %v", err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: randSerial(t),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("SelfSignedCert: create leaf: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatalf("SelfSignedCert: marshal key: %v", err)
	}

	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	chainPEM := append(append([]byte(nil), leafPEM...), caPEM...)

	dir := t.TempDir()
	certPEMFile = filepath.Join(dir, "smtp-cert.pem")
	keyPEMFile = filepath.Join(dir, "smtp-key.pem")
	if err := os.WriteFile(certPEMFile, chainPEM, 0o644); err != nil {
		t.Fatalf("SelfSignedCert: %v", err)
	}
	if err := os.WriteFile(keyPEMFile, keyPEM, 0o600); err != nil {
		t.Fatalf("SelfSignedCert: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o644); err != nil {
		t.Fatalf("SelfSignedCert: %v", err)
	}

	pair, err := tls.X509KeyPair(chainPEM, keyPEM)
	if err != nil {
		t.Fatalf("SelfSignedCert: key pair: %v", err)
	}
	serverTLS = &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
	}
	return serverTLS, caPEM, certPEMFile, keyPEMFile
}

func randSerial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("SelfSignedCert: serial: %v", err)
	}
	return n
}

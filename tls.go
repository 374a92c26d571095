// TLS: certificates, their fingerprints, and the pinned client the installer's way.

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// The installer pins pxe-pilot's certificate by fingerprint alone: it
// checks that the SHA-256 of the leaf certificate's DER is the one its ISO
// was prepared with (prepare-iso --cert-fingerprint, or DHCP option 251),
// and nothing else: no chain, no host name, no expiry. So a self-signed
// certificate is as good as any, and its fingerprint is what matters.

// fingerprint is the SHA-256 of a certificate's DER as prepare-iso
// --cert-fingerprint and DHCP option 251 take it, and as openssl x509
// -fingerprint -sha256 prints it: uppercase hex pairs joined by colons.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// leafFingerprint reads a PEM certificate file and returns the fingerprint
// of its first certificate: the leaf, which is the one the installer pins.
func leafFingerprint(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the certificate: %w", err)
	}
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return "", fmt.Errorf("%s: no PEM certificate in it (-----BEGIN CERTIFICATE-----)", path)
		}
		if block.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(block.Bytes); err != nil {
				return "", fmt.Errorf("%s: %w", path, err)
			}
			return fingerprint(block.Bytes), nil
		}
	}
}

// tlsConfig loads the certificate and key serve --tls-cert and --tls-key
// name, and returns the certificate's fingerprint for the log.
func tlsConfig(certFile, keyFile string) (*tls.Config, string, error) {
	for _, f := range []string{certFile, keyFile} {
		if data, err := os.ReadFile(f); err == nil {
			if missing, ok := standIn(data); ok {
				return nil, "", fmt.Errorf("%s: %s", f, missing)
			}
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("loading --tls-cert %s and --tls-key %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
	}
	return cfg, fingerprint(pair.Certificate[0]), nil
}

// standIn recognises the stand-in the systemd unit hands over for a
// credential whose file is missing (SetCredential=name:# missing: PATH),
// and says which file to make.
func standIn(data []byte) (string, bool) {
	path, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "# missing: ")
	if !ok || strings.Contains(path, "\n") {
		return "", false
	}
	return "systemd found no " + path + " to hand over: create it, or comment out its setting in pxe-pilot.env", true
}

// pinned is a client TLS config that trusts the one certificate whose
// fingerprint is fp, and nothing else, as the installer does.
func pinned(fp string) *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // verified by fingerprint below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if got := fingerprint(cs.PeerCertificates[0].Raw); got != fp {
				return &notPinnedError{got: got, want: fp}
			}
			return nil
		},
	}
}

// notPinnedError is a server's certificate that is not the pinned one.
type notPinnedError struct{ got, want string }

func (e *notPinnedError) Error() string {
	return fmt.Sprintf("certificate fingerprint %s, not the pinned %s", e.got, e.want)
}

// Where `pxe-pilot cert` writes, in --out.
const (
	certName = "pxe-pilot.crt"
	keyName  = "pxe-pilot.key"
)

// certHosts reads --host: names and IP addresses, the first being the one
// the printed prepare-iso command uses.
func certHosts(list string) ([]string, error) {
	if list == "" {
		hosts := []string{"localhost", "127.0.0.1"}
		if name, err := os.Hostname(); err == nil && name != "" && name != "localhost" {
			hosts = append([]string{name}, hosts...)
		}
		return hosts, nil
	}
	var hosts []string
	for _, h := range strings.Split(list, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if net.ParseIP(h) == nil && !validDNSName(h) {
			return nil, fmt.Errorf("--host %q: want a host name (pxe.example.com) or an IP address", h)
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		return nil, errors.New("--host names no host; give the names and addresses installers reach pxe-pilot by, such as --host pxe.lab.example.com,10.0.0.2")
	}
	return hosts, nil
}

// validDNSName accepts what may go in a certificate's DNS names: labels of
// letters, digits and hyphens, and a leading "*." wildcard.
func validDNSName(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// selfSigned makes a self-signed ECDSA P-256 server certificate for hosts,
// valid for ten years from now: the installer checks no expiry, and an
// expired certificate would only trouble a browser or curl.
func selfSigned(hosts []string, now time.Time) (certPEM, keyPEM, der []byte, notAfter time.Time, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, time.Time{}, fmt.Errorf("creating a key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, nil, time.Time{}, fmt.Errorf("creating a serial number: %w", err)
	}
	notAfter = now.AddDate(10, 0, 0).UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"pxe-pilot"}},
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, time.Time{}, fmt.Errorf("creating the certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, time.Time{}, fmt.Errorf("encoding the key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	return certPEM, keyPEM, der, notAfter, nil
}

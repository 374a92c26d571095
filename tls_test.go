// Tests of TLS set-up and certificates.

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fingerprintForm is how prepare-iso --cert-fingerprint and DHCP option
// 251 take a fingerprint, and how openssl x509 -fingerprint prints one.
var fingerprintForm = regexp.MustCompile(`^[0-9A-F]{2}(:[0-9A-F]{2}){31}$`)

func TestCertCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "tls") // made if missing
	var stdout bytes.Buffer
	if err := run([]string{"cert", "--out", out, "--host", "pxe.lab.example.com,10.0.0.2,fd00::2"}, &stdout, io.Discard); err != nil {
		t.Fatalf("cert = %v", err)
	}
	certPath, keyPath := filepath.Join(out, "pxe-pilot.crt"), filepath.Join(out, "pxe-pilot.key")
	for path, want := range map[string]os.FileMode{certPath: 0o644, keyPath: 0o600} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s mode = %v; want %v", path, got, want)
		}
	}

	cert := parseCertFile(t, certPath)
	if cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm = %v; want ECDSA", cert.PublicKeyAlgorithm)
	}
	if got := fmt.Sprint(cert.DNSNames, cert.IPAddresses); got != "[pxe.lab.example.com] [10.0.0.2 fd00::2]" {
		t.Errorf("certificate names = %s; want [pxe.lab.example.com] [10.0.0.2 fd00::2]", got)
	}
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		t.Errorf("the certificate and key do not pair: %v", err)
	}

	// What it prints is what the installer needs: the fingerprint of that
	// certificate, in the installer's form, and a prepare-iso line using it.
	fp := fingerprint(cert.Raw)
	if !fingerprintForm.MatchString(fp) {
		t.Fatalf("fingerprint %q is not 32 uppercase hex pairs joined by colons", fp)
	}
	if msg := checkFingerprint(fp); msg != "" {
		t.Errorf("the answer's own check refuses the fingerprint %s: %s", fp, msg)
	}
	for _, want := range []string{
		"\t" + fp + "\n",
		"pxe-pilot serve --tls-cert " + certPath + " --tls-key " + keyPath,
		"proxmox-auto-install-assistant prepare-iso proxmox-ve.iso --fetch-from http \\\n\t\t--url https://pxe.lab.example.com:8443/answer --cert-fingerprint " + fp + "\n",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("cert printed:\n%s\nwant it to contain %q", stdout.String(), want)
		}
	}

	// fingerprint prints the same for the file.
	var fpOut bytes.Buffer
	if err := run([]string{"fingerprint", certPath}, &fpOut, io.Discard); err != nil || fpOut.String() != fp+"\n" {
		t.Errorf("fingerprint %s = %q, %v; want %q", certPath, fpOut.String(), err, fp+"\n")
	}

	// A second run would change the fingerprint every ISO pins: refused.
	before := mustRead(t, certPath)
	err := run([]string{"cert", "--out", out}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "exists; use --force") {
		t.Errorf("cert over an existing one = %v; want a refusal naming --force", err)
	}
	if !bytes.Equal(mustRead(t, certPath), before) {
		t.Error("a refused cert command changed the certificate")
	}
	if err := run([]string{"cert", "--out", out, "--force", "--host", "10.0.0.3"}, io.Discard, io.Discard); err != nil {
		t.Fatalf("cert --force = %v", err)
	}
	if bytes.Equal(mustRead(t, certPath), before) {
		t.Error("cert --force kept the old certificate")
	}
	if info, _ := os.Stat(keyPath); info.Mode().Perm() != 0o600 {
		t.Errorf("replaced key mode = %v; want 0600", info.Mode().Perm())
	}
}

func TestCertAndFingerprintErrors(t *testing.T) {
	dir := t.TempDir()
	notCert := filepath.Join(dir, "key.pem")
	os.WriteFile(notCert, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cert", "--out", dir, "--host", "bad host"}, `--host "bad host": want a host name`},
		{[]string{"cert", "--out", dir, "--host", ","}, "--host names no host"},
		{[]string{"cert", "--out", dir, "extra"}, `unexpected argument "extra"`},
		{[]string{"fingerprint"}, "fingerprint needs one argument"},
		{[]string{"fingerprint", filepath.Join(dir, "missing.crt")}, "no such file"},
		{[]string{"fingerprint", notCert}, "no PEM certificate in it"},
	} {
		err := run(tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v; want an error containing %q", tc.args, err, tc.want)
		}
	}
}

func parseCertFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(mustRead(t, path))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// freePort finds a loopback port to serve on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs serve with args on a free loopback port until the test
// ends, and returns its address once /health answers.
func startServe(t *testing.T, health string, args ...string) (addr string, log *syncBuffer) {
	t.Helper()
	addr = freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	log = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, append([]string{"--listen", addr}, args...), log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve stopped with %v", err)
		}
	})
	for range 100 {
		var out bytes.Buffer
		if run([]string{"healthcheck", "--url", strings.Replace(health, "ADDR", addr, 1)}, &out, io.Discard) == nil {
			return addr, log
		}
		select {
		case err := <-done:
			t.Fatalf("serve %q stopped: %v\n%s", args, err, log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve %q: /health never answered\n%s", args, log)
	return "", nil
}

// An HTTPS client pinned to the printed fingerprint, as the installer is,
// gets its answer; pinned to another, it refuses pxe-pilot.
func TestHTTPSPinnedToTheFingerprint(t *testing.T) {
	dir := t.TempDir()
	var certOut bytes.Buffer
	if err := run([]string{"cert", "--out", dir, "--host", "127.0.0.1"}, &certOut, io.Discard); err != nil {
		t.Fatal(err)
	}
	printed := regexp.MustCompile(`--cert-fingerprint (\S+)`).FindStringSubmatch(certOut.String())
	if printed == nil {
		t.Fatalf("cert printed no --cert-fingerprint:\n%s", certOut.String())
	}
	certPath, keyPath := filepath.Join(dir, "pxe-pilot.crt"), filepath.Join(dir, "pxe-pilot.key")
	t.Setenv("PXE_PILOT_TLS_CERT", certPath) // healthcheck pins it too
	addr, log := startServe(t, "https://ADDR/health", "--config-dir", "examples/config", "--tls-cert", certPath, "--tls-key", keyPath)
	if !strings.Contains(log.String(), "fingerprint="+printed[1]) {
		t.Errorf("serve logged:\n%s\nwant the fingerprint cert printed, %s", log, printed[1])
	}

	client := func(fp string) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: pinned(fp)}}
	}
	body := bytes.NewReader(mustRead(t, "examples/requests/pve-9.2.json"))
	resp, err := client(printed[1]).Post("https://"+addr+"/answer", "application/json", body)
	if err != nil {
		t.Fatalf("POST /answer pinned to %s: %v", printed[1], err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(answer, []byte("fqdn = 'pve-node-01.lab.example.com'")) {
		t.Errorf("POST /answer over HTTPS = %d\n%s\nwant the answer", resp.StatusCode, answer)
	}
	other := strings.Repeat("AB:", 31) + "AB"
	if _, err := client(other).Get("https://" + addr + "/health"); err == nil {
		t.Errorf("a client pinned to %s reached pxe-pilot", other)
	}
	if resp, err := http.Get("http://" + addr + "/health"); err == nil && resp.StatusCode == http.StatusOK {
		t.Error("plain HTTP got an answer from the HTTPS server")
	}
}

// syncBuffer is a bytes.Buffer a server may write while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestHealthcheck(t *testing.T) {
	good, _ := testServer(t, goodConfig())
	bad := &server{dir: filepath.Join(t.TempDir(), "missing"), log: good.log}
	okSrv, badSrv := httptest.NewServer(good), httptest.NewServer(bad)
	defer okSrv.Close()
	defer badSrv.Close()
	for _, tc := range []struct {
		url     string
		wantErr string // "" for success
	}{
		{okSrv.URL + "/health", ""},
		{badSrv.URL + "/health", `503 {"status":"unavailable","error":"pxe-pilot: config dir `},
		{okSrv.URL + "/nowhere", "404 pxe-pilot:"},
		{"http://" + freePort(t) + "/health", "connection refused"},
		{"ftp://127.0.0.1/health", "want a URL such as"},
	} {
		var out bytes.Buffer
		err := run([]string{"healthcheck", "--url", tc.url}, &out, io.Discard)
		switch {
		case tc.wantErr == "" && (err != nil || !strings.Contains(out.String(), `{"status":"ok",`)):
			t.Errorf("healthcheck --url %s = %v, %q; want success", tc.url, err, out.String())
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("healthcheck --url %s = %v; want an error containing %q", tc.url, err, tc.wantErr)
		}
	}
}

// A healthcheck that cannot trust the server's certificate says to pin it
// with --cert, or which certificate it met instead of the pinned one.
func TestHealthcheckSaysToPinTheCertificate(t *testing.T) {
	t.Setenv("PXE_PILOT_TLS_CERT", "")
	served, other := t.TempDir(), t.TempDir()
	for _, dir := range []string{served, other} {
		if err := run([]string{"cert", "--out", dir, "--host", "127.0.0.1"}, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(served, certName), filepath.Join(served, keyName))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := testServer(t, goodConfig())
	srv := httptest.NewUnstartedServer(good)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	servedFP, _ := leafFingerprint(filepath.Join(served, certName))
	otherFP, _ := leafFingerprint(filepath.Join(other, certName))
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string // "" for success
	}{
		{"pinned_to_its_certificate_is_ok", []string{"--url", "https://127.0.0.1:" + port + "/health", "--cert", filepath.Join(served, certName)}, ""},
		{"pinned_to_another_certificate_names_both",
			[]string{"--url", "https://127.0.0.1:" + port + "/health", "--cert", filepath.Join(other, certName)},
			"the server's certificate (fingerprint " + servedFP + ") is not " + filepath.Join(other, certName) + " (" + otherFP +
				"): point --cert (or PXE_PILOT_TLS_CERT) at the certificate the server serves"},
		{"self_signed_unpinned_says_to_pin_it", []string{"--url", "https://127.0.0.1:" + port + "/health"},
			"certificate signed by unknown authority: pin the server's own certificate with --cert FILE (or PXE_PILOT_TLS_CERT)"},
		{"another_host_name_unpinned_says_to_pin_it", []string{"--url", "https://localhost:" + port + "/health"},
			": pin the server's own certificate with --cert FILE (or PXE_PILOT_TLS_CERT)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(append([]string{"healthcheck"}, tc.args...), &out, io.Discard)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("healthcheck %q = %v; want success", tc.args, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("healthcheck %q = %v; want an error containing %q", tc.args, err, tc.wantErr)
			}
		})
	}
}

// A port that is taken stops the start naming the address and what to do.
func TestServePortInUse(t *testing.T) {
	clearServeEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"flag_listen", []string{"--listen", addr}, nil, "listening on " + addr + ": another server (another pxe-pilot?) is using it: stop that one, or choose another address with --listen HOST:PORT or LISTEN"},
		{"env_listen", nil, map[string]string{"LISTEN": addr}, "listening on " + addr + ": another server"},
		{"flag_port", []string{"--port", port}, nil, "listening on :" + port + ": another server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			// Cancelled, so that a start that did bind returns at once.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := serve(ctx, append([]string{"--config-dir", "examples/config"}, tc.args...), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("serve %q with env %v = %v; want an error containing %q", tc.args, tc.env, err, tc.want)
			}
		})
	}
}

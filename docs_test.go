// Tests that hold the README, the netboot guide and the deploy files to what they show.

package main

// The netboot guide, docs/netboot-setup.md, is held to what it shows:
//
//   - every code block that names itself a file under docs/dhcp/ (on its
//     first line, as a comment) is that file, byte for byte; .ci/dhcp checks
//     those files with the DHCP and DNS servers' own config tests;
//   - every `pxe-pilot ...` line of its sh blocks runs, in the guide's order,
//     with the guide's /etc/pxe-pilot mapped to a temp dir that starts as a
//     copy of examples/config, its boot dir to a copy of examples/boot and
//     its state dir to an empty one; a block that names itself a file under
//     /etc/pxe-pilot (the token file) is written there when reached;
//   - each `serve` runs on a free loopback port (and its --boot-listen on
//     another) until the next one, and is asked what the guide says it
//     answers.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	guideFile = "docs/netboot-setup.md"
	// guideEtc is where the guide keeps pxe-pilot's config, certificate
	// and token file.
	guideEtc = "/etc/pxe-pilot"
	// What the guide and every snippet hand out: the answer URL and the
	// (example) fingerprint of pxe-pilot's certificate.
	guideURL         = "https://pxe-pilot.lab.example.com:8443/answer"
	guideFingerprint = "84:4B:EF:F0:A5:34:FD:FE:24:76:E3:D9:A0:03:59:15:F9:60:D7:25:5B:91:80:2E:24:E1:81:28:7D:22:E3:62"
	// Where the guide keeps the boot images (a copy of examples/boot in
	// the test) and the state dir (empty at first).
	guideBootDir  = "/srv/pxe-pilot/boot"
	guideStateDir = "/var/lib/pxe-pilot"
)

var (
	// A block's first line naming the file the block is: "# docs/dhcp/x.conf: ...".
	guideSnippetClaim = regexp.MustCompile(`^(?:#|;|//)\s*(docs/dhcp/[A-Za-z0-9._-]+):`)
	guideEtcClaim     = regexp.MustCompile(`^#\s*(/etc/pxe-pilot/[A-Za-z0-9._/-]+):`)
	guideFence        = regexp.MustCompile("^(\\s*)(```+)\\s*(\\S*)")
	guideFPForm       = regexp.MustCompile(`\b(?:[0-9A-F]{2}:){31}[0-9A-F]{2}\b`)
	guideAssign       = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)
	// Words the test cannot carry out the way a shell would.
	guideShellMeta = regexp.MustCompile("[|&;<>()`$]")
	// A pxe-pilot command anywhere in a line, for lines the test must not skip.
	guidePilotAnywhere = regexp.MustCompile(`(?:^|[\s|;&(])pxe-pilot\s+(?:serve|cert|fingerprint|healthcheck|validate|render|version)\b`)
)

// guideBlock is one fenced code block of the guide.
type guideBlock struct {
	line int    // the line of its opening fence, from 1
	lang string // the first word of its info string: "sh", "text" or ""
	body string // its lines, each ending in "\n", indentation of the fence removed
}

// claims returns the file the block says it is, by the pattern re, or "".
func (b guideBlock) claims(re *regexp.Regexp) string {
	first, _, _ := strings.Cut(b.body, "\n")
	if m := re.FindStringSubmatch(first); m != nil {
		return m[1]
	}
	return ""
}

func readGuideBlocks(t *testing.T) []guideBlock { return readDocBlocks(t, guideFile) }

// readDocBlocks reads the fenced code blocks of a Markdown file.
func readDocBlocks(t *testing.T, file string) []guideBlock {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	var blocks []guideBlock
	var cur *guideBlock
	var indent, fence string
	for i, line := range strings.SplitAfter(string(data), "\n") {
		if cur == nil {
			if m := guideFence.FindStringSubmatch(line); m != nil {
				indent, fence = m[1], m[2]
				cur = &guideBlock{line: i + 1, lang: m[3]}
			}
			continue
		}
		if l := strings.TrimSpace(line); strings.HasPrefix(l, fence) && strings.Trim(l, "`") == "" {
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		cur.body += strings.TrimPrefix(line, indent)
	}
	if cur != nil {
		t.Fatalf("%s:%d: code block never closed", file, cur.line)
	}
	return blocks
}

func TestGuideSnippetsAreTheFiles(t *testing.T) {
	shown := map[string]bool{}
	for _, b := range readGuideBlocks(t) {
		name := b.claims(guideSnippetClaim)
		if name == "" {
			continue
		}
		shown[name] = true
		want, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s:%d: the block says it is %s: %v", guideFile, b.line, name, err)
			continue
		}
		if b.body != string(want) {
			t.Errorf("%s:%d: the block is not %s byte for byte: %s", guideFile, b.line, name, guideDiff(b.body, string(want)))
		}
	}
	files, err := filepath.Glob("docs/dhcp/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("docs/dhcp/ holds no snippet")
	}
	for _, f := range files {
		if !shown[f] {
			t.Errorf("%s is not shown in %s: show it in a block whose first line is \"# %s: ...\"", f, guideFile, f)
		}
	}
}

// guideDiff says where the guide's copy and the file part.
func guideDiff(got, want string) string {
	g, w := strings.SplitAfter(got, "\n"), strings.SplitAfter(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d of the block is %q, of the file %q", i+1, gl, wl)
		}
	}
	return "they differ"
}

// TestGuideValuesAgree: every snippet hands out the same URL and
// fingerprint, quoted (dnsmasq reads an unquoted fingerprint as hex bytes),
// and the prepare-iso lines use them and a token of the guide's token file.
func TestGuideValuesAgree(t *testing.T) {
	if !guideFPForm.MatchString(guideFingerprint) {
		t.Fatalf("guideFingerprint %q is not 32 uppercase hex pairs joined by colons", guideFingerprint)
	}
	files, _ := filepath.Glob("docs/dhcp/*")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{guideURL, guideFingerprint} {
			if !bytes.Contains(data, []byte(`"`+v+`"`)) {
				t.Errorf("%s does not hand out %q, in double quotes", f, v)
			}
		}
	}

	var tokens []string
	var prepares int
	for _, b := range readGuideBlocks(t) {
		if b.claims(guideEtcClaim) == guideEtc+"/tokens" {
			tokens = append(tokens, guideTokens(b.body)...)
		}
		if b.lang != "sh" {
			continue
		}
		cmds, err := guideCommands(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cmds {
			if len(c.words) < 2 || c.words[0] != "proxmox-auto-install-assistant" || c.words[1] != "prepare-iso" {
				continue
			}
			prepares++
			for i := 2; i+1 < len(c.words); i++ {
				switch v := c.words[i+1]; c.words[i] {
				case "--url":
					if v != guideURL {
						t.Errorf("%s:%d: prepare-iso --url %s; the snippets hand out %s", guideFile, c.line, v, guideURL)
					}
				case "--cert-fingerprint":
					if v != guideFingerprint {
						t.Errorf("%s:%d: prepare-iso --cert-fingerprint %s; the snippets hand out %s", guideFile, c.line, v, guideFingerprint)
					}
				case "--answer-auth-token":
					if !guideHas(tokens, v) {
						t.Errorf("%s:%d: prepare-iso --answer-auth-token %s is not in the token file the guide shows above it (%q)", guideFile, c.line, v, tokens)
					}
				}
			}
		}
	}
	if prepares == 0 {
		t.Errorf("%s shows no prepare-iso command line", guideFile)
	}
}

func guideHas(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// guideTokens reads a token file as pxe-pilot does: a NAME:SECRET a line,
// skipping blank lines and # comments.
func guideTokens(body string) []string {
	var tokens []string
	for _, line := range strings.Split(body, "\n") {
		if line = strings.TrimSpace(line); line != "" && line[0] != '#' {
			tokens = append(tokens, line)
		}
	}
	return tokens
}

// guideCommand is one command line of an sh block, continuation lines
// joined, its trailing comment dropped.
type guideCommand struct {
	line  int               // where it starts in the guide
	text  string            // as the guide shows it, on one line
	env   map[string]string // NAME=value assignments before the command
	words []string          // the command and its arguments
	err   error             // why the line cannot be run as it is, if it cannot
}

// guideCommands splits an sh block into command lines. A pxe-pilot command
// the test could not run the way a shell would is an error, so that no
// command of the guide goes untested.
func guideCommands(b guideBlock) ([]guideCommand, error) {
	var cmds []guideCommand
	lines := strings.Split(strings.TrimSuffix(b.body, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		start, text := i, strings.TrimSpace(lines[i])
		for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
			i++
			text = strings.TrimSpace(strings.TrimSuffix(text, `\`)) + " " + strings.TrimSpace(lines[i])
		}
		text = strings.TrimPrefix(text, "$ ")
		if text == "" || text[0] == '#' {
			continue
		}
		c := guideCommand{line: b.line + 1 + start, text: text, env: map[string]string{}}
		words, err := guideSplitWords(text)
		if err != nil {
			c.err = err
		}
		for len(words) > 0 && guideAssign.MatchString(words[0]) {
			k, v, _ := strings.Cut(words[0], "=")
			c.env[k] = v
			words = words[1:]
		}
		c.words = words
		isPilot := len(words) > 0 && words[0] == "pxe-pilot"
		if guidePilotAnywhere.MatchString(text) && (!isPilot || c.err != nil) {
			why := "start the line with pxe-pilot (after any NAME=value)"
			if c.err != nil {
				why = c.err.Error()
			}
			return nil, fmt.Errorf("%s:%d: %q: the test cannot run this pxe-pilot command: %s", guideFile, c.line, text, why)
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// guideSplitWords splits a command line into words as sh would for the simple
// lines the guide shows: quotes, and a trailing # comment. Pipes,
// redirections, substitutions and variables are refused.
func guideSplitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, w.String()), false
				w.Reset()
			}
		case c == '#' && !inWord:
			return words, nil
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("unclosed %c", c)
			}
			quoted := s[i+1 : i+1+end]
			if c == '"' && strings.ContainsAny(quoted, "$`\\") {
				return nil, fmt.Errorf("expansion in %q", quoted)
			}
			w.WriteString(quoted)
			inWord = true
			i += end + 1
		case guideShellMeta.MatchString(string(c)) || c == '\\' || c == '*' || c == '?' || c == '~':
			return nil, fmt.Errorf("shell syntax %q", c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

func TestGuideCommandsRun(t *testing.T) {
	// The environment must not steer the commands: only the guide does.
	for _, k := range []string{"CONFIG_DIR", "LISTEN", "PORT", "PXE_PILOT_LOG_FORMAT", "PXE_PILOT_TLS_CERT",
		"PXE_PILOT_TLS_KEY", "PXE_PILOT_TOKEN_FILE", "PXE_PILOT_ALLOW", "PXE_PILOT_MAX_INFLIGHT", "PXE_PILOT_PUBLIC_URL",
		"PXE_PILOT_STATE_DIR", "PXE_PILOT_ONCE", "PXE_PILOT_BOOT_DIR", "PXE_PILOT_LOCAL_BOOT", "PXE_PILOT_BOOT_LISTEN"} {
		t.Setenv(k, "")
	}
	g := &guideRun{root: t.TempDir()}
	if err := os.CopyFS(g.path(guideEtc), os.DirFS("examples/config")); err != nil {
		t.Fatalf("copying examples/config: %v", err)
	}
	if err := os.CopyFS(g.path(guideBootDir), os.DirFS("examples/boot")); err != nil {
		t.Fatalf("copying examples/boot: %v", err)
	}
	defer g.stopServer(t)

	ran := map[string]int{}
	for _, b := range readGuideBlocks(t) {
		if name := b.claims(guideEtcClaim); name != "" {
			if err := os.WriteFile(g.path(name), []byte(b.body), 0o600); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if b.lang != "sh" {
			continue
		}
		cmds, err := guideCommands(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cmds {
			if len(c.words) == 0 || c.words[0] != "pxe-pilot" {
				continue
			}
			sub := "pxe-pilot"
			if len(c.words) > 1 {
				sub = c.words[1]
			}
			ran[sub]++
			t.Run(fmt.Sprintf("line%d_%s", c.line, sub), func(t *testing.T) {
				t.Logf("%s:%d: %s", guideFile, c.line, c.text)
				g.run(t, c)
			})
		}
	}
	// The guide walks an operator through all of these; losing one from
	// it (or from this test) should not go unnoticed.
	for _, sub := range []string{"validate", "render", "serve", "healthcheck", "cert", "fingerprint"} {
		if ran[sub] == 0 {
			t.Errorf("%s runs no pxe-pilot %s", guideFile, sub)
		}
	}
}

// guideRun is the state the guide's commands build up, in order.
type guideRun struct {
	root   string       // stands for / in the guide's paths
	server *guideServer // the serve running now, if any
}

func (g *guideRun) path(p string) string { return filepath.Join(g.root, p) }

// mapArg puts a word of the guide into the test's world: /etc/pxe-pilot,
// the boot dir and the state dir into the temp dir, the URL healthcheck
// asks onto the running server. Other URLs (render's --url, serve's
// --public-url) name the server as machines reach it, and stay as they are.
func (g *guideRun) mapArg(t *testing.T, c guideCommand, arg string) string {
	t.Helper()
	if (strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://")) && len(c.words) > 1 && c.words[1] == "healthcheck" {
		u, err := url.Parse(arg)
		if err != nil {
			t.Fatalf("%s:%d: %q: %v", guideFile, c.line, arg, err)
		}
		if g.server == nil {
			t.Fatalf("%s:%d: %s: no pxe-pilot serve above it to ask", guideFile, c.line, arg)
		}
		if u.Port() != g.server.guidePort || u.Scheme != g.server.scheme {
			t.Fatalf("%s:%d: %s: the serve line above serves %s on port %s", guideFile, c.line, arg, g.server.scheme, g.server.guidePort)
		}
		u.Host = g.server.addr
		return u.String()
	}
	for _, dir := range []string{guideEtc, guideBootDir, guideStateDir} {
		if arg == dir || strings.HasPrefix(arg, dir+"/") {
			return g.path(arg)
		}
	}
	if strings.HasPrefix(arg, "/") {
		t.Fatalf("%s:%d: %s: a path outside %s, %s and %s, which the test does not map", guideFile, c.line, arg, guideEtc, guideBootDir, guideStateDir)
	}
	return arg
}

func (g *guideRun) run(t *testing.T, c guideCommand) {
	args := make([]string, len(c.words)-1)
	for i, w := range c.words[1:] {
		args[i] = g.mapArg(t, c, w)
	}
	for k, v := range c.env {
		v = g.mapArg(t, c, v)
		old, had := os.LookupEnv(k)
		os.Setenv(k, v)
		if had {
			defer os.Setenv(k, old)
		} else {
			defer os.Unsetenv(k)
		}
	}
	if len(args) > 0 && args[0] == "serve" {
		g.stopServer(t)
		g.startServer(t, args[1:])
		return
	}

	var stdout, stderr bytes.Buffer
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("pxe-pilot %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, &stdout, &stderr)
	}
	out := stdout.String()
	switch args[0] {
	case "cert":
		dir := guideFlag(args, "--out")
		crt, key := filepath.Join(dir, "pxe-pilot.crt"), filepath.Join(dir, "pxe-pilot.key")
		fp := guideCertFingerprint(t, crt)
		if !strings.Contains(out, fp) {
			t.Errorf("cert printed no fingerprint %s of %s:\n%s", fp, crt, out)
		}
		if !strings.Contains(out, "prepare-iso") || !strings.Contains(out, "--cert-fingerprint "+fp) {
			t.Errorf("cert printed no prepare-iso line with --cert-fingerprint %s:\n%s", fp, out)
		}
		if info, err := os.Stat(key); err != nil {
			t.Error(err)
		} else if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %04o; want 0600", key, perm)
		}
	case "fingerprint":
		if want := guideCertFingerprint(t, args[len(args)-1]); strings.TrimSpace(out) != want {
			t.Errorf("fingerprint printed %q; the certificate's SHA-256 is %s", out, want)
		}
	case "render":
		if slices.Contains(args, "--boot") {
			if !strings.HasPrefix(out, "#!ipxe\nkernel ") {
				t.Errorf("render --boot printed no install script:\n%s", out)
			}
		} else if !strings.Contains(out, "[global]") {
			t.Errorf("render printed no answer:\n%s", out)
		}
	case "healthcheck":
		if !strings.Contains(out, `"status":"ok"`) {
			t.Errorf("healthcheck printed %q; want the server's ok", out)
		}
	}
}

// guideFlag is the value of --name in args, in either spelling.
func guideFlag(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// guideCertFingerprint computes a PEM certificate's fingerprint here,
// apart from pxe-pilot's own code: SHA-256 of the DER, uppercase hex pairs
// joined by colons.
func guideCertFingerprint(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the certificate: %v", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate first", path)
	}
	return guideFingerprintOf(block.Bytes)
}

// guideServer is one `pxe-pilot serve` of the guide, running on loopback.
type guideServer struct {
	scheme    string // http or https
	guidePort string // the port the guide's line listens on
	addr      string // where it listens in the test: 127.0.0.1:port
	bootAddr  string // where its --boot-listen listens in the test, if it has one
	client    *http.Client
	log       *syncBuffer
	cancel    context.CancelFunc
	done      chan error
}

// startServer runs serve with the guide's flags, its --listen or --port
// replaced by a free loopback port, then asks it what the flags promise.
func (g *guideRun) startServer(t *testing.T, args []string) {
	var rest []string
	guidePort, bootAddr := "", ""
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "--listen" || a == "--port") && i+1 < len(args):
			guidePort = args[i+1]
			i++
		case strings.HasPrefix(a, "--listen=") || strings.HasPrefix(a, "--port="):
			_, guidePort, _ = strings.Cut(a, "=")
		case a == "--boot-listen" && i+1 < len(args):
			// The guide's address is not this machine's: another free port.
			bootAddr = freePort(t)
			rest = append(rest, a, bootAddr)
			i++
		default:
			rest = append(rest, a)
		}
	}
	if _, p, err := net.SplitHostPort(guidePort); err == nil {
		guidePort = p
	}
	certFile := guideFlag(rest, "--tls-cert")
	s := &guideServer{scheme: "http", guidePort: guidePort, bootAddr: bootAddr, log: &syncBuffer{}}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	fp := ""
	if certFile != "" {
		s.scheme = "https"
		fp = guideCertFingerprint(t, certFile)
		// As the installer does: the fingerprint alone, nothing else.
		tr.TLSClientConfig = &tls.Config{
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if got := guideFingerprintOf(cs.PeerCertificates[0].Raw); got != fp {
					return fmt.Errorf("the server's certificate is %s, not %s", got, fp)
				}
				return nil
			},
		}
	}
	if s.guidePort == "" {
		s.guidePort = map[bool]string{false: "8080", true: "8443"}[certFile != ""]
	}
	s.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}

	for attempt := 1; ; attempt++ {
		s.addr = freePort(t)
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel, s.done = cancel, make(chan error, 1)
		go func(args []string) { s.done <- serve(ctx, args, s.log) }(append(rest[:len(rest):len(rest)], "--listen", s.addr))
		err := s.waitHealthy()
		if err == nil {
			break
		}
		cancel()
		// Another process may take the free port before serve binds it.
		if attempt < 3 && strings.Contains(err.Error(), "listening") {
			continue
		}
		t.Fatalf("serve %s: %v\nlog:\n%s", strings.Join(rest, " "), err, s.log)
	}
	g.server = s

	if fp != "" && !strings.Contains(s.log.String(), "fingerprint="+fp) {
		t.Errorf("serve logged no fingerprint=%s at start:\n%s", fp, s.log)
	}
	s.checkAnswers(t, rest)
	s.checkBootScript(t, rest)
}

// checkBootScript asks a serve with --boot-dir for a configured machine's
// boot script, over its --boot-listen where it has one, as iPXE would:
// refused from outside --allow, else the install script, whose files are
// fetched from the listener that sent it.
func (s *guideServer) checkBootScript(t *testing.T, args []string) {
	t.Helper()
	if guideFlag(args, "--boot-dir") == "" {
		return
	}
	base, client := s.scheme+"://"+s.addr, s.client
	if s.bootAddr != "" {
		base, client = "http://"+s.bootAddr, &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	}
	get := func(u string) (int, string) {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(base + "/boot.ipxe?mac=aa:bb:cc:dd:ee:ff")
	if allow := guideFlag(args, "--allow"); allow != "" && !guideAllows(t, allow, "127.0.0.1") {
		if code != http.StatusForbidden {
			t.Errorf("GET /boot.ipxe from 127.0.0.1, outside --allow %s: %d %q; want 403\nlog:\n%s", allow, code, body, s.log)
		}
		return
	}
	kernel, _, _ := strings.Cut(strings.TrimPrefix(body, "#!ipxe\nkernel "), " ")
	if code != http.StatusOK || !strings.HasPrefix(body, "#!ipxe\nkernel ") {
		t.Fatalf("GET /boot.ipxe: %d %q; want the install script\nlog:\n%s", code, body, s.log)
	}
	if s.bootAddr != "" && !strings.HasPrefix(kernel, base+"/boot/") {
		t.Errorf("the script --boot-listen sent loads its kernel from %s, not from %s/boot/", kernel, base)
	}
	if strings.HasPrefix(kernel, base) {
		if code, _ := get(kernel); code != http.StatusOK {
			t.Errorf("GET %s: %d; want the kernel", kernel, code)
		}
	}
}

// waitHealthy polls /health until it answers 200, serve returns, or 5 s pass.
func (s *guideServer) waitHealthy() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case err := <-s.done:
			return fmt.Errorf("serve returned before answering: %v", err)
		default:
		}
		resp, err := s.client.Get(s.scheme + "://" + s.addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/health: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after 5 s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkAnswers posts an installer's request as the guide's flags say
// pxe-pilot then answers it: refused from outside --allow, refused without
// a token from --token-file, else answered.
func (s *guideServer) checkAnswers(t *testing.T, args []string) {
	t.Helper()
	body, err := os.ReadFile("examples/requests/pve-9.2.json")
	if err != nil {
		t.Fatal(err)
	}
	post := func(token string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, s.scheme+"://"+s.addr+"/answer", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatalf("POST /answer: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	want := func(what string, code int, body string, status int, prefix string) {
		t.Helper()
		if code != status || !strings.HasPrefix(body, prefix) {
			t.Errorf("%s: %d %q; want %d and a body starting %q\nlog:\n%s", what, code, body, status, prefix, s.log)
		}
	}

	if allow := guideFlag(args, "--allow"); allow != "" && !guideAllows(t, allow, "127.0.0.1") {
		code, b := post("")
		want("POST /answer from 127.0.0.1, outside --allow "+allow, code, b, http.StatusForbidden, "pxe-pilot: ")
		return
	}
	token := ""
	if file := guideFlag(args, "--token-file"); file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		tokens := guideTokens(string(data))
		if len(tokens) == 0 {
			t.Fatalf("%s holds no token", file)
		}
		code, b := post("")
		want("POST /answer without a token", code, b, http.StatusUnauthorized, "pxe-pilot: ")
		token = tokens[0]
	}
	code, b := post(token)
	want("POST /answer", code, b, http.StatusOK, "[global]")
}

// guideAllows reports whether the --allow list admits addr.
func guideAllows(t *testing.T, list, addr string) bool {
	a := netip.MustParseAddr(addr)
	for _, s := range strings.Split(list, ",") {
		if p, err := netip.ParsePrefix(s); err == nil && p.Contains(a) {
			return true
		}
		if b, err := netip.ParseAddr(s); err == nil && b == a {
			return true
		}
	}
	return false
}

// stopServer cancels the running serve and waits for it to shut down.
func (g *guideRun) stopServer(t *testing.T) {
	s := g.server
	if s == nil {
		return
	}
	g.server = nil
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("serve did not shut down cleanly: %v\nlog:\n%s", err, s.log)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("serve still running 15 s after its context was cancelled")
	}
}

func guideFingerprintOf(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	pairs := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		pairs = append(pairs, h[i:i+2])
	}
	return strings.Join(pairs, ":")
}

// TestGuideLinksResolve: every link of the guide to a heading, its own or
// another file's, finds one, and every file it links to exists.
func TestGuideLinksResolve(t *testing.T) {
	data, err := os.ReadFile(guideFile)
	if err != nil {
		t.Fatal(err)
	}
	links := regexp.MustCompile(`\]\(([^)\s]+)\)`).FindAllStringSubmatch(string(data), -1)
	if len(links) == 0 {
		t.Fatalf("%s has no links", guideFile)
	}
	for _, m := range links {
		target := m[1]
		if strings.Contains(target, "://") {
			continue
		}
		file, anchor, _ := strings.Cut(target, "#")
		path := guideFile
		if file != "" {
			path = filepath.Join(filepath.Dir(guideFile), file)
		}
		md, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s links to %s: %v", guideFile, target, err)
			continue
		}
		if anchor != "" && !guideHas(guideAnchors(string(md)), anchor) {
			t.Errorf("%s links to %s: %s has no heading #%s", guideFile, target, path, anchor)
		}
	}
}

// guideAnchors lists the anchors GitHub gives a Markdown file's headings:
// lowercase, punctuation dropped, spaces as hyphens. Headings in code
// blocks are not headings.
func guideAnchors(md string) []string {
	var anchors []string
	inCode := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				b.WriteRune(r)
			}
		}
		anchors = append(anchors, b.String())
	}
	return anchors
}

// TestDocsInstallFromAClone: the module path of go.mod is not published, so
// `go install` of it fails; the README and the guide build the binary in a
// clone instead, with the line CI builds the release with.
func TestDocsInstallFromAClone(t *testing.T) {
	mod := string(mustRead(t, "go.mod"))
	path, _, _ := strings.Cut(strings.TrimPrefix(mod, "module "), "\n")
	if path == "" || strings.HasPrefix(mod, path) {
		t.Fatalf("go.mod does not start with its module line: %q", mod)
	}
	const build = `CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o pxe-pilot .`
	for _, doc := range []string{"README.md", guideFile} {
		text := string(mustRead(t, doc))
		for i, line := range strings.Split(text, "\n") {
			if strings.Contains(line, "go install "+path) {
				t.Errorf("%s:%d: %q: %s is not published, so go install cannot fetch it; show the build in a clone", doc, i+1, line, path)
			}
		}
		if !strings.Contains(text, "\n"+build+"\ninstall -m 0755 pxe-pilot /usr/local/bin/pxe-pilot\n") {
			t.Errorf("%s shows no install from a clone: %s, then install -m 0755 pxe-pilot /usr/local/bin/pxe-pilot", doc, build)
		}
	}
}

// The files a deployment starts from (.gitignore, .dockerignore, the
// Dockerfile, docker-compose.yml) are held to what they and the README say.

// deployMade are the files the README, the Dockerfile's header and
// docker-compose.yml have the operator make inside the clone: none may be
// committed, nor sent to docker build (where a layer would keep it).
var deployMade = []string{
	"tls/pxe-pilot.crt", "tls/pxe-pilot.key", "tls/tokens", // Dockerfile, docker-compose.yml
	"pxe-pilot.crt", "pxe-pilot.key", // pxe-pilot cert, whose --out is . by default
	"tokens",                                                      // a token file beside them
	"config/hosts/aa-bb-cc-dd-ee-ff.toml", "config/defaults.toml", // docker run -v "$PWD/config:/config:ro"
	"netbootxyz/config/boot.cfg", "netbootxyz/assets/proxmox/initrd.img", // docker-compose.yml's netboot.xyz
	"proxmox-ve-auto.iso", // prepare-iso --output
}

func TestIgnoreFilesKeepOutWhatTheGuidesMake(t *testing.T) {
	docker := strings.Split(string(mustRead(t, ".dockerignore")), "\n")
	for _, p := range deployMade {
		if !dockerIgnores(docker, p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
	// What the build needs stays in it.
	for _, p := range []string{"main.go", "go.mod", "go.sum", "examples/config/defaults.toml", "testdata/golden_x/config/defaults.toml"} {
		if dockerIgnores(docker, p) {
			t.Errorf(".dockerignore keeps %s out of the build context", p)
		}
	}

	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git to ask what .gitignore keeps out")
	}
	cmd := exec.Command(git, append([]string{"check-ignore", "--no-index", "--verbose", "--non-matching"}, deployMade...)...)
	out, _ := cmd.Output() // exits 1 when some path is not ignored
	if len(out) == 0 {
		t.Fatalf("git check-ignore printed nothing (not a git work tree?)")
	}
	for line := range strings.Lines(string(out)) {
		// "source:line:pattern<TAB>path"; "::<TAB>path" for a path no pattern ignores.
		if src, p, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "\t"); src == "::" {
			t.Errorf(".gitignore lets %s be committed", p)
		}
	}
}

// dockerIgnores reports whether the lines of a .dockerignore keep path
// out, for the forms it uses: a pattern matches the path or a dir it is in,
// from the root of the context; **/ matches any number of dirs.
func dockerIgnores(lines []string, path string) bool {
	ignored := false
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		neg := strings.HasPrefix(l, "!")
		pat := strings.Trim(strings.TrimPrefix(l, "!"), "/")
		anyDepth := strings.HasPrefix(pat, "**/")
		pat = strings.TrimPrefix(pat, "**/")
		parts := strings.Split(path, "/")
		for i := range parts {
			for j := i + 1; j <= len(parts); j++ {
				if i > 0 && !anyDepth {
					break
				}
				if ok, _ := filepath.Match(pat, strings.Join(parts[i:j], "/")); ok {
					ignored = !neg
				}
			}
		}
	}
	return ignored
}

// TestDockerfileStateDirIsTheUsers: a new named volume takes the owner of
// the image's dir it is mounted on, so /state must be the image's user's,
// made in the build stage (scratch has no mkdir) and copied in with it.
func TestDockerfileStateDirIsTheUsers(t *testing.T) {
	df := string(mustRead(t, "Dockerfile"))
	_, final, ok := strings.Cut(df, "\nFROM scratch\n")
	if !ok {
		t.Fatal("Dockerfile has no FROM scratch stage")
	}
	user := regexp.MustCompile(`(?m)^USER (\S+)$`).FindStringSubmatch(final)
	if user == nil {
		t.Fatal("the final stage of the Dockerfile sets no USER")
	}
	copyLine := regexp.MustCompile(`(?m)^COPY --from=build --chown=(\S+) (\S+)/ /$`).FindStringSubmatch(final)
	if copyLine == nil || copyLine[1] != user[1] {
		t.Fatalf("the final stage copies in no rootfs/ owned by USER %s: %v", user[1], copyLine)
	}
	made := regexp.MustCompile(`(?m)^RUN .*mkdir -m 0700 ` + regexp.QuoteMeta(copyLine[2]) + `/state && chown ` + regexp.QuoteMeta(user[1]) + ` ` + regexp.QuoteMeta(copyLine[2]) + `/state$`)
	if !made.MatchString(df) {
		t.Errorf("the build stage does not make %s/state, 0700, owned by %s", copyLine[2], user[1])
	}
	if !strings.Contains(string(mustRead(t, "docker-compose.yml")), "# - state:/state") {
		t.Errorf("docker-compose.yml mounts its state volume elsewhere than /state, the image's dir")
	}
}

// composeEnv is the pxe-pilot service's environment in docker-compose.yml
// with every line that is commented out turned on, as an operator who
// follows its comments ends up with.
func composeEnv(t *testing.T) (env map[string]string, ports []string) {
	t.Helper()
	env = map[string]string{}
	section := ""
	line := regexp.MustCompile(`^\s+(?:#\s*)?([A-Z_]+): ("[^"]*"|\S+)`)
	port := regexp.MustCompile(`^\s+(?:#\s*)?- "(\d+:\d+)"`)
	service := regexp.MustCompile(`^  ([a-z-]+):`)
	for l := range strings.Lines(string(mustRead(t, "docker-compose.yml"))) {
		if m := service.FindStringSubmatch(l); m != nil {
			section = m[1]
		}
		if section != "pxe-pilot" {
			continue
		}
		if m := line.FindStringSubmatch(l); m != nil {
			env[m[1]] = strings.Trim(m[2], `"`)
		}
		if m := port.FindStringSubmatch(l); m != nil {
			ports = append(ports, m[1])
		}
	}
	if len(env) == 0 {
		t.Fatal("docker-compose.yml: no environment for the pxe-pilot service")
	}
	return env, ports
}

// TestComposeWithEveryLineOnStarts: turning on every commented line of the
// pxe-pilot service (HTTPS, tokens, tracking) gives a server that starts,
// rather than one that exits and restarts in a loop, and publishes the
// port it listens on and its public URL names.
func TestComposeWithEveryLineOnStarts(t *testing.T) {
	env, ports := composeEnv(t)
	root := t.TempDir()
	tlsDir := filepath.Join(root, "tls")
	if err := run([]string{"cert", "--out", tlsDir, "--host", "127.0.0.1"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tlsDir, "tokens"), []byte("rack-a:compose-test-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"CONFIG_DIR", "LISTEN", "PORT", "PXE_PILOT_TLS_CERT", "PXE_PILOT_TLS_KEY", "PXE_PILOT_TOKEN_FILE",
		"PXE_PILOT_ALLOW", "PXE_PILOT_MAX_INFLIGHT", "PXE_PILOT_PUBLIC_URL", "PXE_PILOT_STATE_DIR", "PXE_PILOT_ONCE", "PXE_PILOT_LOG_FORMAT"} {
		t.Setenv(k, "")
	}
	t.Setenv("CONFIG_DIR", "examples/config") // the image's ENV, and the compose volume
	for k, v := range env {
		// The container's paths, in the test's temp dir.
		if strings.HasPrefix(v, "/tls/") || v == "/state" {
			v = filepath.Join(root, v)
		}
		t.Setenv(k, v)
	}
	if env["PXE_PILOT_TLS_CERT"] == "" || env["PXE_PILOT_PUBLIC_URL"] == "" || env["PXE_PILOT_STATE_DIR"] == "" {
		t.Fatalf("docker-compose.yml shows no TLS, public URL or state dir to turn on: %v", env)
	}
	u, err := url.Parse(env["PXE_PILOT_PUBLIC_URL"])
	if err != nil {
		t.Fatal(err)
	}
	// With TLS, serve listens on 8443; the URL and the published port must say so.
	if u.Scheme != "https" || u.Port() != "8443" || !slices.Contains(ports, "8443:8443") {
		t.Errorf("with the TLS lines on, PXE_PILOT_PUBLIC_URL is %s and the ports %q; want https://...:8443 and 8443:8443 published", u, ports)
	}

	addr := freePort(t)
	log := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, []string{"--listen", addr}, log) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve = %v", err)
		}
	}()
	s := &guideServer{scheme: "https", addr: addr, done: done, client: &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	if err := s.waitHealthy(); err != nil {
		done <- nil
		t.Fatalf("serve with every line of docker-compose.yml on did not start: %v\nlog:\n%s", err, log)
	}
}

// TestComposeGraceCoversTheDrain: docker compose stop sends SIGTERM and
// kills after stop_grace_period; serve drains requests for up to its
// shutdown timeout, which the grace period must exceed.
func TestComposeGraceCoversTheDrain(t *testing.T) {
	m := regexp.MustCompile(`context\.WithTimeout\(context\.Background\(\), (\d+)\*time\.Second\)`).FindSubmatch(mustRead(t, "main.go"))
	if m == nil {
		t.Fatal("main.go: no shutdown timeout found (context.WithTimeout(context.Background(), N*time.Second))")
	}
	drain, _ := time.ParseDuration(string(m[1]) + "s")
	g := regexp.MustCompile(`(?m)^    stop_grace_period: (\S+)$`).FindSubmatch(mustRead(t, "docker-compose.yml"))
	if g == nil {
		t.Fatalf("docker-compose.yml: the pxe-pilot service sets no stop_grace_period; Docker's 10 s default would kill serve while it drains for up to %s", drain)
	}
	grace, err := time.ParseDuration(string(g[1]))
	if err != nil || grace <= drain {
		t.Errorf("docker-compose.yml: stop_grace_period %s; want more than serve's %s drain", g[1], drain)
	}
}

// TestReadmeReportByHand runs the README's two blocks that post the example
// report by hand: serve (here in the test, on a free port), then the shell
// lines, with a pxe-pilot built from this tree on PATH.
func TestReadmeReportByHand(t *testing.T) {
	const (
		serveClaim = "# In one terminal: serve, keeping state."
		postClaim  = "# In another: the token from the machine's answer"
		addr       = "127.0.0.1:8080"
		stateDir   = "/tmp/pxe-pilot-state"
	)
	var serveBlock, postBlock guideBlock
	for _, b := range readDocBlocks(t, "README.md") {
		switch {
		case strings.HasPrefix(b.body, serveClaim):
			serveBlock = b
		case strings.HasPrefix(b.body, postClaim):
			postBlock = b
		}
	}
	if serveBlock.body == "" || postBlock.body == "" {
		t.Fatalf("README.md has no blocks starting %q and %q", serveClaim, postClaim)
	}
	for _, tool := range []string{"bash", "curl", "sed", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s to run the README's lines with", tool)
		}
	}
	bin, state := t.TempDir(), t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "pxe-pilot"), ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	here := freePort(t)
	put := strings.NewReplacer(addr, here, stateDir, state)

	cmds, err := guideCommands(serveBlock)
	if err != nil || len(cmds) != 1 || len(cmds[0].words) < 2 || cmds[0].words[1] != "serve" {
		t.Fatalf("README.md:%d: want one pxe-pilot serve line: %v", serveBlock.line, err)
	}
	var args []string
	for _, w := range cmds[0].words[2:] {
		args = append(args, put.Replace(w))
	}
	log := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, args, log) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve = %v\n%s", err, log)
		}
	}()
	s := &guideServer{scheme: "http", addr: here, done: done, client: &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}}
	if err := s.waitHealthy(); err != nil {
		done <- nil
		t.Fatalf("README.md:%d: serve %q: %v\n%s", serveBlock.line, args, err, log)
	}

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", put.Replace(postBlock.body))
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "no_proxy=127.0.0.1", "NO_PROXY=127.0.0.1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("README.md:%d: the lines failed: %v\n%s%s\nserve's log:\n%s", postBlock.line, err, out, &stderr, log)
	}
	if !strings.HasPrefix(string(out), `{"status":"recorded"}`) {
		t.Errorf("README.md:%d: curl printed %q; want {\"status\":\"recorded\"} first", postBlock.line, out)
	}
	rec, err := readRecord[hostRecord](filepath.Join(state, "hosts", "aa-bb-cc-dd-ee-ff.json"))
	if err != nil || rec.Installed.IsZero() || !strings.Contains(string(out), rec.Installed.UTC().Format(time.RFC3339)) {
		t.Errorf("README.md:%d: aa-bb-cc-dd-ee-ff is not shown installed: %+v, %v\n%s", postBlock.line, rec, err, out)
	}
}

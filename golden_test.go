// Golden tests: each testdata/<case>/ config and request, and the exact response.

package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden posts each testdata/<case>/request.json to a server whose
// config dir is testdata/<case>/config and compares the status, content
// type, X-PXE-Pilot-Host and body with testdata/<case>/response. A case
// may hold several machines: <name>.request.json gets <name>.response.
// `go test -update` rewrites the responses; review their diff as you would
// review code.
func TestGolden(t *testing.T) {
	requests, err := filepath.Glob(filepath.Join("testdata", "*", "*request.json"))
	if err != nil || len(requests) == 0 {
		t.Fatalf("no golden cases found (%v)", err)
	}
	for _, reqFile := range requests {
		dir := filepath.Dir(reqFile)
		name := strings.TrimSuffix(filepath.Base(reqFile), "request.json")
		t.Run(filepath.Base(dir)+"/"+strings.TrimSuffix(name, "."), func(t *testing.T) {
			body, err := os.ReadFile(reqFile)
			if err != nil {
				t.Fatal(err)
			}
			code, header, answer := post(t, filepath.Join(dir, "config"), body)
			got := fmt.Appendf(nil, "%d %s\n", code, header.Get("Content-Type"))
			if h := header.Get("X-PXE-Pilot-Host"); h != "" {
				got = fmt.Appendf(got, "X-PXE-Pilot-Host: %s\n", h)
			}
			got = fmt.Appendf(got, "\n%s", answer)
			checkGolden(t, filepath.Join(dir, name+"response"), got)
			if code == http.StatusOK {
				checkRoundTrip(t, body, answer)
			}
		})
	}
}

// post sends body to /answer of a server on configDir.
func post(t *testing.T, configDir string, body []byte) (code int, header http.Header, answer []byte) {
	t.Helper()
	srv := &server{dir: configDir, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/answer", bytes.NewReader(body)))
	return rec.Code, rec.Header(), rec.Body.Bytes()
}

// checkRoundTrip proves a served answer is stable: used as the only layer
// for the same machine, it validates and renders to the same bytes.
func checkRoundTrip(t *testing.T, body, answer []byte) {
	t.Helper()
	req, err := parseRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	rel, _, err := req.release()
	if err != nil {
		t.Fatal(err)
	}
	l, err := parseLayer("hosts/answer.toml", asConfig(t, answer))
	if err != nil {
		t.Fatalf("the served answer does not parse back: %v", err)
	}
	again, err := compose([]layer{l}, req.facts(match{by: "mac", key: req.macs[0]}, rel))
	if err != nil {
		t.Fatalf("the served answer does not validate: %v", err)
	}
	if !bytes.Equal(again, answer) {
		t.Errorf("rendering the served answer again changed it:\n%s\nwant:\n%s", again, answer)
	}
}

// asConfig is a served answer as a config file that composes back to it:
// "{{" in its values, which were filled in or written {{"{{"}}, is escaped
// again, so that it is not read as a placeholder.
func asConfig(tb testing.TB, answer []byte) []byte {
	tb.Helper()
	if !bytes.Contains(answer, []byte("{{")) {
		return answer
	}
	var tree map[string]any
	if err := toml.Unmarshal(answer, &tree); err != nil {
		tb.Fatalf("the answer does not parse: %v", err)
	}
	var escape func(v any) any
	escape = func(v any) any {
		switch v := v.(type) {
		case string:
			return strings.ReplaceAll(v, "{{", `{{"{{"}}`)
		case []any:
			for i := range v {
				v[i] = escape(v[i])
			}
		case map[string]any:
			for k := range v {
				v[k] = escape(v[k])
			}
		}
		return v
	}
	escape(tree)
	out, err := toml.Marshal(tree)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// The worked example in README.md is the golden case composing_example:
// every config file it shows is that case's file, byte for byte, and the
// answer it shows is the one served.
func TestReadmeExampleIsGolden(t *testing.T) {
	readme := string(mustRead(t, "README.md"))
	_, section, ok := strings.Cut(readme, "### A worked example\n")
	if !ok {
		t.Fatal(`README.md has no "### A worked example" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	const dir = "testdata/composing_example"
	files, answers := 0, 0
	for _, block := range strings.Split(section, "```toml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		first, _, _ := strings.Cut(block, "\n")
		if name, ok := strings.CutPrefix(first, "# config/"); ok {
			name, _, _ = strings.Cut(name, ":")
			if want := string(mustRead(t, filepath.Join(dir, "config", name))); block != want {
				t.Errorf("README.md shows config/%s as:\n%s\nwant %s/config/%s:\n%s", name, block, dir, name, want)
			}
			files++
			continue
		}
		_, want, _ := strings.Cut(string(mustRead(t, filepath.Join(dir, "pve-a1.response"))), "\n\n")
		if block != want {
			t.Errorf("README.md shows the answer as:\n%s\nwant %s/pve-a1.response:\n%s", block, dir, want)
		}
		answers++
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "config", "*", "*.toml"))
	if want := len(entries) + 1; files != want || answers != 1 {
		t.Errorf("README.md's worked example shows %d config files and %d answers; want %d and 1", files, answers, want)
	}
}

// checkGolden compares got with the golden file, which go test -update
// rewrites.
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n%s\nwant:\n%s", golden, got, want)
	}
}

//go:build ignore

// Loadtest measures pxe-pilot as the installer uses it: one new connection
// per request, several installers at once, on loopback. In the same run it
// measures a bare net/http handler that reads the body and writes a fixed
// answer, so that the figure that matters, server CPU per request, is a
// ratio to the cost of the HTTP connection itself on the same machine.
//
// Usage:
//
//	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /tmp/pxe-pilot .
//	go run loadtest.go -bin /tmp/pxe-pilot [-config examples/config]
//	    [-request examples/requests/pve-9.2.json] [-hosts 1000] [-c 4,16] [-n 20000] [-rounds 3]
//
// As at a real install, every machine asks for its own answer: the run
// writes a config dir with -hosts host files (copies of the example host
// aa-bb-cc-dd-ee-ff.toml under other MACs and names, beside the example's
// defaults.toml) and cycles through them, so no host file is parsed twice
// in a row.
//
// Server CPU is read from /proc/PID/stat (user + system time), peak memory
// from VmHWM in /proc/PID/status, so it runs on Linux only.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	log.SetFlags(0)
	bin := flag.String("bin", "", "the pxe-pilot binary to measure")
	config := flag.String("config", "examples/config", "its config dir")
	request := flag.String("request", "examples/requests/pve-9.2.json", "the request body to post, naming aa:bb:cc:dd:ee:ff")
	hosts := flag.Int("hosts", 1000, "distinct machines to answer")
	conc := flag.String("c", "4,16", "concurrent clients, comma-separated")
	n := flag.Int("n", 20000, "requests per measurement")
	rounds := flag.Int("rounds", 3, "measurements of each server at each concurrency, interleaved")
	baseline := flag.String("baseline-server", "", "internal: serve the bare handler on this address")
	flag.Parse()

	if *baseline != "" {
		serveBaseline(*baseline)
		return
	}
	if *bin == "" {
		log.Fatal("loadtest: -bin is required: build pxe-pilot first (see the usage in loadtest.go)")
	}
	tmpl, err := os.ReadFile(*request)
	if err != nil {
		log.Fatal(err)
	}
	dir, bodies := machines(*config, tmpl, *hosts)
	defer os.RemoveAll(dir)
	body := bodies[0]
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}

	pp := start(*bin, "serve", "--config-dir", dir, "--listen", "127.0.0.1:0")
	defer pp.stop()
	base := start(self, "-baseline-server", "127.0.0.1:0")
	defer base.stop()

	// Both must answer before anything is measured.
	for _, s := range []*proc{pp, base} {
		if code := post(s.url, body); code != http.StatusOK {
			log.Fatalf("loadtest: %s answered %d", s.url, code)
		}
	}

	fmt.Printf("%d requests per measurement over %d machines, new connection per request, %d rounds\n", *n, *hosts, *rounds)
	fmt.Printf("%-8s %-12s %10s %14s %10s\n", "clients", "server", "req/s", "CPU µs/req", "ratio")
	for _, field := range strings.Split(*conc, ",") {
		c, err := strconv.Atoi(field)
		if err != nil || c < 1 {
			log.Fatalf("loadtest: -c %q: want numbers", *conc)
		}
		var cpu, rps [2]float64
		for r := 0; r < *rounds; r++ {
			for i, s := range []*proc{base, pp} {
				cu, rs := measure(s, bodies, c, *n)
				cpu[i] += cu / float64(*rounds)
				rps[i] += rs / float64(*rounds)
			}
		}
		fmt.Printf("%-8d %-12s %10.0f %14.1f %10s\n", c, "net/http", rps[0], cpu[0], "1.00")
		fmt.Printf("%-8d %-12s %10.0f %14.1f %10.2f\n", c, "pxe-pilot", rps[1], cpu[1], cpu[1]/cpu[0])
	}
	fmt.Printf("peak RSS: pxe-pilot %.1f MiB, net/http %.1f MiB\n", pp.peakRSS(), base.peakRSS())
}

// measure sends n requests from c clients and returns the server's CPU
// per request in µs and the requests per second.
func measure(s *proc, bodies [][]byte, c, n int) (cpuPerReq, rps float64) {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	cpu0 := s.cpu()
	t0 := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if post(s.url, bodies[i%int64(len(bodies))]) != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	cpu := s.cpu() - cpu0
	if failed.Load() > 0 {
		log.Fatalf("loadtest: %d of %d requests to %s failed", failed.Load(), n, s.url)
	}
	return cpu.Seconds() * 1e6 / float64(n), float64(n) / elapsed.Seconds()
}

// machines writes a config dir of n hosts and returns it with a request
// body for each host.
func machines(config string, request []byte, n int) (string, [][]byte) {
	dir, err := os.MkdirTemp("", "pxe-pilot-load-")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "hosts"), 0o755); err != nil {
		log.Fatal(err)
	}
	defaults, err := os.ReadFile(filepath.Join(config, "defaults.toml"))
	if err != nil {
		log.Fatal(err)
	}
	host, err := os.ReadFile(filepath.Join(config, "hosts", "aa-bb-cc-dd-ee-ff.toml"))
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "defaults.toml"), defaults, 0o644); err != nil {
		log.Fatal(err)
	}
	var bodies [][]byte
	for i := range n {
		mac := fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
		file := strings.ReplaceAll(mac, ":", "-") + ".toml"
		h := bytes.ReplaceAll(host, []byte("pve-node-01"), []byte(fmt.Sprintf("pve-node-%d", i)))
		if err := os.WriteFile(filepath.Join(dir, "hosts", file), h, 0o644); err != nil {
			log.Fatal(err)
		}
		bodies = append(bodies, bytes.ReplaceAll(bytes.ToLower(request), []byte("aa:bb:cc:dd:ee:ff"), []byte(mac)))
	}
	return dir, bodies
}

// client opens a new connection for every request, as each installer does.
var client = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	Timeout:   10 * time.Second,
}

func post(url string, body []byte) int {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// proc is a server under measurement.
type proc struct {
	cmd *exec.Cmd
	url string
}

// start runs a server listening on port 0 and reads the address it chose
// from its log line ("addr=127.0.0.1:PORT").
func start(name string, args ...string) *proc {
	cmd := exec.Command(name, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 4096)
	var out []byte
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		k, err := stderr.Read(buf)
		out = append(out, buf[:k]...)
		if i := bytes.Index(out, []byte("addr=")); i >= 0 {
			rest := out[i+len("addr="):]
			if j := bytes.IndexAny(rest, " \n"); j >= 0 {
				go io.Copy(io.Discard, stderr) // keep the server's log from blocking it
				return &proc{cmd: cmd, url: "http://" + string(rest[:j]) + "/answer"}
			}
		}
		if err != nil {
			break
		}
	}
	cmd.Process.Kill()
	log.Fatalf("loadtest: %s did not say where it listens: %s", name, out)
	return nil
}

func (p *proc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
	}
}

// cpu is the user and system time the server has used.
func (p *proc) cpu() time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		log.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / hz
}

// peakRSS is the server's VmHWM in MiB.
func (p *proc) peakRSS() float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// serveBaseline is the bare handler: read the body, write a fixed answer
// of the same size as a real one, with the same server timeouts.
func serveBaseline(addr string) {
	answer := bytes.Repeat([]byte("x"), 500)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 1<<20))
			w.Header().Set("Content-Type", "application/toml; charset=utf-8")
			w.Write(answer)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	fmt.Fprintf(os.Stderr, "baseline addr=%s\n", ln.Addr())
	go srv.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	<-ctx.Done()
}

//go:build ignore

// Bootbench measures pxe-pilot sending a boot image as many machines fetch
// it at once: concurrent downloads of one big file (the prepared ISO is
// 1.5 GiB) over loopback. In the same run, interleaved round by round, it
// measures nginx sending the same file from the same folder, so that the
// figure that matters is a ratio to a server built for exactly this.
//
// Usage:
//
//	apt-get install nginx    # Debian's; the run starts its own, on loopback
//	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /tmp/pxe-pilot .
//	go run bootbench.go -bin /tmp/pxe-pilot [-file BIG.iso | -size 1536] [-c 16] [-rounds 3]
//
// Without -file the run writes a file of -size MiB in a temporary folder,
// which it removes at the end with nginx's config and logs; both servers
// are stopped at the end, or at an interrupt. Each round reads the whole
// file -c times at once from each server and checks every byte count.
//
// Throughput is bytes received over the wall time of a round; server CPU
// is read from /proc/PID/stat (nginx's master and workers together),
// pxe-pilot's peak memory from VmHWM in /proc/PID/status, so it runs on
// Linux only. Client and servers share the machine's CPUs.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const isoName = "image-auto-from-http.iso"

func main() {
	log.SetFlags(0)
	if err := run(); err != nil {
		log.Fatal("bootbench: ", err)
	}
}

func run() error {
	bin := flag.String("bin", "", "the pxe-pilot binary to measure")
	config := flag.String("config", "examples/config", "its config dir")
	file := flag.String("file", "", "the big `FILE` to serve (default: one of -size MiB, written for the run)")
	size := flag.Int64("size", 1536, "the size of the file written for the run, in `MiB`")
	conc := flag.Int("c", 16, "concurrent downloads")
	rounds := flag.Int("rounds", 3, "rounds of downloads from each server, interleaved")
	nginxBin := flag.String("nginx", "/usr/sbin/nginx", "the nginx binary")
	flag.Parse()
	if *bin == "" {
		return errors.New("-bin is required: build pxe-pilot first (see the usage in bootbench.go)")
	}
	if _, err := os.Stat(*nginxBin); err != nil {
		return fmt.Errorf("%v: install Debian's nginx (apt-get install nginx), or give -nginx", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tmp, err := os.MkdirTemp("", "pxe-pilot-bootbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// nginx's workers run as another user when it starts as root: they
	// must be able to read the image.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	img := filepath.Join(tmp, "boot", "img")
	if err := os.MkdirAll(img, 0o755); err != nil {
		return err
	}
	// The example image's script, in the shape prepare-iso writes (the
	// initrds in a :load section the entries goto), naming this ISO.
	example, err := os.ReadFile("examples/boot/pve-9.1/boot.ipxe")
	if err != nil {
		return fmt.Errorf("%v: run it from the repository's folder", err)
	}
	script := strings.ReplaceAll(string(example), "proxmox-ve_9.1-1-auto-from-http.iso", isoName)
	for name, content := range map[string]string{"boot.ipxe": script, "vmlinuz": "kernel", "initrd.img": "initrd"} {
		if err := os.WriteFile(filepath.Join(img, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	iso := filepath.Join(img, isoName)
	if *file != "" {
		abs, err := filepath.Abs(*file)
		if err != nil {
			return err
		}
		if err := os.Symlink(abs, iso); err != nil {
			return err
		}
	} else if err := writeFile(iso, *size<<20); err != nil {
		return err
	}
	st, err := os.Stat(iso)
	if err != nil {
		return err
	}
	// Both servers send from the page cache: read the file once first.
	if err := readAll(iso); err != nil {
		return err
	}

	pp, err := startPXEPilot(*bin, *config, filepath.Join(tmp, "boot"))
	if err != nil {
		return err
	}
	defer pp.stop()
	ngx, err := startNginx(*nginxBin, tmp)
	if err != nil {
		return err
	}
	defer ngx.stop()

	path := "/boot/img/" + isoName
	servers := []*proc{pp, ngx}
	fmt.Printf("%d concurrent downloads of a %.2f GiB file over loopback, %d rounds, %d CPUs\n", *conc, gib(st.Size()), *rounds, runtime.NumCPU())
	fmt.Printf("%-10s %-6s %12s %16s\n", "server", "round", "GiB/s", "CPU s per GiB")
	var total [2]float64
	for r := 1; r <= *rounds; r++ {
		for i, s := range servers {
			cpu0 := s.cpu()
			rate, err := measure(ctx, s.url+path, *conc, st.Size())
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			cpu := s.cpu() - cpu0
			total[i] += rate
			fmt.Printf("%-10s %-6d %12.2f %16.3f\n", s.name, r, rate, cpu.Seconds()/(gib(st.Size())*float64(*conc)))
		}
	}
	pRate, nRate := total[0]/float64(*rounds), total[1]/float64(*rounds)
	fmt.Printf("mean: pxe-pilot %.2f GiB/s, nginx %.2f GiB/s, ratio pxe-pilot/nginx %.2f\n", pRate, nRate, pRate/nRate)
	fmt.Printf("peak RSS: pxe-pilot %.1f MiB\n", pp.peakRSS())
	return nil
}

// measure downloads url c times at once and returns GiB/s received. Each
// download comes from an address of its own, 127.0.0.10 and on, as c
// machines' would: pxe-pilot sends at most a few files to one address at
// once.
func measure(ctx context.Context, url string, c int, size int64) (float64, error) {
	errs := make(chan error, c)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range c {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte((10+i)>>8), byte(10+i))}}
		client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true, DialContext: d.DialContext}}
		defer client.CloseIdleConnections()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- download(ctx, client, url, size)
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return gib(size) * float64(c) / elapsed.Seconds(), nil
}

func download(ctx context.Context, client *http.Client, url string, size int64) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || n != size {
		return fmt.Errorf("GET %s = %d, %d bytes; want 200, %d bytes", url, resp.StatusCode, n, size)
	}
	return nil
}

// writeFile writes size bytes that no filesystem stores as a hole.
func writeFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	block := bytes.Repeat([]byte("pxe-pilot bootbench\n"), 1<<16) // 1.25 MiB
	w := bufio.NewWriterSize(f, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(block)))
		if _, err := w.Write(block[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readAll(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// proc is a server under measurement.
type proc struct {
	name string
	cmd  *exec.Cmd
	url  string
}

// startPXEPilot runs pxe-pilot on port 0 and reads the address it chose
// from its log line ("addr=127.0.0.1:PORT").
func startPXEPilot(bin, config, bootDir string) (*proc, error) {
	cmd := exec.Command(bin, "serve", "--config-dir", config, "--listen", "127.0.0.1:0", "--boot-dir", bootDir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: "pxe-pilot", cmd: cmd}
	lines := bufio.NewScanner(stderr)
	var out []string
	for lines.Scan() {
		out = append(out, lines.Text())
		if _, rest, ok := strings.Cut(lines.Text(), " addr="); ok {
			addr, _, _ := strings.Cut(rest, " ")
			p.url = "http://" + addr
			go io.Copy(io.Discard, stderr) // keep its request log from blocking it
			return p, nil
		}
	}
	p.stop()
	return nil, fmt.Errorf("pxe-pilot did not say where it listens:\n%s", strings.Join(out, "\n"))
}

// startNginx runs nginx in the foreground on a free loopback port, with
// a config of its own in dir, serving dir/boot as its root.
func startNginx(bin, dir string) (*proc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	user := ""
	if os.Getuid() == 0 {
		user = "user root;" // its workers read the image as the run does
	}
	conf := fmt.Sprintf(`%s
daemon off;
worker_processes auto;
pid %[2]s/nginx.pid;
error_log %[2]s/nginx-error.log;
events {}
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	default_type application/octet-stream;
	client_body_temp_path %[2]s/nginx-body;
	proxy_temp_path %[2]s/nginx-proxy;
	fastcgi_temp_path %[2]s/nginx-fastcgi;
	uwsgi_temp_path %[2]s/nginx-uwsgi;
	scgi_temp_path %[2]s/nginx-scgi;
	server {
		listen %[3]s;
		root %[2]s;
	}
}
`, user, dir, addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "nginx-error.log"), "-c", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: "nginx", cmd: cmd, url: "http://" + addr}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p, nil
		}
	}
	p.stop()
	log, _ := os.ReadFile(filepath.Join(dir, "nginx-error.log"))
	return nil, fmt.Errorf("nginx did not listen on %s: %s%s", addr, &out, log)
}

// stop ends the server as its operator would (SIGTERM: nginx's fast
// shutdown, pxe-pilot's graceful one), and kills it if it lingers.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// cpu is the user and system time the server has used, with that of its
// child processes (nginx's workers).
func (p *proc) cpu() time.Duration {
	var total time.Duration
	for _, pid := range append([]int{p.cmd.Process.Pid}, children(p.cmd.Process.Pid)...) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses and may hold spaces.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		const hz = 100 // USER_HZ on Linux
		total += time.Duration(utime+stime) * time.Second / hz
	}
	return total
}

// children are the processes pid started.
func children(pid int) []int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

// peakRSS is the server's VmHWM in MiB.
func (p *proc) peakRSS() float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

func gib(n int64) float64 { return float64(n) / (1 << 30) }

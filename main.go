// Command pxe-pilot answers the Proxmox VE automated installer.
//
// A machine booted into the installer POSTs its system information to
// pxe-pilot; pxe-pilot finds the machine's host file by MAC address,
// composes it over defaults.toml, checks the result against the installer's
// schema and returns the answer.toml the installer needs, so that Proxmox
// installs unattended. The config dir is read afresh on every request.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"
)

const usage = `pxe-pilot answers the Proxmox VE automated installer.

Usage:

	$ pxe-pilot serve [--config-dir DIR] [--listen ADDR | --port N]
	Serve answers: the installer POSTs to http://HOST:PORT/answer.

	$ pxe-pilot version
	Print the version.

Examples:

	$ pxe-pilot serve --config-dir examples/config
	$ pxe-pilot serve --config-dir /etc/pxe-pilot --listen 10.0.0.2:8080
	$ curl --data @examples/requests/pve-9.2.json http://localhost:8080/answer

The config dir holds defaults.toml (optional) and hosts/<mac>.toml, such as
hosts/aa-bb-cc-dd-ee-ff.toml; hosts/default.toml, if present, answers every
machine that has no file of its own. See README.md.

Environment (flags win):

	CONFIG_DIR            --config-dir (default ./config)
	LISTEN                --listen (default :8080)
	PORT                  --port
	PXE_PILOT_LOG_FORMAT  --log-format: text (default) or json
`

// version is set at link time (-ldflags "-X main.version=v1.2.3"); else
// the module version from the build info.
var version string

func main() {
	log.SetFlags(0)
	log.SetPrefix("pxe-pilot: ")
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		log.Fatal(err)
	}
}

// run carries out one command line; main only reports its error.
func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given; try 'pxe-pilot serve'")
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "pxe-pilot", versionString())
		return nil
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// serveConfig is what the serve command's flags and environment decide.
type serveConfig struct {
	dir       string
	addr      string
	logFormat string
}

func parseServe(args []string, stderr io.Writer) (serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	dir := fs.String("config-dir", envOr("CONFIG_DIR", "./config"), "the config dir")
	listen := fs.String("listen", "", "the address to listen on, such as :8080 or 10.0.0.2:8080")
	port := fs.String("port", "", "the port to listen on, on all addresses")
	logFormat := fs.String("log-format", envOr("PXE_PILOT_LOG_FORMAT", "text"), "text or json")
	if err := fs.Parse(args); err != nil {
		return serveConfig{}, err
	}
	if fs.NArg() > 0 {
		return serveConfig{}, fmt.Errorf("serve takes no arguments, got %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var addr string
	switch {
	case set["listen"] && set["port"]:
		return serveConfig{}, errors.New("you can't set --listen and --port at the same time; --listen HOST:PORT says both")
	case set["listen"]:
		addr = *listen
	case set["port"]:
		p, err := portOf(*port, "--port")
		if err != nil {
			return serveConfig{}, err
		}
		addr = ":" + p
	case os.Getenv("LISTEN") != "" && os.Getenv("PORT") != "":
		return serveConfig{}, errors.New("LISTEN and PORT are both set in the environment; unset one (LISTEN=HOST:PORT says both)")
	case os.Getenv("LISTEN") != "":
		addr = os.Getenv("LISTEN")
	case os.Getenv("PORT") != "":
		p, err := portOf(os.Getenv("PORT"), "PORT")
		if err != nil {
			return serveConfig{}, err
		}
		addr = ":" + p
	default:
		addr = ":8080"
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return serveConfig{}, fmt.Errorf("listen address %q: want HOST:PORT or :PORT, such as :8080", addr)
	}
	if *logFormat != "text" && *logFormat != "json" {
		return serveConfig{}, fmt.Errorf("--log-format %q: want text or json", *logFormat)
	}
	return serveConfig{dir: *dir, addr: addr, logFormat: *logFormat}, nil
}

func portOf(s, what string) (string, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%s %q: want a port number from 0 to 65535", what, s)
	}
	return strconv.Itoa(n), nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func serve(args []string, stderr io.Writer) error {
	cfg, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	var logger *slog.Logger
	if cfg.logFormat == "json" {
		logger = slog.New(slog.NewJSONHandler(stderr, nil))
	} else {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}

	if info, err := os.Stat(cfg.dir); err != nil || !info.IsDir() {
		return fmt.Errorf("config dir %q is missing or not a directory: create it with defaults.toml and hosts/<mac>.toml (examples/config is a working example), or point --config-dir or CONFIG_DIR at yours", cfg.dir)
	}
	if err := checkConfigDir(cfg.dir); err != nil {
		var ce *configError
		if !errors.As(err, &ce) {
			return fmt.Errorf("%v: make it readable by the user pxe-pilot runs as", err)
		}
		// A broken defaults.toml is fixed by editing it, with no restart:
		// say so now, and in every answer until then.
		logger.Warn("config has a problem; answers will fail until it is fixed", "error", err.Error())
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{
		Handler:           &server{dir: cfg.dir, log: logger},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String(), "config_dir", cfg.dir, "version", versionString())

	select {
	case err := <-done:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

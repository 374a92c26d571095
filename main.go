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
	"encoding/json"
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

	$ pxe-pilot validate [--config-dir DIR] [--release X.Y]
	Check every file and every host's answer offline; exit 1 on any error.

	$ pxe-pilot render [--config-dir DIR] (--mac MAC [--serial S] [--uuid U] [--release X.Y] | --request FILE.json | -)
	Print exactly the answer the server would send that machine.

	$ pxe-pilot version
	Print the version.

Examples:

	$ pxe-pilot serve --config-dir examples/config
	$ pxe-pilot serve --config-dir /etc/pxe-pilot --listen 10.0.0.2:8080
	$ curl --data @examples/requests/pve-9.2.json http://localhost:8080/answer
	$ pxe-pilot validate --config-dir /etc/pxe-pilot
	$ pxe-pilot render --config-dir /etc/pxe-pilot --mac aa:bb:cc:dd:ee:ff
	$ pxe-pilot render --config-dir /etc/pxe-pilot --mac 02:00:00:00:00:01 --serial S424170X1A21345
	$ proxmox-auto-install-assistant system-info | pxe-pilot render -

The config dir holds defaults.toml (optional), profiles/<name>.toml that any
file may list in profiles = [...], and the host files, looked up in this
order: hosts/<mac>.toml for each NIC (hosts/aa-bb-cc-dd-ee-ff.toml),
hosts/serial-<serial>.toml, hosts/uuid-<uuid>.toml, then hosts/default.toml,
which answers every machine that has no file of its own. See README.md.

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
		if errors.Is(err, errValidate) {
			os.Exit(1)
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
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return serve(ctx, args[1:], stderr)
	case "validate":
		return validateCmd(args[1:], stdout, stderr)
	case "render":
		return renderCmd(args[1:], os.Stdin, stdout, stderr)
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

// serve answers until ctx is done (SIGINT or SIGTERM), then shuts down
// gracefully.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
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

// flagSet is a subcommand's flag set, with --config-dir, which all share.
func flagSet(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	return fs, fs.String("config-dir", envOr("CONFIG_DIR", "./config"), "the config dir")
}

// releaseFlag reads --release X.Y for the commands that have no request.
func releaseFlag(s string) (release, error) {
	rel, ok := parseRelease(s)
	if !ok || rel.before(r82) || newest.before(rel) {
		return release{}, fmt.Errorf("--release %q: want a Proxmox VE ISO release from %s to %s", s, r82, newest)
	}
	return rel, nil
}

// renderCmd prints the answer for one machine: the same bytes the server
// would send, from the same code, or the same error line and exit 1.
func renderCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, dir := flagSet("render", stderr)
	mac := fs.String("mac", "", "the machine's MAC")
	serial := fs.String("serial", "", "the machine's serial number (dmi.system.serial), with --mac")
	uuid := fs.String("uuid", "", "the machine's system UUID (dmi.system.uuid), with --mac")
	reqFile := fs.String("request", "", "a request body saved from an installer (- for standard input)")
	rel := fs.String("release", newest.String(), "the ISO release, with --mac")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 1 && fs.Arg(0) == "-" && *reqFile == "" {
		*reqFile = "-"
	} else if fs.NArg() > 0 {
		return fmt.Errorf("render: unexpected argument %q", fs.Arg(0))
	}
	var body []byte
	switch {
	case *mac == "" && *reqFile == "" && (*serial != "" || *uuid != ""):
		return errors.New("render: --serial and --uuid need --mac too, as the installer always sends its NICs; a MAC with no host file of its own will do")
	case (*mac == "") == (*reqFile == ""):
		return errors.New("render needs one of --mac MAC, --request FILE.json or - (a request on standard input)")
	case *reqFile != "" && (*serial != "" || *uuid != ""):
		return errors.New("render: --serial and --uuid go with --mac; a request names its own serial and UUID (dmi.system)")
	case *mac != "":
		if _, ok := normalizeMAC(*mac); !ok {
			return fmt.Errorf("--mac %q: want a MAC such as aa:bb:cc:dd:ee:ff", *mac)
		}
		r, err := releaseFlag(*rel)
		if err != nil {
			return err
		}
		q := func(s string) []byte { b, _ := json.Marshal(s); return b }
		body = fmt.Appendf(nil, `{"product": {"product": "pve", "enable_btrfs": true}, "iso": {"release": %q}, "dmi": {"system": {"serial": %s, "uuid": %s}}, "network_interfaces": [{"link": "nic0", "mac": %q}]}`, r, q(*serial), q(*uuid), *mac)
	case *reqFile == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, maxBody+1))
		if err != nil {
			return fmt.Errorf("reading the request from standard input: %w", err)
		}
		body = b
	default:
		b, err := os.ReadFile(*reqFile)
		if err != nil {
			return fmt.Errorf("reading the request: %w", err)
		}
		body = b
	}
	if len(body) > maxBody {
		return fmt.Errorf("the request is over %d bytes", maxBody)
	}
	var o outcome
	status, out := respond(*dir, body, &o)
	if status != 200 {
		return errors.New(string(out))
	}
	_, err := stdout.Write(out)
	return err
}

// validateCmd checks a config dir offline: every file parses, every host
// file is named so that it can match, and every host's answer validates.
func validateCmd(args []string, stdout, stderr io.Writer) error {
	fs, dir := flagSet("validate", stderr)
	relFlag := fs.String("release", newest.String(), "the ISO release to check the answers for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("validate: unexpected argument %q", fs.Arg(0))
	}
	rel, err := releaseFlag(*relFlag)
	if err != nil {
		return err
	}
	if info, err := os.Stat(*dir); err != nil || !info.IsDir() {
		return fmt.Errorf("config dir %q is missing or not a directory; point --config-dir or CONFIG_DIR at yours", *dir)
	}
	r := checkDir(*dir, rel)
	for _, line := range r.lines {
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintf(stdout, "pxe-pilot: %d host files checked for ISO release %s: %d errors, %d warnings\n", r.hosts, rel, r.errors, r.warnings)
	if r.errors > 0 {
		return errValidate
	}
	return nil
}

// errValidate ends validate with status 1 once its lines have said why.
var errValidate = errors.New("the config has errors")

// Command pxe-pilot answers the Proxmox VE automated installer.
//
// A machine booted into the installer POSTs its system information to
// pxe-pilot; pxe-pilot finds the machine's host file by MAC address,
// composes it over defaults.toml, checks the result against the installer's
// schema and returns the answer.toml the installer needs, so that Proxmox
// installs unattended. The config dir is read afresh on every request.
package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// A command is a subcommand as its help shows it: how it is called, what
// it does, and examples that work from the repository's root, against
// examples/config (TestCommandHelpExamplesRun runs every one).
type command struct {
	name     string
	synopsis string // the flags and arguments, after "pxe-pilot NAME"
	about    string // what it does; its first line says it in one
	examples []string
}

// commands are the subcommands, in the order the usage lists them.
var commands = []command{
	{"serve", `[--config-dir DIR] [--listen ADDR | --port N] [--log-format text|json]
	                  [--tls-cert FILE --tls-key FILE] [--token-file FILE]
	                  [--allow CIDR,...] [--max-inflight N]
	                  [--public-url URL [--state-dir DIR [--once] [--stall-after DURATION]]]
	                  [--boot-dir DIR [--local-boot exit|sanboot] [--boot-listen ADDR]]`,
		`Serve answers: the installer POSTs to http(s)://HOST:PORT/answer.
	With --public-url, answers report back when installed (POST /installed)
	and first-boot scripts are served; --state-dir keeps what was answered
	and installed; --once refuses a machine that was installed. With
	--boot-dir, the files each image's boot.ipxe loads are served under
	/boot/IMAGE/FILE, and GET /boot.ipxe?mac=...&uuid=...&serial=... gives
	each machine the iPXE script that installs it, boots its disk or says why.
	GET / shows the fleet in a browser, GET /status.json the same as JSON.`,
		[]string{"pxe-pilot serve --config-dir examples/config --listen 127.0.0.1:8080",
			"pxe-pilot serve --config-dir examples/config --listen :8080 --public-url http://10.0.0.2:8080 --state-dir state --once",
			"pxe-pilot serve --config-dir examples/config --listen :8080 --public-url http://10.0.0.2:8080 --state-dir state --boot-dir examples/boot"}},
	{"validate", `[--config-dir DIR] [--release X.Y] [--public-url URL] [--boot-dir DIR]`,
		`Check every file and every host's answer offline; exit 1 on any error.`,
		[]string{"pxe-pilot validate --config-dir examples/config",
			"pxe-pilot validate --config-dir examples/config --release 8.4"}},
	{"render", `[--config-dir DIR] (--mac MAC [--serial S] [--uuid U] [--release X.Y] | --request FILE.json | -)
	                   [--public-url URL [--state-dir DIR] [--tls-cert FILE]] [--explain]
	                   [--boot --boot-dir DIR [--url URL] [--local-boot exit|sanboot] [--platform P] [--ipxe-version V]]`,
		`Print exactly the answer (with --boot, the boot script) the server would send that machine.`,
		[]string{"pxe-pilot render --config-dir examples/config --mac aa:bb:cc:dd:ee:ff",
			"pxe-pilot render --config-dir examples/config --request examples/requests/pve-9.2.json",
			"pxe-pilot render --config-dir examples/config --mac aa:bb:cc:dd:ee:01 --explain",
			"pxe-pilot render --boot --config-dir examples/config --boot-dir examples/boot --mac aa:bb:cc:dd:ee:ff --url http://10.0.0.2:8080"}},
	{"status", `[--config-dir DIR] [--state-dir DIR] [--boot-dir DIR] [--stall-after DURATION]
	                   [--json | --stalled [--json] | --known-hosts]`,
		`List every host and its state: never seen, answered, installed, refused, stalled or repeated.
	With --stalled, only the machines answered and not reported for
	--stall-after; with --known-hosts, the installed machines' SSH host keys
	as known_hosts lines. The config's problems come first, as validate
	says them.`,
		[]string{"pxe-pilot status --config-dir examples/config --state-dir state",
			"pxe-pilot status --config-dir examples/config --state-dir state --stalled --stall-after 90m",
			"pxe-pilot status --config-dir examples/config --state-dir state --known-hosts"}},
	{"rearm", `[--state-dir DIR] MACHINE`,
		`Let serve --once answer an installed machine (aa-bb-cc-dd-ee-ff) again.`,
		[]string{"pxe-pilot rearm --state-dir state aa-bb-cc-dd-ee-ff"}},
	{"cert", `[--out DIR] [--host NAME,IP,...] [--force]`,
		`Create a self-signed certificate and key for HTTPS, and print its
	fingerprint and the prepare-iso command line that pins it.`,
		[]string{"pxe-pilot cert --out tls --host pxe.lab.example.com,10.0.0.2"}},
	{"fingerprint", `FILE`,
		`Print a certificate's SHA-256 fingerprint, as prepare-iso takes it.`,
		[]string{"pxe-pilot fingerprint tls/pxe-pilot.crt"}},
	{"healthcheck", `[--url URL] [--cert FILE]`,
		`Exit 0 if the server answers /health with 200 (for container HEALTHCHECKs).`,
		[]string{"pxe-pilot healthcheck --url http://127.0.0.1:8080/health"}},
	{"version", ``, `Print the version.`, []string{"pxe-pilot version"}},
}

// flagEnv is the environment variable a flag takes its default from, and
// the default without it ("" for none).
var flagEnv = map[string]struct{ env, def string }{
	"config-dir":   {"CONFIG_DIR", "./config"},
	"listen":       {"LISTEN", ":8080, or :8443 with TLS"},
	"port":         {"PORT", ""},
	"log-format":   {"PXE_PILOT_LOG_FORMAT", "text"},
	"tls-cert":     {"PXE_PILOT_TLS_CERT", ""},
	"cert":         {"PXE_PILOT_TLS_CERT", ""},
	"tls-key":      {"PXE_PILOT_TLS_KEY", ""},
	"token-file":   {"PXE_PILOT_TOKEN_FILE", ""},
	"allow":        {"PXE_PILOT_ALLOW", ""},
	"max-inflight": {"PXE_PILOT_MAX_INFLIGHT", strconv.Itoa(defaultMaxInflight)},
	"public-url":   {"PXE_PILOT_PUBLIC_URL", ""},
	"state-dir":    {"PXE_PILOT_STATE_DIR", ""},
	"once":         {"PXE_PILOT_ONCE", ""},
	"boot-dir":     {"PXE_PILOT_BOOT_DIR", ""},
	"local-boot":   {"PXE_PILOT_LOCAL_BOOT", "exit"},
	"boot-listen":  {"PXE_PILOT_BOOT_LISTEN", ""},
	"stall-after":  {"PXE_PILOT_STALL_AFTER", stallAfterText},
}

// stallAfterText is defaultStallAfter as a flag's help and errors say it: 60m.
var stallAfterText = strconv.Itoa(int(defaultStallAfter/time.Minute)) + "m"

// usage is the whole usage text, that pxe-pilot help prints.
var usage = func() string {
	var b strings.Builder
	b.WriteString("pxe-pilot answers the Proxmox VE automated installer.\n\nUsage:\n\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "\t$ %s\n\t%s\n\n", strings.TrimSpace("pxe-pilot "+c.name+" "+c.synopsis), c.about)
	}
	b.WriteString("Run 'pxe-pilot COMMAND -h' for a command's flags and examples.\n\n")
	return b.String() + usageMore
}()

const usageMore = `Examples:

	$ pxe-pilot serve --config-dir examples/config
	$ pxe-pilot serve --config-dir /etc/pxe-pilot --listen 10.0.0.2:8080
	$ pxe-pilot cert --out /etc/pxe-pilot --host pxe.lab.example.com,10.0.0.2
	$ pxe-pilot serve --tls-cert /etc/pxe-pilot/pxe-pilot.crt --tls-key /etc/pxe-pilot/pxe-pilot.key \
	      --token-file /etc/pxe-pilot/tokens --allow 10.0.0.0/24
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

	CONFIG_DIR              --config-dir (default ./config)
	LISTEN                  --listen (default :8080, or :8443 with TLS)
	PORT                    --port
	PXE_PILOT_LOG_FORMAT    --log-format: text (default) or json
	PXE_PILOT_TLS_CERT      --tls-cert: serve HTTPS with this certificate
	PXE_PILOT_TLS_KEY       --tls-key: and this key
	PXE_PILOT_TOKEN_FILE    --token-file: one NAME:SECRET per line, as prepare-iso
	                        --answer-auth-token takes it; POST /answer then needs
	                        Authorization: Bearer NAME:SECRET, and the fleet page
	                        a login: NAME as the user, SECRET as the password
	PXE_PILOT_ALLOW         --allow: the source addresses that may ask (/health is open)
	PXE_PILOT_MAX_INFLIGHT  --max-inflight: requests answered at once (default 1024)
	PXE_PILOT_PUBLIC_URL    --public-url: how installers reach pxe-pilot
	PXE_PILOT_STATE_DIR     --state-dir (serve, status, rearm)
	PXE_PILOT_ONCE          --once: 1, true or yes (0, false or no: off)
	PXE_PILOT_BOOT_DIR      --boot-dir: the boot images, one prepare-iso --pxe folder each
	PXE_PILOT_LOCAL_BOOT    --local-boot: exit (default) or sanboot, how /boot.ipxe
	                        boots an installed machine's disk
	PXE_PILOT_BOOT_LISTEN   --boot-listen: also serve /boot.ipxe and /boot/ over plain
	                        HTTP at this address, for iPXE, beside HTTPS
	PXE_PILOT_STALL_AFTER   --stall-after (serve, status): a Go duration, 60m by default;
	                        an answered machine not reported for it is stalled
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
	err := runCommand(args, stdout, stderr)
	if h := (*helpError)(nil); errors.As(err, &h) {
		commandHelp(stdout, h.fs)
	}
	return err
}

func runCommand(args []string, stdout, stderr io.Writer) error {
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
		return validateCmd(args[1:], stdout)
	case "render":
		return renderCmd(args[1:], os.Stdin, stdout, stderr)
	case "cert":
		return certCmd(args[1:], stdout)
	case "fingerprint":
		return fingerprintCmd(args[1:], stdout)
	case "healthcheck":
		return healthcheckCmd(args[1:], stdout)
	case "status":
		return statusCmd(args[1:], stdout)
	case "rearm":
		return rearmCmd(args[1:], stdout)
	case "version", "--version", "-version":
		if err := parseFlags(newFlagSet("version"), args[1:]); err != nil {
			return err
		}
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
	dir             string
	addr            string
	logFormat       string
	tlsCert, tlsKey string         // both or neither
	tokenFile       string         // "": no token needed
	allow           []netip.Prefix // nil: any address
	maxInflight     int
	publicURL       string // how installers reach pxe-pilot; "" adds no webhook
	stateDir        string // "" keeps nothing
	once            bool
	bootDir         string // "" serves no boot files
	localBoot       string // a key of localBootCommands
	bootListen      string // "" or a plain-HTTP address serving /boot.ipxe and /boot/ alone
	stallAfter      time.Duration
}

// memoryLimit is serve's soft memory limit (see runtime/debug.SetMemoryLimit).
const memoryLimit = 40 << 20

// defaultMaxInflight is far above any real burst of installers, which never
// retry: the cap is for a flood, not for a rack booting at once.
const defaultMaxInflight = 1024

func parseServe(args []string) (serveConfig, error) {
	fs, dir := flagSet("serve")
	listen := fs.String("listen", "", "listen on `HOST:PORT`, such as :8080 or 10.0.0.2:8080")
	port := fs.String("port", "", "listen on port `N` of every address")
	logFormat := fs.String("log-format", envOr("PXE_PILOT_LOG_FORMAT", "text"), "log lines as `FORMAT`: text or json")
	tlsCert := fs.String("tls-cert", os.Getenv("PXE_PILOT_TLS_CERT"), "serve HTTPS with this PEM certificate `FILE`")
	tlsKey := fs.String("tls-key", os.Getenv("PXE_PILOT_TLS_KEY"), "the certificate's PEM key `FILE`")
	tokenFile := fs.String("token-file", os.Getenv("PXE_PILOT_TOKEN_FILE"), "require a token from this `FILE`, one NAME:SECRET per line: as a bearer token on /answer, as a login (NAME as the user, SECRET as the password) on the fleet page")
	allow := fs.String("allow", os.Getenv("PXE_PILOT_ALLOW"), "answer only these source addresses: `CIDR,...`")
	maxInflight := fs.String("max-inflight", envOr("PXE_PILOT_MAX_INFLIGHT", strconv.Itoa(defaultMaxInflight)), "answer `N` requests at once; past it 503")
	publicURL := fs.String("public-url", os.Getenv("PXE_PILOT_PUBLIC_URL"), "the `URL` installers reach pxe-pilot by, such as https://10.0.0.2:8443: answers then report back to it")
	stateDir := fs.String("state-dir", os.Getenv("PXE_PILOT_STATE_DIR"), "keep what was answered and installed in `DIR`")
	onceEnv, onceErr := envBool("PXE_PILOT_ONCE")
	once := fs.Bool("once", onceEnv, "refuse to answer a machine again once it reported installed")
	bootDir := fs.String("boot-dir", os.Getenv("PXE_PILOT_BOOT_DIR"), "serve the boot files of the images in `DIR`, one prepare-iso --pxe folder each")
	bootListen := fs.String("boot-listen", os.Getenv("PXE_PILOT_BOOT_LISTEN"), "also serve /boot.ipxe and /boot/, and nothing else, over plain HTTP at `ADDR` (HOST:PORT), for iPXE, which has no HTTPS; with --boot-dir")
	localBoot := fs.String("local-boot", envOr("PXE_PILOT_LOCAL_BOOT", "exit"), "`HOW` /boot.ipxe boots an installed machine's disk: exit (to the firmware's next boot entry) or sanboot (the first BIOS disk)")
	stallAfter := stallAfterFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return serveConfig{}, err
	}
	// Said after the flags, so that -h still helps: a guard against
	// install loops must not be turned off by a value it cannot read.
	if onceErr != nil {
		return serveConfig{}, onceErr
	}
	if fs.NArg() > 0 {
		return serveConfig{}, fmt.Errorf("serve takes no arguments, got %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// Each flag stands in for its own variable; a listen address and a
	// port from anywhere contradict each other.
	listenFrom, portFrom := envSetting("LISTEN"), envSetting("PORT")
	if set["listen"] {
		listenFrom = setting{"--listen", *listen}
	}
	if set["port"] {
		portFrom = setting{"--port", *port}
	}
	addr, err := listenAddr(listenFrom, portFrom, *tlsCert != "" || *tlsKey != "")
	if err != nil {
		return serveConfig{}, err
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return serveConfig{}, fmt.Errorf("listen address %q: want HOST:PORT or :PORT, such as :8080", addr)
	}
	if *logFormat != "text" && *logFormat != "json" {
		return serveConfig{}, fmt.Errorf("--log-format %q: want text or json", *logFormat)
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return serveConfig{}, errors.New("--tls-cert and --tls-key go together (PXE_PILOT_TLS_CERT and PXE_PILOT_TLS_KEY); 'pxe-pilot cert' makes both")
	}
	prefixes, err := parseAllow(*allow)
	if err != nil {
		return serveConfig{}, err
	}
	n, err := strconv.Atoi(*maxInflight)
	if err != nil || n < 1 {
		return serveConfig{}, fmt.Errorf("--max-inflight %q: want a number of requests, 1 or more (default %d)", *maxInflight, defaultMaxInflight)
	}
	if *once && *stateDir == "" {
		return serveConfig{}, errors.New("--once needs --state-dir: it refuses the machines the state dir says were installed")
	}
	if *publicURL != "" {
		if err := checkPublicURL(*publicURL); err != nil {
			return serveConfig{}, err
		}
	}
	if err := localBootFlag(*localBoot); err != nil {
		return serveConfig{}, err
	}
	stall, err := stallAfter()
	if err != nil {
		return serveConfig{}, err
	}
	switch {
	case *bootListen != "" && *bootDir == "":
		return serveConfig{}, errors.New("--boot-listen serves boot files, and needs --boot-dir to say where they are")
	case *bootListen != "" && *bootListen == addr:
		return serveConfig{}, fmt.Errorf("--boot-listen %s is the address serve listens on already; give the plain-HTTP listener a port of its own", *bootListen)
	}
	return serveConfig{localBoot: *localBoot, dir: *dir, addr: addr, logFormat: *logFormat, tlsCert: *tlsCert, tlsKey: *tlsKey,
		tokenFile: *tokenFile, allow: prefixes, maxInflight: n, publicURL: *publicURL, stateDir: *stateDir, once: *once, bootDir: *bootDir,
		bootListen: *bootListen, stallAfter: stall}, nil
}

// envBool reads a yes-or-no environment variable: 1, true, yes (or on)
// and 0, false, no (or off), in any case; unset or blank is no. Anything
// else is an error, not a silent no.
func envBool(key string) (bool, error) {
	v := os.Getenv(key)
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("%s=%q: want 1, true or yes to turn it on, or 0, false or no to turn it off", key, v)
}

// parseAllow reads --allow: CIDRs or single addresses, comma-separated.
func parseAllow(list string) ([]netip.Prefix, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			if p != p.Masked() {
				return nil, fmt.Errorf("--allow %q has host bits set: write the network, %s, or the one address, %s", s, p.Masked(), netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
			}
			// Peers are matched as IPv4 where they are IPv4-mapped, so a
			// mapped prefix is matched as the IPv4 one it stands for.
			if p.Addr().Is4In6() { // masked, so /96 or longer
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("--allow %q: want a CIDR such as 10.0.0.0/24 or an address such as 10.0.0.7", s)
		}
		// A zone (fe80::1%eth0) names the interface a peer came in on;
		// peers are matched by address alone.
		a = a.Unmap().WithZone("")
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// A setting is a value and where it was given: a flag ("--port") or an
// environment variable ("PORT"); name "" is not given.
type setting struct{ name, value string }

func envSetting(key string) setting {
	if v := os.Getenv(key); v != "" {
		return setting{key, v}
	}
	return setting{}
}

// String shows the setting as it was given: --port 8080 or PORT=8080.
func (s setting) String() string {
	if strings.HasPrefix(s.name, "-") {
		return s.name + " " + s.value
	}
	return s.name + "=" + s.value
}

// listenAddr is the address listen or port says, else the default: :8080,
// or :8443 for HTTPS. Both given is an error, whichever gave them: a port
// alone means every address, which is not what a listen address asked.
func listenAddr(listen, port setting, https bool) (string, error) {
	switch {
	case listen.name != "" && port.name != "":
		return "", fmt.Errorf("%v and %v are both set; keep one: %v says both, %v alone listens on every address",
			listen, port, setting{listen.name, "HOST:PORT"}, setting{port.name, "N"})
	case listen.name != "":
		return listen.value, nil
	case port.name != "":
		p, err := portOf(port.value, port.name)
		if err != nil {
			return "", err
		}
		return ":" + p, nil
	case https:
		return ":8443", nil
	}
	return ":8080", nil
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
	cfg, err := parseServe(args)
	if err != nil {
		return err
	}
	// A router has little memory: unless GOMEMLIMIT says otherwise, the
	// collector works harder past this, rather than let a flood of big
	// bodies and slow clients take more. Normal use stays far below it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
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
	}
	logConfig(logger, cfg.dir)

	h := &server{dir: cfg.dir, log: logger, tokenFile: cfg.tokenFile, allow: cfg.allow, stallAfter: cfg.stallAfter,
		slots: make(chan struct{}, cfg.maxInflight), guard: newPlaces[netip.Addr](maxWaiting, maxWaitingPerAddr), authDelay: authDelay,
		answerBodies: newBudget(answerBodies), reportBodies: newBudget(reportBodies)}
	if cfg.tokenFile != "" {
		if _, err := readTokens(cfg.tokenFile); err != nil {
			return err
		}
	}
	var tlsCfg *tls.Config
	var fp string
	if cfg.tlsCert != "" {
		if tlsCfg, fp, err = tlsConfig(cfg.tlsCert, cfg.tlsKey); err != nil {
			return err
		}
	}

	if cfg.bootDir != "" {
		if err := bootDirError(cfg.bootDir); err != nil {
			return err
		}
		h.bootDir, h.downloads, h.localBoot = cfg.bootDir, newPlaces[netip.Prefix](maxDownloads, maxSourceDownloads), cfg.localBoot
	}
	if h.track, err = newTracker(cfg.dir, cfg.publicURL, fp, cfg.stateDir, cfg.once, false); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("listening on %s: another server (another pxe-pilot?) is using it: stop that one, or choose another address with --listen HOST:PORT or LISTEN", cfg.addr)
	}
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10, // the installer's are a few hundred bytes
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	done := make(chan error, 2)
	var bootSrv *http.Server
	if cfg.bootListen != "" {
		bootLn, err := net.Listen("tcp", cfg.bootListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--boot-listen %s: %w", cfg.bootListen, err)
		}
		bootSrv = &http.Server{Handler: h.bootOnly(), ReadHeaderTimeout: srv.ReadHeaderTimeout, ReadTimeout: srv.ReadTimeout,
			WriteTimeout: srv.WriteTimeout, IdleTimeout: srv.IdleTimeout, MaxHeaderBytes: srv.MaxHeaderBytes, ErrorLog: srv.ErrorLog}
		go func() { done <- bootSrv.Serve(bootLn) }()
		logger.Info("serving boot files over plain HTTP", "addr", bootLn.Addr().String())
	}
	attrs := []any{"addr", ln.Addr().String(), "config_dir", cfg.dir, "version", versionString()}
	if tlsCfg != nil {
		go func() { done <- srv.ServeTLS(ln, "", "") }()
		// What prepare-iso --cert-fingerprint and DHCP option 251 take.
		attrs = append(attrs, "tls", true, "fingerprint", fp)
	} else {
		go func() { done <- srv.Serve(ln) }()
	}
	if cfg.tokenFile != "" {
		attrs = append(attrs, "token_file", cfg.tokenFile)
	} else if tlsCfg == nil && !ln.Addr().(*net.TCPAddr).IP.IsLoopback() {
		logger.Warn("serving plain HTTP with no token on an address other machines reach: any of them can fetch any host's answer, root password hash included; "+
			"add --tls-cert and --tls-key with --token-file, or --listen 127.0.0.1:PORT behind a proxy", "addr", ln.Addr().String())
	}
	if cfg.allow != nil {
		attrs = append(attrs, "allow", fmt.Sprint(cfg.allow))
	}
	if cfg.publicURL != "" {
		attrs = append(attrs, "public_url", cfg.publicURL)
		if u, err := neturl.Parse(cfg.publicURL); err == nil && strings.EqualFold(u.Scheme, "https") && tlsCfg == nil {
			logger.Warn("--public-url is https:// but pxe-pilot serves plain HTTP: right only behind a proxy that ends TLS, and then the webhook pins no certificate", "public_url", cfg.publicURL)
		}
	}
	switch {
	case cfg.stateDir != "" && cfg.publicURL != "":
		attrs = append(attrs, "state_dir", cfg.stateDir, "once", cfg.once, "stall_after", cfg.stallAfter.String())
		// Only an answer with a webhook can be reported: only then does
		// silence say that an install stalled.
		watching, stopWatching := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			watchStalls(watching, logger, h.track.state, cfg.stallAfter)
		}()
		defer func() {
			stopWatching()
			<-watched
		}()
	case cfg.stateDir != "":
		attrs = append(attrs, "state_dir", cfg.stateDir, "once", cfg.once)
		msg := "--state-dir without --public-url: answers carry no webhook, so no installer reports back, and no machine is ever known installed, nor stalled; " +
			"add --public-url (how installers reach pxe-pilot)"
		if cfg.bootDir != "" {
			msg += ". With --boot-dir, /boot.ipxe so installs every configured machine at every PXE boot, wiping it again: add --public-url, or PXE-boot each machine once from its BMC"
		}
		logger.Warn(msg)
	}
	if cfg.bootDir != "" {
		attrs = append(attrs, "boot_dir", cfg.bootDir, "local_boot", cfg.localBoot)
		if cfg.stateDir == "" {
			logger.Warn("--boot-dir without --state-dir: /boot.ipxe installs every configured machine at every PXE boot, wiping it again; " +
				"add --state-dir and --public-url, so that an installed machine reports back and boots its disk next, or PXE-boot each machine once from its BMC")
		}
	}
	logger.Info("serving", attrs...)

	select {
	case err := <-done:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if bootSrv != nil {
		bootSrv.Shutdown(shutdownCtx)
	}
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// watchStalls logs each machine that becomes stalled (see logStalls): at
// once, then every stallCheckEvery, until ctx is done.
func watchStalls(ctx context.Context, logger *slog.Logger, st *stateStore, stallAfter time.Duration) {
	logStalls(logger, st, time.Now(), stallAfter)
	tick := time.NewTicker(stallCheckEvery(stallAfter))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			logStalls(logger, st, now, stallAfter)
		}
	}
}

// logConfig says at start what the config dir holds, in one line, and
// then each error validate would find on a line of its own: a broken file
// is fixed by editing it, with no restart, and answers that need it fail
// until then.
func logConfig(logger *slog.Logger, dir string) {
	r := checkDir(dir, newest)
	profiles, _ := filepath.Glob(filepath.Join(dir, "profiles", "*.toml"))
	logger.Info("config", "config_dir", dir, "hosts", r.hosts, "profiles", len(profiles), "files_with_errors", r.filesWithErrors())
	for _, line := range r.errorLines() {
		logger.Warn("config error, as pxe-pilot validate says it: fix it before the machines it concerns boot", "error", line)
	}
}

// newFlagSet is a subcommand's flag set. It prints nothing itself: see
// parseFlags.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// flagSet is the flag set of a command that reads the config dir, with
// --config-dir.
func flagSet(name string) (*flag.FlagSet, *string) {
	fs := newFlagSet(name)
	return fs, fs.String("config-dir", envOr("CONFIG_DIR", "./config"), "the config `DIR`")
}

// parseFlags parses a command's flags. -h, -help and --help return a
// helpError, which run prints as the command's help; a bad flag is one
// line that says where the help is, not the help itself.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return &helpError{fs}
	case err != nil:
		return fmt.Errorf("%s: %w; see 'pxe-pilot %s -h'", fs.Name(), err, fs.Name())
	}
	return nil
}

// helpError is a command's -h: flag.ErrHelp, with the flags to show.
type helpError struct{ fs *flag.FlagSet }

func (e *helpError) Error() string { return flag.ErrHelp.Error() }
func (e *helpError) Unwrap() error { return flag.ErrHelp }

// commandHelp is a command's -h: what it does, its flags with their
// environment variables and defaults, and its examples.
func commandHelp(w io.Writer, fs *flag.FlagSet) {
	var c command
	for _, c = range commands {
		if c.name == fs.Name() {
			break
		}
	}
	about, _, _ := strings.Cut(c.about, "\n")
	// The synopsis lines up under "\t$ pxe-pilot NAME " in the usage;
	// here under "Usage: pxe-pilot NAME ", five columns further.
	synopsis := strings.ReplaceAll(c.synopsis, "\n\t", "\n"+strings.Repeat(" ", 5))
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", strings.TrimSpace("pxe-pilot "+c.name+" "+synopsis), about)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		if n++; n == 1 {
			fmt.Fprintf(tw, "\nFlags:\n\n")
		}
		arg, text := flag.UnquoteUsage(f)
		def := f.DefValue
		var from []string
		if e, ok := flagEnv[f.Name]; ok {
			from, def = append(from, "env "+e.env), e.def
		}
		if def != "" && def != "false" {
			from = append(from, "default "+def)
		}
		if len(from) > 0 {
			text += " (" + strings.Join(from, "; ") + ")"
		}
		fmt.Fprintf(tw, "  --%s\t%s\n", strings.TrimSpace(f.Name+" "+arg), text)
	})
	tw.Flush()
	fmt.Fprintf(w, "\nExamples:\n\n")
	for _, e := range c.examples {
		fmt.Fprintf(w, "  $ %s\n", e)
	}
}

// localBootFlag checks --local-boot.
func localBootFlag(s string) error {
	if _, ok := localBootCommands[s]; !ok {
		return fmt.Errorf("--local-boot %q: want exit (back to the firmware, which boots its next entry) or sanboot (boot the first BIOS disk, where the firmware hangs on exit)", s)
	}
	return nil
}

// releaseFlag reads --release X.Y for the commands that have no request.
func releaseFlag(s string) (release, error) {
	rel, ok := parseRelease(s)
	if !ok || rel.before(r82) || newest.before(rel) {
		return release{}, fmt.Errorf("--release %q: want a Proxmox VE ISO release from %s to %s", s, r82, newest)
	}
	return rel, nil
}

// dryTracker is serve's tracking as render needs it: what answers get,
// with nothing created, recorded or refused.
func dryTracker(configDir, publicURL, stateDir, tlsCert string) (*tracker, error) {
	if publicURL == "" {
		return nil, nil
	}
	var fp string
	if tlsCert != "" {
		var err error
		if fp, err = leafFingerprint(tlsCert); err != nil {
			return nil, err
		}
	}
	return newTracker(configDir, publicURL, fp, stateDir, false, true)
}

// renderCmd prints the answer for one machine: the same bytes the server
// would send, from the same code, or the same error line and exit 1.
func renderCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, dir := flagSet("render")
	mac := fs.String("mac", "", "the machine's `MAC`")
	serial := fs.String("serial", "", "the machine's serial number `S` (dmi.system.serial), with --mac")
	uuid := fs.String("uuid", "", "the machine's system `UUID` (dmi.system.uuid), with --mac")
	reqFile := fs.String("request", "", "a request body saved from an installer, `FILE.json` (- for standard input)")
	rel := fs.String("release", newest.String(), "the ISO release `X.Y`, with --mac; one newer than pxe-pilot knows gets the newest rules")
	publicURL := fs.String("public-url", os.Getenv("PXE_PILOT_PUBLIC_URL"), "as serve --public-url `URL`: add the webhook and first-boot script serve would")
	stateDir := fs.String("state-dir", os.Getenv("PXE_PILOT_STATE_DIR"), "as serve --state-dir `DIR`: the webhook's token (read, never written)")
	tlsCert := fs.String("tls-cert", os.Getenv("PXE_PILOT_TLS_CERT"), "as serve --tls-cert `FILE`: the fingerprint the webhook pins")
	explainFlag := fs.Bool("explain", false, "say, above the answer, which host file matched and by what, and the layers in order, and beside each key the file and line that set it")
	boot := fs.Bool("boot", false, "print the boot script GET /boot.ipxe would send the machine (--mac, --serial, --uuid), not its answer")
	bootDir := fs.String("boot-dir", os.Getenv("PXE_PILOT_BOOT_DIR"), "with --boot: as serve --boot-dir `DIR`")
	bootURL := fs.String("url", "", "with --boot: the `URL` machines reach serve by, for the boot files' URLs (default --public-url)")
	localBoot := fs.String("local-boot", envOr("PXE_PILOT_LOCAL_BOOT", "exit"), "with --boot: as serve --local-boot `HOW`")
	platform := fs.String("platform", "", "with --boot: the machine's iPXE ${platform}, `P` (pcbios or efi), as the chain URL sends it")
	ipxeVersion := fs.String("ipxe-version", "", "with --boot: the machine's iPXE ${version}, `V` (such as 1.21.1+), as the chain URL sends it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	t, err := dryTracker(*dir, *publicURL, *stateDir, *tlsCert)
	if err != nil {
		return err
	}
	if *boot {
		fw := firmware{platform: *platform, version: *ipxeVersion}
		return renderBoot(*dir, *bootDir, cmp.Or(*bootURL, *publicURL), *stateDir, *localBoot, *mac, *serial, *uuid, fw, fs.NArg() > 0 || *reqFile != "", t, stdout, stderr)
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
		// A release newer than any pxe-pilot knows is answered as serve
		// answers it: with the newest rules, and a note.
		r, ok := parseRelease(*rel)
		if !ok || !releaseName(*rel) || r.before(r82) {
			return fmt.Errorf("--release %q: want a Proxmox VE ISO release from %s on, such as %s", *rel, r82, newest)
		}
		body = installerInfo(*rel, *serial, *uuid, []string{*mac})
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
	status, out := respond(*dir, body, &o, t, time.Now())
	if o.note != "" {
		fmt.Fprintln(stderr, "pxe-pilot: note: "+o.note)
	}
	if status != 200 {
		return errors.New(string(out))
	}
	if *explainFlag {
		if out, err = explain(*dir, &o, out); err != nil {
			return err
		}
	}
	_, err = stdout.Write(out)
	return err
}

// noBootURL stands in for the URL serve is reached by, where render --boot
// is not told it.
const noBootURL = "http://pxe-pilot.invalid:8080"

// renderBoot prints the boot script serve would send the machine of mac,
// serial and uuid: the same bytes, from the same code, whatever the
// decision; stderr says which it is.
func renderBoot(dir, bootDir, url, stateDir, localBoot, mac, serial, uuid string, fw firmware, extra bool, answers *tracker, stdout, stderr io.Writer) error {
	switch {
	case extra:
		return errors.New("render --boot takes the machine as --mac, --serial and --uuid, as iPXE names it, not a request")
	case bootDir == "":
		return errors.New("render --boot needs --boot-dir DIR (or PXE_PILOT_BOOT_DIR), as serve --boot-dir")
	case mac == "" && serial == "" && uuid == "":
		return errors.New("render --boot needs --mac, --serial or --uuid")
	}
	if err := localBootFlag(localBoot); err != nil {
		return err
	}
	if url == "" {
		url = noBootURL
		fmt.Fprintf(stderr, "pxe-pilot: note: the boot files' URLs start %s; give --url or --public-url with the URL machines reach serve by\n", url)
	} else if err := checkPublicURL(url); err != nil {
		return err
	}
	b := bootSetup{dir: dir, bootDir: bootDir, base: strings.TrimRight(url, "/"), localBoot: localBoot, answers: answers, fw: fw}
	if stateDir != "" {
		b.state = &stateStore{dir: stateDir} // read, never written
	}
	q := neturl.Values{"mac": {mac}, "serial": {serial}, "uuid": {uuid}}
	req, _, bad := parseBootQuery(q.Encode())
	if len(bad) > 0 {
		return fmt.Errorf("--mac %s: want a MAC such as aa:bb:cc:dd:ee:ff", bad[0])
	}
	var o outcome
	out := b.script(req, &o)
	var said []string
	for _, a := range o.attrs() {
		said = append(said, a.String())
	}
	fmt.Fprintln(stderr, "pxe-pilot: "+strings.Join(said, " "))
	_, err := stdout.Write(out)
	return err
}

// validateCmd checks a config dir offline: every file parses, every host
// file is named so that it can match, and every host's answer validates.
func validateCmd(args []string, stdout io.Writer) error {
	fs, dir := flagSet("validate")
	relFlag := fs.String("release", newest.String(), "the ISO release `X.Y` to check the answers for: that of the oldest ISO you boot")
	publicURL := fs.String("public-url", os.Getenv("PXE_PILOT_PUBLIC_URL"), "the `URL` serve is reached by, if it serves first-boot scripts")
	bootDir := fs.String("boot-dir", os.Getenv("PXE_PILOT_BOOT_DIR"), "also check the boot images in `DIR`, as serve --boot-dir would serve them")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("validate: unexpected argument %q", fs.Arg(0))
	}
	rel, err := releaseFlag(*relFlag)
	if err != nil {
		return err
	}
	if *publicURL != "" {
		if err := checkPublicURL(*publicURL); err != nil {
			return err
		}
	}
	if info, err := os.Stat(*dir); err != nil || !info.IsDir() {
		return fmt.Errorf("config dir %q is missing or not a directory; point --config-dir or CONFIG_DIR at yours", *dir)
	}
	opts := checkOptions{release: rel, older: true, publicURL: *publicURL, bootDir: *bootDir}
	fs.Visit(func(f *flag.Flag) { opts.older = opts.older && f.Name != "release" })
	if opts.older {
		fmt.Fprintf(stdout, "note: checking for ISO release %s, the newest pxe-pilot knows, and for keys older ISOs lack; give --release with the release of the oldest ISO you boot to check for it alone\n", rel)
	}
	r := checkConfig(*dir, opts)
	if *bootDir != "" {
		lines := checkBootDir(*bootDir)
		r.lines, r.errors = append(r.lines, lines...), r.errors+len(lines)
	}
	for _, line := range r.lines {
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintf(stdout, "pxe-pilot: %d host files checked for ISO release %s: %d errors, %d warnings\n", r.hosts, rel, r.errors, r.warnings)
	if r.errors > 0 {
		return errValidate
	}
	return nil
}

// healthcheckCmd asks a running pxe-pilot's /health and succeeds on 200:
// a container's HEALTHCHECK, where a FROM scratch image has no curl. By
// default it asks the server this environment configures (LISTEN, PORT,
// PXE_PILOT_TLS_CERT) on the loopback address, pinning its certificate.
func healthcheckCmd(args []string, stdout io.Writer) error {
	fs := newFlagSet("healthcheck")
	url := fs.String("url", "", "the /health `URL` (default: the server LISTEN, PORT and PXE_PILOT_TLS_CERT describe, on this machine)")
	certFlag := fs.String("cert", os.Getenv("PXE_PILOT_TLS_CERT"), "pin HTTPS to this certificate `FILE`, as the installer does")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("healthcheck: unexpected argument %q; give a URL with --url", fs.Arg(0))
	}
	cert := *certFlag
	if *url == "" {
		addr, err := listenAddr(envSetting("LISTEN"), envSetting("PORT"), cert != "")
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("healthcheck: LISTEN %q: want HOST:PORT or :PORT", addr)
		}
		if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		scheme := "http"
		if cert != "" {
			scheme = "https"
		}
		*url = scheme + "://" + net.JoinHostPort(host, port) + "/health"
	}
	var tlsCfg *tls.Config
	if cert != "" && strings.HasPrefix(*url, "https://") {
		// Pin the server's own certificate, as the installer does; a
		// self-signed one would fail the system roots.
		want, err := leafFingerprint(cert)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		tlsCfg = pinned(want)
	}
	status, body, err := get(*url, tlsCfg, 5*time.Second)
	var notPinned *notPinnedError
	var otherHost x509.HostnameError
	var unknownCA x509.UnknownAuthorityError
	switch {
	case errors.As(err, &notPinned):
		return fmt.Errorf("healthcheck: %s: the server's certificate (fingerprint %s) is not %s (%s): point --cert (or PXE_PILOT_TLS_CERT) at the certificate the server serves", *url, notPinned.got, cert, notPinned.want)
	case errors.As(err, &otherHost) || errors.As(err, &unknownCA):
		return fmt.Errorf("healthcheck: %s: %v: pin the server's own certificate with --cert FILE (or PXE_PILOT_TLS_CERT), as the installer pins its fingerprint", *url, err)
	case err != nil:
		return fmt.Errorf("healthcheck: %s: %w", *url, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("healthcheck: %s: %d %s", *url, status, body)
	}
	fmt.Fprintf(stdout, "%s: %s\n", *url, body)
	return nil
}

// get fetches a URL with one HTTP/1.1 request on a connection of its own.
// http.Client would do, but it would bring its whole transport (HTTP/2,
// proxies, pools: half a MiB) into a binary that lives on routers.
func get(rawURL string, tlsCfg *tls.Config, timeout time.Duration) (status int, body string, err error) {
	u, err := neturl.Parse(rawURL)
	if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		return 0, "", errors.New("want a URL such as http://127.0.0.1:8080/health")
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	dialer := &net.Dialer{Timeout: timeout}
	var conn net.Conn
	if u.Scheme == "https" {
		cfg := tlsCfg.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		conn, err = tls.DialWithDialer(dialer, "tcp", addr, cfg)
	} else {
		conn, err = dialer.Dial("tcp", addr)
	}
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pxe-pilot-healthcheck\r\nConnection: close\r\n\r\n", u.RequestURI(), u.Host); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// statusCmd prints every configured host with what the state dir knows
// of it, and the machines that asked and matched nothing; or only the
// stalled ones; or the installed machines' SSH host keys as known_hosts
// lines.
func statusCmd(args []string, stdout io.Writer) error {
	fs, dir := flagSet("status")
	stateDir := fs.String("state-dir", os.Getenv("PXE_PILOT_STATE_DIR"), "serve's state `DIR`")
	bootDir := fs.String("boot-dir", os.Getenv("PXE_PILOT_BOOT_DIR"), "as serve --boot-dir `DIR`: say which image each machine's next boot installs with")
	asJSON := fs.Bool("json", false, "print JSON")
	stalled := fs.Bool("stalled", false, "list only the stalled machines: answered, and no report for --stall-after since")
	knownHosts := fs.Bool("known-hosts", false, "print a known_hosts line (fqdn,address keytype base64) for each SSH host key of each installed machine, as its report carried them")
	stallAfter := stallAfterFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("status: unexpected argument %q", fs.Arg(0))
	}
	d, err := stallAfter()
	if err != nil {
		return err
	}
	switch {
	case *knownHosts && (*asJSON || *stalled):
		return errors.New("status --known-hosts prints known_hosts lines, and goes with neither --json nor --stalled")
	case *knownHosts && *stateDir == "":
		return errors.New("status --known-hosts needs --state-dir DIR (or PXE_PILOT_STATE_DIR): the host keys are those the installers reported to serve")
	case *stalled && *stateDir == "":
		return errors.New("status --stalled needs --state-dir DIR (or PXE_PILOT_STATE_DIR): only serve's state dir knows which machines were answered")
	}
	st, err := readFleet(*dir, *stateDir, fleetOptions{now: time.Now(), stallAfter: d, bootDir: *bootDir})
	if err != nil {
		return err
	}
	if *knownHosts {
		writeKnownHosts(stdout, st.Hosts)
		return nil
	}
	if *stalled {
		st.Hosts = slices.DeleteFunc(st.Hosts, func(h statusRow) bool { return h.State != stateStalled })
		st.Problems, st.Unknown = st.Problems[:0], st.Unknown[:0]
	}
	if *asJSON {
		return writeStatusJSON(stdout, st)
	}
	writeStatus(stdout, st, *stateDir != "")
	return nil
}

// stallAfterFlag adds --stall-after to a command's flags, and returns what
// reads it once they are parsed: the flag, else PXE_PILOT_STALL_AFTER,
// else defaultStallAfter; a Go duration over 0, strictly, since a guard
// that cannot be read must not quietly become another.
func stallAfterFlag(fs *flag.FlagSet) func() (time.Duration, error) {
	v := fs.String("stall-after", "", "count a machine answered and not reported for `DURATION` (a Go duration: 90m, 2h, 45s) as stalled")
	return func() (time.Duration, error) {
		given := envSetting("PXE_PILOT_STALL_AFTER")
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "stall-after" {
				given = setting{"--stall-after", *v}
			}
		})
		if given.name == "" {
			return defaultStallAfter, nil
		}
		d, err := time.ParseDuration(strings.TrimSpace(given.value))
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("%v: want a Go duration over 0, such as 90m, 2h or 45s (default %s)", given, stallAfterText)
		}
		return d, nil
	}
}

// rearmCmd forgets that a machine was installed, so that serve --once
// answers it again.
func rearmCmd(args []string, stdout io.Writer) error {
	fs := newFlagSet("rearm")
	stateDir := fs.String("state-dir", os.Getenv("PXE_PILOT_STATE_DIR"), "serve's state `DIR`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return errors.New("rearm needs the machine: pxe-pilot rearm [--state-dir DIR] aa-bb-cc-dd-ee-ff (or serial-<serial>, uuid-<uuid>)")
	}
	host := fs.Arg(0)
	if err := parseFlags(fs, fs.Args()[1:]); err != nil { // flags after the machine, too
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("rearm: unexpected argument %q; rearm one machine at a time", fs.Arg(0))
	}
	if *stateDir == "" {
		return errors.New("rearm needs --state-dir DIR (or PXE_PILOT_STATE_DIR), the state dir serve keeps")
	}
	if _, err := os.Stat(filepath.Join(*stateDir, "hosts")); err != nil {
		return fmt.Errorf("state dir %s: %w", *stateDir, unwrapPath(err))
	}
	st, err := openState(*stateDir)
	if err != nil {
		return err
	}
	key := rearmKey(host)
	before, err := st.host(key)
	if err == nil {
		_, err = st.rearm(key, time.Now())
	}
	if bad := (*badStateFile)(nil); errors.As(err, &bad) {
		return fmt.Errorf("state dir %s: %w", *stateDir, err)
	}
	if err != nil {
		return err
	}
	if before.Installed.IsZero() {
		fmt.Fprintf(stdout, "%s was not marked installed; it is answered as before\n", key)
		return nil
	}
	fmt.Fprintf(stdout, "%s rearmed: installed at %s, it will be answered again\n", key, before.Installed.UTC().Format(time.RFC3339))
	return nil
}

// certCmd creates a self-signed certificate and its key for serve
// --tls-cert and --tls-key, and prints what the installer needs to pin it.
func certCmd(args []string, stdout io.Writer) error {
	fs := newFlagSet("cert")
	out := fs.String("out", ".", "the `DIR` to write "+certName+" and "+keyName+" to")
	hostList := fs.String("host", "", "the names and addresses installers reach pxe-pilot by, `NAME,IP,...` (default: this machine's name, localhost, 127.0.0.1)")
	force := fs.Bool("force", false, "replace an existing certificate and key")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("cert: unexpected argument %q; name hosts with --host NAME,IP", fs.Arg(0))
	}
	hosts, err := certHosts(*hostList)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	certPath, keyPath := filepath.Join(*out, certName), filepath.Join(*out, keyName)
	if !*force {
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s exists; use --force to replace it (ISOs prepared with the old fingerprint will then refuse pxe-pilot until they are prepared again)", p)
			}
		}
	}
	certPEM, keyPEM, der, notAfter, err := selfSigned(hosts, time.Now())
	if err != nil {
		return err
	}
	// The key first, and only readable by its owner; the certificate is public.
	if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeAtomic(certPath, certPEM, 0o644); err != nil {
		return err
	}
	fp := fingerprint(der)
	fmt.Fprintf(stdout, "Created %s and %s (ECDSA P-256, self-signed, valid until %s) for %s.\n\n",
		certPath, keyPath, notAfter.Format("2006-01-02"), strings.Join(hosts, ", "))
	fmt.Fprintf(stdout, "SHA-256 fingerprint:\n\n\t%s\n\n", fp)
	fmt.Fprintf(stdout, "Serve with it:\n\n\tpxe-pilot serve --tls-cert %s --tls-key %s\n\n", certPath, keyPath)
	fmt.Fprintf(stdout, "Prepare the ISO to fetch its answer from pxe-pilot and pin this certificate:\n\n")
	fmt.Fprintf(stdout, "\tproxmox-auto-install-assistant prepare-iso proxmox-ve.iso --fetch-from http \\\n\t\t--url https://%s/answer --cert-fingerprint %s\n\n",
		net.JoinHostPort(hosts[0], "8443"), fp)
	fmt.Fprintf(stdout, "or hand out the URL by DHCP option 250 and the fingerprint by option 251 (see docs/netboot-setup.md).\n")
	return nil
}

// fingerprintCmd prints the fingerprint of an existing certificate.
func fingerprintCmd(args []string, stdout io.Writer) error {
	fs := newFlagSet("fingerprint")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("fingerprint needs one argument, a PEM certificate file: pxe-pilot fingerprint pxe-pilot.crt")
	}
	fp, err := leafFingerprint(fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, fp)
	return nil
}

// errValidate ends validate with status 1 once its lines have said why.
var errValidate = errors.New("the config has errors")

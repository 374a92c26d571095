// Per-machine boot scripts: GET /boot.ipxe decides, by the machine's host file and tracking, whether iPXE installs it, boots its disk or says why not.

package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	neturl "net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The commands that hand a machine back to its disk: exit returns to the
// firmware (or the menu that chained pxe-pilot), which boots its next
// entry (see firmware.exit); sanboot boots the first BIOS disk, for
// firmware that hangs on exit.
var localBootCommands = map[string]string{
	"exit":    "", // firmware.exit's
	"sanboot": "sanboot --no-describe --drive 0x80",
}

// brokenPause is how long a machine shows a config error before it boots
// on: long enough for a person at the console to read it.
const brokenPause = 5

// parseBootQuery reads the machine's identity from /boot.ipxe's query as
// iPXE expands it: mac (any number of times, unset ones empty), uuid and
// serial. iPXE before 2.0 does not escape '&' inside a value, so the query
// is not parsed as a form: a piece after serial that is not name=value
// continues the serial. Empty values are left out; a MAC that is not one
// is returned in bad, quoted for a message. The serial and UUID are vetted
// where they are used, by serialKey and uuidKey, as /answer's are.
func parseBootQuery(raw string) (req request, fw firmware, bad []string) {
	last := ""
	for piece := range strings.SplitSeq(raw, "&") {
		key, value, hasValue := strings.Cut(piece, "=")
		if last == "serial" && !(hasValue && paramName(key)) {
			req.serial += "&" + unescape(piece)
			continue
		}
		last = key
		value = unescape(value)
		switch {
		case value == "":
		case key == "mac":
			mac, ok := normalizeMAC(value)
			switch {
			case !ok:
				bad = append(bad, excerpt(value))
			case !slices.Contains(req.macs, mac) && len(req.macs) < maxNICs:
				req.macs = append(req.macs, mac)
				req.links = append(req.links, "")
			}
		case key == "uuid" && req.uuid == "":
			req.uuid = value
		case key == "serial" && req.serial == "":
			req.serial = value
		case key == "platform" && fw.platform == "":
			fw.platform = clipField(value)
		case key == "version" && fw.version == "":
			fw.version = clipField(value)
		}
	}
	return req, fw, bad
}

// paramName reports whether s could be a query parameter's name.
func paramName(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == ""
}

// unescape undoes ${...:uristring}; a value that is not escaped right is
// taken as it is, for the vetting to refuse.
func unescape(s string) string {
	if u, err := neturl.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// ipxeText is s as an iPXE echo may show it: iPXE expands ${...}, splits
// commands at ||, && and ;, and reads quotes and backslashes, so only
// letters, digits, spaces and punctuation that means nothing to it are
// kept; control characters become spaces and ; a comma.
func ipxeText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r < ' ' || r == 0x7f:
			return ' '
		case r == ';':
			return ','
		case r < 0x80 && (isAlnum(byte(r)) || strings.ContainsRune(" .,:/_-+=@()[]<>!?*%~^", r)):
			return r
		}
		return -1
	}, s)
}

// A bootSetup is what decides a machine's boot script: the server's, or
// render's to print it.
type bootSetup struct {
	dir, bootDir string
	base         string      // the URL machines reach pxe-pilot by, without a trailing slash
	localBoot    string      // a key of localBootCommands
	state        *stateStore // nil: nothing is tracked, and every configured machine installs
	answers      *tracker    // /answer's tracking, dry: the answer the machine will ask for must compose
	keep         bool        // record in the state dir a machine no host file names, and a refusal, as /answer does: serve's, not render's
	fw           firmware    // the iPXE that asks, as the chain URL says
}

// script is the boot script for the machine req names, booted by the iPXE
// b.fw says, and o the request's log line: boot=install, local, unknown,
// broken or unfit (an iPXE that cannot install it), and why.
func (b bootSetup) script(req request, o *outcome) []byte {
	c, err := openConfigDir(b.dir)
	if err != nil {
		return b.broken(o, err.Error())
	}
	defer c.close()
	layers, m, err := loadHost(c, req)
	if err != nil {
		if o.loadError(req, err) {
			return b.unknown(req, o)
		}
		status, msg := c.configStatus(err)
		if he := (*hostError)(nil); errors.As(err, &he) {
			return b.refused(o, req, he.match, status, string(msg))
		}
		return b.broken(o, string(msg))
	}
	o.host, o.match = m.file, m.String()
	attempt := 0
	if b.state != nil {
		key, rec, err := b.record(req, m)
		if err != nil {
			return b.broken(o, err.Error())
		}
		if !rec.Installed.IsZero() {
			o.extra = append(o.extra, slog.String("boot", "local"), slog.String("reason", "installed"))
			return script(echoLines(fmt.Sprintf("pxe-pilot: %s was installed at %s, booting the local disk; to install it again, run: %s",
				key, rec.Installed.UTC().Format(time.RFC3339), b.state.rearmLine(key))) + "\n" + cmp.Or(localBootCommands[b.localBoot], b.fw.exit()))
		}
		attempt = rec.Pending + 1
	}
	// Installing a machine whose answer cannot be composed only has its
	// installer fail: the answer is composed as /answer would compose it,
	// for an ISO of the newest release. A machine known by no MAC cannot
	// ask /answer as the installer will, so that check is left to it.
	if len(req.macs) > 0 {
		asks := req // as the installer will: a Proxmox VE ISO of the newest release, btrfs and all
		asks.product, asks.iso, asks.btrfs = "pve", newest.String(), true
		if status, out := respondIn(c, asks, newest, &outcome{}, b.answers, time.Now()); status != http.StatusOK {
			return b.refused(o, req, m, status, string(out))
		}
	}
	if why := b.fw.cannotInstall(); why != "" {
		o.extra = append(o.extra, slog.String("boot", "unfit"), slog.String("ipxe", b.fw.String()))
		o.err = why
		return script(echoLines("pxe-pilot: "+why) + fmt.Sprintf("\nsleep %d\n%s", brokenPause, b.fw.exit()))
	}
	img, err := b.image(layers)
	if ce := (*configError)(nil); errors.As(err, &ce) {
		return b.refused(o, req, m, http.StatusInternalServerError, err.Error())
	} else if err != nil {
		return b.broken(o, err.Error())
	}
	defer img.close()
	o.extra = append(o.extra, slog.String("boot", "install"), slog.String("image", img.name))
	if attempt > 0 {
		o.extra = append(o.extra, slog.Int("attempt", attempt))
	}
	kernel := b.load("kernel", img.name, img.entry.kernel)
	if args, _ := bootArgs(layers); args != "" {
		kernel += " " + args
	}
	lines := []string{kernel}
	for _, f := range img.entry.initrds {
		lines = append(lines, b.load("initrd", img.name, f))
	}
	return script(strings.Join(append(lines, "boot"), "\n"))
}

// record is the tracking record of the machine m matched. A machine
// answered by hosts/default.toml is known by the first MAC the installer
// listed, which need not be iPXE's first: the one that was answered is
// taken, as a report's is.
func (b bootSetup) record(req request, m match) (string, hostRecord, error) {
	key := machineKey(req, m)
	if m.by == "default" {
		for _, mac := range req.macs {
			k := strings.TrimSuffix(hostFileName(mac), ".toml")
			if rec, err := b.state.host(k); err == nil && rec.Answers > 0 {
				return k, rec, nil
			}
		}
	}
	if key == "" {
		return "", hostRecord{}, errors.New("hosts/default.toml answers this machine, and tracking knows such a machine by its MAC, which the boot script URL does not name: add mac=... to the chain URL")
	}
	rec, err := b.state.host(key)
	return key, rec, err
}

// image opens the image the machine installs: the boot-image its layers
// name (the last that names one), or the only image there is.
func (b bootSetup) image(layers []layer) (*image, error) {
	name, from := bootImage(layers)
	names, err := imageNames(b.bootDir)
	if err != nil {
		return nil, fmt.Errorf("--boot-dir %s: %v", b.bootDir, unwrapPath(err))
	}
	if msg := imageChoice(name, names); msg != "" {
		return nil, &configError{from, msg}
	}
	if name == "" {
		name = names[0]
	}
	img, err := openImage(b.bootDir, name)
	if err != nil {
		return nil, errors.New("image " + err.Error())
	}
	return img, nil
}

// bootImage is the boot-image layers name and the file that names it: the
// last to, in merge order; "" and the host file where none does.
func bootImage(layers []layer) (name, from string) {
	from = layers[len(layers)-1].name
	for _, l := range layers {
		if l.image != "" {
			name, from = l.image, l.name
		}
	}
	return name, from
}

// bootArgs are the boot-args layers give the install's kernel line, and
// the file that gives them: the last layer to say, in merge order.
func bootArgs(layers []layer) (args, from string) {
	for _, l := range layers {
		if l.bootArgs != nil {
			args, from = *l.bootArgs, l.name
		}
	}
	return args, from
}

// imageChoice says what is wrong with a boot-image of name (or none, "")
// among the images of --boot-dir, or "".
func imageChoice(name string, images []string) string {
	switch {
	case name != "" && !slices.Contains(images, name):
		return fmt.Sprintf("boot-image: %q is not an image in --boot-dir; there are: %s", name, orNone(images))
	case name != "" || len(images) == 1:
		return ""
	case len(images) == 0:
		return "--boot-dir has no image to install with: put the folder prepare-iso --pxe wrote in a folder of its own there"
	}
	return fmt.Sprintf("no boot-image, and --boot-dir has %d images (%s): say which one this machine installs with boot-image = %q in its host file, a profile or defaults.toml",
		len(images), strings.Join(images, ", "), images[0])
}

// load is an entry's kernel or initrd line, its file fetched from
// pxe-pilot's /boot/IMAGE/.
func (b bootSetup) load(cmd, image string, f bootFile) string {
	line := cmd
	if f.name != "" {
		line += " --name " + f.name
	}
	line += " " + b.base + "/boot/" + image + "/" + neturl.PathEscape(f.file)
	if f.args != "" {
		line += " " + f.args
	}
	return line
}

// unknown is the script of a machine no host file names: it is never
// installed, and says which file would install it.
func (b bootSetup) unknown(req request, o *outcome) []byte {
	o.extra = append(o.extra, slog.String("boot", "unknown"))
	if b.keep && b.state != nil {
		// So that status lists it, for the operator to name it.
		if err := b.state.recordUnknown(req, time.Now(), nil); err != nil {
			o.warn = "not recorded: " + err.Error()
		}
	}
	msg := "pxe-pilot: no host file names this machine, and the boot script URL names no MAC: add mac=... to the chain URL, or create hosts/default.toml"
	if len(req.macs) > 0 {
		msg = "pxe-pilot: no host file names this machine: create hosts/" + hostFileName(req.macs[0]) + " to install it (or hosts/default.toml for every machine without one)"
	}
	return script("echo " + ipxeText(msg) + "\n" + b.fw.exit())
}

// refused is broken, for a machine a host file names that its config
// refuses: serve keeps the refusal as /answer keeps its own (keepRefusal),
// under the status /answer gives for it, on the record the machine is
// tracked by.
func (b bootSetup) refused(o *outcome, req request, m match, status int, msg string) []byte {
	if b.keep && b.state != nil {
		key, _, _ := b.record(req, m) // where its record cannot be read, keepRefusal's write says so
		if err := b.state.keepRefusal(req, key, m, status, []byte(msg), time.Now()); err != nil {
			o.warn = "not recorded: " + err.Error()
		}
	}
	return b.broken(o, msg)
}

// broken is the script of a machine whose config cannot be read: the
// error /answer would give, a pause to read it, and no install.
func (b bootSetup) broken(o *outcome, msg string) []byte {
	o.extra = append(o.extra, slog.String("boot", "broken"))
	o.err = ipxeText("pxe-pilot: " + msg)
	return script(echoLines("pxe-pilot: "+msg) + fmt.Sprintf("\nsleep %d\n%s", brokenPause, b.fw.exit()))
}

// echoLines shows msg on the machine's console: an echo line for each of
// its clauses ("; " apart, as a list of missing keys is), so that no ';'
// has to become a ',' that would run two of them together.
func echoLines(msg string) string {
	var lines []string
	for i, part := range strings.Split(msg, "; ") {
		if i > 0 {
			part = "  " + part
		}
		lines = append(lines, "echo "+ipxeText(part))
	}
	return strings.Join(lines, "\n")
}

// installerInfo is the system information an installer of release would send
// for a machine of those MACs, serial and UUID.
func installerInfo(release, serial, uuid string, macs []string) []byte {
	type nic struct {
		Link string `json:"link"`
		MAC  string `json:"mac"`
	}
	info := map[string]any{
		"product":            map[string]any{"product": "pve", "enable_btrfs": true},
		"iso":                map[string]any{"release": release},
		"dmi":                map[string]any{"system": map[string]any{"serial": serial, "uuid": uuid}},
		"network_interfaces": []nic{},
	}
	for i, mac := range macs {
		info["network_interfaces"] = append(info["network_interfaces"].([]nic), nic{"nic" + strconv.Itoa(i), mac})
	}
	body, _ := json.Marshal(info)
	return body
}

func script(body string) []byte { return []byte("#!ipxe\n" + body + "\n") }

// A firmware is what the chain URL says of the iPXE that asks: its
// ${platform} (pcbios, efi) and ${version}; "" where the URL does not say.
type firmware struct{ platform, version string }

func (f firmware) String() string { return cmp.Or(f.platform, "?") + " " + cmp.Or(f.version, "?") }

// exit is the command that hands the machine back to its firmware, to
// boot its next entry. UEFI firmware built on EDK2 (OVMF, and most
// vendors') takes a boot entry that returns success as the end of
// booting and opens its boot manager menu; one that fails, it passes
// for the next entry, the disk. So iPXE exits with 1 wherever the
// machine may be UEFI, and with 0 only where the chain URL says BIOS,
// which moves on either way and where a failure's "Could not boot"
// would only alarm.
func (f firmware) exit() string {
	if f.platform == "pcbios" {
		return "exit"
	}
	return "exit 1"
}

// iPXE hands a UEFI kernel the initrds it names (proxmox.iso among them)
// through the kernel's LoadFile2 initrd mechanism since its commit
// "Support the initrd autodetection mechanism in newer Linux kernels" of
// 2023-02-15, after its 1.21.1 release: before it, a UEFI kernel gets
// only the initrd its initrd= names, and the installer finds no ISO. Every
// build from git after 1.21.1 says 1.21.1+ until 2.0.0; Debian's say from
// which day's git ("1.21.1+git20250501..."), upstream's only a commit.
var (
	ipxeLoadFile2     = [3]int{1, 21, 1}
	ipxeLoadFile2Date = "20230215"
)

// cannotInstall says why this iPXE cannot install the machine, or "":
// an EFI iPXE without LoadFile2 boots the kernel and initrd.img, and the
// installer, finding no ISO, stops at an error that says nothing of why.
// Only an iPXE known to lack it is refused: where the URL (and the
// User-Agent, iPXE/VERSION) does not say, or a build from git does not
// say its day, the install goes on.
func (f firmware) cannotInstall() string {
	if f.platform != "efi" {
		return ""
	}
	v, build, ok := ipxeVersion(f.version)
	if !ok {
		return ""
	}
	c := slices.Compare(v[:], ipxeLoadFile2[:])
	if c < 0 || c == 0 && (build == "release" || build != "" && build < ipxeLoadFile2Date) {
		return fmt.Sprintf("this machine boots by UEFI with iPXE %s, too old to give the installer its ISO: the installer would find no /proxmox.iso; "+
			"chain an ipxe.efi of iPXE 2.0, or of Debian 13 (package ipxe, /usr/lib/ipxe/ipxe.efi), from DHCP instead; or boot this machine in BIOS mode", f.version)
	}
	return ""
}

// ipxeVersion reads an iPXE ${version}: MAJOR.MINOR.PATCH, and what the
// build says of itself after it: "release" for the release itself
// ("1.21.1"), the day of a build from git where it says one, as Debian's
// do ("1.0.0+git-20190125.36a4c85-5.1": "20190125"), else "" (upstream's
// "1.21.1+ (g4bffe)").
func ipxeVersion(s string) (v [3]int, build string, ok bool) {
	s = strings.TrimSpace(s)
	num := s[:len(s)-len(strings.TrimLeft(s, "0123456789."))]
	rest := s[len(num):]
	parts := strings.Split(num, ".")
	if len(parts) != 3 {
		return v, "", false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || len(p) > 4 {
			return v, "", false
		}
		v[i] = n
	}
	switch {
	case rest == "":
		return v, "release", true
	case rest[0] != '+':
		return v, "", false
	}
	if _, after, found := strings.Cut(rest, "git"); found {
		day := strings.TrimPrefix(after, "-")
		if len(day) >= 8 && strings.Trim(day[:8], "0123456789") == "" {
			return v, day[:8], true
		}
	}
	return v, "", true
}

// bootBase is the URL a machine reaches pxe-pilot by: --public-url, else
// the request's own scheme and Host, which is refused unless it is a plain
// host name or address and port, since it goes into the script.
func (s *server) bootBase(r *http.Request) (string, error) {
	// On the plain-HTTP boot listener, the files are fetched from it.
	if plain, _ := r.Context().Value(plainBootKey{}).(bool); !plain && s.track != nil && s.track.publicURL != "" {
		return s.track.publicURL, nil
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if r.Host == "" || strings.Trim(r.Host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") != "" {
		return "", fmt.Errorf("the request's Host %s is not a host name or address to build the boot files' URLs from; give serve --public-url", excerpt(r.Host))
	}
	return scheme + "://" + r.Host, nil
}

// bootIPXE serves GET /boot.ipxe: always a 200, since iPXE runs only a
// 200's body, and the script says why where it does not install.
func (s *server) bootIPXE(w http.ResponseWriter, r *http.Request, o *outcome) int {
	req, fw, bad := parseBootQuery(r.URL.RawQuery)
	if v, ok := strings.CutPrefix(r.UserAgent(), "iPXE/"); ok && fw.version == "" {
		fw.version = clipField(v) // every iPXE sends it: a chain URL without version= still says
	}
	if len(bad) > 0 {
		o.extra = append(o.extra, slog.String("bad_macs", strings.Join(bad, ",")))
	}
	b := bootSetup{dir: s.dir, bootDir: s.bootDir, localBoot: s.localBoot, fw: fw}
	if s.track != nil {
		dry := *s.track
		dry.dry = true
		b.state, b.answers, b.keep = s.track.state, &dry, true
	}
	var out []byte
	base, err := s.bootBase(r)
	if err != nil {
		out = b.broken(o, err.Error())
	} else {
		b.base = base
		out = b.script(req, o)
	}
	if o.warn != "" {
		s.log.Warn(o.warn, "remote", r.RemoteAddr)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
	return http.StatusOK
}

type plainBootKey struct{}

// bootOnly is the handler of serve --boot-listen: /boot.ipxe and /boot/
// over plain HTTP, for iPXE, which has no HTTPS, and nothing else: answers,
// reports and scripts stay on the HTTPS listener. Boot scripts served here
// point at the files here.
func (s *server) bootOnly() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boot.ipxe" || strings.HasPrefix(r.URL.Path, "/boot/") {
			s.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), plainBootKey{}, true)))
			return
		}
		start := time.Now()
		o := &outcome{}
		o.status = s.fail(w, http.StatusNotFound, o, fmt.Sprintf("%q: this plain-HTTP listener (--boot-listen) serves only /boot.ipxe and /boot/; answers are on serve's own address", shownPath(r.URL.Path)))
		s.logRequest(r, o, time.Since(start))
	})
}

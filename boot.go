// Boot images: each --boot-dir folder's boot.ipxe read for its automated entry, and the files that entry names served under /boot/.

package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	bootScript = "boot.ipxe"                    // what prepare-iso --pxe names its script
	autoMarker = "proxmox-start-auto-installer" // on the kernel line of the script's automated entry

	// maxDownloads is how many boot files are sent at once; past it a 503.
	// Downloads take no --max-inflight slot, which is held for the length of
	// a request: sixteen machines fetching a 1.5 GiB ISO would otherwise
	// hold sixteen slots for minutes. This cap keeps a flood of downloads
	// from taking every file descriptor instead.
	maxDownloads = 128

	// maxSourceDownloads is how many of those places one source may hold:
	// an IPv4 address, or an IPv6 /64, from which one host can take as
	// many addresses as it likes. A machine fetches its files one after
	// another, so it needs one place; eight leave room for a few machines
	// behind one NAT, and it takes sixteen sources to fill every place.
	maxSourceDownloads = 8

	// downloadTime is how long one boot file may take to send, in all:
	// the 1.5 GiB ISO at minDownloadRate takes 51 minutes.
	downloadTime = time.Hour

	// A download that moves less than minDownloadRate, averaged over
	// downloadWindow, is dropped, and its place freed: a client that does
	// not read would otherwise hold one for downloadTime. 512 KiB/s is
	// half of what each of 128 downloads gets when they share a 1 Gbit/s
	// link (TCP shares a link unevenly), so a rack booting at once is not
	// dropped; a machine on 100 Mbit/s moves twenty times that. A minute
	// is nginx's send_timeout, the wait operators know, and rides out a
	// network stall such as a spanning-tree change (30 to 50 s).
	minDownloadRate = 512 << 10
	downloadWindow  = time.Minute

	// downloadChunk is how much of a file goes to the kernel's sendfile
	// between two checks of its download's pace: Go sends 4 MiB a system
	// call at most, so the checks add no system call.
	downloadChunk = 4 << 20
)

// A bootFile is a file an entry loads: its name in the image folder, the
// --name it is given, and the words after it (the kernel's command line;
// for an initrd, the name it is loaded as, as in "initrd x.iso proxmox.iso").
type bootFile struct {
	file, name, args string
	line             int // in boot.ipxe, for errors
}

// A bootEntry is the automated entry of an image's boot.ipxe.
type bootEntry struct {
	kernel  bootFile
	initrds []bootFile
}

// files are the names the entry loads, kernel first, each once.
func (e bootEntry) files() []string {
	names := []string{e.kernel.file}
	for _, f := range e.initrds {
		if !slices.Contains(names, f.file) {
			names = append(names, f.file)
		}
	}
	return names
}

// parseBootScript finds the automated entry of a boot.ipxe and follows it
// as iPXE runs it. The entry starts at the kernel line with
// proxmox-start-auto-installer on it (or, where only echo and initrd lines
// stand between it and its section's label, at that label); from there
// the commands are taken in order, through each goto to its label, to the
// boot that ends the entry. prepare-iso --pxe writes each entry as echo,
// kernel and "goto load", and one shared :load section with the initrd
// lines and boot; a hand-written script may hold all of them in the entry.
//
// On the way, echo lines and labels are passed over; a kernel line,
// initrd lines, goto and boot are followed; anything else (chain,
// imgexec, a condition such as iseq or isset, set, exit, a second kernel)
// is refused, as are a goto to a missing label, one that would loop and a
// path that ends without boot: pxe-pilot serves the whole entry or none
// of it. The script is read with iPXE's syntax: # comments, :labels, a
// trailing backslash joining the next line, and commands joined by || or
// &&, of which the first is what the entry does (the rest are its failure
// handling). Errors say "line N: ..." of boot.ipxe.
func parseBootScript(data []byte) (bootEntry, error) {
	type command struct {
		line  int
		words []string
	}
	var (
		cmds   []command
		labels = map[string]int{} // a label's name: the index in cmds it stands at
		kernel = -1               // the index of the automated kernel line
	)
	for n, line := range scriptLines(string(data)) {
		if label, ok := strings.CutPrefix(line, ":"); ok {
			if _, dup := labels[label]; !dup { // iPXE's goto finds the first
				labels[label] = len(cmds)
			}
			cmds = append(cmds, command{n, []string{":" + label}})
			continue
		}
		words := strings.Fields(line)
		if i := slices.IndexFunc(words, func(w string) bool { return w == "||" || w == "&&" }); i >= 0 {
			words = words[:i]
		}
		if len(words) == 0 {
			continue
		}
		if isKernel(words[0]) && slices.Contains(words[1:], autoMarker) {
			// On the command line, not as the file or an option's value.
			if f, err := parseLoad(words, n); err != nil {
				return bootEntry{}, err
			} else if !slices.Contains(strings.Fields(f.args), autoMarker) {
				cmds = append(cmds, command{n, words})
				continue
			}
			if kernel >= 0 {
				return bootEntry{}, fmt.Errorf("line %d: a second automated entry (the first is on line %d): pxe-pilot cannot tell which to serve", n, cmds[kernel].line)
			}
			kernel = len(cmds)
		}
		cmds = append(cmds, command{n, words})
	}
	if kernel < 0 {
		return bootEntry{}, errors.New("no automated entry: no kernel line has " + autoMarker + " on it; use the boot.ipxe prepare-iso --pxe wrote")
	}

	// The entry's own initrd lines before its kernel line, where nothing
	// else stands between them and the section's label.
	start := kernel
	for i := kernel - 1; i >= 0; i-- {
		w := cmds[i].words[0]
		if strings.HasPrefix(w, ":") || i == 0 && (isInitrd(w) || w == "echo") {
			start = i
		}
		if !isInitrd(w) && w != "echo" {
			break
		}
	}

	var entry bootEntry
	seen := map[string]bool{} // the labels a goto took the path to
	for i := start; ; i++ {
		if i == len(cmds) {
			return bootEntry{}, fmt.Errorf("line %d: the automated entry reaches the end of the script with no boot: pxe-pilot serves an entry whole or not at all", cmds[len(cmds)-1].line)
		}
		c := cmds[i]
		w := c.words[0]
		switch {
		case strings.HasPrefix(w, ":"), w == "echo":
		case isKernel(w):
			if i != kernel {
				return bootEntry{}, fmt.Errorf("line %d: %s after the automated entry's kernel line (line %d): pxe-pilot cannot tell which kernel to serve", c.line, w, cmds[kernel].line)
			}
			f, err := parseLoad(c.words, c.line)
			if err != nil {
				return bootEntry{}, err
			}
			entry.kernel = f
		case isInitrd(w):
			f, err := parseLoad(c.words, c.line)
			if err != nil {
				return bootEntry{}, err
			}
			entry.initrds = append(entry.initrds, f)
		case w == "goto":
			if len(c.words) != 2 {
				return bootEntry{}, fmt.Errorf("line %d: goto: want one label, got %q", c.line, strings.Join(c.words[1:], " "))
			}
			label := c.words[1]
			at, ok := labels[label]
			switch {
			case strings.Contains(label, "${"):
				return bootEntry{}, fmt.Errorf("line %d: goto %s: a label made of a setting, which pxe-pilot cannot follow", c.line, label)
			case !ok:
				return bootEntry{}, fmt.Errorf("line %d: goto %s: no such label in the script", c.line, label)
			case seen[label]:
				return bootEntry{}, fmt.Errorf("line %d: goto %s: the automated entry comes back to :%s (line %d), a loop pxe-pilot cannot follow", c.line, label, label, cmds[at].line)
			}
			seen[label] = true
			i = at // the label itself, passed over
		case w == "boot":
			if len(c.words) > 1 {
				return bootEntry{}, fmt.Errorf("line %d: boot %s: pxe-pilot follows only a boot of the kernel the entry loaded", c.line, strings.Join(c.words[1:], " "))
			}
			return entry, nil
		default:
			return bootEntry{}, fmt.Errorf("line %d: %s in the automated entry, which pxe-pilot cannot follow: it serves echo, kernel, initrd, goto and boot", c.line, strings.Join(c.words, " "))
		}
	}
}

// isKernel and isInitrd tell iPXE's commands for loading the image to boot
// (kernel, and its other name imgselect) and the images beside it.
func isKernel(cmd string) bool { return cmd == "kernel" || cmd == "imgselect" }
func isInitrd(cmd string) bool { return cmd == "initrd" || cmd == "imgfetch" || cmd == "module" }

// scriptLines are a script's commands by the number of the line each
// starts on, with a trailing backslash's next line joined on, and blank
// lines and comments left out.
func scriptLines(text string) func(yield func(int, string) bool) {
	return func(yield func(int, string) bool) {
		var cmd strings.Builder
		start := 0
		n := 0
		for line := range strings.Lines(strings.TrimPrefix(text, "\uFEFF")) {
			n++
			line = strings.TrimRight(line, "\r\n")
			if cmd.Len() == 0 {
				start = n
			}
			if cont, ok := strings.CutSuffix(line, `\`); ok {
				cmd.WriteString(cont + " ")
				continue
			}
			cmd.WriteString(line)
			s := strings.TrimSpace(cmd.String())
			cmd.Reset()
			if s == "" || s[0] == '#' {
				continue
			}
			if !yield(start, s) {
				return
			}
		}
		if s := strings.TrimSpace(cmd.String()); s != "" && s[0] != '#' {
			yield(start, s)
		}
	}
}

// parseLoad reads a kernel or initrd command: its options (--name NAME,
// and --autofree, --replace and --timeout, which change nothing here),
// the file and the words after it.
func parseLoad(words []string, line int) (bootFile, error) {
	f := bootFile{line: line}
	cmd := words[0]
	rest := words[1:]
	for len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
		opt := rest[0]
		rest = rest[1:]
		if opt == "--" {
			break
		}
		name, value, hasValue := strings.Cut(opt, "=")
		switch name {
		case "--autofree", "-a", "--replace", "-r":
			continue
		case "--name", "-n", "--timeout", "-t":
		default:
			return f, fmt.Errorf("line %d: %s: unknown option %s", line, cmd, opt)
		}
		if !hasValue {
			if len(rest) == 0 {
				return f, fmt.Errorf("line %d: %s: %s wants a value", line, cmd, opt)
			}
			value, rest = rest[0], rest[1:]
		}
		if name == "--name" || name == "-n" {
			f.name = value
		}
	}
	if len(rest) == 0 {
		return f, fmt.Errorf("line %d: %s names no file", line, cmd)
	}
	f.file, f.args = rest[0], strings.Join(rest[1:], " ")
	if msg := badBootName(f.file); msg != "" {
		return f, fmt.Errorf("line %d: %s %q %s", line, cmd, f.file, msg)
	}
	return f, nil
}

// badBootName says why a file a script names cannot be served from the
// image folder, or "" if it can: pxe-pilot serves the files at the top of
// the folder, by their names, and nothing else.
func badBootName(name string) string {
	const here = "; name a file in the image folder, as prepare-iso --pxe does"
	switch {
	case strings.Contains(name, "${"):
		return "holds a setting pxe-pilot cannot expand" + here
	case hasScheme(name):
		return "is a URL; pxe-pilot serves the image's files itself" + here
	case strings.HasPrefix(name, "/"):
		return "is an absolute path" + here
	case slices.Contains(strings.Split(name, "/"), ".."):
		return "climbs out of the image folder" + here
	case strings.Contains(name, "/"):
		return "is in a sub-folder; pxe-pilot serves the files at the top of the image folder"
	case name == ".":
		return "is the image folder itself" + here
	}
	return ""
}

// hasScheme reports whether s starts with a URL scheme, such as http: or
// tftp:.
func hasScheme(s string) bool {
	scheme, _, ok := strings.Cut(s, ":")
	if !ok || scheme == "" {
		return false
	}
	for i, c := range scheme {
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alpha && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// An image is one --boot-dir folder as one request reads it: opened once,
// its files opened through that handle (as configDir does), so that an
// operator who replaces the folder while a machine boots cannot hand it
// one image's script and another's ISO.
type image struct {
	name  string
	dir   *configDir
	entry bootEntry
}

// imageError is an image that cannot be served: its error names the image
// folder and the file at fault.
type imageError struct{ image, msg string }

func (e *imageError) Error() string { return e.image + "/" + e.msg }

// openImage opens the image folder name of bootDir and reads its script.
// The script is read afresh for every request: it is a few hundred bytes,
// and the operator may replace the image between two boots.
func openImage(bootDir, name string) (*image, error) {
	path := filepath.Join(bootDir, name)
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &imageError{name, ": " + err.Error()}
	}
	img := &image{name: name, dir: &configDir{path: path, fd: fd, offline: true}}
	data, err := img.dir.read(bootScript, nil)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		err = errors.New("missing: put the folder prepare-iso --pxe wrote here, boot.ipxe and all")
	case err == nil && len(data) == 0:
		err = errors.New("is empty")
	}
	if err == nil {
		if img.entry, err = parseBootScript(data); err == nil {
			return img, nil
		}
	}
	img.close()
	if msg := err.Error(); strings.HasPrefix(msg, "line ") {
		return nil, &imageError{name, bootScript + " " + msg}
	}
	return nil, &imageError{name, bootScript + ": " + err.Error()}
}

func (img *image) close() { img.dir.close() }

// open opens a file the entry names for sending, refusing anything but a
// regular file (a FIFO is opened without waiting for a writer, and
// refused).
func (img *image) open(name string) (*os.File, error) {
	fd, err := img.dir.openAt(name, readFlags)
	if err != nil {
		if err == syscall.ENOENT {
			return nil, &imageError{img.name, fmt.Sprintf("%s: missing, and %s line %d names it", name, bootScript, img.line(name))}
		}
		return nil, &imageError{img.name, name + ": " + err.Error()}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, &imageError{img.name, name + ": " + err.Error()}
	}
	if kind := fileKind(uint32(st.Mode)); kind != "" {
		syscall.Close(fd)
		return nil, &imageError{img.name, fmt.Sprintf("%s: not a regular file but %s, and %s line %d names it", name, kind, bootScript, img.line(name))}
	}
	// Opened without blocking only so that a FIFO could not hang the
	// open; a regular file is read as usual.
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return nil, &imageError{img.name, name + ": " + err.Error()}
	}
	return os.NewFile(uintptr(fd), filepath.Join(img.dir.path, name)), nil
}

// line is the line of the script that names file.
func (img *image) line(file string) int {
	for _, f := range append([]bootFile{img.entry.kernel}, img.entry.initrds...) {
		if f.file == file {
			return f.line
		}
	}
	return 0
}

// check opens every file the entry names, as a download would.
func (img *image) check() error {
	for _, name := range img.entry.files() {
		f, err := img.open(name)
		if err != nil {
			return err
		}
		f.Close()
	}
	return nil
}

// imageNames are the image folders of bootDir: its sub-folders (or links
// to folders), but not hidden ones, where a copy may be under way.
func imageNames(bootDir string) ([]string, error) {
	entries, err := os.ReadDir(bootDir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if st, err := os.Stat(filepath.Join(bootDir, e.Name())); err == nil && st.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// checkBootDir checks every image of bootDir as serve would send it: one
// line per image at fault, each naming the image and file.
func checkBootDir(bootDir string) []string {
	names, err := imageNames(bootDir)
	if err != nil {
		return []string{fmt.Sprintf("--boot-dir %s: %v", bootDir, unwrapPath(err))}
	}
	if len(names) == 0 {
		return []string{fmt.Sprintf("--boot-dir %s: no image in it: put each image, the folder prepare-iso --pxe wrote, in a folder of its own there", bootDir)}
	}
	var lines []string
	for _, name := range names {
		if !plainName(name) {
			lines = append(lines, fmt.Sprintf("--boot-dir %s: %s/: an image's folder name goes into its URLs: use letters, digits, '-', '_' and '.'", bootDir, name))
			continue
		}
		img, err := openImage(bootDir, name)
		if err == nil {
			err = img.check()
			img.close()
		}
		if err != nil {
			lines = append(lines, fmt.Sprintf("--boot-dir %s: %v", bootDir, err))
		}
	}
	return lines
}

// bootFile sends one file an image's automated entry names, with byte
// ranges, Last-Modified and ETag, through http.ServeContent on the open
// file, so that the kernel copies it to the socket (sendfile). It takes no
// --max-inflight slot but a download place; see maxDownloads and
// minDownloadRate.
func (s *server) bootFile(w http.ResponseWriter, r *http.Request, o *outcome) int {
	name, file := r.PathValue("image"), r.PathValue("file")
	o.extra = append(o.extra, slog.String("image", name), slog.String("file", file))
	if s.downloads != nil {
		from := downloadSource(r.RemoteAddr)
		if ok, bySource := s.downloads.take(from); !ok {
			busy := fmt.Sprintf("too busy: %d boot files are being sent, the most pxe-pilot sends at once; try again", s.downloads.max)
			if bySource {
				busy = fmt.Sprintf("too busy: %d boot files are being sent to %s, the most pxe-pilot sends to one address at once; try again", s.downloads.perSource, sourceName(from))
			}
			w.Header().Set("Retry-After", "5")
			return s.fail(w, http.StatusServiceUnavailable, o, busy)
		}
		defer s.downloads.give(from)
	}
	if !plainName(name) || !isImage(s.bootDir, name) {
		names, _ := imageNames(s.bootDir)
		return s.fail(w, http.StatusNotFound, o, fmt.Sprintf("no image %q in --boot-dir; there are: %s", name, orNone(names)))
	}
	img, err := openImage(s.bootDir, name)
	if err != nil {
		return s.fail(w, http.StatusInternalServerError, o, "image "+err.Error())
	}
	defer img.close()
	files := img.entry.files()
	if !slices.Contains(files, file) {
		return s.fail(w, http.StatusNotFound, o, fmt.Sprintf("%q: image %s serves only the files its %s loads: %s", file, name, bootScript, strings.Join(files, ", ")))
	}
	f, err := img.open(file)
	if err != nil {
		return s.fail(w, http.StatusInternalServerError, o, "image "+err.Error())
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return s.fail(w, http.StatusInternalServerError, o, "image "+name+"/"+file+": "+err.Error())
	}
	// Not the server's 30 s: the write deadline would cut the download
	// short, and the read deadline cancel its request. The pacer moves
	// the write deadline on as the download makes progress.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(downloadTime))
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", fileETag(st))
	cw := &countingWriter{ResponseWriter: w, pace: s.pace.start(rc.SetWriteDeadline)}
	http.ServeContent(cw, r, "", st.ModTime(), f)
	o.extra = append(o.extra, slog.Int64("bytes", cw.n))
	if cw.pace.dropped != "" {
		o.extra = append(o.extra, slog.String("dropped", cw.pace.dropped))
	}
	switch {
	case cw.status == http.StatusRequestedRangeNotSatisfiable:
		return s.fail(w, cw.status, o, fmt.Sprintf("range %q: not within %s/%s, %d bytes long", r.Header.Get("Range"), name, file, st.Size()))
	case cw.status == http.StatusPreconditionFailed:
		return s.fail(w, cw.status, o, fmt.Sprintf("%s/%s has changed since the version the request names", name, file))
	case cw.status >= 400:
		return s.fail(w, cw.status, o, http.StatusText(cw.status))
	case cw.status == 0:
		return http.StatusOK
	}
	return cw.status
}

// downloadSource is the source whose places a download takes: its IPv4
// address, or the /64 of its IPv6 address; every address that cannot be
// read is one source.
func downloadSource(remote string) netip.Prefix {
	a := peerAddr(remote)
	switch {
	case !a.IsValid():
		return netip.Prefix{}
	case a.Is4():
		return netip.PrefixFrom(a, 32)
	}
	return netip.PrefixFrom(a, 64).Masked()
}

// sourceName is a source as the 503 names it: 10.0.0.7, 2001:db8::/64.
func sourceName(p netip.Prefix) string {
	switch {
	case !p.IsValid():
		return "an address that cannot be read"
	case p.IsSingleIP():
		return p.Addr().String()
	}
	return p.String()
}

// A downloadPace is how fast a download must go to keep its place: the
// zero value is minDownloadRate over downloadWindow, in chunks of
// downloadChunk. Tests make it smaller, and bring their own clock.
type downloadPace struct {
	window  time.Duration
	minRate int64 // bytes a second, averaged over window
	chunk   int64
	now     func() time.Time // what the pace is measured by; the write deadline is on the real clock
}

// start starts pacing a download whose write deadline is set with
// setDeadline.
func (p downloadPace) start(setDeadline func(time.Time) error) *pacer {
	p.window = cmp.Or(p.window, downloadWindow)
	p.minRate = cmp.Or(p.minRate, minDownloadRate)
	p.chunk = cmp.Or(p.chunk, downloadChunk)
	if p.now == nil {
		p.now = time.Now
	}
	return &pacer{downloadPace: p, setDeadline: setDeadline, end: time.Now().Add(downloadTime), from: p.now()}
}

// A pacer keeps a download to its pace. It hands the file to the
// connection a chunk at a time, each with a write deadline a window
// away, so that a client that stops reading loses its place a window
// later; and once a window has passed, it checks that the window moved
// minRate, so that a client that reads a little now and then loses it
// too. The file still goes to sendfile, a chunk a call.
type pacer struct {
	downloadPace
	setDeadline func(time.Time) error
	end         time.Time // downloadTime after the start, on the real clock
	from        time.Time // the start of the window being measured
	fromN       int64     // bytes sent by then
	dropped     string    // why the download was cut short, for the log line
}

// errDropped ends a download that fell behind its pace.
var errDropped = errors.New("download dropped: it fell behind its pace")

// send sends src, as io.CopyN hands it over (in a LimitedReader: a file,
// or a range of it), with send, sent bytes sent before it.
func (p *pacer) send(src io.Reader, sent int64, send func(io.Reader) (int64, error)) (int64, error) {
	lr, ok := src.(*io.LimitedReader)
	if !ok {
		lr = &io.LimitedReader{R: src, N: math.MaxInt64}
	}
	var total int64
	for lr.N > 0 {
		now := time.Now()
		if !now.Before(p.end) {
			p.dropped = fmt.Sprintf("still sending after %v, the longest a download may take", downloadTime)
			return total, errDropped
		}
		deadline := now.Add(p.window)
		if deadline.After(p.end) {
			deadline = p.end
		}
		p.setDeadline(deadline)
		chunk := &io.LimitedReader{R: lr.R, N: min(lr.N, p.chunk)}
		want := chunk.N
		n, err := send(chunk)
		lr.N -= n
		total += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			p.dropped = p.behind(sent+total, true)
		}
		if err != nil {
			return total, err
		}
		if n < want {
			return total, nil // the end of the file
		}
		if p.dropped = p.behind(sent+total, false); p.dropped != "" {
			return total, errDropped
		}
	}
	return total, nil
}

// behind says how the download, n bytes sent, fell behind its pace, or ""
// if it has not; stuck is a chunk not sent within the window.
func (p *pacer) behind(n int64, stuck bool) string {
	now := p.now()
	took := now.Sub(p.from)
	moved := n - p.fromN
	if !stuck {
		if took < p.window {
			return ""
		}
		if float64(moved) >= float64(p.minRate)*took.Seconds() {
			p.from, p.fromN = now, n
			return ""
		}
	}
	return fmt.Sprintf("moved %s in %v, under the %s/s a download must keep; its place is freed", sizeText(moved), took.Round(time.Second), sizeText(p.minRate))
}

// sizeText is a byte count as a person reads it: 512 KiB, 1.5 MiB.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return strings.TrimSuffix(strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64), ".0") + " MiB"
	case n >= 1<<10:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// isImage reports whether name is a folder of bootDir.
func isImage(bootDir, name string) bool {
	st, err := os.Stat(filepath.Join(bootDir, name))
	return err == nil && st.IsDir()
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// fileETag tells one version of a file from another: an operator who
// replaces an image makes new files (a new inode), or at least a new
// modification time or size.
func fileETag(st os.FileInfo) string {
	var ino uint64
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = sys.Ino
	}
	return `"` + strconv.FormatUint(ino, 16) + "-" + strconv.FormatInt(st.Size(), 16) + "-" + strconv.FormatInt(st.ModTime().UnixNano(), 16) + `"`
}

// A countingWriter counts the body bytes sent, for the log line, and keeps
// the status. It passes ReadFrom on to the ResponseWriter, which hands an
// *os.File to the kernel's sendfile: a writer without it would copy
// every byte through a buffer. With a pacer, it passes the file on a
// chunk at a time.
type countingWriter struct {
	http.ResponseWriter
	n      int64
	status int
	pace   *pacer // nil sends in one go
}

// WriteHeader holds back an error status, for bootFile to send in
// pxe-pilot's own words.
func (c *countingWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
	if status < 400 {
		c.ResponseWriter.WriteHeader(status)
	}
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.status >= 400 {
		return len(b), nil // http.Error's words, replaced by fail's
	}
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) ReadFrom(src io.Reader) (int64, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	send := func(src io.Reader) (int64, error) {
		if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
			return rf.ReadFrom(src)
		}
		return io.Copy(struct{ io.Writer }{c.ResponseWriter}, src)
	}
	var n int64
	var err error
	if c.pace != nil {
		n, err = c.pace.send(src, c.n, send)
	} else {
		n, err = send(src)
	}
	c.n += n
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// bootDirError is serve's refusal of a boot dir with an image it cannot
// serve: the first fault, and how many more validate would list.
func bootDirError(bootDir string) error {
	lines := checkBootDir(bootDir)
	switch len(lines) {
	case 0:
		return nil
	case 1:
		return errors.New(lines[0])
	}
	return fmt.Errorf("%s (and %d more: pxe-pilot validate --boot-dir %s lists them)", lines[0], len(lines)-1, bootDir)
}

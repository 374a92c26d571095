// Boot images: each --boot-dir folder's boot.ipxe read for its automated entry, and the files that entry names served under /boot/.

package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
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

	// downloadTime is how long one boot file may take to send, in place of
	// the 30 s every other request gets: 1.5 GiB at 10 Mbit/s takes
	// twenty minutes.
	downloadTime = time.Hour
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
// --max-inflight slot; see maxDownloads.
func (s *server) bootFile(w http.ResponseWriter, r *http.Request, o *outcome) int {
	name, file := r.PathValue("image"), r.PathValue("file")
	o.extra = append(o.extra, slog.String("image", name), slog.String("file", file))
	if s.downloads != nil {
		select {
		case s.downloads <- struct{}{}:
			defer func() { <-s.downloads }()
		default:
			w.Header().Set("Retry-After", "5")
			return s.fail(w, http.StatusServiceUnavailable, o, fmt.Sprintf("too busy: %d boot files are being sent, the most pxe-pilot sends at once; try again", cap(s.downloads)))
		}
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
	// short, and the read deadline cancel its request.
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(downloadTime))
	rc.SetReadDeadline(time.Now().Add(downloadTime))
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", fileETag(st))
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", st.ModTime(), f)
	o.extra = append(o.extra, slog.Int64("bytes", cw.n))
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
// every byte through a buffer.
type countingWriter struct {
	http.ResponseWriter
	n      int64
	status int
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
	var n int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{c.ResponseWriter}, src)
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

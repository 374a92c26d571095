// End to end in a virtual machine: QEMU's iPXE gets pxe-pilot's install script, boots a stand-in installer that asks /answer and reports to /installed, and the next boot goes to the local disk.

package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestQEMUInstallThenLocalBoot boots a virtual machine twice against
// serve, run in the test (so -race checks the server too), with Debian's
// qemu-system-x86 (SeaBIOS, software emulation) and ipxe-qemu:
//
//  1. Its iPXE gets a first script from QEMU's own TFTP server, which
//     chains /boot.ipxe as a netboot set-up does. pxe-pilot says install:
//     iPXE loads a Debian kernel and a busybox initramfs standing in for
//     the installer (testdata/qemu/init.sh), plus a second initrd placed
//     as /proxmox.iso, as the real script names it. The stand-in asks
//     /answer with its system info, prints the answer, reports to the
//     answer's webhook with its token and reboots.
//  2. /boot.ipxe now says local disk (echo and exit): SeaBIOS moves on to
//     the disk, whose boot sector prints a marker and ends QEMU through
//     its isa-debug-exit device.
//
// QEMU's user-mode network (slirp) reaches the host as 10.0.2.2, which
// QEMU connects to 127.0.0.1, where the server listens: nothing leaves
// the machine.
//
// It finds what it needs where Debian installs it, or where these say:
// PXE_PILOT_QEMU_ROM, QEMU's iPXE ROM for its e1000 NIC;
// PXE_PILOT_QEMU_BUSYBOX, a static busybox; PXE_PILOT_QEMU_KERNEL and
// PXE_PILOT_QEMU_MODULES, a kernel and the lib/modules/VERSION dir that
// holds its e1000 module (.ci/run sets both). It skips where any is
// missing, unless PXE_PILOT_REQUIRE_QEMU is set, as CI sets it; and in
// -short.
//
// It runs twice: with the machine's host file named by its MAC, and by
// its UUID alone. There /boot.ipxe finds the host file by the UUID iPXE
// reads from the firmware (${uuid}) and /answer by the one the installer
// reads (/sys/class/dmi/id/product_uuid): the machine installs only if
// both read the firmware's UUID alike. Its first three fields are stored
// little-endian since SMBIOS 2.6, so -uuid gives one that reads
// differently byte-swapped.
func TestQEMUInstallThenLocalBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a virtual machine twice under software emulation, about 20 s each: not for -short")
	}
	vm := findQEMUKit(t)

	// Everything is bounded. Each run, an install and a disk boot, takes
	// about 22 s on two shared cores; the limit leaves a slow or busy
	// machine room, and go test's own -timeout room to print what happened.
	limit := 8 * time.Minute
	if d, ok := t.Deadline(); ok {
		limit = min(limit, time.Until(d)-30*time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()

	for _, tc := range []struct{ name, hostKey, match string }{
		{"by MAC", strings.ReplaceAll(vmMAC, ":", "-"), `match="mac ` + vmMAC + `"`},
		{"by UUID", "uuid-" + vmUUID, `match="uuid ` + vmUUID + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) { bootTwice(t, ctx, vm, tc.hostKey, tc.match) })
	}
}

const (
	vmMAC  = "52:54:00:00:00:13"
	vmUUID = "01234567-89ab-cdef-0123-456789abcdef" // the first three fields read differently byte-swapped
)

// bootTwice boots the VM until it has installed and then booted its disk,
// with its host file hosts/HOSTKEY.toml, which the server's log lines
// must say it matched by match.
func bootTwice(t *testing.T, ctx context.Context, vm qemuKit, hostKey, match string) {
	const (
		serial  = "PXEPILOT13"
		release = "9.2" // the first whose webhook carries a token
		marker  = "pxe-pilot-qemu: the local disk booted"
		exitVal = 0x2a // written to isa-debug-exit: QEMU exits (0x2a<<1)|1
	)
	start := time.Now()

	// Where the server listens, and how the VM reaches it: slirp's
	// 10.0.2.2 is the host's 127.0.0.1.
	addr := freePort(t)
	_, port, _ := strings.Cut(addr, ":")
	guestURL := "http://10.0.2.2:" + port

	// The stand-in's initramfs: its /init, busybox and the NIC's module.
	// The kernel makes no directory a file needs: the archive has them.
	keys, err := json.Marshal(nodeHostKeys)
	if err != nil {
		t.Fatal(err)
	}
	initScript := strings.NewReplacer(
		"@SERVER@", guestURL,
		"@RELEASE@", release,
		"@MODULE@", filepath.Base(vm.module),
		"@SSH_KEYS@", string(keys),
	).Replace(string(mustRead(t, "testdata/qemu/init.sh")))
	initrd := &newcWriter{}
	for _, dir := range []string{"bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "tmp"} {
		initrd.dir(dir)
	}
	initrd.charDev("dev/console", 5, 1) // the kernel opens it for /init before devtmpfs is up
	initrd.file("init", []byte(initScript), 0o755)
	initrd.file("etc/udhcpc.script", mustRead(t, "testdata/qemu/udhcpc.script"), 0o755)
	initrd.file("bin/busybox", mustRead(t, vm.busybox), 0o755)
	initrd.file("lib/modules/"+filepath.Base(vm.module), mustRead(t, vm.module), 0o644)

	root := writeTree(t, map[string]string{
		// The VM's host file, beside a copy of examples/config below.
		"config/hosts/" + hostKey + ".toml": "# The virtual machine of TestQEMUInstallThenLocalBoot.\nhostname = \"pve-qemu-13\"\n\n[disk]\ntarget = \"/dev/sda\"\n",

		// The boot dir: one image, whose script loads the kernel, the
		// stand-in's initramfs and its ISO as prepare-iso --pxe's does.
		"boot/qemu-13/boot.ipxe": `#!ipxe
# The stand-in installer of TestQEMUInstallThenLocalBoot, loaded as
# prepare-iso --pxe's script loads Proxmox's.
kernel vmlinuz console=ttyS0 quiet initrd=initrd.img proxmox-start-auto-installer
initrd initrd.img
initrd pxe-pilot-qemu-13.iso proxmox.iso
boot
`,
		"boot/qemu-13/vmlinuz":               string(mustRead(t, vm.kernel)),
		"boot/qemu-13/initrd.img":            string(initrd.close()),
		"boot/qemu-13/pxe-pilot-qemu-13.iso": "the ISO's stand-in for TestQEMUInstallThenLocalBoot\n",

		// QEMU's TFTP root: the first script, as a netboot set-up's DHCP
		// hands iPXE, echoing what iPXE knows of the machine first.
		// Debian 12's iPXE shows a URL it fetches without its query: the
		// script shows it whole, and the UUID on a line of its own, since
		// the console wraps at 80 columns.
		"tftp/first.ipxe": `#!ipxe
set url ` + guestURL + `/boot.ipxe?mac=${net0/mac}&uuid=${uuid}&serial=${serial:uristring}
echo pxe-pilot-qemu: chain ${url}
echo pxe-pilot-qemu: ipxe-uuid=${uuid}
chain ${url} || goto failed
exit
:failed
echo pxe-pilot-qemu: chain failed
`,
		"disk.img":    string(bootSector("\r\n"+marker+"\r\n", exitVal)),
		"sercon-port": "\xf8\x03", // SeaBIOS shows the option ROM's (iPXE's) screen on COM1, 0x3f8
	})
	config := filepath.Join(root, "config")
	if err := os.CopyFS(config, os.DirFS("examples/config")); err != nil {
		t.Fatal(err)
	}

	// The server, on a loopback port. startServe listens where the last
	// --listen says.
	state := filepath.Join(root, "state")
	_, serverLog := startServe(t, "http://"+addr+"/health", "--listen", addr, "--config-dir", config,
		"--boot-dir", filepath.Join(root, "boot"), "--state-dir", state, "--public-url", guestURL)
	srv := &trackedServer{url: "http://" + addr, config: config, state: state, log: serverLog}

	serialLog := filepath.Join(root, "serial.log")
	qemuOut := &syncBuffer{}
	qemu := startProcess(t, exec.CommandContext(ctx, vm.qemu,
		"-accel", "tcg,tb-size=64", // software emulation: a /dev/kvm may be there and not work
		"-m", "256", "-smp", "1",
		"-display", "none", "-vga", "none", "-monitor", "none",
		"-serial", "file:"+serialLog,
		"-fw_cfg", "name=etc/sercon-port,file="+filepath.Join(root, "sercon-port"), // QEMU warns that the name lacks opt/: SeaBIOS reads it as it is
		"-uuid", vmUUID,
		"-smbios", "type=1,serial="+serial,
		"-netdev", "user,id=n0,tftp="+filepath.Join(root, "tftp")+",bootfile=first.ipxe",
		"-device", "e1000,netdev=n0,mac="+vmMAC+",romfile="+vm.rom,
		"-drive", "file="+filepath.Join(root, "disk.img")+",format=raw,if=ide,index=0",
		"-boot", "order=nc", // the network, then the disk
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
	), qemuOut)

	// Wait for QEMU to end; a third boot script means the install loops,
	// and a panic that the kernel hangs in: either ends it early.
	stopped := ""
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-qemu.done:
			break wait
		case <-tick.C:
			serialText, _ := os.ReadFile(serialLog)
			switch {
			case len(srv.logLines("path=/boot.ipxe")) > 2:
				stopped = "a third /boot.ipxe: the machine did not stop asking to install"
			case bytes.Contains(serialText, []byte("Kernel panic")):
				stopped = "the kernel panicked"
			default:
				continue
			}
			qemu.stop()
		}
	}
	took := time.Since(start)
	serialBytes, _ := os.ReadFile(serialLog)
	// Without carriage returns, the terminal codes SeaBIOS's and iPXE's
	// screens send (reset, clear, colours) and iPXE's countdown's
	// backspaces.
	serialText := regexp.MustCompile("\r|\x1b(\\[[0-9;?]*[A-Za-z]|c)|\x08 \x08").ReplaceAllString(string(serialBytes), "")
	t.Logf("%s in %s; QEMU: %v", vm, took.Round(time.Second), qemu.err)
	t.Logf("serial console:\n%s", serialText)
	t.Logf("server log:\n%s", serverLog)
	if out := qemuOut.String(); out != "" {
		t.Logf("QEMU printed:\n%s", out)
	}
	if ctx.Err() != nil {
		deadline, _ := ctx.Deadline()
		t.Fatalf("the VM did not finish by %s, the test's limit", deadline.Format(time.TimeOnly))
	}
	if stopped != "" {
		t.Fatalf("stopped the VM: %s", stopped)
	}

	// QEMU ended through the disk's write to isa-debug-exit.
	var exit *exec.ExitError
	if !errors.As(qemu.err, &exit) || exit.ExitCode() != exitVal<<1|1 {
		t.Errorf("QEMU ended with %v; want exit status %d, from the disk's boot sector", qemu.err, exitVal<<1|1)
	}

	// The server's decisions, and the installer's two requests.
	boots := srv.logLines("path=/boot.ipxe")
	if len(boots) != 2 || !strings.Contains(boots[0], "status=200") || !strings.Contains(boots[0], "boot=install") ||
		!strings.Contains(boots[1], "status=200") || !strings.Contains(boots[1], "boot=local") ||
		!strings.Contains(boots[0], match) || !strings.Contains(boots[1], match) {
		t.Errorf("/boot.ipxe was asked:\n%s\nwant twice, each %s: boot=install, then boot=local", strings.Join(boots, "\n"), match)
	}
	for _, want := range []struct{ path, status string }{
		{"/boot/qemu-13/vmlinuz", "status=200"},
		{"/boot/qemu-13/initrd.img", "status=200"},
		{"/boot/qemu-13/pxe-pilot-qemu-13.iso", "status=200"},
		{"/answer", "status=200 host=hosts/" + hostKey + ".toml " + match},
		{"/installed", "status=200"},
	} {
		if lines := srv.logLines("path=" + want.path + " "); len(lines) != 1 || !strings.Contains(lines[0], want.status) {
			t.Errorf("%s was asked:\n%s\nwant once, %s", want.path, strings.Join(lines, "\n"), want.status)
		}
	}
	if lines := srv.logLines("path=/installed ", "machine="+hostKey, "management_mac="+vmMAC, fmt.Sprintf(`ssh_host_keys="ecdsa=%s,ed25519=%s,rsa=%s"`, nodeFingerprints["ecdsa"], nodeFingerprints["ed25519"], nodeFingerprints["rsa"])); len(lines) != 1 {
		t.Errorf("no /installed line records %s, its MAC and its host keys' fingerprints", hostKey)
	}
	if rec := srv.host(t, hostKey); rec.Installed.IsZero() || rec.Answers != 1 {
		t.Errorf("the state dir has %s as %+v; want installed, after one answer", hostKey, rec)
	}

	// The serial console: iPXE's two boots, the stand-in's work, the disk.
	for _, want := range []string{
		"stand-in: /proxmox.iso: the ISO's stand-in",
		"stand-in: answer:",
		"fqdn = 'pve-qemu-13.lab.example.com'",
		"[post-installation-webhook]",
		"url = '" + guestURL + "/installed'",
		`stand-in: report accepted: {"status":"recorded"}`,
		"stand-in: rebooting",
		marker,
	} {
		if !strings.Contains(serialText, want) {
			t.Errorf("the serial console has no %q", want)
		}
	}
	if strings.Contains(serialText, "stand-in: FAILED") {
		t.Errorf("the stand-in FAILED%s", lineAfter(serialText, "stand-in: FAILED"))
	}
	if i, j := strings.Index(serialText, "stand-in: rebooting"), strings.Index(serialText, marker); i < 0 || j < i {
		t.Errorf("the disk did not boot after the install")
	}

	// Does iPXE's ${uuid}, sent to /boot.ipxe, read as the installer's
	// product_uuid does? Both swap SMBIOS 2.6+'s little-endian fields.
	ipxeUUID := lineAfter(serialText, "pxe-pilot-qemu: ipxe-uuid=")
	installerUUID := lineAfter(serialText, "stand-in: installer-uuid=")
	t.Logf("-uuid %s: iPXE sent uuid=%s to /boot.ipxe; the installer's /sys/class/dmi/id/product_uuid is %s", vmUUID, ipxeUUID, installerUUID)
	if ipxeUUID == "" || !strings.EqualFold(ipxeUUID, installerUUID) || !strings.EqualFold(installerUUID, vmUUID) {
		t.Errorf("the UUIDs differ: QEMU -uuid %s, iPXE's ${uuid} %q, the installer's product_uuid %q", vmUUID, ipxeUUID, installerUUID)
	}
}

// lineAfter is the rest of the first line of s that holds prefix, from
// after prefix, without its surrounding spaces; or "".
func lineAfter(s, prefix string) string {
	_, after, _ := strings.Cut(s, prefix)
	line, _, _ := strings.Cut(after, "\n")
	return strings.TrimSpace(line)
}

// qemuKit is what the VM test needs from the machine.
type qemuKit struct {
	qemu, rom, busybox, kernel, module string
}

func (k qemuKit) String() string {
	return fmt.Sprintf("%s, %s, %s, %s", filepath.Base(k.qemu), k.rom, k.kernel, k.module)
}

// findQEMUKit finds QEMU, its iPXE ROM for e1000, a static busybox and a
// kernel with its e1000 module, or skips saying what is missing and how
// to get it; with PXE_PILOT_REQUIRE_QEMU set it fails instead.
func findQEMUKit(t *testing.T) qemuKit {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("PXE_PILOT_REQUIRE_QEMU") != "" {
			t.Fatal(msg + " (PXE_PILOT_REQUIRE_QEMU is set)")
		}
		t.Skip(msg)
	}
	var k qemuKit
	var err error
	if k.qemu, err = exec.LookPath("qemu-system-x86_64"); err != nil {
		missing("qemu-system-x86_64 not installed: apt-get install qemu-system-x86 ipxe-qemu: %v", err)
	}
	k.rom = firstFile(os.Getenv("PXE_PILOT_QEMU_ROM"), "/usr/lib/ipxe/qemu/efi-e1000.rom", "/usr/share/qemu/efi-e1000.rom", "/usr/lib/ipxe/qemu/pxe-e1000.rom")
	if k.rom == "" {
		missing("no iPXE ROM for QEMU's e1000 (/usr/lib/ipxe/qemu/efi-e1000.rom): apt-get install ipxe-qemu, or set PXE_PILOT_QEMU_ROM")
	}
	k.busybox = firstFile(os.Getenv("PXE_PILOT_QEMU_BUSYBOX"), "/bin/busybox", "/usr/bin/busybox")
	if k.busybox == "" {
		missing("no busybox: apt-get install busybox-static, or set PXE_PILOT_QEMU_BUSYBOX")
	}
	if f, err := elf.Open(k.busybox); err != nil {
		missing("%s: %v", k.busybox, err)
	} else {
		dynamic := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
		f.Close()
		if dynamic {
			missing("%s is linked dynamically, and the initramfs has no libc: apt-get install busybox-static", k.busybox)
		}
	}

	// The kernel: PXE_PILOT_QEMU_KERNEL and PXE_PILOT_QEMU_MODULES (the
	// lib/modules/VERSION dir of a Debian linux-image package unpacked,
	// as .ci/run does), else the newest of /boot's by version.
	k.kernel = os.Getenv("PXE_PILOT_QEMU_KERNEL")
	modules := os.Getenv("PXE_PILOT_QEMU_MODULES")
	if k.kernel == "" {
		kernels, _ := filepath.Glob("/boot/vmlinuz-*")
		if len(kernels) == 0 {
			missing("no kernel: set PXE_PILOT_QEMU_KERNEL and PXE_PILOT_QEMU_MODULES to a Debian linux-image package's vmlinuz and lib/modules/VERSION (.ci/run unpacks one), or install one in /boot")
		}
		k.kernel = slices.MaxFunc(kernels, func(a, b string) int { return slices.Compare(versionOf(a), versionOf(b)) })
	}
	// Ubuntu's /boot/vmlinuz-* are root's alone.
	if f, err := os.Open(k.kernel); err != nil {
		missing("the kernel: %v; set PXE_PILOT_QEMU_KERNEL and PXE_PILOT_QEMU_MODULES to one this user can read", err)
	} else {
		f.Close()
	}
	if modules == "" {
		modules = filepath.Join("/lib/modules", strings.TrimPrefix(filepath.Base(k.kernel), "vmlinuz-"))
	}
	driver := filepath.Join(modules, "kernel/drivers/net/ethernet/intel/e1000/e1000.ko")
	k.module = firstFile(driver, driver+".xz", driver+".gz")
	if k.module == "" {
		missing("no e1000 module for %s: %s(.xz, .gz) is missing; set PXE_PILOT_QEMU_MODULES to its lib/modules/VERSION", k.kernel, driver)
	}
	return k
}

// versionOf is the numbers in a kernel's file name, in order, to compare
// as its version: vmlinuz-6.1.0-10-amd64 is [6 1 0 10 64], after
// vmlinuz-6.1.0-9-amd64, which sorts after it as a string.
func versionOf(name string) []int {
	var v []int
	for _, digits := range strings.FieldsFunc(filepath.Base(name), func(r rune) bool { return r < '0' || r > '9' }) {
		n, _ := strconv.Atoi(digits)
		v = append(v, n)
	}
	return v
}

// firstFile is the first of paths that is a regular file, or "".
func firstFile(paths ...string) string {
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// A process is a command a test started, killed when the test ends.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has ended
	err  error         // Wait's, once done is closed
}

// startProcess starts cmd, its output into out.
func startProcess(t *testing.T, cmd *exec.Cmd, out *syncBuffer) *process {
	t.Helper()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	return p
}

// stop kills the process, if it still runs, and waits for it to end.
func (p *process) stop() {
	p.cmd.Process.Kill()
	<-p.done
}

// newcWriter writes a cpio archive in the "newc" format the kernel
// unpacks an initramfs from: per entry a 110-byte ASCII header (the magic
// 070701 and thirteen 8-digit hex fields), the name and its NUL padded
// to 4 bytes, the data padded to 4 bytes; a TRAILER!!! entry ends it.
type newcWriter struct {
	buf bytes.Buffer
	ino int
}

func (w *newcWriter) entry(name string, mode uint32, data []byte, rdevMajor, rdevMinor int) {
	w.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	fmt.Fprintf(&w.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		w.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	w.buf.WriteString(name)
	w.buf.WriteByte(0)
	w.pad()
	w.buf.Write(data)
	w.pad()
}

func (w *newcWriter) pad() {
	for w.buf.Len()%4 != 0 {
		w.buf.WriteByte(0)
	}
}

func (w *newcWriter) dir(name string) { w.entry(name, 0o040755, nil, 0, 0) }

func (w *newcWriter) file(name string, data []byte, perm uint32) {
	w.entry(name, 0o100000|perm, data, 0, 0)
}

func (w *newcWriter) charDev(name string, major, minor int) {
	w.entry(name, 0o020600, nil, major, minor)
}

// close ends the archive and returns it.
func (w *newcWriter) close() []byte {
	w.ino = -1 // the trailer's inode is 0
	w.entry("TRAILER!!!", 0, nil, 0, 0)
	return w.buf.Bytes()
}

// bootSector is a disk's master boot record whose code, which the BIOS
// loads at 0000:7C00 and runs in 16-bit real mode, writes msg to COM1 and
// then val to port 0xf4, where QEMU's isa-debug-exit device ends QEMU
// with status (val<<1)|1. Hand-assembled; the offsets are from 0x7C00.
func bootSector(msg string, val byte) []byte {
	const msgAt = 0x27 // where msg starts: right after the code
	code := []byte{
		0xFA,       // 00: cli              no interrupts: nothing here handles them
		0xFC,       // 01: cld              lodsb counts upwards
		0x31, 0xC0, // 02: xor ax, ax
		0x8E, 0xD8, // 04: mov ds, ax       ds = 0: msg is at 0000:7C27
		0xBE, msgAt, 0x7C, // 06: mov si, 0x7C27   si = msg
		// next:
		0xAC,       // 09: lodsb            al = [ds:si], si++
		0x84, 0xC0, // 0A: test al, al
		0x74, 0x12, // 0C: jz done (0x20)   the NUL ends msg
		0x88, 0xC4, // 0E: mov ah, al       keep the byte while al polls the UART
		0xBA, 0xFD, 0x03, // 10: mov dx, 0x3FD    COM1's line status register
		// wait:
		0xEC,       // 13: in al, dx
		0xA8, 0x20, // 14: test al, 0x20    transmit holding register empty?
		0x74, 0xFB, // 16: jz wait (0x13)
		0x88, 0xE0, // 18: mov al, ah
		0xBA, 0xF8, 0x03, // 1A: mov dx, 0x3F8    COM1's transmit register
		0xEE,       // 1D: out dx, al       send the byte
		0xEB, 0xE9, // 1E: jmp next (0x09)
		// done:
		0xB0, val, // 20: mov al, val
		0xE6, 0xF4, // 22: out 0xF4, al      isa-debug-exit: QEMU ends here
		// hang:
		0xF4,       // 24: hlt              in case no device listens there
		0xEB, 0xFD, // 25: jmp hang (0x24)
	}
	if len(code) != msgAt {
		panic(fmt.Sprintf("the boot sector's code is %d bytes, not %d: fix msgAt and the mov si", len(code), msgAt))
	}
	sector := make([]byte, 512)
	copy(sector, code)
	copy(sector[msgAt:446], msg+"\x00")   // the partition table, empty, starts at 446
	sector[510], sector[511] = 0x55, 0xAA // the BIOS boots only a sector that ends so
	return sector
}

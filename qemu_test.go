// End to end in virtual machines, under SeaBIOS and under UEFI: QEMU's iPXE asks pxe-pilot's /boot.ipxe, which installs a machine through a stand-in installer (that asks /answer and reports to /installed), then boots its disk, and says why not to a machine no host file names, to one whose host file it refuses, and to an EFI iPXE too old to load the installer.

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// TestQEMUInstallThenLocalBoot boots virtual machines against serve, run
// in the test (so -race checks the server too), with Debian's
// qemu-system-x86 under software emulation: under SeaBIOS and under UEFI
// (OVMF), the two halves in parallel. Each half's machine goes through
// the outcomes of /boot.ipxe, one QEMU run each, against one server with
// one state dir:
//
//  1. install: its iPXE gets a first script from QEMU's own TFTP server,
//     which chains /boot.ipxe as a netboot set-up does. pxe-pilot says
//     install, with the image's script in the shape prepare-iso --pxe
//     writes (a menu, a section per entry, one :load they all go to):
//     iPXE loads a Debian kernel, a busybox initramfs standing in for the
//     installer (testdata/qemu/init.sh) and the ISO, placed as
//     /proxmox.iso. The stand-in checks the ISO's bytes, asks /answer
//     with its system info, reports to the answer's webhook with its
//     token and powers off.
//  2. local disk: /boot.ipxe now says local disk (echo and exit), and the
//     firmware moves on to the disk, which prints a marker and ends QEMU
//     through its isa-debug-exit device: under SeaBIOS a boot sector made
//     here, under UEFI GRUB on a FAT disk (testdata/qemu/grub.cfg).
//  3. unknown: with its host file gone, the machine is told so on its
//     console, is not installed, and boots on to its disk.
//  4. broken: with a host file pxe-pilot refuses, the machine is shown
//     the error, is not installed, and boots on to its disk.
//  5. too old, under UEFI alone: Debian 12's EFI iPXE gives the kernel
//     only the first initrd (it predates iPXE's LoadFile2 initrd, of
//     2023), so the installer would never find its ISO; /boot.ipxe,
//     told iPXE's platform and version by the first script, refuses it.
//
// Under UEFI the machine netboots as OVMF does with a new iPXE: OVMF's
// own PXE fetches trixie's snponly.efi, with trixie's ROM driving the NIC
// (Debian 12's ROM would run its own, too old, iPXE), and snponly.efi runs
// the first script as the autoexec.ipxe beside it on the TFTP server.
//
// QEMU's user-mode network (slirp) reaches the host as 10.0.2.2, which
// QEMU connects to 127.0.0.1, where the servers listen: nothing leaves
// the machine.
//
// It finds what it needs where Debian installs it, or where these say:
// PXE_PILOT_QEMU_ROM, QEMU's iPXE ROM for its e1000 NIC;
// PXE_PILOT_QEMU_BUSYBOX, a static busybox; PXE_PILOT_QEMU_KERNEL and
// PXE_PILOT_QEMU_MODULES, a kernel and the lib/modules/VERSION dir that
// holds its e1000 and efivarfs modules (.ci/run sets both). Under UEFI
// also Debian's ovmf, grub-efi-amd64-bin and mtools, and
// PXE_PILOT_QEMU_EFI_IPXE, a dir holding trixie's snponly.efi (package
// ipxe) and efi-e1000.rom (package ipxe-qemu), which .ci/run fetches. It
// skips where any is missing, unless PXE_PILOT_REQUIRE_QEMU is set, as CI
// sets it; and in -short.
//
// Under SeaBIOS a second machine installs and boots its disk with its
// host file named by its UUID alone. There /boot.ipxe finds the host
// file by the UUID iPXE reads from the firmware (${uuid}) and /answer by
// the one the installer reads (/sys/class/dmi/id/product_uuid): the
// machine installs only if both read the firmware's UUID alike. Its first
// three fields are stored little-endian since SMBIOS 2.6, so -uuid gives
// one that reads differently byte-swapped. Every install checks that the
// two agree.
func TestQEMUInstallThenLocalBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots virtual machines a dozen times under software emulation, 5 to 80 s each: not for -short")
	}
	kit := findQEMUKit(t)

	// Everything is bounded: each boot by bootLimit, and all of them by
	// this. The halves take about 1 and 3 minutes on two shared cores; the
	// limit leaves a slow or busy machine room, and go test's own -timeout
	// room to print what happened.
	limit := 10 * time.Minute
	if d, ok := t.Deadline(); ok {
		limit = min(limit, time.Until(d)-30*time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel) // not defer: the parallel halves run after this returns

	byMAC := identity{strings.ReplaceAll(vmMAC, ":", "-"), `match="mac ` + vmMAC + `"`}
	byUUID := identity{"uuid-" + vmUUID, `match="uuid ` + vmUUID + `"`}
	t.Run("BIOS", func(t *testing.T) {
		t.Parallel()
		t.Run("by MAC", func(t *testing.T) { newVM(t, kit, nil, byMAC).outcomes(t, ctx, true) })
		t.Run("by UUID", func(t *testing.T) { newVM(t, kit, nil, byUUID).outcomes(t, ctx, false) })
	})
	t.Run("UEFI", func(t *testing.T) {
		t.Parallel()
		efi := findEFIKit(t, kit)
		t.Run("too old", func(t *testing.T) {
			vm := newVM(t, kit, &efi, byMAC)
			vm.asTooOld(t)
			vm.tooOld(t, ctx)
		})
		t.Run("by MAC", func(t *testing.T) { newVM(t, kit, &efi, byMAC).outcomes(t, ctx, true) })
	})
}

const (
	vmMAC     = "52:54:00:00:00:13"
	vmUUID    = "01234567-89ab-cdef-0123-456789abcdef" // the first three fields read differently byte-swapped
	vmSerial  = "PXEPILOT13"
	vmRelease = "9.2" // the first whose webhook carries a token
	isoName   = "pxe-pilot-qemu-13.iso"
	marker    = "pxe-pilot-qemu: the local disk booted"
	exitVal   = 0x2a // written to isa-debug-exit: QEMU exits (0x2a<<1)|1

	// bootLimit bounds one boot. The slowest, the too-old machine's, takes
	// about 70 s on two shared cores; the limit leaves a busy machine
	// room, and a hung VM fails its boot long before the test's limit.
	bootLimit = 4 * time.Minute

	// The VM's host file, and one pxe-pilot refuses: RAID5 is no ZFS level.
	vmHostFile   = "# The virtual machine of TestQEMUInstallThenLocalBoot.\nhostname = \"pve-qemu-13\"\n\n[disk]\ntarget = \"/dev/sda\"\n"
	vmBrokenHost = "# The virtual machine of TestQEMUInstallThenLocalBoot, with a RAID level ZFS does not have.\nhostname = \"pve-qemu-13\"\n\n[disk]\nfilesystem = \"zfs\"\ntarget = [\"sda\", \"sdb\", \"sdc\"]\n\n[disk.zfs]\nraid = \"raid5\"\n"
)

// An identity is how the machine's host file is named, hosts/KEY.toml,
// and how the server's log lines must say it matched.
type identity struct{ key, match string }

// A vm is one machine the test boots again and again: its disk, its UEFI
// variables, its server with its config dir and state dir.
type vm struct {
	kit      qemuKit
	efi      *efiKit // nil under SeaBIOS
	id       identity
	root     string
	guestURL string // the server, as the VM reaches it
	srv      *trackedServer
	disk     string // the disk QEMU boots
	grubDisk string // under UEFI, the disk the install leaves
	vars     string // under UEFI, the machine's variable store
	rom      string // the NIC's option ROM
	bootfile string // what QEMU's DHCP hands the firmware
	// bootindex orders the network, then the disk, by QEMU's bootindex,
	// for a machine no stand-in set the boot order of.
	bootindex bool
	boots     int
}

// newVM makes a machine, its server and what it boots, with its host
// file named by id.
func newVM(t *testing.T, kit qemuKit, efi *efiKit, id identity) *vm {
	t.Helper()
	v := &vm{kit: kit, efi: efi, id: id, rom: kit.rom, bootfile: "first.ipxe"}
	if efi != nil {
		v.rom, v.bootfile = efi.rom, "snponly.efi"
	}

	// Where the server listens, and how the VM reaches it: slirp's
	// 10.0.2.2 is the host's 127.0.0.1.
	addr := freePort(t)
	_, port, _ := strings.Cut(addr, ":")
	v.guestURL = "http://10.0.2.2:" + port

	// The ISO's stand-in: random bytes, which the stand-in installer must
	// find as /proxmox.iso, every one.
	iso := make([]byte, 1<<20)
	rand.Read(iso)
	isoSum := sha256.Sum256(iso)

	// The stand-in's initramfs: its /init, busybox and the modules it
	// loads. The kernel makes no directory a file needs: the archive has
	// them.
	keys, err := json.Marshal(nodeHostKeys)
	if err != nil {
		t.Fatal(err)
	}
	efivarfs := ""
	if efi != nil {
		efivarfs = filepath.Base(efi.efivarfs)
	}
	initScript := strings.NewReplacer(
		"@SERVER@", v.guestURL,
		"@RELEASE@", vmRelease,
		"@MODULE@", filepath.Base(kit.module),
		"@EFIVARFS@", efivarfs,
		"@ISO_SHA256@", hex.EncodeToString(isoSum[:]),
		"@SSH_KEYS@", string(keys),
	).Replace(string(mustRead(t, "testdata/qemu/init.sh")))
	initrd := &newcWriter{}
	for _, dir := range []string{"bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "tmp"} {
		initrd.dir(dir)
	}
	initrd.charDev("dev/console", 5, 1) // the kernel opens it for /init before devtmpfs is up
	initrd.file("init", []byte(initScript), 0o755)
	initrd.file("etc/udhcpc.script", mustRead(t, "testdata/qemu/udhcpc.script"), 0o755)
	initrd.file("bin/busybox", mustRead(t, kit.busybox), 0o755)
	initrd.file("lib/modules/"+filepath.Base(kit.module), mustRead(t, kit.module), 0o644)
	if efi != nil {
		initrd.file("lib/modules/"+efivarfs, mustRead(t, efi.efivarfs), 0o644)
	}

	first := firstScript(v.guestURL)
	v.root = writeTree(t, map[string]string{
		// The VM's host file, beside a copy of examples/config below.
		"config/hosts/" + id.key + ".toml": vmHostFile,

		// The boot dir: one image, whose script is in the shape
		// prepare-iso --pxe writes Proxmox's: a menu, a section per entry
		// with its kernel line, and one :load section for all of them
		// that loads the initrd and the ISO, named proxmox.iso.
		"boot/qemu-13/boot.ipxe": `#!ipxe
# The stand-in installer of TestQEMUInstallThenLocalBoot, in the shape of
# the script prepare-iso --pxe writes for Proxmox's.

dhcp

menu Stand-in installer of pxe-pilot's VM test
item auto Install the stand-in (Automated)
item debug Install the stand-in (Debug Mode)

choose --default auto --timeout 3000 target && goto ${target}

:auto
    echo Loading the stand-in installer ...
    kernel vmlinuz console=ttyS0 quiet initrd=initrd.img proxmox-start-auto-installer
    goto load

:debug
    echo Loading the stand-in installer in debug mode ...
    kernel vmlinuz console=ttyS0 initrd=initrd.img proxmox-debug
    goto load

:load
initrd initrd.img
initrd ` + isoName + ` proxmox.iso
boot
`,
		"boot/qemu-13/vmlinuz":    string(mustRead(t, kit.kernel)),
		"boot/qemu-13/initrd.img": string(initrd.close()),
		"boot/qemu-13/" + isoName: string(iso),

		// QEMU's TFTP root: the first script, which SeaBIOS's iPXE (and
		// Debian 12's under UEFI) gets as its bootfile; under UEFI
		// snponly.efi runs it as its autoexec.ipxe, before any DHCP.
		"tftp/first.ipxe":    first,
		"tftp/autoexec.ipxe": strings.Replace(first, "\n", "\ndhcp\n", 1),

		"sercon-port": "\xf8\x03", // SeaBIOS shows the option ROM's (iPXE's) screen on COM1, 0x3f8
	})
	config := filepath.Join(v.root, "config")
	if err := os.CopyFS(config, os.DirFS("examples/config")); err != nil {
		t.Fatal(err)
	}

	// The disk: under SeaBIOS a boot sector from the start; under UEFI
	// nothing bootable until the install (OVMF, not yet told otherwise,
	// tries the disk before the network), and OVMF's variables.
	v.disk = filepath.Join(v.root, "disk.img")
	disk := bootSector("\r\n"+marker+"\r\n", exitVal)
	if efi != nil {
		disk = make([]byte, 8<<20)
		v.grubDisk = filepath.Join(v.root, "grub-disk.img")
		makeGRUBDisk(t, *efi, v.grubDisk)
		v.vars = filepath.Join(v.root, "vars.fd")
		copyFile(t, efi.vars, v.vars)
		copyFile(t, efi.ipxe, filepath.Join(v.root, "tftp", "snponly.efi"))
	}
	if err := os.WriteFile(v.disk, disk, 0o644); err != nil {
		t.Fatal(err)
	}

	// The server, on a loopback port. startServe listens where the last
	// --listen says.
	state := filepath.Join(v.root, "state")
	_, serverLog := startServe(t, "http://"+addr+"/health", "--listen", addr, "--config-dir", config,
		"--boot-dir", filepath.Join(v.root, "boot"), "--state-dir", state, "--public-url", v.guestURL)
	v.srv = &trackedServer{url: "http://" + addr, config: config, state: state, log: serverLog}
	return v
}

// firstScript is what a netboot set-up's DHCP hands iPXE: it shows what
// iPXE knows of itself and of the machine (the URL whole, as Debian 12's
// iPXE shows a URL it fetches without its query, and the UUID on a line
// of its own, as the console wraps at 80 columns), and chains /boot.ipxe
// with it. When that script returns, it ends with an error: OVMF (EDK2's
// boot manager) takes a boot option that returns success as done and
// opens its menu, and only after an error tries the next one, the disk.
// SeaBIOS moves on either way.
func firstScript(guestURL string) string {
	return `#!ipxe
set url ` + guestURL + `/boot.ipxe?mac=${net0/mac}&uuid=${uuid}&serial=${serial:uristring}&platform=${platform}&version=${version:uristring}
echo pxe-pilot-qemu: chain ${url}
echo pxe-pilot-qemu: ipxe-uuid=${uuid}
echo pxe-pilot-qemu: ipxe-version=${version}
chain ${url} || echo pxe-pilot-qemu: the chain failed
echo pxe-pilot-qemu: back from pxe-pilot's script
exit 1
`
}

// asTooOld makes the machine boot Debian 12's EFI iPXE: the BIOS half's
// ROM, which runs its own iPXE under OVMF and gets the first script as its
// bootfile. No stand-in sets this machine's boot order, so QEMU's
// bootindex puts the network first and its disk second, already GRUB's;
// OVMF tries HTTP boot in between (no knob turns it off), which waits
// about a minute for a DHCP offer slirp never makes.
func (v *vm) asTooOld(t *testing.T) {
	t.Helper()
	v.rom, v.bootfile, v.bootindex = v.kit.rom, "first.ipxe", true
	copyFile(t, v.grubDisk, v.disk)
}

// outcomes boots the machine to install it and to boot its disk, and, if
// all, without its host file and with one refused.
func (v *vm) outcomes(t *testing.T, ctx context.Context, all bool) {
	if !t.Run("install", func(t *testing.T) { v.install(t, ctx) }) {
		return // the rest needs the machine installed: its disk, under UEFI its boot order
	}
	t.Run("local disk", func(t *testing.T) { v.localDisk(t, ctx) })
	if !all {
		return
	}
	t.Run("unknown", func(t *testing.T) { v.unknown(t, ctx) })
	t.Run("broken", func(t *testing.T) { v.broken(t, ctx) })
}

// A vmRun is what one boot of the VM left.
type vmRun struct {
	serial string // the serial console, without terminal codes
	log    string // the server's log lines of this boot
	err    error  // QEMU's end, as Wait gives it
}

// lines are the server's log lines of the boot holding every one of parts.
func (r *vmRun) lines(parts ...string) []string {
	var out []string
	for line := range strings.Lines(r.log) {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			out = append(out, strings.TrimSuffix(line, "\n"))
		}
	}
	return out
}

// console is the serial console with its lines joined, to find a message
// that iPXE's 80 columns wrapped.
func (r *vmRun) console() string { return strings.ReplaceAll(r.serial, "\n", "") }

// boot runs QEMU until the VM ends it, failing the test with the end of
// its serial console if it does not within bootLimit, if it asks
// /boot.ipxe twice (a loop), or if its kernel panics.
func (v *vm) boot(t *testing.T, ctx context.Context) *vmRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, bootLimit)
	defer cancel()
	v.boots++
	serialLog := filepath.Join(v.root, fmt.Sprintf("serial-%d.log", v.boots))
	logFrom := len(v.srv.log.String())
	nic := "e1000,netdev=n0,mac=" + vmMAC + ",romfile=" + v.rom
	args := []string{
		"-accel", "tcg,tb-size=64", // software emulation: a /dev/kvm may be there and not work
		"-m", "256", "-smp", "1",
		"-display", "none", "-vga", "none", "-monitor", "none",
		"-serial", "file:" + serialLog,
		"-uuid", vmUUID,
		"-smbios", "type=1,serial=" + vmSerial,
		"-netdev", "user,id=n0,tftp=" + filepath.Join(v.root, "tftp") + ",bootfile=" + v.bootfile,
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
	}
	switch {
	case v.efi == nil:
		args = append(args,
			"-device", nic,
			"-fw_cfg", "name=etc/sercon-port,file="+filepath.Join(v.root, "sercon-port"), // QEMU warns that the name lacks opt/: SeaBIOS reads it as it is
			"-drive", "file="+v.disk+",format=raw,if=ide,index=0",
			"-boot", "order=nc") // the network, then the disk
	case v.bootindex:
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+v.efi.code,
			"-drive", "if=pflash,format=raw,file="+v.vars,
			"-device", nic+",bootindex=1",
			"-drive", "file="+v.disk+",format=raw,if=none,id=disk",
			"-device", "ide-hd,drive=disk,bootindex=2",
			// Nothing but the ROM's iPXE, then the disk: with Debian 12's
			// ROM OVMF adds its own PXE on IPv4 and IPv6, whose waits
			// for offers made this boot take three minutes, not one.
			"-fw_cfg", "name=opt/org.tianocore/IPv6Support,string=n",
			"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n")
	default:
		// No bootindex: QEMU would have OVMF order the boot options by
		// it at every boot, over the BootOrder the stand-in sets.
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+v.efi.code,
			"-drive", "if=pflash,format=raw,file="+v.vars,
			"-device", nic,
			"-drive", "file="+v.disk+",format=raw,if=ide,index=0")
	}
	qemuOut := &syncBuffer{}
	start := time.Now()
	qemu := startProcess(t, exec.CommandContext(ctx, v.kit.qemu, args...), qemuOut)

	// Wait for QEMU to end; a second boot script means the machine loops,
	// a panic that the kernel hangs in, and OVMF's menu or shell that it
	// found nothing to boot: any of them ends it early.
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
			case strings.Count(v.srv.log.String()[logFrom:], "path=/boot.ipxe") > 1:
				stopped = "it asked /boot.ipxe a second time: the machine loops"
			case bytes.Contains(serialText, []byte("Kernel panic")):
				stopped = "the kernel panicked"
			case bytes.Contains(serialText, []byte(`"UiApp"`)):
				stopped = "OVMF opened its menu: a boot option returned success, or none was left"
			case bytes.Contains(serialText, []byte("UEFI Interactive Shell")):
				stopped = "OVMF started its shell: nothing else would boot"
			default:
				continue
			}
			qemu.stop()
		}
	}
	serialBytes, _ := os.ReadFile(serialLog)
	// Without carriage returns, the terminal codes the firmware's and
	// iPXE's screens send (reset, clear, colours, modes) and iPXE's
	// countdown's backspaces.
	r := &vmRun{
		serial: regexp.MustCompile("\r|\x1b(\\[[0-9;?=]*[A-Za-z]|c)|\x08 \x08").ReplaceAllString(string(serialBytes), ""),
		log:    v.srv.log.String()[logFrom:],
		err:    qemu.err,
	}
	t.Logf("boot %d: %s, in %s; QEMU: %v", v.boots, v, time.Since(start).Round(time.Second), qemu.err)
	t.Logf("serial console:\n%s", r.serial)
	t.Logf("server log of this boot:\n%s", r.log)
	if out := qemuOut.String(); out != "" {
		t.Logf("QEMU printed:\n%s", out)
	}
	if ctx.Err() != nil {
		t.Fatalf("the VM did not end within %s (or by the test's limit); its serial console ends:\n%s", bootLimit, lastLines(r.serial, 30))
	}
	if stopped != "" {
		t.Fatalf("stopped the VM: %s; its serial console ends:\n%s", stopped, lastLines(r.serial, 30))
	}
	return r
}

func (v *vm) String() string {
	firmware := "SeaBIOS"
	if v.efi != nil {
		firmware = "OVMF " + v.efi.code
	}
	return fmt.Sprintf("%s, ROM %s, bootfile %s, host file %s", firmware, v.rom, v.bootfile, v.id.key)
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// install boots the machine to install it: the stand-in gets its answer,
// reports and powers off. Under UEFI the disk is then GRUB's, as the
// installer would have left it (the stand-in has no disk driver).
func (v *vm) install(t *testing.T, ctx context.Context) {
	r := v.boot(t, ctx)
	if r.err != nil {
		t.Errorf("QEMU ended with %v; want the stand-in to power it off", r.err)
	}

	// The server's decision, and the installer's requests.
	if boots := r.lines("path=/boot.ipxe"); len(boots) != 1 || !strings.Contains(boots[0], "status=200") ||
		!strings.Contains(boots[0], "boot=install") || !strings.Contains(boots[0], v.id.match) {
		t.Errorf("/boot.ipxe was asked:\n%s\nwant once, boot=install, %s", strings.Join(boots, "\n"), v.id.match)
	}
	for _, want := range []struct{ path, status string }{
		{"/boot/qemu-13/vmlinuz", "status=200"},
		{"/boot/qemu-13/initrd.img", "status=200"},
		{"/boot/qemu-13/" + isoName, "status=200"},
		{"/answer", "status=200 host=hosts/" + v.id.key + ".toml " + v.id.match},
		{"/installed", "status=200"},
	} {
		if lines := r.lines("path=" + want.path + " "); len(lines) != 1 || !strings.Contains(lines[0], want.status) {
			t.Errorf("%s was asked:\n%s\nwant once, %s", want.path, strings.Join(lines, "\n"), want.status)
		}
	}
	if lines := r.lines("path=/installed ", "machine="+v.id.key, "management_mac="+vmMAC, fmt.Sprintf(`ssh_host_keys="ecdsa=%s,ed25519=%s,rsa=%s"`, nodeFingerprints["ecdsa"], nodeFingerprints["ed25519"], nodeFingerprints["rsa"])); len(lines) != 1 {
		t.Errorf("no /installed line records %s, its MAC and its host keys' fingerprints", v.id.key)
	}
	if rec := v.srv.host(t, v.id.key); rec.Installed.IsZero() || rec.Answers != 1 {
		t.Errorf("the state dir has %s as %+v; want installed, after one answer", v.id.key, rec)
	}

	// The serial console: the stand-in's work.
	wants := []string{
		"stand-in: /proxmox.iso: sha256 matches the ISO's, 1048576 bytes",
		"stand-in: answer:",
		"fqdn = 'pve-qemu-13.lab.example.com'",
		"[post-installation-webhook]",
		"url = '" + v.guestURL + "/installed'",
		`stand-in: report accepted: {"status":"recorded"}`,
		"stand-in: done; powering off",
	}
	if v.efi != nil {
		wants = append(wants, "stand-in: BootOrder: ")
	}
	for _, want := range wants {
		if !strings.Contains(r.serial, want) {
			t.Errorf("the serial console has no %q", want)
		}
	}
	if strings.Contains(r.serial, "stand-in: FAILED") {
		t.Errorf("the stand-in FAILED%s", lineAfter(r.serial, "stand-in: FAILED"))
	}

	// Does iPXE's ${uuid}, sent to /boot.ipxe, read as the installer's
	// product_uuid does? Both swap SMBIOS 2.6+'s little-endian fields.
	ipxeUUID := lineAfter(r.serial, "pxe-pilot-qemu: ipxe-uuid=")
	installerUUID := lineAfter(r.serial, "stand-in: installer-uuid=")
	t.Logf("-uuid %s: iPXE sent uuid=%s to /boot.ipxe; the installer's /sys/class/dmi/id/product_uuid is %s", vmUUID, ipxeUUID, installerUUID)
	if ipxeUUID == "" || !strings.EqualFold(ipxeUUID, installerUUID) || !strings.EqualFold(installerUUID, vmUUID) {
		t.Errorf("the UUIDs differ: QEMU -uuid %s, iPXE's ${uuid} %q, the installer's product_uuid %q", vmUUID, ipxeUUID, installerUUID)
	}
	if v.efi != nil {
		copyFile(t, v.grubDisk, v.disk)
	}
}

// localDisk boots the installed machine: /boot.ipxe says local disk, and
// the firmware boots the disk.
func (v *vm) localDisk(t *testing.T, ctx context.Context) {
	r := v.boot(t, ctx)
	v.wantDisk(t, r)
	if boots := r.lines("path=/boot.ipxe"); len(boots) != 1 || !strings.Contains(boots[0], "status=200") ||
		!strings.Contains(boots[0], "boot=local") || !strings.Contains(boots[0], v.id.match) {
		t.Errorf("/boot.ipxe was asked:\n%s\nwant once, boot=local, %s", strings.Join(boots, "\n"), v.id.match)
	}
	if !strings.Contains(r.console(), "booting the local disk") {
		t.Errorf("the serial console does not say the machine boots its local disk")
	}
	v.wantNoInstall(t, r)
}

// unknown boots the machine without its host file: it is told which file
// would install it, and boots on to its disk.
func (v *vm) unknown(t *testing.T, ctx context.Context) {
	if err := os.Remove(filepath.Join(v.srv.config, "hosts", v.id.key+".toml")); err != nil {
		t.Fatal(err)
	}
	r := v.boot(t, ctx)
	v.wantDisk(t, r)
	if boots := r.lines("path=/boot.ipxe"); len(boots) != 1 || !strings.Contains(boots[0], "boot=unknown") {
		t.Errorf("/boot.ipxe was asked:\n%s\nwant once, boot=unknown", strings.Join(boots, "\n"))
	}
	if !strings.Contains(r.console(), "pxe-pilot: no host file names this machine") {
		t.Errorf("the serial console does not say that no host file names the machine")
	}
	v.wantNoInstall(t, r)
}

// broken boots the machine with a host file pxe-pilot refuses, rearmed
// to install again (an installed machine boots its disk whatever its
// host file says): it is shown why, and boots on to its disk.
func (v *vm) broken(t *testing.T, ctx context.Context) {
	if err := rearmCmd([]string{"--state-dir", v.srv.state, v.id.key}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.srv.config, "hosts", v.id.key+".toml"), []byte(vmBrokenHost), 0o644); err != nil {
		t.Fatal(err)
	}
	r := v.boot(t, ctx)
	v.wantDisk(t, r)
	if boots := r.lines("path=/boot.ipxe"); len(boots) != 1 || !strings.Contains(boots[0], "boot=broken") {
		t.Errorf("/boot.ipxe was asked:\n%s\nwant once, boot=broken", strings.Join(boots, "\n"))
	}
	// The error as the script's echo shows it, without quotes.
	if want := "disk.zfs.raid: raid5 is not one of raid0"; !strings.Contains(r.console(), want) {
		t.Errorf("the serial console has no %q", want)
	}
	v.wantNoInstall(t, r)
}

// tooOld boots the machine, which would install, with Debian 12's EFI
// iPXE: /boot.ipxe refuses it, saying so, and the machine boots on.
func (v *vm) tooOld(t *testing.T, ctx context.Context) {
	r := v.boot(t, ctx)
	// Where the ROM is newer than Debian 12's, there is nothing to refuse.
	// (Where the first script never ran, the version is empty: too old.)
	version := lineAfter(r.serial, "pxe-pilot-qemu: ipxe-version=")
	if n := versionOf(version); slices.Compare(n[:min(3, len(n))], []int{1, 21, 1}) >= 0 {
		t.Skipf("PXE_PILOT_QEMU_ROM's iPXE is %q: new enough under UEFI, so nothing here is too old to refuse", version)
	}
	v.wantDisk(t, r)
	if boots := r.lines("path=/boot.ipxe"); len(boots) != 1 || !strings.Contains(boots[0], "boot=unfit") || !strings.Contains(boots[0], `ipxe="efi `+version+`"`) {
		t.Errorf("/boot.ipxe was asked:\n%s\nwant once, boot=unfit for efi %s", strings.Join(boots, "\n"), version)
	}
	if !strings.Contains(r.console(), "too old") {
		t.Errorf("the serial console does not say the EFI iPXE is too old")
	}
	v.wantNoInstall(t, r)
}

// wantDisk checks that the boot ended on the disk: its marker, and QEMU's
// status from the disk's write to isa-debug-exit.
func (v *vm) wantDisk(t *testing.T, r *vmRun) {
	t.Helper()
	var exit *exec.ExitError
	if !errors.As(r.err, &exit) || exit.ExitCode() != exitVal<<1|1 {
		t.Errorf("QEMU ended with %v; want exit status %d, from the disk", r.err, exitVal<<1|1)
	}
	if !strings.Contains(r.serial, marker) {
		t.Errorf("the serial console has no %q", marker)
	}
}

// wantNoInstall checks that the boot fetched no installer and asked for
// no answer.
func (v *vm) wantNoInstall(t *testing.T, r *vmRun) {
	t.Helper()
	if lines := r.lines("path=/boot/"); len(lines) != 0 {
		t.Errorf("the machine fetched an image's files:\n%s", strings.Join(lines, "\n"))
	}
	if lines := r.lines("path=/answer"); len(lines) != 0 {
		t.Errorf("the machine asked for an answer:\n%s", strings.Join(lines, "\n"))
	}
	if strings.Contains(r.serial, "stand-in: started") {
		t.Errorf("the stand-in installer started")
	}
}

// makeGRUBDisk writes a FAT disk at path whose EFI/BOOT/BOOTX64.EFI, the
// file UEFI boots from a disk without boot entries, is a GRUB with
// testdata/qemu/grub.cfg inside: it prints the marker and ends QEMU. No
// partition table: OVMF reads the FAT of a disk without one.
func makeGRUBDisk(t *testing.T, efi efiKit, path string) {
	t.Helper()
	dir := t.TempDir()
	cfg := strings.ReplaceAll(string(mustRead(t, "testdata/qemu/grub.cfg")), "@MARKER@", marker)
	if err := os.WriteFile(filepath.Join(dir, "grub.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	efiFile := filepath.Join(dir, "BOOTX64.EFI")
	for _, cmd := range [][]string{
		// Only the modules grub.cfg needs, for a GRUB of half a megabyte.
		{efi.grubMkstandalone, "-O", "x86_64-efi", "--install-modules=normal echo iorw halt",
			"--locales=", "--fonts=", "--themes=", "-o", efiFile, "boot/grub/grub.cfg=" + filepath.Join(dir, "grub.cfg")},
		{efi.mformat, "-i", path, "::"},
		{efi.mmd, "-i", path, "::/EFI", "::/EFI/BOOT"},
		{efi.mcopy, "-i", path, efiFile, "::/EFI/BOOT/BOOTX64.EFI"},
	} {
		c := exec.Command(cmd[0], cmd[1:]...)
		c.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1") // mtools checks a disk's geometry, which a plain image lacks
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("making the UEFI disk: %s: %v\n%s", strings.Join(cmd, " "), err, out)
		}
	}
}

// copyFile copies the file from to the file to.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, mustRead(t, from), 0o644); err != nil {
		t.Fatal(err)
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
	modules                            string // the kernel's lib/modules/VERSION
}

func (k qemuKit) String() string {
	return fmt.Sprintf("%s, %s, %s, %s", filepath.Base(k.qemu), k.rom, k.kernel, k.module)
}

// findQEMUKit finds QEMU, its iPXE ROM for e1000, a static busybox and a
// kernel with its e1000 module, or skips saying what is missing and how
// to get it; with PXE_PILOT_REQUIRE_QEMU set it fails instead.
func findQEMUKit(t *testing.T) qemuKit {
	t.Helper()
	missing := func(format string, args ...any) { t.Helper(); kitMissing(t, format, args...) }
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
	k.modules = modules
	driver := filepath.Join(modules, "kernel/drivers/net/ethernet/intel/e1000/e1000.ko")
	k.module = firstFile(driver, driver+".xz", driver+".gz")
	if k.module == "" {
		missing("no e1000 module for %s: %s(.xz, .gz) is missing; set PXE_PILOT_QEMU_MODULES to its lib/modules/VERSION", k.kernel, driver)
	}
	return k
}

// kitMissing skips the test saying what is missing and how to get it;
// with PXE_PILOT_REQUIRE_QEMU set it fails instead.
func kitMissing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("PXE_PILOT_REQUIRE_QEMU") != "" {
		t.Fatal(msg + " (PXE_PILOT_REQUIRE_QEMU is set)")
	}
	t.Skip(msg)
}

// efiKit is what the UEFI half needs beyond qemuKit.
type efiKit struct {
	code, vars string // OVMF's firmware, and the variable store each machine gets a copy of
	ipxe, rom  string // trixie's snponly.efi, and its efi-e1000.rom, which drives the NIC for OVMF's PXE
	efivarfs   string // the kernel's module, for the stand-in to set the boot order with
	// What makes the GRUB disk: no mount, no root.
	grubMkstandalone, mformat, mmd, mcopy string
}

// findEFIKit finds OVMF, trixie's EFI iPXE, the efivarfs module and the
// tools for a GRUB disk, or skips (or fails, as findQEMUKit) saying what
// is missing and how to get it.
func findEFIKit(t *testing.T, k qemuKit) efiKit {
	t.Helper()
	missing := func(format string, args ...any) { t.Helper(); kitMissing(t, format, args...) }
	var e efiKit
	// A firmware and its own variable store's template: the sizes pair.
	for _, pair := range [][2]string{
		{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
		{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
	} {
		if firstFile(pair[0]) != "" && firstFile(pair[1]) != "" {
			e.code, e.vars = pair[0], pair[1]
			break
		}
	}
	if e.code == "" {
		missing("no OVMF (/usr/share/OVMF/OVMF_CODE_4M.fd and OVMF_VARS_4M.fd): apt-get install ovmf")
	}
	// Debian 12's iPXE is too old to load the installer under UEFI, and
	// its ROM runs that iPXE rather than OVMF's PXE: the UEFI half needs
	// trixie's (or newer), both the program and the ROM.
	dir := os.Getenv("PXE_PILOT_QEMU_EFI_IPXE")
	if dir == "" {
		missing("no EFI iPXE new enough to load the installer: set PXE_PILOT_QEMU_EFI_IPXE to a dir with snponly.efi and efi-e1000.rom from Debian trixie's ipxe and ipxe-qemu packages (.ci/run's qemu_efi_ipxe fetches them)")
	}
	e.ipxe, e.rom = firstFile(filepath.Join(dir, "snponly.efi")), firstFile(filepath.Join(dir, "efi-e1000.rom"))
	if e.ipxe == "" || e.rom == "" {
		missing("PXE_PILOT_QEMU_EFI_IPXE=%s lacks snponly.efi or efi-e1000.rom (from Debian trixie's ipxe and ipxe-qemu packages)", dir)
	}
	module := filepath.Join(k.modules, "kernel/fs/efivarfs/efivarfs.ko")
	if e.efivarfs = firstFile(module, module+".xz", module+".gz"); e.efivarfs == "" {
		missing("no efivarfs module for %s: %s(.xz, .gz) is missing; set PXE_PILOT_QEMU_MODULES to its lib/modules/VERSION (delete ~/.cache/pxe-pilot-ci/kernel for .ci/run to unpack it again)", k.kernel, module)
	}
	var err error
	if e.grubMkstandalone, err = exec.LookPath("grub-mkstandalone"); err != nil || firstFile("/usr/lib/grub/x86_64-efi/iorw.mod") == "" {
		missing("no GRUB for x86_64-efi (grub-mkstandalone, /usr/lib/grub/x86_64-efi): apt-get install grub-efi-amd64-bin")
	}
	for _, tool := range []struct {
		name string
		path *string
	}{{"mformat", &e.mformat}, {"mmd", &e.mmd}, {"mcopy", &e.mcopy}} {
		if *tool.path, err = exec.LookPath(tool.name); err != nil {
			missing("no %s: apt-get install mtools", tool.name)
		}
	}
	return e
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

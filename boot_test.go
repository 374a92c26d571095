package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// realBootScript is shaped as proxmox-auto-install-assistant prepare-iso
// --pxe --pxe-loader ipxe writes boot.ipxe: a menu, one section per entry
// holding only echo, its kernel line and goto load, and one :load section
// that loads both initrds and boots. (Our own text for an example ISO; the
// tool's own file is checked in TestParseToolBootScript.)
const realBootScript = `#!ipxe

dhcp

menu Welcome to Proxmox VE 9.1-1
item auto Install Proxmox VE (Automated)
item gui Install Proxmox VE (Graphical)
item serial Install Proxmox VE (Terminal UI, Serial Console)

choose --default auto --timeout 10000 target && goto ${target}

:auto
    echo Loading Proxmox VE Automated Installer ...
    kernel vmlinuz ramdisk_size=16777216 rw quiet initrd=initrd.img splash=silent proxmox-start-auto-installer
    goto load

:gui
    echo Loading Proxmox VE Graphical Installer ...
    kernel vmlinuz ramdisk_size=16777216 rw quiet initrd=initrd.img splash=silent
    goto load

:serial
    echo Loading Proxmox VE Terminal UI, Serial Console Installer ...
    kernel vmlinuz ramdisk_size=16777216 rw quiet initrd=initrd.img splash=silent proxmox-tui-mode console=ttyS0,115200
    goto load


:load
initrd initrd.img
initrd proxmox-ve_9.1-1-auto-from-http.iso proxmox.iso
boot
`

// oneEntryBootScript is the shape a hand-written script may have: each
// entry loads its own initrds and boots.
const oneEntryBootScript = `#!ipxe
menu Proxmox VE 9.1
item auto Install Proxmox VE (Automated)
item gui Install Proxmox VE (Graphical)
choose --default auto --timeout 10000 target && goto ${target}

:auto
echo Loading Proxmox VE Automatic Installer ...
kernel vmlinuz ramdisk_size=16777216 rw quiet initrd=initrd.img splash=silent proxmox-start-auto-installer
initrd initrd.img
initrd proxmox-ve_9.1-1-auto-from-http.iso proxmox.iso
boot

:gui
echo Loading Proxmox VE Installer ...
kernel vmlinuz ramdisk_size=16777216 rw quiet initrd=initrd.img splash=silent
initrd initrd.img
initrd proxmox-ve_9.1-1-auto-from-http.iso proxmox.iso
initrd gui-only.img
boot
`

const realISO = "proxmox-ve_9.1-1-auto-from-http.iso"

func TestParseBootScript(t *testing.T) {
	const auto = "kernel vmlinuz quiet " + autoMarker + "\n"
	realArgs := "ramdisk_size=16777216 rw quiet initrd=initrd.img splash=silent " + autoMarker
	realInitrds := []bootFile{{file: "initrd.img"}, {file: realISO, args: "proxmox.iso"}}
	// pbs is the same tool's script for a Proxmox Backup Server ISO: only
	// the product, release and ISO name differ.
	pbs := strings.NewReplacer("Proxmox VE", "Proxmox Backup Server", "9.1-1", "4.1-1", realISO, "proxmox-backup-server_4.1-1-auto-from-http-url.iso").Replace(realBootScript)
	tests := []struct {
		name    string
		script  string
		kernel  bootFile   // file, name and args (line unchecked when 0)
		initrds []bootFile // file, name and args
		err     string     // a part of the error; "" for none
	}{
		{name: "tool_shape_shared_load_section", script: realBootScript,
			kernel: bootFile{file: "vmlinuz", args: realArgs, line: 14}, initrds: realInitrds},
		{name: "tool_shape_for_backup_server", script: pbs,
			kernel:  bootFile{file: "vmlinuz", args: realArgs},
			initrds: []bootFile{{file: "initrd.img"}, {file: "proxmox-backup-server_4.1-1-auto-from-http-url.iso", args: "proxmox.iso"}}},
		{name: "one_entry_shape", script: oneEntryBootScript,
			kernel: bootFile{file: "vmlinuz", args: realArgs, line: 9}, initrds: realInitrds},
		{name: "goto_chain_through_two_sections", script: auto + "goto one\n:two\ninitrd b.img\nboot\n:one\necho half way\ninitrd a.img\ngoto two\n",
			kernel: bootFile{file: "vmlinuz", args: "quiet " + autoMarker}, initrds: []bootFile{{file: "a.img"}, {file: "b.img"}}},
		{name: "falls_through_a_label", script: auto + ":load\ninitrd a.img\n:next\nboot\n",
			kernel: bootFile{file: "vmlinuz", args: "quiet " + autoMarker}, initrds: []bootFile{{file: "a.img"}}},
		{name: "name_option_with_equals", script: auto + "initrd --name=proxmox.iso x.iso\nboot\n",
			kernel: bootFile{file: "vmlinuz", args: "quiet " + autoMarker}, initrds: []bootFile{{file: "x.iso", name: "proxmox.iso"}}},
		{name: "name_option_apart", script: auto + "initrd --name proxmox.iso x.iso\nboot\n",
			kernel: bootFile{file: "vmlinuz", args: "quiet " + autoMarker}, initrds: []bootFile{{file: "x.iso", name: "proxmox.iso"}}},
		{name: "short_options", script: "kernel -n k -a vmlinuz " + autoMarker + "\nimgfetch -t 5000 -n i initrd.img\nboot\n",
			kernel: bootFile{file: "vmlinuz", name: "k", args: autoMarker}, initrds: []bootFile{{file: "initrd.img", name: "i"}}},
		{name: "line_continuation", script: "kernel vmlinuz quiet \\\n  " + autoMarker + "\ninitrd \\\ninitrd.img\nboot\n",
			kernel: bootFile{file: "vmlinuz", args: "quiet " + autoMarker, line: 1}, initrds: []bootFile{{file: "initrd.img"}}},
		{name: "failure_handling_after_the_command", script: "kernel vmlinuz " + autoMarker + " || goto failed\ninitrd initrd.img || goto failed\nboot || goto failed\n:failed\ninitrd other.img\n",
			kernel: bootFile{file: "vmlinuz", args: autoMarker}, initrds: []bootFile{{file: "initrd.img"}}},
		{name: "initrd_before_kernel_in_the_section", script: ":other\ninitrd not-this.img\nboot\n:auto\ninitrd initrd.img\necho loading\n" + auto + "boot\ninitrd after-boot.img\n",
			kernel: bootFile{file: "vmlinuz", args: "quiet " + autoMarker}, initrds: []bootFile{{file: "initrd.img"}}},
		{name: "initrd_before_kernel_at_the_top", script: "#!ipxe\ninitrd initrd.img\n" + auto + "boot\n",
			kernel: bootFile{file: "vmlinuz", args: "quiet " + autoMarker}, initrds: []bootFile{{file: "initrd.img"}}},
		{name: "initrd_before_another_command_is_not_the_entry's", script: "initrd not-this.img\ndhcp\n" + auto + "initrd initrd.img\nboot\n",
			kernel: bootFile{file: "vmlinuz", args: "quiet " + autoMarker}, initrds: []bootFile{{file: "initrd.img"}}},
		{name: "comments_and_crlf", script: "#!ipxe\r\n# kernel vmlinuz-old " + autoMarker + "\r\n" + "kernel vmlinuz " + autoMarker + "\r\n  # initrd commented.img\r\ninitrd initrd.img\r\nboot\r\n",
			kernel: bootFile{file: "vmlinuz", args: autoMarker, line: 3}, initrds: []bootFile{{file: "initrd.img"}}},

		// What pxe-pilot cannot follow: the image is refused, naming the line.
		{name: "marker_as_part_of_a_word_is_not_the_entry", script: "kernel vmlinuz x" + autoMarker + "\n", err: "no automated entry: no kernel line has " + autoMarker},
		{name: "marker_as_the_file_is_not_the_entry", script: "kernel " + autoMarker + "\nboot\n", err: "no automated entry"},
		{name: "marker_as_an_option_value_is_not_the_entry", script: "kernel --name " + autoMarker + " vmlinuz\nboot\n", err: "no automated entry"},
		{name: "no_automated_entry", script: "#!ipxe\nkernel vmlinuz quiet\ninitrd initrd.img\nboot\n", err: "no automated entry"},
		{name: "empty_script", script: "#!ipxe\n", err: "no automated entry"},
		{name: "two_automated_entries", script: auto + ":again\n" + auto, err: "line 3: a second automated entry (the first is on line 1)"},
		{name: "no_boot", script: auto + "initrd initrd.img\n", err: "line 2: the automated entry reaches the end of the script with no boot"},
		{name: "no_boot_after_goto", script: auto + "goto load\n:load\ninitrd initrd.img\n", err: "line 4: the automated entry reaches the end of the script with no boot"},
		{name: "chain", script: auto + "goto load\n:load\nchain http://10.0.0.2/other.ipxe\n", err: "line 4: chain http://10.0.0.2/other.ipxe in the automated entry, which pxe-pilot cannot follow"},
		{name: "imgexec", script: auto + "initrd initrd.img\nimgexec vmlinuz\n", err: "line 3: imgexec vmlinuz in the automated entry"},
		{name: "goto_loop", script: auto + "goto load\n:load\ninitrd initrd.img\ngoto again\n:again\ngoto load\n", err: "line 7: goto load: the automated entry comes back to :load (line 3), a loop"},
		{name: "goto_itself", script: ":load\n" + auto + "goto load\n", err: "line 3: goto load: the automated entry comes back to :load (line 1)"},
		{name: "goto_missing_label", script: auto + "goto lod\n:load\ninitrd initrd.img\nboot\n", err: "line 2: goto lod: no such label in the script"},
		{name: "goto_a_setting", script: auto + "goto ${next}\n", err: "line 2: goto ${next}: a label made of a setting"},
		{name: "iseq_condition", script: auto + "iseq ${platform} efi && goto efi\ninitrd initrd.img\nboot\n", err: "line 2: iseq ${platform} efi in the automated entry, which pxe-pilot cannot follow"},
		{name: "isset_condition", script: auto + "isset ${x} || goto load\n:load\nboot\n", err: "line 2: isset ${x} in the automated entry"},
		{name: "set_on_the_path", script: auto + "set base http://10.0.0.2\nboot\n", err: "line 2: set base http://10.0.0.2 in the automated entry"},
		{name: "exit_on_the_path", script: auto + "goto load\n:load\nexit\n", err: "line 4: exit in the automated entry"},
		{name: "second_kernel", script: auto + "goto load\n:load\nkernel other-vmlinuz\nboot\n", err: "line 4: kernel after the automated entry's kernel line (line 1)"},
		{name: "boot_of_another_image", script: auto + "boot other.img\n", err: "line 2: boot other.img: pxe-pilot follows only a boot of the kernel"},
		{name: "setting_in_an_initrd", script: auto + "goto load\n:load\ninitrd ${iso}\nboot\n", err: `line 4: initrd "${iso}" holds a setting pxe-pilot cannot expand`},
		{name: "parent_dir", script: "kernel ../vmlinuz " + autoMarker + "\n", err: `line 1: kernel "../vmlinuz" climbs out of the image folder`},
		{name: "parent_dir_in_the_middle", script: auto + "initrd sub/../../x.iso\n", err: `line 2: initrd "sub/../../x.iso" climbs out of the image folder`},
		{name: "absolute_path", script: auto + "initrd /etc/shadow\n", err: `line 2: initrd "/etc/shadow" is an absolute path`},
		{name: "url", script: "kernel http://10.0.0.2/vmlinuz " + autoMarker + "\n", err: `line 1: kernel "http://10.0.0.2/vmlinuz" is a URL`},
		{name: "tftp_url", script: auto + "initrd tftp://10.0.0.2/initrd.img\n", err: `is a URL`},
		{name: "setting", script: "kernel ${base-url}/vmlinuz " + autoMarker + "\n", err: `holds a setting pxe-pilot cannot expand`},
		{name: "sub_folder", script: auto + "initrd images/initrd.img\n", err: `line 2: initrd "images/initrd.img" is in a sub-folder`},
		{name: "unknown_option", script: auto + "initrd --bogus initrd.img\n", err: "line 2: initrd: unknown option --bogus"},
		{name: "option_without_value", script: auto + "initrd --name\n", err: "line 2: initrd: --name wants a value"},
		{name: "no_file", script: auto + "initrd\nboot\n", err: "line 2: initrd names no file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := parseBootScript([]byte(tc.script))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseBootScript = %v; want an error with %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q is more than one line", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseBootScript: %v", err)
			}
			if tc.kernel.line == 0 {
				e.kernel.line = 0
			}
			if e.kernel != tc.kernel {
				t.Errorf("kernel = %+v; want %+v", e.kernel, tc.kernel)
			}
			for i := range e.initrds {
				e.initrds[i].line = 0
			}
			if !slices.Equal(e.initrds, tc.initrds) {
				t.Errorf("initrds = %+v; want %+v", e.initrds, tc.initrds)
			}
		})
	}
}

// FuzzParseBootScript: whatever the script, parseBootScript returns, and
// an entry it accepts names only files of the image folder, on lines of
// their own, and ends its path: nothing it serves can reach past the
// folder or add a command to the script pxe-pilot writes.
func FuzzParseBootScript(f *testing.F) {
	f.Add(realBootScript)
	f.Add(oneEntryBootScript)
	f.Add("kernel vmlinuz " + autoMarker + "\ngoto a\n:b\ninitrd x\nboot\n:a\ngoto b\n")
	f.Add("kernel vmlinuz " + autoMarker + "\ngoto a\n:a\ngoto a\n")
	f.Add(":x\ninitrd a \\\nb\nkernel k " + autoMarker + " || goto x\nboot\n")
	f.Fuzz(func(t *testing.T, script string) {
		e, err := parseBootScript([]byte(script))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
			return
		}
		for _, file := range append([]bootFile{e.kernel}, e.initrds...) {
			if msg := badBootName(file.file); msg != "" || file.file == "" {
				t.Errorf("accepted %q, which %s", file.file, msg)
			}
			if strings.ContainsAny(file.file+file.name+file.args, "\r\n") {
				t.Errorf("accepted a line break in %+v", file)
			}
		}
		if !slices.Contains(strings.Fields(e.kernel.args), autoMarker) {
			t.Errorf("kernel %+v is not the automated entry's", e.kernel)
		}
	})
}

// TestParseToolBootScript reads the boot.ipxe prepare-iso --pxe
// --pxe-loader ipxe wrote, from ../shared where it is (a user's clone has
// none), and the same script as the tool writes it for the other products
// it prepares, whose scripts differ only in product name, release and ISO
// name: each gives the automated entry's kernel line and the :load
// section's two initrds, the ISO's under the name the installer looks for.
func TestParseToolBootScript(t *testing.T) {
	const path = "../shared/proxmox/boot/boot.ipxe"
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s is absent (a user's clone has no prepare-iso output)", path)
	} else if err != nil {
		t.Fatal(err)
	}
	iso := regexp.MustCompile(`(?m)^initrd (\S+\.iso) proxmox\.iso$`).FindSubmatch(data)
	if iso == nil {
		t.Fatalf("%s has no initrd line for the ISO", path)
	}
	products := []struct{ name, product, release, iso string }{
		{"as written", "Proxmox VE", "9.2-1", string(iso[1])},
		{"backup server", "Proxmox Backup Server", "4.1-1", "proxmox-backup-server_4.1-1-auto-from-http-url-fp.iso"},
		{"mail gateway", "Proxmox Mail Gateway", "9.0-1", "proxmox-mail-gateway_9.0-1-auto-from-iso.iso"},
	}
	// The example image is the tool's script for another ISO, line for line.
	example, err := os.ReadFile("examples/boot/pve-9.1/boot.ipxe")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.NewReplacer(realISO, string(iso[1]), "9.1-1", "9.2-1").Replace(string(example)); got != string(data) {
		t.Errorf("examples/boot/pve-9.1/boot.ipxe is not shaped as prepare-iso writes boot.ipxe:\n%s\nwant, but for the release and ISO name:\n%s", example, data)
	}
	for _, p := range products {
		t.Run(p.name, func(t *testing.T) {
			script := strings.NewReplacer("Proxmox VE", p.product, "9.2-1", p.release, string(iso[1]), p.iso).Replace(string(data))
			e, err := parseBootScript([]byte(script))
			if err != nil {
				t.Fatalf("parseBootScript: %v", err)
			}
			want := bootEntry{
				kernel:  bootFile{file: "vmlinuz", args: "ramdisk_size=16777216 rw quiet initrd=initrd.img splash=silent " + autoMarker},
				initrds: []bootFile{{file: "initrd.img"}, {file: p.iso, args: "proxmox.iso"}},
			}
			e.kernel.line = 0
			for i := range e.initrds {
				e.initrds[i].line = 0
			}
			if e.kernel != want.kernel || !slices.Equal(e.initrds, want.initrds) {
				t.Errorf("entry = %+v; want %+v", e, want)
			}
			if files := e.files(); !slices.Equal(files, []string{"vmlinuz", "initrd.img", p.iso}) {
				t.Errorf("files served = %q", files)
			}
		})
	}
}

// bootTree is a --boot-dir with one good image, "pve", whose files hold
// their own names; more adds or replaces files (asDir for a folder).
func bootTree(t *testing.T, more map[string]string) string {
	t.Helper()
	files := map[string]string{
		"pve/boot.ipxe":    realBootScript,
		"pve/vmlinuz":      "kernel bytes",
		"pve/initrd.img":   "initrd bytes",
		"pve/" + realISO:   "iso bytes 0123456789",
		"pve/gui-only.img": "not served",
		"pve/notes.txt":    "not served",
	}
	for k, v := range more {
		files[k] = v
	}
	return writeTree(t, files)
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
}

func TestCheckBootDir(t *testing.T) {
	tests := []struct {
		name  string
		more  map[string]string
		fifo  string // a FIFO made in the boot dir, if any
		lines []string
	}{
		{name: "good_image", lines: nil},
		{name: "a_second_good_image_and_hidden_and_loose_files", more: map[string]string{"other/boot.ipxe": "kernel k " + autoMarker + "\nboot\n", "other/k": "k",
			".incoming/boot.ipxe": "broken", "README": "not an image"}, lines: nil},
		{name: "script_missing", more: map[string]string{"bare/vmlinuz": "k"},
			lines: []string{"bare/boot.ipxe: missing: put the folder prepare-iso --pxe wrote here, boot.ipxe and all"}},
		{name: "script_empty", more: map[string]string{"e/boot.ipxe": ""}, lines: []string{"e/boot.ipxe: is empty"}},
		{name: "script_is_a_dir", more: map[string]string{"d/boot.ipxe": asDir}, lines: []string{"d/boot.ipxe: not a regular file but a directory"}},
		{name: "no_automated_entry", more: map[string]string{"pve/boot.ipxe": "#!ipxe\nkernel vmlinuz\n"},
			lines: []string{"pve/boot.ipxe: no automated entry: no kernel line has " + autoMarker}},
		{name: "traversal", more: map[string]string{"pve/boot.ipxe": "kernel ../vmlinuz " + autoMarker + "\n"},
			lines: []string{`pve/boot.ipxe line 1: kernel "../vmlinuz" climbs out of the image folder`}},
		{name: "named_file_missing", more: map[string]string{"pve/" + realISO: "", "pve/boot.ipxe": strings.Replace(realBootScript, realISO, "gone.iso", 1)},
			lines: []string{"pve/gone.iso: missing, and boot.ipxe line 30 names it"}},
		{name: "named_file_is_a_dir", more: map[string]string{"pve/initrd.img": asDir},
			lines: []string{"pve/initrd.img: not a regular file but a directory, and boot.ipxe line 29 names it"}},
		{name: "named_file_is_a_fifo", fifo: "pve/" + realISO,
			lines: []string{"pve/" + realISO + ": not a regular file but a FIFO, and boot.ipxe line 30 names it"}},
		{name: "image_name_unfit_for_a_url", more: map[string]string{"pve 9/boot.ipxe": realBootScript},
			lines: []string{"pve 9/: an image's folder name goes into its URLs"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := bootTree(t, tc.more)
			if tc.fifo != "" {
				mkfifo(t, filepath.Join(dir, tc.fifo))
			}
			got := checkBootDir(dir)
			if len(got) != len(tc.lines) {
				t.Fatalf("checkBootDir = %q; want %d lines like %q", got, len(tc.lines), tc.lines)
			}
			for i, want := range tc.lines {
				if !strings.HasPrefix(got[i], "--boot-dir "+dir+": ") || !strings.Contains(got[i], want) {
					t.Errorf("checkBootDir line %d = %q; want \"--boot-dir %s: ...%s...\"", i, got[i], dir, want)
				}
			}
		})
	}
	t.Run("no_image", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"README": "x"})
		if got := checkBootDir(dir); len(got) != 1 || !strings.Contains(got[0], "no image in it") {
			t.Errorf("checkBootDir = %q; want one line saying there is no image", got)
		}
	})
	t.Run("no_boot_dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nowhere")
		if got := checkBootDir(dir); len(got) != 1 || !strings.Contains(got[0], "no such file or directory") {
			t.Errorf("checkBootDir = %q; want one line saying the dir is missing", got)
		}
	})
}

// bootServer serves the boot dir, logging into the buffer.
func bootServer(t *testing.T, bootDir string) (*server, *bytes.Buffer) {
	s, log := testServer(t, goodConfig())
	s.bootDir = bootDir
	return s, log
}

func TestBootFiles(t *testing.T) {
	dir := bootTree(t, map[string]string{"pve/sub/x": "x", "other/boot.ipxe": "kernel k " + autoMarker + "\nboot\n", "other/k": "k"})
	mkfifo(t, filepath.Join(dir, "pve", "fifo"))
	tests := []struct {
		name, method, path string
		header             []string
		status             int
		body               string // the whole body of a 2xx, a part of an error's
	}{
		{name: "kernel", method: "GET", path: "/boot/pve/vmlinuz", status: 200, body: "kernel bytes"},
		{name: "initrd", method: "GET", path: "/boot/pve/initrd.img", status: 200, body: "initrd bytes"},
		{name: "iso", method: "GET", path: "/boot/pve/" + realISO, status: 200, body: "iso bytes 0123456789"},
		{name: "another_image", method: "GET", path: "/boot/other/k", status: 200, body: "k"},
		{name: "head_has_no_body", method: "HEAD", path: "/boot/pve/vmlinuz", status: 200, body: ""},
		{name: "range", method: "GET", path: "/boot/pve/" + realISO, header: []string{"Range", "bytes=10-13"}, status: 206, body: "0123"},
		{name: "range_past_the_end", method: "GET", path: "/boot/pve/vmlinuz", header: []string{"Range", "bytes=100-"}, status: 416, body: `range "bytes=100-": not within pve/vmlinuz, 12 bytes long`},
		{name: "changed_since", method: "GET", path: "/boot/pve/vmlinuz", header: []string{"If-Match", `"old"`}, status: 412, body: "pve/vmlinuz has changed since"},
		{name: "file_of_another_entry", method: "GET", path: "/boot/pve/gui-only.img", status: 404,
			body: `"gui-only.img": image pve serves only the files its boot.ipxe loads: vmlinuz, initrd.img, ` + realISO},
		{name: "the_script_itself", method: "GET", path: "/boot/pve/boot.ipxe", status: 404, body: "serves only the files its boot.ipxe loads"},
		{name: "another_file_of_the_folder", method: "GET", path: "/boot/pve/notes.txt", status: 404, body: "serves only the files"},
		{name: "a_fifo_not_named", method: "GET", path: "/boot/pve/fifo", status: 404, body: "serves only the files"},
		{name: "a_sub_folder", method: "GET", path: "/boot/pve/sub", status: 404, body: "serves only the files"},
		{name: "a_file_in_a_sub_folder", method: "GET", path: "/boot/pve/sub/x", status: 404, body: "no such path"},
		{name: "no_listing_of_the_image", method: "GET", path: "/boot/pve/", status: 404, body: "no such path"},
		{name: "no_listing_of_images", method: "GET", path: "/boot/", status: 404, body: "no such path"},
		{name: "unknown_image", method: "GET", path: "/boot/pve8/vmlinuz", status: 404, body: `no image "pve8" in --boot-dir; there are: other, pve`},
		{name: "dot_dot", method: "GET", path: "/boot/pve/../other/k", status: 404, body: `"/boot/pve/../other/k": no such path; boot files are served as /boot/IMAGE/FILE, and only those`},
		{name: "escaped_dot_dot", method: "GET", path: "/boot/pve/%2e%2e/pve/vmlinuz", status: 404, body: "no such path"},
		{name: "escaped_slash", method: "GET", path: "/boot/pve/..%2fother%2fk", status: 404},
		{name: "image_dot_dot", method: "GET", path: "/boot/%2e%2e/vmlinuz", status: 404},
		{name: "post", method: "POST", path: "/boot/pve/vmlinuz", status: 405, body: "boot files are fetched with GET or HEAD, not POST"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, log := bootServer(t, dir)
			rec := sendFrom(s, "10.0.0.7:40000", tc.method, tc.path, "", tc.header...)
			if rec.Code != tc.status {
				t.Fatalf("%s %s = %d %q; want %d", tc.method, tc.path, rec.Code, rec.Body, tc.status)
			}
			if rec.Code >= 400 {
				checkErrorBody(t, tc.path, rec)
				if !strings.Contains(rec.Body.String(), tc.body) {
					t.Errorf("%s %s = %q; want %q in it", tc.method, tc.path, rec.Body, tc.body)
				}
				return
			}
			if rec.Body.String() != tc.body {
				t.Errorf("%s %s = %q; want %q", tc.method, tc.path, rec.Body, tc.body)
			}
			if rec.Header().Get("Content-Length") == "" || rec.Header().Get("ETag") == "" || rec.Header().Get("Last-Modified") == "" {
				t.Errorf("%s %s headers = %v; want Content-Length, ETag and Last-Modified", tc.method, tc.path, rec.Header())
			}
			line := requestLine(t, tc.path, log)
			image, file, _ := strings.Cut(strings.TrimPrefix(tc.path, "/boot/"), "/")
			for _, want := range []string{"image=" + image, "file=" + file, "status=" + rec.Result().Status[:3], "bytes=" + strconv.Itoa(len(tc.body))} {
				if !strings.Contains(line, " "+want+" ") {
					t.Errorf("log line %q; want %q in it", line, want)
				}
			}
		})
	}
}

func TestBootFileConditional(t *testing.T) {
	s, _ := bootServer(t, bootTree(t, nil))
	first := send(s, "GET", "/boot/pve/vmlinuz", nil)
	etag := first.Header().Get("ETag")
	if first.Code != 200 || etag == "" {
		t.Fatalf("GET = %d, ETag %q; want 200 with an ETag", first.Code, etag)
	}
	tests := []struct {
		name   string
		header []string
		status int
	}{
		{"same_etag_is_not_modified", []string{"If-None-Match", etag}, 304},
		{"other_etag_is_sent", []string{"If-None-Match", `"other"`}, 200},
		{"not_modified_since", []string{"If-Modified-Since", first.Header().Get("Last-Modified")}, 304},
		{"range_if_same_etag_is_partial", []string{"Range", "bytes=0-1", "If-Range", etag}, 206},
		{"range_if_other_etag_is_whole", []string{"Range", "bytes=0-1", "If-Range", `"other"`}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := sendFrom(s, "10.0.0.7:40000", "GET", "/boot/pve/vmlinuz", "", tc.header...)
			if rec.Code != tc.status {
				t.Errorf("GET with %q = %d; want %d", tc.header, rec.Code, tc.status)
			}
		})
	}
}

// An image replaced after start is read afresh: what its new script
// names is served, and a file it names that cannot be sent is a 500 that
// says why, at once, never a hang.
func TestBootImageReadAfresh(t *testing.T) {
	dir := bootTree(t, nil)
	s, _ := bootServer(t, dir)
	if rec := send(s, "GET", "/boot/pve/initrd.img", nil); rec.Code != 200 {
		t.Fatalf("before: GET initrd.img = %d %q; want 200", rec.Code, rec.Body)
	}
	script := strings.Replace(realBootScript, "initrd initrd.img\n", "initrd initrd2.img\n", 1)
	for name, content := range map[string]string{"boot.ipxe": script, "initrd2.img": "new initrd"} {
		if err := os.WriteFile(filepath.Join(dir, "pve", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, path string
		status     int
		body       string
	}{
		{"old_file_no_longer_named", "/boot/pve/initrd.img", 404, "serves only the files its boot.ipxe loads: vmlinuz, initrd2.img, " + realISO},
		{"new_file_named", "/boot/pve/initrd2.img", 200, "new initrd"},
	}
	for _, tc := range tests {
		rec := send(s, "GET", tc.path, nil)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s: GET %s = %d %q; want %d with %q", tc.name, tc.path, rec.Code, rec.Body, tc.status, tc.body)
		}
	}
	mkfifo(t, filepath.Join(dir, "pve", realISO))
	rec := send(s, "GET", "/boot/pve/"+realISO, nil)
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "pve/"+realISO+": not a regular file but a FIFO, and boot.ipxe line 30 names it") {
		t.Errorf("GET of a FIFO the script names = %d %q; want 500 saying it is a FIFO", rec.Code, rec.Body)
	}
	checkErrorBody(t, "FIFO", rec)
	os.Remove(filepath.Join(dir, "pve", "boot.ipxe"))
	rec = send(s, "GET", "/boot/pve/vmlinuz", nil)
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "image pve/boot.ipxe: missing") {
		t.Errorf("GET from an image without its script = %d %q; want 500 saying boot.ipxe is missing", rec.Code, rec.Body)
	}
}

func TestBootFilesAllowAndCap(t *testing.T) {
	s, _ := bootServer(t, bootTree(t, nil))
	allow, err := parseAllow("10.0.0.0/24,2001:db8::/48")
	if err != nil {
		t.Fatal(err)
	}
	s.allow = allow
	tests := []struct {
		name, remote string
		held         []string // the sources of the downloads under way
		status       int
		body         string
	}{
		{"allowed", "10.0.0.7:40000", nil, 200, "kernel bytes"},
		{"not_allowed", "10.0.1.7:40000", nil, 403, "is not in --allow"},
		{"too_many_downloads", "10.0.0.7:40000", []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, 503, "too busy: 3 boot files are being sent, the most"},
		{"too_many_from_one_address", "10.0.0.7:40000", []string{"10.0.0.7", "10.0.0.7"}, 503, "too busy: 2 boot files are being sent to 10.0.0.7, the most pxe-pilot sends to one address"},
		{"another_address_still_gets_a_place", "10.0.0.8:40000", []string{"10.0.0.7", "10.0.0.7"}, 200, "kernel bytes"},
		{"an_ipv6_64_is_one_source", "[2001:db8:0:1::99]:40000", []string{"2001:db8:0:1::7", "2001:db8:0:1:ffff::1"}, 503, "to 2001:db8:0:1::/64"},
		{"another_ipv6_64_is_another_source", "[2001:db8:0:2::99]:40000", []string{"2001:db8:0:1::7", "2001:db8:0:1::8"}, 200, "kernel bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.downloads = newPlaces[netip.Prefix](3, 2)
			for _, a := range tc.held {
				if ok, _ := s.downloads.take(downloadSource(netip.AddrPortFrom(netip.MustParseAddr(a), 1).String())); !ok {
					t.Fatalf("no place for %s", a)
				}
			}
			rec := sendFrom(s, tc.remote, "GET", "/boot/pve/vmlinuz", "")
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("GET from %s = %d %q; want %d with %q", tc.remote, rec.Code, rec.Body, tc.status, tc.body)
			}
			if got := rec.Header().Get("Retry-After"); (got != "") != (tc.status == 503) {
				t.Errorf("GET from %s: Retry-After %q; want one with a 503 only", tc.remote, got)
			}
			if s.downloads.n != len(tc.held) {
				t.Errorf("after the GET, %d places are taken; want the %d held before", s.downloads.n, len(tc.held))
			}
		})
	}
	// Downloads take no --max-inflight slot.
	s.downloads, s.slots = nil, make(chan struct{}, 1)
	s.slots <- struct{}{}
	if rec := sendFrom(s, "10.0.0.7:40000", "GET", "/boot/pve/vmlinuz", ""); rec.Code != 200 {
		t.Errorf("GET with every --max-inflight slot taken = %d %q; want 200", rec.Code, rec.Body)
	}
}

// Without --boot-dir there is no /boot/.
func TestNoBootDirNoBootFiles(t *testing.T) {
	s, _ := testServer(t, goodConfig())
	rec := send(s, "GET", "/boot/pve/vmlinuz", nil)
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), `"/boot/pve/vmlinuz": no such path`) {
		t.Errorf("GET /boot/pve/vmlinuz without --boot-dir = %d %q; want 404 no such path", rec.Code, rec.Body)
	}
}

// readerFromWriter is a ResponseWriter that says whether ReadFrom was used.
type readerFromWriter struct {
	*httptest.ResponseRecorder
	used bool
}

func (w *readerFromWriter) ReadFrom(r io.Reader) (int64, error) {
	w.used = true
	return io.Copy(w.ResponseRecorder, r)
}

// The file reaches the connection's ReadFrom, which sends an *os.File with
// sendfile: the writer that counts bytes for the log must not hide it.
func TestBootFileKeepsReadFrom(t *testing.T) {
	s, log := bootServer(t, bootTree(t, nil))
	w := &readerFromWriter{ResponseRecorder: httptest.NewRecorder()}
	s.ServeHTTP(w, httptest.NewRequest("GET", "/boot/pve/"+realISO, nil))
	if w.Code != 200 || w.Body.String() != "iso bytes 0123456789" {
		t.Fatalf("GET = %d %q; want the ISO", w.Code, w.Body)
	}
	if !w.used {
		t.Error("the file was not handed to the ResponseWriter's ReadFrom")
	}
	if line := requestLine(t, "GET", log); !strings.Contains(line, " bytes=20 ") {
		t.Errorf("log line %q; want bytes=20", line)
	}
}

// Over a real connection (where the kernel's sendfile does the copying),
// a whole file arrives.
func TestBootFileOverTheNetwork(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	s, _ := bootServer(t, bootTree(t, map[string]string{"pve/" + realISO: big}))
	s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	ts := httptest.NewServer(s)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/boot/pve/" + realISO)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || string(got) != big {
		t.Errorf("GET = %d, %d bytes, %v; want 200 and the %d bytes", resp.StatusCode, len(got), err, len(big))
	}
}

// A download must keep its pace, measured by the pace's clock: here each
// chunk of 64 KiB takes a second of it, 64 KiB/s.
func TestDownloadPace(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<17) // 2 MiB
	tests := []struct {
		name     string
		minRate  int64
		header   string // Range
		wantN    int    // bytes sent
		dropped  string // in the log line; "" for none
		wantCode int
	}{
		{name: "reader_at_the_pace_gets_the_whole_file", minRate: 64 << 10, wantN: len(big), wantCode: 200},
		{name: "slower_reader_is_dropped_after_a_window", minRate: 1 << 20, wantN: 10 * 64 << 10, wantCode: 200,
			dropped: `dropped="moved 640 KiB in 10s, under the 1 MiB/s a download must keep; its place is freed"`},
		{name: "range_shorter_than_a_window_is_sent", minRate: 1 << 20, header: "bytes=100-199", wantN: 100, wantCode: 206},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, log := bootServer(t, bootTree(t, map[string]string{"pve/" + realISO: big}))
			s.downloads = newPlaces[netip.Prefix](1, 1)
			clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			s.pace = downloadPace{window: 10 * time.Second, minRate: tc.minRate, chunk: 64 << 10, now: func() time.Time {
				clock = clock.Add(time.Second)
				return clock
			}}
			w := &readerFromWriter{ResponseRecorder: httptest.NewRecorder()}
			req := httptest.NewRequest("GET", "/boot/pve/"+realISO, nil)
			if tc.header != "" {
				req.Header.Set("Range", tc.header)
			}
			s.ServeHTTP(w, req)
			if w.Code != tc.wantCode || w.Body.Len() != tc.wantN || !w.used {
				t.Errorf("GET = %d, %d bytes, through ReadFrom %v; want %d, %d bytes, through ReadFrom", w.Code, w.Body.Len(), w.used, tc.wantCode, tc.wantN)
			}
			line := requestLine(t, "GET", log)
			if !strings.Contains(line, fmt.Sprintf(" bytes=%d ", tc.wantN)) || strings.Contains(line, "dropped=") != (tc.dropped != "") || !strings.Contains(line, tc.dropped) {
				t.Errorf("log line %q; want bytes=%d and %q", line, tc.wantN, cmp.Or(tc.dropped, "no dropped="))
			}
			if s.downloads.n != 0 {
				t.Errorf("%d places taken after the download; want 0", s.downloads.n)
			}
		})
	}
}

// stalledClient asks for a boot file over a socket whose receive buffer
// is small, and does not read: the kernel's buffers fill, and the
// server's send blocks. It dials from the loopback address local.
func stalledClient(t *testing.T, addr, local, path string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Control: func(_, _ string, c syscall.RawConn) error {
		// Before the connection is made, so that the window it offers is small.
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: pxe\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	return conn
}

// getFrom fetches a URL over a connection from the loopback address local.
func getFrom(t *testing.T, local, url string) (int, string, http.Header) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// waitFor waits, as long as the test may run, until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if d, ok := t.Deadline(); ok && time.Until(d) < time.Second {
			t.Fatalf("waited in vain for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// placesTaken are the download places taken, in all and by source.
func placesTaken(p *places[netip.Prefix], source string) (int, int) {
	bySource, all := p.held(netip.MustParsePrefix(source))
	return all, bySource
}

// A client that stops reading loses its place a window later, over a real
// socket whose buffers are full, and the next machine gets its file.
func TestStalledDownloadLosesItsPlace(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<20) // 16 MiB, more than the sockets' buffers hold
	s, _ := bootServer(t, bootTree(t, map[string]string{"pve/" + realISO: big}))
	var log syncBuffer
	s.log = slog.New(slog.NewTextHandler(&log, nil))
	s.downloads = newPlaces[netip.Prefix](1, 1)
	s.pace = downloadPace{window: 200 * time.Millisecond, chunk: 256 << 10}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close) // after the clients' Cleanup, which closes them

	stalled := stalledClient(t, ts.Listener.Addr().String(), "127.0.0.1", "/boot/pve/"+realISO)
	waitFor(t, "the stalled download to be dropped", func() bool { return strings.Contains(log.String(), "dropped=") })
	if n, _ := placesTaken(s.downloads, "127.0.0.1/32"); n != 0 {
		t.Errorf("%d places taken once the stalled download was dropped; want 0", n)
	}
	line := log.String()
	if !strings.Contains(line, "status=200") || !strings.Contains(line, "under the 512 KiB/s a download must keep; its place is freed") {
		t.Errorf("log line %q; want the 200 and why it was dropped", line)
	}
	// The stalled client gets what the buffers held, and the end of the
	// connection: not the file.
	stalled.SetReadDeadline(time.Now().Add(time.Minute))
	got, _ := io.Copy(io.Discard, stalled)
	if got >= int64(len(big)) {
		t.Errorf("the stalled client read %d bytes, the whole file; want it cut short", got)
	}
	if code, body, _ := getFrom(t, "127.0.0.2", ts.URL+"/boot/pve/vmlinuz"); code != 200 || body != "kernel bytes" {
		t.Errorf("another machine's GET = %d %q; want its kernel", code, body)
	}
}

// Over real sockets: one source that does not read holds at most its
// places, gets a 503 with Retry-After past them, and another source still
// gets its file.
func TestOneSourceCannotTakeEveryPlace(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<20) // 16 MiB
	s, _ := bootServer(t, bootTree(t, map[string]string{"pve/" + realISO: big}))
	s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	s.downloads = newPlaces[netip.Prefix](3, 2)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close) // after the clients' Cleanup, which closes them

	for range 2 {
		stalledClient(t, ts.Listener.Addr().String(), "127.0.0.1", "/boot/pve/"+realISO)
	}
	waitFor(t, "two places taken by 127.0.0.1", func() bool { _, mine := placesTaken(s.downloads, "127.0.0.1/32"); return mine == 2 })
	code, body, h := getFrom(t, "127.0.0.1", ts.URL+"/boot/pve/vmlinuz")
	if want := "too busy: 2 boot files are being sent to 127.0.0.1, the most pxe-pilot sends to one address at once; try again"; code != 503 || !strings.Contains(body, want) || h.Get("Retry-After") != "5" {
		t.Errorf("a third GET from 127.0.0.1 = %d %q, Retry-After %q; want 503 %q, Retry-After 5", code, body, h.Get("Retry-After"), want)
	}
	if code, body, _ := getFrom(t, "127.0.0.2", ts.URL+"/boot/pve/vmlinuz"); code != 200 || body != "kernel bytes" {
		t.Errorf("a GET from 127.0.0.2 = %d %q; want its kernel", code, body)
	}
}

// serve and validate refuse a boot dir with an image they cannot serve, in
// one line naming the image and file.
func TestServeAndValidateCheckBootDir(t *testing.T) {
	clearServeEnv(t)
	good := bootTree(t, nil)
	broken := bootTree(t, map[string]string{"pve/initrd.img": asDir, "b/boot.ipxe": "#!ipxe\n"})
	want := "--boot-dir " + broken + ": b/boot.ipxe: no automated entry: no kernel line has " + autoMarker + " on it; use the boot.ipxe prepare-iso --pxe wrote (and 1 more: pxe-pilot validate --boot-dir " + broken + " lists them)"
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var log bytes.Buffer
	err := serve(ctx, []string{"--config-dir", "examples/config", "--listen", "127.0.0.1:0", "--boot-dir", broken}, &log)
	if err == nil || err.Error() != want {
		t.Errorf("serve --boot-dir broken = %v; want %q", err, want)
	}
	log.Reset()
	if err := serve(ctx, []string{"--config-dir", "examples/config", "--listen", "127.0.0.1:0", "--boot-dir", good}, &log); err != nil {
		t.Errorf("serve --boot-dir good = %v", err)
	}
	if !strings.Contains(log.String(), "boot_dir="+good) {
		t.Errorf("serve --boot-dir good logged\n%s\nwant boot_dir=%s", &log, good)
	}
	var out bytes.Buffer
	err = run([]string{"validate", "--config-dir", "examples/config", "--release", "9.2", "--boot-dir", broken}, &out, io.Discard)
	if !errors.Is(err, errValidate) {
		t.Errorf("validate --boot-dir broken = %v; want errValidate", err)
	}
	for _, w := range []string{"--boot-dir " + broken + ": b/boot.ipxe: no automated entry", "--boot-dir " + broken + ": pve/initrd.img: not a regular file but a directory, and boot.ipxe line 29 names it",
		// and, with two images, each of the 3 hosts names none
		"hosts/aa-bb-cc-dd-ee-ff.toml: no boot-image, and --boot-dir has 2 images (b, pve)", ": 5 errors, "} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("validate --boot-dir broken said\n%s\nwant %q in it", &out, w)
		}
	}
	t.Setenv("PXE_PILOT_BOOT_DIR", good)
	out.Reset()
	if err := run([]string{"validate", "--config-dir", "examples/config", "--release", "9.2"}, &out, io.Discard); err != nil {
		t.Errorf("validate with PXE_PILOT_BOOT_DIR good = %v\n%s", err, &out)
	}
}

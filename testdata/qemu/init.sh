#!/bin/busybox sh
# /init of the Proxmox installer's stand-in that TestQEMUInstallThenLocalBoot
# (qemu_test.go) boots through pxe-pilot's install script. It does over the
# network what the automated installer does: checks the ISO iPXE placed as
# /proxmox.iso, posts its system info to /answer, and its report, with the
# answer's token, to the answer's webhook; under UEFI it sets the boot
# order, as an installer writes its boot entry; then it powers off, so that
# each boot of the test is one QEMU run. On any failure it says why and
# powers off too, so that a failure never loops back into another install.
# The test fills in the @...@ words; its initramfs has the directories this
# uses.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

server='@SERVER@'
release='@RELEASE@'
module='/lib/modules/@MODULE@'
efivarfs='/lib/modules/@EFIVARFS@' # under SeaBIOS, none
iso_sha256='@ISO_SHA256@'

say() { echo "stand-in: $*"; }
# unpack is the path of the module $1, unpacked where Debian packs it.
unpack() {
	case $1 in
	*.xz) unxz "$1" || fail "unxz $1"; echo "${1%.xz}" ;;
	*.gz) gunzip "$1" || fail "gunzip $1"; echo "${1%.gz}" ;;
	*) echo "$1" ;;
	esac
}
fail() {
	say "FAILED: $*"
	say "powering off"
	sync
	poweroff -f
	sleep 600
}

# json is $1 as a JSON string: control characters dropped, \ and " escaped.
json() { printf '"%s"' "$(printf %s "$1" | tr -d '\001-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }
# dmi is a field of the firmware's DMI tables as Linux shows it, or "".
dmi() { cat "/sys/class/dmi/id/$1" 2>/dev/null; }

cd /tmp || fail "no /tmp"
say "started: $(uname -sr)"

# The ISO the script loads as proxmox.iso, as the real installer finds it,
# byte for byte: an iPXE that cannot name an initrd under UEFI gives the
# kernel only the first.
[ -f /proxmox.iso ] || fail "no /proxmox.iso: iPXE did not place the second initrd under the name boot.ipxe gives it"
sum=$(sha256sum /proxmox.iso | cut -d ' ' -f 1)
[ "$sum" = "$iso_sha256" ] || fail "/proxmox.iso has sha256 $sum, not the ISO's $iso_sha256"
say "/proxmox.iso: sha256 matches the ISO's, $(wc -c </proxmox.iso) bytes"

# The NIC's driver, as Debian's kernel ships it.
module=$(unpack "$module")
insmod "$module" || fail "insmod $module"
nic=
for d in /sys/class/net/*; do
	[ -e "$d/device" ] && { nic=${d##*/}; break; }
done
[ -n "$nic" ] || fail "no network interface after insmod $module"
ip link set lo up
ip link set "$nic" up || fail "ip link set $nic up"
udhcpc -i "$nic" -s /etc/udhcpc.script -n -q -t 10 -T 3 || fail "udhcpc got no address on $nic"
mac=$(cat "/sys/class/net/$nic/address")
address=$(ip -4 -o addr show dev "$nic" | awk '{ print $4; exit }')
say "$nic $mac $address"

uuid=$(dmi product_uuid)
say "installer-uuid=$uuid"
dmi_json="{
    \"system\": {\"name\": $(json "$(dmi product_name)"), \"serial\": $(json "$(dmi product_serial)"), \"sku\": $(json "$(dmi product_sku)"), \"uuid\": $(json "$uuid")},
    \"baseboard\": {\"asset_tag\": $(json "$(dmi board_asset_tag)"), \"name\": $(json "$(dmi board_name)"), \"serial\": $(json "$(dmi board_serial)")},
    \"chassis\": {\"asset_tag\": $(json "$(dmi chassis_asset_tag)"), \"serial\": $(json "$(dmi chassis_serial)"), \"sku\": \"\"}
  }"

# The system info, as examples/requests/pve-9.2.json has it.
cat >request.json <<END
{
  "\$schema": {"version": "1.0"},
  "product": {"fullname": "Proxmox VE", "product": "pve", "enable_btrfs": true},
  "iso": {"release": "$release", "isorelease": "1"},
  "dmi": $dmi_json,
  "network_interfaces": [
    {"link": "$nic", "mac": "$mac"}
  ]
}
END
# (timeout, not wget -T, which crashes Debian 12's busybox-static.)
say "POST $server/answer:"
cat request.json
timeout 60 wget -q -O answer.toml --header 'Content-Type: application/json' --post-file request.json "$server/answer" ||
	fail "POST $server/answer: wget exited $? (the server's log says why)"
say "answer:"
cat answer.toml
say "end of answer"

url=$(sed -n "s/^url = '\(.*\)'\$/\1/p" answer.toml)
token=$(sed -n "s/^auth-token = '\(.*\)'\$/\1/p" answer.toml)
fqdn=$(sed -n "s/^fqdn = '\(.*\)'\$/\1/p" answer.toml)
[ -n "$url" ] && [ -n "$token" ] || fail "the answer has no [post-installation-webhook] url and auth-token"

# The report, as examples/reports/pve-9.2.json has it, token and all.
cat >report.json <<END
{
  "\$schema": {"version": "1.2"},
  "debian-version": "13.2",
  "product": {"fullname": "Proxmox VE", "short": "pve", "version": "$release.0"},
  "iso": {"release": "$release", "isorelease": "1"},
  "kernel-version": {"sysname": "$(uname -s)", "release": "$(uname -r)", "version": $(json "$(uname -v)"), "machine": "$(uname -m)"},
  "boot-info": {"mode": "$([ -d /sys/firmware/efi ] && echo efi || echo bios)"},
  "cpu-info": {"cpus": $(nproc), "model": $(json "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)")},
  "dmi": $dmi_json,
  "filesystem": "zfs (RAID0)",
  "fqdn": $(json "$fqdn"),
  "machine-id": "$(sed 's/-//g' /proc/sys/kernel/random/uuid)",
  "disks": [],
  "network-interfaces": [
    {
      "name": "$nic",
      "mac": "$mac",
      "address": "$address",
      "is-management": true,
      "udev-properties": {"INTERFACE": "$nic", "ID_NET_DRIVER": "e1000"}
    }
  ],
  "ssh-public-host-keys": @SSH_KEYS@,
  "reboot-mode": "reboot",
  "token": $(json "$token")
}
END
say "POST $url (the report)"
timeout 60 wget -q -O reply --header 'Content-Type: application/json' --post-file report.json "$url" ||
	fail "POST $url: wget exited $? (the server's log says why)"
say "report accepted: $(cat reply)"

# Under UEFI, the boot order an installed machine of a netboot set-up
# keeps: the network first (so that pxe-pilot decides each boot), then the
# disk, and nothing between: OVMF would try HTTP boot there, which waits a
# minute for a DHCP offer QEMU never makes. OVMF keeps a BootOrder it
# finds (QEMU gives no bootindex to override it). The boot options are
# OVMF's own; their description says which is which.
if [ -d /sys/firmware/efi ]; then
	insmod "$(unpack "$efivarfs")" || fail "insmod $efivarfs"
	mount -t efivarfs efivarfs /sys/firmware/efi/efivars || fail "mount efivarfs"
	global=8be4df61-93ca-11d2-aa0d-00e098032b8c # EFI_GLOBAL_VARIABLE
	pxe= disk=
	for var in /sys/firmware/efi/efivars/Boot[0-9A-F][0-9A-F][0-9A-F][0-9A-F]-$global; do
		n=${var##*/Boot}
		n=${n%%-*}
		# An EFI_LOAD_OPTION: attributes (4 bytes), its device path's
		# length (2), the description in UTF-16: the NULs dropped, ASCII.
		case $(tail -c +11 "$var" | tr -d '\000' | head -c 40) in
		*PXEv4*) pxe=$n ;;
		*HARDDISK*) disk=$n ;;
		esac
	done
	[ -n "$pxe" ] && [ -n "$disk" ] || fail "no PXEv4 and HARDDISK boot options among $(ls /sys/firmware/efi/efivars | grep ^Boot)"
	# The variable's attributes (non-volatile, boot and run time), then
	# each option's number, 16 bits little-endian.
	le16() { printf '\\x%s\\x%s' "${1#??}" "${1%??}"; }
	printf "\\x07\\x00\\x00\\x00$(le16 "$pxe")$(le16 "$disk")" >"/sys/firmware/efi/efivars/BootOrder-$global" ||
		fail "writing BootOrder"
	say "BootOrder: Boot$pxe (PXEv4), Boot$disk (HARDDISK)"
fi
say "done; powering off"
sync
poweroff -f
sleep 600

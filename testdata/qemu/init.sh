#!/bin/busybox sh
# /init of the Proxmox installer's stand-in that TestQEMUInstallThenLocalBoot
# (qemu_test.go) boots through pxe-pilot's install script. It does over the
# network what the automated installer does: posts its system info to
# /answer, and its report, with the answer's token, to the answer's
# webhook; then it reboots, as the installer does after an install. On any
# failure it says why and powers off, so that a failure never loops back
# into another install. The test fills in the @...@ words; its initramfs
# has the directories this uses.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

server='@SERVER@'
release='@RELEASE@'
module='/lib/modules/@MODULE@'

say() { echo "stand-in: $*"; }
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

# The ISO the script loads as proxmox.iso, as the real installer finds it.
[ -f /proxmox.iso ] || fail "no /proxmox.iso: iPXE did not place the second initrd under the name boot.ipxe gives it"
say "/proxmox.iso: $(head -c 200 /proxmox.iso)"

# The NIC's driver, as Debian's kernel ships it.
case $module in
*.xz) unxz "$module" || fail "unxz $module"; module=${module%.xz} ;;
*.gz) gunzip "$module" || fail "gunzip $module"; module=${module%.gz} ;;
esac
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
say "rebooting"
sync
reboot -f
sleep 600

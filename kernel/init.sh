#!/bin/sh
# usbkit guest init: PID 1 of the virtual bench, run by busybox sh.
#
# The host (kernel/run.ts) writes the per-run part, bench.sh, into a host
# directory whose path arrives as the kernel parameter usbkit_run=DIR (the
# kernel hands unknown name=value parameters to init as environment). This
# script does what every boot needs; bench.sh says what this boot contains.
#
# Protocol with the host, over three virtio-serial ports:
#   usbkit.ctl    guest -> host lines: "stage UPTIME TEXT", "start UPTIME",
#                 "fatal TEXT", "exit CODE UPTIME"; host -> guest: "ack".
#   usbkit.stdout the command's stdout, then the token $USBKIT_EOF.
#   usbkit.stderr the command's stderr, then the token $USBKIT_EOF.
# A port write returns before QEMU has passed the data on
# (drivers/char/virtio_console.c port_fops_write is non-blocking towards the
# host), so the guest powers off only after the host has seen both tokens
# and answered "ack"; otherwise output could be lost at power-off.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

CTL_OK=
log() { echo "usbkit-init: $*" >/dev/console; }
uptime_s() { read -r up _ </proc/uptime; echo "$up"; }
stage() {
	[ -n "$CTL_OK" ] && echo "stage $(uptime_s) $*" >&3
	return 0
}
die() {
	log "FATAL: $*"
	if [ -n "$CTL_OK" ]; then
		echo "fatal $*" >&3
		read -r -t 10 _ack <&3
	fi
	poweroff -f
	sleep 3600
}

# Centiseconds since boot, for bounded waits without floating point.
now_cs() {
	read -r up _ </proc/uptime
	frac=${up#*.}
	frac=${frac#0}
	echo $((${up%.*} * 100 + ${frac:-0}))
}

# --- base modules: virtio, virtio-serial ports, 9p (order from modules.dep)
while read -r ko; do
	insmod "/lib/modules/$ko" || die "insmod $ko failed"
done </etc/usbkit/base-modules

# --- the control and output ports (their names arrive shortly after probe)
port_dev() {
	for p in /sys/class/virtio-ports/*; do
		[ -r "$p/name" ] || continue
		read -r n <"$p/name" 2>/dev/null || continue
		[ "$n" = "$1" ] && { echo "/dev/${p##*/}"; return 0; }
	done
	return 1
}
deadline=$(($(now_cs) + 1000))
while :; do
	CTL=$(port_dev usbkit.ctl) && OUT=$(port_dev usbkit.stdout) &&
		ERR=$(port_dev usbkit.stderr) && [ -c "$CTL" ] && [ -c "$OUT" ] &&
		[ -c "$ERR" ] && break
	[ "$(now_cs)" -gt "$deadline" ] && die "virtio-serial ports did not appear"
	sleep 0.01
done
exec 3<>"$CTL" 4>"$OUT" 5>"$ERR" || die "cannot open virtio-serial ports"
CTL_OK=1
stage "ports open"

# --- the host root, read-only, and the per-run script
[ -n "$usbkit_run" ] || die "no usbkit_run= on the kernel command line"
MSIZE=512000 # 9p over virtio caps msize near 512 KiB (net/9p/trans_virtio.c)
mount -t 9p -o trans=virtio,version=9p2000.L,msize=$MSIZE,cache=loose,ro \
	hostroot /host || die "cannot mount the host root (9p tag hostroot)"
cp "/host$usbkit_run/bench.sh" /etc/usbkit/bench.sh ||
	die "cannot read /host$usbkit_run/bench.sh"
# bench.sh defines: USBKIT_EOF PROJECT KEEP_PATHS HOST_DENO_DIR EXPECT_SERIALS
# ENUM_TIMEOUT
# and the functions bench_modules, bench_gadgets, bench_info_template,
# run_command.
. /etc/usbkit/bench.sh

# Load the bench's modules before tmpfs hides host paths they may come from.
bench_modules
stage "modules loaded"

# A view of the host root that the tmpfs mounts below do not cover, to bind
# back paths that must stay visible (KEEP_PATHS, e.g. deno under /root).
mount --bind /host /orig || die "bind mount of /host failed"

mount -t proc proc /host/proc || die "mount proc"
mount -t sysfs sysfs /host/sys || die "mount sysfs"
mount -t devtmpfs devtmpfs /host/dev || die "mount devtmpfs"
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm
mount -t tmpfs -o mode=1777 tmpfs /host/tmp || die "mount /tmp"
mount -t tmpfs -o mode=755 tmpfs /host/run || die "mount /run"
mount -t tmpfs -o mode=700 tmpfs /host/root || die "mount /root"
mount -t debugfs debugfs /host/sys/kernel/debug 2>/dev/null
if [ -d /sys/kernel/config ]; then
	mount -t configfs configfs /sys/kernel/config || die "mount configfs"
	mount -t configfs configfs /host/sys/kernel/config
fi
for p in $KEEP_PATHS; do
	if [ -d "/orig$p" ]; then
		mkdir -p "/host$p"
	else # a file (a disk image): bind it onto an empty file
		mkdir -p "/host${p%/*}" && : >"/host$p"
	fi && mount --bind "/orig$p" "/host$p" || die "cannot keep $p visible"
done
# The guest's DENO_DIR (/root/.cache/deno) is the host's, copy-on-write:
# npm registry metadata and compiled code are there already, and the guest
# (no network) does not try to download them again. Writes go to tmpfs.
if [ -n "$HOST_DENO_DIR" ] && [ -d "/orig$HOST_DENO_DIR" ]; then
	o=/host/run/usbkit/deno
	mkdir -p $o/upper $o/work /host/root/.cache/deno
	mount -t overlay overlay \
		-o "lowerdir=/orig$HOST_DENO_DIR,upperdir=$o/upper,workdir=$o/work" \
		/host/root/.cache/deno ||
		log "cannot overlay the host's DENO_DIR: the guest's starts empty"
fi
mkdir -p "/host$PROJECT" 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,msize=$MSIZE,cache=loose \
	project "/host$PROJECT" || die "cannot mount the project (9p tag project)"
stage "filesystems mounted"

# --- gadgets and devices
cfg() { # cfg FILE VALUE: write a configfs attribute, or die naming it
	printf '%s' "$2" >"$1" 2>/dev/null || die "configfs: cannot write '$2' to $1"
}
cfg_mkdir() {
	mkdir "$1" 2>/dev/null || die "configfs: cannot create $1"
}
find_serial() { # prints the sysfs dir of the USB device with serial $1
	for d in /sys/bus/usb/devices/*; do
		[ -r "$d/serial" ] || continue
		read -r s <"$d/serial" 2>/dev/null || continue
		[ "$s" = "$1" ] && { echo "$d"; return 0; }
	done
	return 1
}
bench_gadgets

# Wait until every expected device has enumerated (polling: there is no
# udev here), bounded by ENUM_TIMEOUT seconds.
deadline=$(($(now_cs) + ENUM_TIMEOUT * 100))
while :; do
	missing=
	for s in $EXPECT_SERIALS; do
		find_serial "$s" >/dev/null || missing="$missing $s"
	done
	[ -z "$missing" ] && break
	[ "$(now_cs)" -gt "$deadline" ] &&
		die "devices did not enumerate within ${ENUM_TIMEOUT}s:$missing"
	sleep 0.05
done
stage "devices enumerated"

loc_json() {
	d=$1
	read -r bus <"$d/busnum"
	read -r dev <"$d/devnum"
	read -r spd <"$d/speed"
	n=${d##*/}
	printf '{ "busnum": %d, "devnum": %d, "port": "%s", "sysfs": "/sys/bus/usb/devices/%s", "devnode": "/dev/bus/usb/%03d/%03d", "speed": "%s" }' \
		"$bus" "$dev" "$n" "$n" "$bus" "$dev" "$spd"
}
bench_info_template | while IFS= read -r line; do
	case "$line" in
	*@LOC:*@*)
		s=${line#*@LOC:}
		s=${s%%@*}
		if d=$(find_serial "$s"); then l=$(loc_json "$d"); else l=null; fi
		echo "${line%%@LOC:*}$l${line#*@LOC:"$s"@}"
		;;
	*) echo "$line" ;;
	esac
done >/host/run/usbkit-bench.json
stage "bench ready"

# --- the command
echo "start $(uptime_s)" >&3
run_command </dev/null >&4 2>&5 3>&- 4>&- 5>&-
status=$?
sync
printf '%s' "$USBKIT_EOF" >&4
printf '%s' "$USBKIT_EOF" >&5
echo "exit $status $(uptime_s)" >&3
read -r -t 30 _ack <&3
poweroff -f
sleep 3600

#!/bin/bash
# guest.sh - run one command as root in a disposable QEMU guest, with the
# cgroup layout chosen by --mode.  sbxrun's tests use it to check the runtime
# on hosts unlike the build machine; see tests/vm/run-*.sh.
#
#   tests/vm/guest.sh [OPTIONS] -- COMMAND [ARG]...
#   tests/vm/guest.sh --check        (exit 0 if guests can run here, else 77)
#
# Options:
#   --mode v2|v1|systemd|systemd-hybrid|systemd-legacy
#                    cgroup layout of the guest (default v2):
#       v2       cgroup2 alone at /sys/fs/cgroup, every controller enabled in
#                the root's cgroup.subtree_control; a busybox shell is PID 1
#       v1       every controller as its own cgroup v1 hierarchy under a
#                read-only tmpfs at /sys/fs/cgroup/<ctrl> (cpu,cpuacct and
#                net_cls,net_prio joined, with the usual symlinks); no cgroup2
#                mounted anywhere; a busybox shell is PID 1
#       systemd  the host's systemd is PID 1 (pure cgroup2, its own mounts,
#                udev, journald, the D-Bus system bus); it boots to basic.target
#                and runs COMMAND as the unit sbxvm-command.service
#                (Delegate=yes, the command in its leaf cgroup "payload" so the
#                unit's cgroup may hold cgroups of the command's own)
#       systemd-hybrid  the same systemd boot with systemd's "hybrid" layout
#                (systemd.unified_cgroup_hierarchy=0): the controllers as v1
#                hierarchies under /sys/fs/cgroup/<ctrl>, systemd's own
#                tracking in cgroup2 at /sys/fs/cgroup/unified (no controller)
#                and the name=systemd v1 hierarchy at /sys/fs/cgroup/systemd;
#                the command sits in "payload" in every hierarchy where the
#                unit has its cgroup
#       systemd-legacy  as systemd-hybrid with
#                systemd.legacy_systemd_cgroup_controller=1: v1 only, no
#                cgroup2 mounted (systemd tracks units in name=systemd)
#   --share DIR      DIR (read-write, 9p) at the same path in the guest; the
#                    place for anything the guest must run or leave behind:
#                    the rest of the host is only visible read-only
#   --chdir DIR      COMMAND's working directory (default: the share, or /)
#   --env NAME=VALUE exported to COMMAND (repeatable)
#   --timeout SECS   kill the guest after SECS seconds (exit 124; default 0 =
#                    none); the boot is included
#   --mem SIZE       guest RAM (default 2G: the root's overlay lives in it)
#   --disk SIZE      an empty virtio-blk disk of SIZE (a sparse file in the
#                    run dir, serial "sbxvm-disk"; the guest's udev or a
#                    modprobe virtio_blk makes it /dev/vda)
#   --cpus N         virtual CPUs (default: the host's, at most 4)
#   --accel auto|kvm|tcg  (default auto: KVM when /dev/kvm really works)
#   --kernel FILE    a bzImage whose modules are in /lib/modules/VERSION
#                    (default: the newest /boot/vmlinuz-* that has them)
#   --console FILE   keep the guest's serial console (kernel, init, systemd)
#   --quiet          no timing line on stderr at the end
#
# The guest: Debian's stock kernel (linux-image-amd64, installed on the host)
# booted with a throw-away busybox initramfs built for this run.  The host's
# / is the guest's root through 9p, read-only, under an overlay whose upper
# layer is RAM, so the guest can write anywhere and nothing reaches the host
# except through --share.  Fresh /proc, /sys, /dev, /tmp and /run; no
# network device (only lo); /lib/modules of the host, so modprobe works.
# COMMAND runs with stdin /dev/null; its stdout and stderr come back on ours
# through two virtio-serial ports, its exit status through a third.
#
# Exit: COMMAND's status (128+N if killed by signal N); 124 timeout; 125 the
# guest stopped without reporting a status (the console tail is printed);
# 2 bad usage or setup.  Without QEMU, a kernel or a static busybox, and run
# as root, it installs qemu-system-x86 and linux-image-amd64 with apt-get
# (contrib/sbxrun-setup.sh test does that beforehand).
set -euo pipefail

prog=guest.sh
die() { echo "$prog: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; }

mode=v2 share= chdir= timeout=0 mem=2G disk= accel=auto kernel= console= quiet=0 check=0
cpus=$(nproc 2>/dev/null || echo 1)
[ "$cpus" -le 4 ] || cpus=4
envs=()
while [ $# -gt 0 ]; do
	case $1 in
	--mode | --share | --chdir | --env | --timeout | --mem | --disk | --cpus | --accel | --kernel | --console)
		[ $# -ge 2 ] || die "option $1 needs a value"
		;;&
	--mode) mode=$2 ;;
	--share) share=$2 ;;
	--chdir) chdir=$2 ;;
	--env) envs+=("$2") ;;
	--timeout) timeout=$2 ;;
	--mem) mem=$2 ;;
	--disk) disk=$2 ;;
	--cpus) cpus=$2 ;;
	--accel) accel=$2 ;;
	--kernel) kernel=$2 ;;
	--console) console=$2 ;;
	--quiet) quiet=1; shift; continue ;;
	--check) check=1; shift; continue ;;
	-h | --help) usage; exit 0 ;;
	--) shift; break ;;
	*) die "unknown option '$1' (try --help)" ;;
	esac
	shift 2
done
case $mode in v2 | v1 | systemd | systemd-hybrid | systemd-legacy) ;;
*) die "--mode: '$mode' is not one of v2, v1, systemd, systemd-hybrid, systemd-legacy" ;;
esac
case $accel in auto | kvm | tcg) ;; *) die "--accel: '$accel' is not one of auto, kvm, tcg" ;; esac
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout: '$timeout' is not a number of seconds"
[[ $cpus =~ ^[1-9][0-9]*$ ]] || die "--cpus: '$cpus' is not a positive number"
[[ $mem =~ ^[1-9][0-9]*[MG]$ ]] || die "--mem: '$mem' is not a size like 1536M or 2G"
[ -z "$disk" ] || [[ $disk =~ ^[1-9][0-9]*[MG]$ ]] || die "--disk: '$disk' is not a size like 64M or 1G"
for e in "${envs[@]}"; do
	[[ $e =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env: '$e' is not NAME=VALUE"
done
[ "$check" = 1 ] || [ $# -gt 0 ] || die "no COMMAND (usage: $prog [OPTIONS] -- COMMAND [ARG]...)"
if [ -n "$share" ]; then
	[ -d "$share" ] || die "--share: '$share' is not a directory"
	share=$(cd "$share" && pwd -P)
	case $share in
	/) die "--share /: the host's root is already the guest's (read-only)" ;;
	/proc | /proc/* | /sys | /sys/* | /dev | /dev/* | /run | /run/*)
		die "--share: '$share' would be hidden by the guest's own /proc, /sys, /dev or /run" ;;
	esac
fi
[ -n "$chdir" ] || chdir=${share:-/}
[[ $chdir == /* ]] || die "--chdir: '$chdir' must be an absolute path"
t0=$(date +%s.%N)

# ------------------------------------------------------------ host tools
# What is missing is installed when we may (root with apt-get); --check
# answers 77 when the guest cannot run, so the test suites skip instead of
# failing on machines without QEMU.
unusable() {
	if [ "$check" = 1 ]; then
		echo "$prog: guests unavailable: $*" >&2
		exit 77
	fi
	die "$*"
}
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
newest_kernel() {
	local k
	for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -rV); do
		[ -e "/lib/modules/${k#/boot/vmlinuz-}/modules.dep" ] && { echo "$k"; return; }
	done
	return 0
}
want=()
command -v qemu-system-x86_64 >/dev/null || want+=(qemu-system-x86)
[ -n "$kernel" ] || [ -n "$(newest_kernel)" ] || want+=(linux-image-amd64)
if [ ${#want[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
		unusable "missing ${want[*]} (run as root on Debian to have them installed, or install them)"
	echo "$prog: installing ${want[*]} with apt-get" >&2
	log=$(mktemp)
	export DEBIAN_FRONTEND=noninteractive
	if ! { apt-get install -y -q --no-install-recommends "${want[@]}" ||
		{ apt-get update -q && apt-get install -y -q --no-install-recommends "${want[@]}"; }; } >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		rm -f "$log"
		unusable "apt-get could not install ${want[*]}"
	fi
	rm -f "$log"
fi
command -v qemu-system-x86_64 >/dev/null || unusable "no qemu-system-x86_64"
[ -n "$kernel" ] || kernel=$(newest_kernel)
[ -n "$kernel" ] && [ -r "$kernel" ] || unusable "no kernel: /boot has no vmlinuz-* with modules (install linux-image-amd64)"
kver=$(file -bL "$kernel" 2>/dev/null | sed -n 's/.*version \([^ ]*\) .*/\1/p')
[ -n "$kver" ] || kver=${kernel##*/vmlinuz-}
moddir=/lib/modules/$kver
[ -e "$moddir/modules.dep" ] || unusable "kernel $kernel: no modules in $moddir"
busybox=${SBX_VM_BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] && [[ $(LC_ALL=C ldd "$busybox" 2>&1) == *"not a dynamic executable"* ]] ||
	unusable "$busybox is not a static busybox (install busybox-static)"
for t in cpio xz; do command -v $t >/dev/null || unusable "no $t on the host"; done
if [[ $mode == systemd* ]] && [ ! -x /lib/systemd/systemd ]; then
	unusable "--mode $mode: no /lib/systemd/systemd on the host (install systemd)"
fi

# KVM only if the CPU offers VT-x/AMD-V and QEMU really gets a VM: a /dev/kvm
# without them (e.g. PVM in a nested guest) runs a stock kernel far slower
# than TCG does.
kvm_works() {
	[ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo &&
		echo quit | timeout 20 qemu-system-x86_64 -machine q35,accel=kvm -cpu host -nodefaults \
			-no-user-config -display none -S -monitor stdio >/dev/null 2>&1
}
case $accel in
auto) if kvm_works; then accel=kvm; else accel=tcg; fi ;;
kvm) kvm_works || die "--accel kvm: KVM does not work here (no /dev/kvm access, no vmx/svm, or QEMU refuses)" ;;
esac
if [ "$check" = 1 ]; then
	echo "$prog: guests usable: $kernel ($kver), accel $accel, $(qemu-system-x86_64 --version | head -n 1)"
	exit 0
fi

# ------------------------------------------------------------ the run dir
run=$(mktemp -d "${TMPDIR:-/tmp}/sbxvm.XXXXXX")
qpid=
finish() {
	[ -z "$qpid" ] || kill "$qpid" 2>/dev/null || true
	rm -rf "$run"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# The uncompressed kernel boots through PVH straight into 64-bit code: no
# real-mode setup and no decompression under emulation, seconds saved per
# boot under TCG.  Debian's bzImage carries it as an xz stream.  Kept under
# /var/tmp so that every suite does not decompress it again.
vmlinux_of() {
	local cache=/var/tmp/sbxvm-kernel key off
	key=$(stat -Lc '%i-%s-%Y' "$1")
	if [ -e "$cache/$kver-$key.elf" ]; then
		echo "$cache/$kver-$key.elf"
		return
	fi
	mkdir -p "$cache"
	off=$(LC_ALL=C grep -aboP '\xfd7zXZ\x00' "$1" 2>/dev/null | head -n 1 | cut -d: -f1) || true
	if [ -n "$off" ] && tail -c +$((off + 1)) "$1" | xz -qdc --single-stream >"$run/vmlinux" 2>/dev/null &&
		[ "$(head -c 4 "$run/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
		rm -f "$cache/$kver-"*.elf
		mv "$run/vmlinux" "$cache/$kver-$key.elf.$$" && mv "$cache/$kver-$key.elf.$$" "$cache/$kver-$key.elf"
		echo "$cache/$kver-$key.elf"
	else
		rm -f "$run/vmlinux"
		echo "$1"
	fi
}
boot_image=$(vmlinux_of "$kernel")

# shell-quote one word for the guest's sh
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# ------------------------------------------------------------ initramfs
ird=$run/initramfs
mkdir -p "$ird"/{bin,dev,proc,sys,mnt,newroot,modules,sbxvm}
cp "$busybox" "$ird/bin/busybox"
# The drivers needed to reach the root, in the order modprobe would load them.
for m in virtio_pci virtio_console 9pnet_virtio 9p overlay; do
	modprobe -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" { print $2 }' ||
		die "kernel $kver: modprobe cannot resolve module $m"
done | awk '!seen[$0]++' | while read -r ko; do
	name=${ko##*/}
	case $ko in
	*.ko) cp "$ko" "$ird/modules/$name" ;;
	*.ko.xz) xz -dc "$ko" >"$ird/modules/${name%.xz}" ;;
	*.ko.zst) zstd -qdc "$ko" >"$ird/modules/${name%.zst}" ;;
	*.ko.gz) gzip -dc "$ko" >"$ird/modules/${name%.gz}" ;;
	*) die "unexpected module file $ko" ;;
	esac
	echo "${name%.ko*}.ko" >>"$ird/modules/load-order"
done
[ -s "$ird/modules/load-order" ] || die "kernel $kver: found none of the virtio/9p/overlay modules"

# The command, as the script that both PID-1 flavours run.
{
	echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
	echo 'export HOME=/root LANG=C.UTF-8 TERM=dumb USER=root LOGNAME=root'
	for e in "${envs[@]}"; do echo "export ${e%%=*}=$(q "${e#*=}")"; done
	echo "cd $(q "$chdir") || { echo \"$prog: no directory $chdir in the guest\" >&2; exit 125; }"
	printf 'exec'
	for a in "$@"; do printf ' %s' "$(q "$a")"; done
	echo
} >"$ird/sbxvm/command"
printf 'MODE=%s\nSHARE=%s\n' "$mode" "$(q "$share")" >"$ird/sbxvm/config"

# Stage 1, the initramfs's /init: drivers, the overlay root, the pseudo file
# systems, the share, the cgroups of the mode; then hands the new root over.
cat >"$ird/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
exec </dev/null >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
. /sbxvm/config
halt() { echo "sbxvm init: $*"; poweroff -f; }
while read -r ko; do insmod "/modules/$ko" || halt "insmod $ko failed"; done </modules/load-order
opts=trans=virtio,version=9p2000.L,msize=524288
mkdir -p /mnt/host /mnt/ram
mount -t 9p -o "$opts,ro,cache=loose" hostroot /mnt/host || halt "cannot mount the host's root (9p)"
mount -t tmpfs -o mode=0755 ram /mnt/ram
mkdir /mnt/ram/upper /mnt/ram/work
R=/newroot
mount -t overlay -o lowerdir=/mnt/host,upperdir=/mnt/ram/upper,workdir=/mnt/ram/work root $R ||
	halt "cannot mount the overlay root"
# The virtio-serial ports, found by their names (no udev yet).
i=0
while [ $i -lt 300 ] && ! grep -qx sbxvm.status /sys/class/virtio-ports/*/name 2>/dev/null; do
	usleep 10000; i=$((i + 1))
done
for p in /sys/class/virtio-ports/*; do
	[ -e "$p/name" ] && echo "$(cat "$p/name") /dev/${p##*/}"
done >/sbxvm/ports
for d in dev proc sys; do mount --move /$d $R/$d; done
mount -t proc proc /proc # again, for busybox mount
mount -t tmpfs -o mode=1777,nosuid,nodev tmp $R/tmp
mount -t tmpfs -o mode=0755,nosuid,nodev run $R/run
mkdir -p $R/dev/pts $R/dev/shm $R/dev/mqueue
mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev shm $R/dev/shm
mount -t mqueue mqueue $R/dev/mqueue
ln -sf /proc/self/fd $R/dev/fd
ln -sf /proc/self/fd/0 $R/dev/stdin
ln -sf /proc/self/fd/1 $R/dev/stdout
ln -sf /proc/self/fd/2 $R/dev/stderr
if [ -n "$SHARE" ]; then
	mkdir -p "$R$SHARE"
	mount -t 9p -o "$opts,cache=none" share "$R$SHARE" || halt "cannot mount the share $SHARE (9p)"
fi
mkdir -p $R/sbxvm
cp /bin/busybox /sbxvm/* $R/sbxvm/
hostname sbxvm
case $MODE in
v2)
	mount -t cgroup2 -o nsdelegate cgroup2 $R/sys/fs/cgroup || halt "cannot mount cgroup2"
	for c in $(cat $R/sys/fs/cgroup/cgroup.controllers); do
		echo "+$c" >$R/sys/fs/cgroup/cgroup.subtree_control || echo "sbxvm init: cannot enable the $c controller"
	done
	;;
v1)
	# One hierarchy per controller (the classic systemd v1 layout); the
	# directories are the joined names, the single names symlinks to them.
	mount -t tmpfs -o mode=0755,nosuid,nodev,noexec cgroup $R/sys/fs/cgroup
	for c in $(awk '!/^#/ && $4 == 1 { print $1 }' /proc/cgroups); do
		case $c in cpuacct | net_prio) continue ;; cpu) d=cpu,cpuacct ;; net_cls) d=net_cls,net_prio ;; *) d=$c ;; esac
		mkdir $R/sys/fs/cgroup/$d
		mount -t cgroup -o nosuid,nodev,noexec,$d cgroup $R/sys/fs/cgroup/$d || halt "cannot mount cgroup v1 $d"
		case $d in *,*) for n in $(echo $d | tr , ' '); do ln -s $d $R/sys/fs/cgroup/$n; done ;; esac
	done
	mount -o remount,ro $R/sys/fs/cgroup
	;;
systemd*)
	# systemd mounts /sys/fs/cgroup itself.  It must neither wait for the
	# host's disks (fstab) nor start what the host schedules.
	echo '# sbxvm guest: the root is already mounted' >$R/etc/fstab
	# A host that is itself a container marks it in files systemd would
	# believe (it then ignores the kernel command line): this is a VM.
	rm -f $R/.dockerenv $R/run/.containerenv
	u=$R/etc/systemd/system
	# Nor load modules or mount file systems nobody here uses (the slowest
	# units of the boot under TCG, after udev and journald).
	for m in timers.target systemd-timesyncd.service systemd-pstore.service apt-daily.service \
		apt-daily-upgrade.service systemd-networkd-wait-online.service \
		modprobe@dm_mod.service modprobe@loop.service modprobe@fuse.service modprobe@drm.service \
		modprobe@efi_pstore.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
		systemd-journal-flush.service; do
		ln -sf /dev/null $u/$m
	done
	# No generator is needed (fstab is empty, no getty, no init.d, no
	# crypt/gpt disks): each costs a process start under emulation, and
	# every daemon-reload runs them all again.
	mkdir -p $R/etc/systemd/system-generators
	for g in $R/lib/systemd/system-generators/* $R/usr/lib/systemd/system-generators/*; do
		[ -e "$g" ] && ln -sf /dev/null "$R/etc/systemd/system-generators/${g##*/}"
	done
	cat >$u/sbxvm.target <<UNIT
[Unit]
Description=sbxvm guest: the basic system and the command
Requires=basic.target sbxvm-command.service
After=basic.target sbxvm-command.service
AllowIsolate=yes
UNIT
	cat >$u/sbxvm-command.service <<UNIT
[Unit]
Description=sbxvm guest: the command
Requires=dbus.socket
After=basic.target dbus.socket
[Service]
Type=exec
Delegate=yes
StandardInput=null
StandardOutput=journal+console
ExecStart=/sbxvm/busybox sh /sbxvm/unit-main
ExecStopPost=/sbxvm/busybox sh /sbxvm/unit-report
UNIT
	;;
esac
ip link set lo up
if [ "${MODE#systemd}" != "$MODE" ]; then
	exec switch_root $R /lib/systemd/systemd --unit=sbxvm.target
fi
exec switch_root $R /sbxvm/busybox sh /sbxvm/pid1
EOF
chmod 755 "$ird/init"

# Stage 2 for v2/v1: PID 1 runs the command and powers off.  As PID 1 the
# shell also reaps what the command orphans.
cat >"$ird/sbxvm/pid1" <<'EOF'
B=/sbxvm/busybox
port() { $B awk -v n="$1" '$1 == n { print $2 }' /sbxvm/ports; }
$B env -i /bin/sh /sbxvm/command </dev/null >"$(port sbxvm.stdout)" 2>"$(port sbxvm.stderr)" &
wait $!
echo "exited $?" >"$(port sbxvm.status)"
$B sync
$B poweroff -f
EOF

# Stage 2 for systemd: the unit's main process moves itself into the leaf
# "payload" (a delegated cgroup must keep processes out of inner nodes), then
# becomes the command.  On the v1 layouts it does so in every hierarchy where
# the unit has a cgroup of its own (name=systemd, unified, and the controllers
# systemd realizes for a delegated unit); the others keep it at their root.
# ExecStopPost reports systemd's view of how it ended ($EXIT_CODE
# exited/killed/dumped, $EXIT_STATUS) and powers off at once.
cat >"$ird/sbxvm/unit-main" <<'EOF'
B=/sbxvm/busybox
port() { $B awk -v n="$1" '$1 == n { print $2 }' /sbxvm/ports; }
cg=$($B sed -n 's/^0::\(.*sbxvm-command.service\)$/\1/p; s/^[0-9]*:name=systemd:\(.*\)$/\1/p' /proc/self/cgroup | $B head -n 1)
moved=0
for d in /sys/fs/cgroup /sys/fs/cgroup/*; do
	[ -L "$d" ] || [ ! -e "$d$cg/cgroup.procs" ] && continue
	$B mkdir -p "$d$cg/payload" && echo $$ >"$d$cg/payload/cgroup.procs" && moved=1 ||
		echo "sbxvm: cannot move into $d$cg/payload" >&2
done
[ $moved = 1 ] || echo "sbxvm: found no cgroup of the unit ($cg) to move into" >&2
exec $B env -i /bin/sh /sbxvm/command </dev/null >"$(port sbxvm.stdout)" 2>"$(port sbxvm.stderr)"
EOF
cat >"$ird/sbxvm/unit-report" <<'EOF'
B=/sbxvm/busybox
port() { $B awk -v n="$1" '$1 == n { print $2 }' /sbxvm/ports; }
echo "${EXIT_CODE:-none} ${EXIT_STATUS:-}" >"$(port sbxvm.status)"
$B sync
# The guest is thrown away: power off at once, as the v2/v1 PID 1 does,
# instead of stopping every unit first (half a minute under TCG).
$B poweroff -f
EOF

(cd "$ird" && find . | cpio -o -H newc --quiet) >"$run/initrd" || die "cannot pack the initramfs"

# ------------------------------------------------------------ QEMU
append="console=ttyS0 panic=-1 quiet loglevel=4 mitigations=off rdinit=/init"
case $mode in
v2) append+=" cgroup_no_v1=all" ;;
v1) ;; # the Debian kernel leaves every controller free for v1 by default
systemd) append+=" cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1" ;;
systemd-hybrid) append+=" systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=0" ;;
systemd-legacy) append+=" systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=1" ;;
esac
[[ $mode != systemd* ]] || append+=" systemd.unit=sbxvm.target systemd.show_status=0"
qv() { printf '%s' "${1//,/,,}"; } # a value inside a QEMU option list
[ -n "$console" ] || console=$run/console
: >"$console" || die "--console: cannot write $console"
cpu=max
[ "$accel" = tcg ] || cpu=host
# stdout/stderr: the ports write into pipes whose readers copy to our fds
# (QEMU would truncate a file it opens, and its writes would not move our
# offset in a log shared with the test harness).
exec 5> >(exec cat)
out_pid=$!
exec 6> >(exec cat >&2)
err_pid=$!
qemu=(qemu-system-x86_64 -machine q35,accel="$accel" -cpu "$cpu" -smp "$cpus" -m "$mem"
	-nodefaults -no-user-config -display none -no-reboot
	-kernel "$boot_image" -initrd "$run/initrd" -append "$append"
	-chardev "file,id=console,path=$(qv "$console")" -serial chardev:console
	-device virtio-serial-pci
	-chardev file,id=out,path=/dev/fd/5 -device virtserialport,chardev=out,name=sbxvm.stdout
	-chardev file,id=err,path=/dev/fd/6 -device virtserialport,chardev=err,name=sbxvm.stderr
	-chardev "file,id=status,path=$(qv "$run")/status" -device virtserialport,chardev=status,name=sbxvm.status
	-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap
	-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot)
if [ -n "$share" ]; then
	qemu+=(-fsdev "local,id=share,path=$(qv "$share"),security_model=none,multidevs=remap"
		-device virtio-9p-pci,fsdev=share,mount_tag=share)
fi
if [ -n "$disk" ]; then
	truncate -s "$disk" "$run/disk.img" || die "--disk: cannot make a $disk file in $run"
	qemu+=(-drive "file=$(qv "$run")/disk.img,if=none,id=disk,format=raw,cache=unsafe"
		-device virtio-blk-pci,drive=disk,serial=sbxvm-disk)
fi
[ "$timeout" = 0 ] || qemu=(timeout -k 5 "$timeout" "${qemu[@]}")
t1=$(date +%s.%N)
set +e
"${qemu[@]}" </dev/null &
qpid=$!
wait "$qpid"
qrc=$?
qpid=
set -e
exec 5>&- 6>&-
wait "$out_pid" "$err_pid" 2>/dev/null || true
t2=$(date +%s.%N)

timing() {
	[ "$quiet" = 1 ] || awk -v a="$t0" -v b="$t1" -v c="$t2" -v m="$mode" -v acc="$accel" 'BEGIN {
		printf "'"$prog"': [%s, %s] setup %.1fs, guest %.1fs\n", m, acc, b - a, c - b }' >&2
}
if [ "$timeout" != 0 ] && [ "$qrc" = 124 ]; then
	timing
	echo "$prog: timed out after ${timeout}s (mode $mode); console tail:" >&2
	tail -n 15 "$console" | sed 's/^/  | /' >&2
	exit 124
fi
read -r how status <"$run/status" 2>/dev/null || how=
case $how in
exited) rc=$status ;;
killed | dumped)
	rc=$(kill -l "$status" 2>/dev/null) && rc=$((128 + rc)) || rc=125 ;;
*)
	timing
	echo "$prog: the guest stopped without reporting a status (qemu exit $qrc, mode $mode); console tail:" >&2
	tail -n 25 "$console" | sed 's/^/  | /' >&2
	[ "$console" != "$run/console" ] || echo "$prog: --console FILE keeps the whole boot log" >&2
	exit 125
	;;
esac
timing
exit "$rc"

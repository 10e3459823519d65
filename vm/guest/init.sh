#!/bin/busybox sh
# dma-iommu guest init (PID 1 inside the initramfs built by lib/vm/initramfs.ts).
#
# 1. mount proc/sys/devtmpfs, find the virtio-serial ports dma.stdout, dma.stderr and dma.control
# 2. insmod the kernel's modules (/modules/order; before 1: an IOMMU driver module gates the ports), mount the per-run 9p share
# 3. mount the host's / read-only (9p "hostroot") at /newroot with proc/sys/dev/tmpfs inside it and the
#    caller's cwd writable (9p "dmacwd") at the same path
# 4. bind every edu device (1234:11e8) to vfio-pci, make the VFIO/iommufd nodes accessible
# 5. chroot and run cmd.sh with stdout/stderr on their own ports; report "exit N" on the control port
# 6. power off. Any failure reports "error ..." and powers off (the host turns that into exit code 125).
# Control-port protocol (one line each): "stage NAME", "error MESSAGE", "exit CODE".

/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "dma-iommu init: $*" > /dev/console; }
halt_now() {
  sync
  poweroff -f
  while :; do sleep 60; done
}
ctl_send() { [ -n "$CTL" ] && echo "$*" >&3; }
# PID 1 must never die (the kernel panics): busybox halt/poweroff/reboot (run by the kernel's
# orderly_poweroff, e.g. for SysRq-o, or by COMMAND) signal init with USR1/USR2/TERM.
trap 'halt_now' USR1 USR2 TERM
fail() {
  say "error: $*"
  ctl_send "error $*"
  halt_now
}

# Modules first: with a modular IOMMU driver (Debian's virtio_iommu.ko on --iommu virtio) every
# device behind that IOMMU, the virtio-serial ports included, waits for the driver to load.
MOD_ERROR=""
# Like modprobe, give each module the parameters the kernel command line names for it
# (MODULE.PARAM=VALUE, e.g. vfio_iommu_type1.allow_unsafe_interrupts=1 on the virtio-iommu model).
CMDLINE=$(cat /proc/cmdline)
while read -r m; do
  [ -n "$m" ] || continue
  name=${m%.ko}
  params=""
  for w in $CMDLINE; do
    case "$w" in "$name".*=*) params="$params ${w#"$name".}" ;; esac
  done
  # shellcheck disable=SC2086 # one word per parameter
  insmod "/modules/$m" $params || { MOD_ERROR="insmod $m$params failed"; break; }
done < /modules/order

# The ports appear once virtio_console has probed and QEMU told it their names.
port_path() {
  for d in /sys/class/virtio-ports/vport*; do
    [ -e "$d/name" ] || continue
    if [ "$(cat "$d/name")" = "$1" ]; then echo "/dev/${d##*/}"; return 0; fi
  done
  return 1
}
i=0
while :; do
  CTL=$(port_path dma.control) && OUT=$(port_path dma.stdout) && ERR=$(port_path dma.stderr) &&
    [ -e "$CTL" ] && [ -e "$OUT" ] && [ -e "$ERR" ] && break
  i=$((i + 1))
  [ $i -gt 100 ] && { CTL=""; fail "virtio-serial ports dma.control/dma.stdout/dma.stderr did not appear${MOD_ERROR:+ ($MOD_ERROR)}"; }
  sleep 0.1
done
exec 3>"$CTL"
ctl_send "stage init"

ctl_send "stage modules"
[ -z "$MOD_ERROR" ] || fail "$MOD_ERROR"


ctl_send "stage mount"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 dmarun /run-share || fail "cannot mount the run share"
[ -f /run-share/config.sh ] || fail "run share has no config.sh"
. /run-share/config.sh

# Safety net if the host side vanished: power off after the deadline even if nobody kills QEMU.
if [ -n "$DMA_DEADLINE" ]; then
  ( sleep "$DMA_DEADLINE"; say "guest deadline ($DMA_DEADLINE s) reached"; ctl_send "error guest deadline reached"; poweroff -f ) &
fi

mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro hostroot /newroot ||
  fail "cannot mount the host root (9p hostroot)"
# A view of the host root without the tmpfs mounts below, for paths they would hide.
mount --bind /newroot /hostview || fail "bind /hostview"
cd /newroot || fail "cd /newroot"
mount -t proc proc proc || fail "mount proc"
mount -t sysfs sysfs sys || fail "mount sys"
mount -t devtmpfs devtmpfs dev || fail "mount dev"
mkdir -p dev/pts dev/shm
mount -t devpts devpts dev/pts
mount -t tmpfs -o mode=1777 tmpfs dev/shm
mount -t tmpfs -o mode=1777 tmpfs tmp || fail "mount /tmp"
mount -t tmpfs -o mode=755 tmpfs run || fail "mount /run"
for p in $DMA_KEEP; do
  case "$p" in
    /tmp/* | /run/*)
      [ -e "/hostview$p" ] || continue
      mkdir -p "/newroot$p" && mount --bind "/hostview$p" "/newroot$p" || fail "cannot keep $p visible"
      ;;
  esac
done
mkdir -p "/newroot$DMA_CWD" 2>/dev/null
mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144${DMA_CWD_CACHE:+,cache=$DMA_CWD_CACHE}" dmacwd "/newroot$DMA_CWD" ||
  fail "cannot mount the working directory $DMA_CWD (9p dmacwd)"
mkdir -p /newroot/run/dma-iommu && mount --bind /run-share /newroot/run/dma-iommu || fail "bind the run share"

ctl_send "stage vfio"
n=0
for dev in /sys/bus/pci/devices/*; do
  [ "$(cat "$dev/vendor")" = 0x1234 ] && [ "$(cat "$dev/device")" = 0x11e8 ] || continue
  bdf=${dev##*/}
  echo vfio-pci > "$dev/driver_override" || fail "driver_override $bdf"
  [ -e "$dev/driver" ] && echo "$bdf" > "$dev/driver/unbind"
  echo "$bdf" > /sys/bus/pci/drivers_probe
  drv=$(readlink "$dev/driver")
  [ "${drv##*/}" = vfio-pci ] || fail "could not bind $bdf to vfio-pci (driver: ${drv:-none})"
  grp=$(readlink "$dev/iommu_group")
  [ -n "$grp" ] || fail "$bdf has no IOMMU group (is the vIOMMU on?)"
  n=$((n + 1))
done
[ "$n" = "$DMA_DEVICES" ] || fail "found $n edu devices, expected $DMA_DEVICES"
for node in /dev/iommu /dev/vfio/* /dev/vfio/devices/*; do
  [ -c "$node" ] && chmod 0666 "$node"
done

ctl_send "stage run"
chroot /newroot /usr/bin/env -i /bin/sh /run/dma-iommu/cmd.sh < /dev/null > "$OUT" 2> "$ERR" 3>&-
rc=$?
ctl_send "exit $rc"
cd /
halt_now

#!/bin/sh
# /init of the atlas guest (copied by guest/run, which replaces the nonce). Mounts the usual
# file systems, runs /atlas/.command, reports its exit status on the console as
# "ATLAS-GUEST-EXIT <nonce> <status>", and resets the machine (QEMU runs with -no-reboot).
/bin/busybox --install -s /bin
export PATH=/atlas:/atlas/bin:/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=linux
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /out
mount -t tmpfs tmpfs /out
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
ip link set lo up 2>/dev/null
hostname atlas-guest
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >/etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' >/etc/group
cd /atlas
echo "atlas-guest: running $(cat /atlas/.command)"
sh /atlas/.command </dev/null
status=$?
if [ -f /atlas/.out ]; then
	# guest/run --out: /out as a gzipped tar, base64 lines on the console (kernel messages off
	# the console meanwhile, so that none lands inside a line).
	dmesg -n 1
	(cd /out && tar czf - .) | base64 | sed 's/^/ATLAS-GUEST-OUT @NONCE@ /'
fi
echo "ATLAS-GUEST-EXIT @NONCE@ $status"
sync
reboot -f

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
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
ip link set lo up 2>/dev/null
hostname atlas-guest
echo "root:x:0:0:root:/root:/bin/sh" >/etc/passwd
echo "root:x:0:" >/etc/group
cd /atlas
echo "atlas-guest: running $(cat /atlas/.command)"
sh /atlas/.command </dev/null
status=$?
echo "ATLAS-GUEST-EXIT @NONCE@ $status"
sync
reboot -f

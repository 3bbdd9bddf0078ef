#!/usr/bin/env bash
# jobq where its users run it: a Debian 12 guest under qemu with systemd as PID 1, cgroup v2 only, a normal user
# alice (uid 1000, group adm) whose systemd user manager lingers, and systemd-oomd with Debian's (= Ubuntu's) policy.
#
#   scripts/systemd-vm.sh build                   build the image once (root; cached, keyed by a hash of its recipe)
#   scripts/systemd-vm.sh start [--mem SIZE]      boot a fresh overlay (TCG; KVM with JOBQ_VM_KVM=1), wait until ready
#   scripts/systemd-vm.sh sh [--root] CMD...      run CMD as alice (or root) over ssh; exits with CMD's code
#   scripts/systemd-vm.sh copy HOSTDIR GUESTDIR [TAR-OPTION...]   copy a tree in, owned by alice
#   scripts/systemd-vm.sh oomd on|off             systemd-oomd with the shipped policy, or masked (the image's default)
#   scripts/systemd-vm.sh stop                    power off; TERM/KILL only a qemu that is provably ours
#   scripts/systemd-vm.sh test                    CI: build, start, oomd on, copy the checkout, run test/guest as alice
#
# Environment: JOBQ_VM_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/jobq-systemd-vm), JOBQ_VM_KVM=1, JOBQ_VM_SKIP=1
# (test skips), JOBQ_VM_MIRROR (apt mirror URL or sources file for the guest; default mmdebstrap's, deb.debian.org),
# JOBQ_VM_NODE (node binary copied in; default the host's), JOBQ_VM_SUITE_TIMEOUT (seconds; default 900).
# Measured on our 2-core CI machines: nested KVM hangs the guest kernel, so TCG is the default (boot ~25 s); one ssh
# round trip costs 1.2-1.7 s under TCG, so the script makes few of them.
set -euo pipefail

SELF=$(readlink -f "$0")
DIR=${JOBQ_VM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/jobq-systemd-vm}
RUN=${JOBQ_VM_RUN:-$DIR/run} # the running guest: overlay, pidfile, ssh port, console log
KEY=$DIR/id_ed25519
SUITE=bookworm
PACKAGES=systemd,systemd-sysv,systemd-oomd,dbus,dbus-user-session,libpam-systemd,udev,kmod,linux-image-amd64,initramfs-tools,zstd,openssh-server,tmux,python3,procps,psmisc,jq,util-linux,iproute2,less,ca-certificates,libstdc++6,bsdextrautils
# Debian's systemd-oomd ships the Ubuntu 22.04 policy as two drop-ins; "off" hides them behind /dev/null links in /etc.
DROPINS="/etc/systemd/system/user@.service.d/10-oomd-user-service-defaults.conf /etc/systemd/system/-.slice.d/10-oomd-root-slice-defaults.conf"
OOMD_OFF="for f in $DROPINS; do mkdir -p \${f%/*} && ln -sfn /dev/null \$f; done; systemctl mask -q systemd-oomd.service systemd-oomd.socket"
SSH=(ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o IdentitiesOnly=yes
  -o ConnectTimeout=15 -o ServerAliveInterval=10 -o ServerAliveCountMax=12 -i "$KEY")

log() { echo "systemd-vm: $*" >&2; }
# With JOBQ_VM_WHY set (by `test`), the reason goes there, for test's one line, instead of to stderr.
die() {
  if [ -n "${JOBQ_VM_WHY:-}" ]; then echo "$*" >"$JOBQ_VM_WHY"; else log "$*"; fi
  exit 1
}
stamp() { echo "${EPOCHREALTIME/[.,]/}"; }
since() { # seconds since a stamp, to a tenth
  local d=$(($(stamp) - $1))
  echo "$((d / 1000000)).$((d / 100000 % 10))"
}

node_bin() { readlink -f "${JOBQ_VM_NODE:-$(command -v node || echo /nonexistent)}"; }

# The image's name: a hash of everything that makes it (these functions, the package list, the key, the node).
image_dir() {
  local h
  h=$({
    declare -f bootstrap configure
    echo "$SUITE $PACKAGES $DROPINS $OOMD_OFF ${JOBQ_VM_MIRROR:-}"
    cat "$KEY.pub" 2>/dev/null || true
    "$(node_bin)" --version 2>/dev/null || true
  } | sha256sum | cut -c1-16)
  echo "$DIR/image-$h"
}

# ---------------------------------------------------------------- build

host_tools() {
  local need=() t
  for t in qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs \
    ssh:openssh-client mount:mount; do
    command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
  done
  [ ${#need[@]} = 0 ] && return 0
  command -v apt-get >/dev/null || die "missing host packages (${need[*]}) and no apt-get to install them"
  log "installing host packages: ${need[*]}"
  # A fresh machine may have no package lists yet.
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >&2 ||
    die "apt-get could not install ${need[*]}"
}

bootstrap() { # bootstrap ROOT LOG: a minimal Debian with the guest's packages
  local mirror=()
  [ -z "${JOBQ_VM_MIRROR:-}" ] || mirror=("$JOBQ_VM_MIRROR")
  mmdebstrap --mode=root --variant=minbase --include="$PACKAGES" --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' "$SUITE" "$1" "${mirror[@]}" >"$2" 2>&1
}

configure() { # configure ROOT NODE: what turns the tree into a user's machine
  local r=$1 u h f
  echo jobq-vm >"$r/etc/hostname"
  printf '127.0.0.1 localhost jobq-vm\n::1 localhost\n' >"$r/etc/hosts"
  printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$r/etc/fstab"
  mkdir -p "$r/etc/systemd/network"
  printf '[Match]\nName=e*\n\n[Network]\nDHCP=ipv4\n' >"$r/etc/systemd/network/20-wired.network"
  # A fixed machine-id: no first-boot preset pass on each fresh overlay (it would enable systemd-oomd).
  chroot "$r" systemd-machine-id-setup >/dev/null 2>&1
  chroot "$r" systemctl enable -q systemd-networkd.service
  # Nothing should wait for the network or run apt behind a test's back.
  chroot "$r" systemctl disable -q systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer 2>/dev/null || true
  # The policy `oomd on` restores must be the one the package ships; fail loudly if Debian ever moves it.
  for f in $DROPINS; do
    [ -f "$r/usr/lib${f#/etc}" ] || [ -f "$r/lib${f#/etc}" ] || die "systemd-oomd no longer ships ${f#/etc/systemd/system/}"
  done
  chroot "$r" sh -c "$OOMD_OFF"
  # Key-only logins; the test makes several ssh connections at once.
  printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\nMaxStartups 32:30:64\n' \
    >"$r/etc/ssh/sshd_config.d/jobq-vm.conf"
  chroot "$r" useradd -m -u 1000 -G adm -s /bin/bash alice # adm reads the journal, as Ubuntu's first user does
  mkdir -p "$r/var/lib/systemd/linger" && : >"$r/var/lib/systemd/linger/alice" # = loginctl enable-linger alice
  for u in root alice; do
    h=$([ $u = root ] && echo /root || echo /home/$u)
    install -d -m 700 "$r$h/.ssh" && install -m 600 "$KEY.pub" "$r$h/.ssh/authorized_keys"
    chroot "$r" chown -R "$u:$u" "$h/.ssh"
  done
  install -m 755 "$2" "$r/usr/local/bin/node"
  chroot "$r" /usr/local/bin/node --version >/dev/null || die "the host's node does not run in the guest"
}

cmd_build() {
  mkdir -p "$DIR" || die "cannot create $DIR"
  exec 9>"$DIR/build.lock" && flock 9 # two builds at once (parallel CI jobs) would share one temp tree
  local img t0 tmp node
  img=$(image_dir)
  if [ -f "$img/ok" ]; then
    log "image cached: $img"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "building the image needs root (mmdebstrap --mode=root keeps file owners), and none is cached in $DIR"
  node=$(node_bin)
  [ -x "$node" ] || die "no node binary to copy into the guest (set JOBQ_VM_NODE)"
  host_tools
  [ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C jobq-systemd-vm -f "$KEY"
  img=$(image_dir) # the key is part of the recipe
  t0=$(stamp)
  tmp=$img.tmp
  rm -rf --one-file-system "$tmp" && mkdir -p "$tmp"
  # shellcheck disable=SC2064 # expand now: the path is fixed
  trap "rm -rf --one-file-system '$tmp'" EXIT
  log "building the $SUITE image with mmdebstrap (about 3 minutes)"
  bootstrap "$tmp/root" "$tmp/mmdebstrap.log" || {
    tail -20 "$tmp/mmdebstrap.log" >&2
    die "mmdebstrap failed (is a Debian mirror reachable? JOBQ_VM_MIRROR overrides it)"
  }
  configure "$tmp/root" "$node"
  # Direct kernel boot: no bootloader, so the kernel and initrd live beside the disk.
  local kernel=("$tmp"/root/boot/vmlinuz-*) initrd=("$tmp"/root/boot/initrd.img-*)
  { cp "${kernel[-1]}" "$tmp/vmlinuz" && cp "${initrd[-1]}" "$tmp/initrd.img"; } || die "no kernel or initrd in the image"
  truncate -s 6G "$tmp/base.img"
  mkfs.ext4 -q -F -L jobq-root -d "$tmp/root" "$tmp/base.img" || die "mkfs.ext4 -d failed"
  rm -rf --one-file-system "$tmp/root"
  mv "$tmp/mmdebstrap.log" "$tmp/build.log"
  echo "built $(date -u +%FT%TZ) in $(since "$t0") s, node $("$node" --version)" >"$tmp/ok"
  mv "$tmp" "$img"
  trap - EXIT
  # Older recipes' images are dead weight (about 1 GB each); a guest still booted from one keeps its open file.
  find "$DIR" -maxdepth 1 -name 'image-*' ! -path "$img" -exec rm -rf --one-file-system {} +
  log "$(cat "$img/ok"): $img ($(du -sh "$img" | cut -f1) on disk)"
}

# ---------------------------------------------------------------- the running guest

our_qemu() { # the pidfile's pid, only if it is a live qemu on our overlay (never a recycled pid)
  local pid cmdline
  pid=$(tr -dc 0-9 2>/dev/null <"$RUN/qemu.pid") && [ -n "$pid" ] || return 1
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  case $cmdline in "qemu-system-x86_64 "*" file=$RUN/overlay.qcow2,"*) ;; *) return 1 ;; esac
  grep -q '^State:[[:space:]]*[^Z]' "/proc/$pid/status" 2>/dev/null || return 1
  echo "$pid"
}

guest() { # guest USER CMDLINE: CMDLINE through the login shell of USER; its exit code (255: ssh failed)
  local port
  port=$(cat "$RUN/port" 2>/dev/null) || die "no guest is running (scripts/systemd-vm.sh start)"
  "${SSH[@]}" -p "$port" "$1@127.0.0.1" "$2"
}

free_port() {
  local p _
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || {
      echo "$p"
      return 0
    }
  done
  die "no free local port for ssh"
}

cmd_start() {
  local mem=2G img accel=tcg cpu=max limit=900 port t0 end
  while [ $# -gt 0 ]; do
    case $1 in
    --mem) mem=${2:?--mem SIZE}; shift 2 ;;
    --mem=*) mem=${1#*=}; shift ;;
    *) die "start: unknown option $1" ;;
    esac
  done
  img=$(image_dir)
  [ -f "$img/ok" ] || die "no image for this recipe in $DIR (scripts/systemd-vm.sh build)"
  command -v qemu-system-x86_64 >/dev/null || die "no qemu-system-x86_64 (scripts/systemd-vm.sh build installs it)"
  ! our_qemu >/dev/null || die "a guest already runs from $RUN (scripts/systemd-vm.sh stop)"
  # Nested KVM hangs on our CI machines, and probing it costs a minute: KVM only when asked.
  [ "${JOBQ_VM_KVM:-}" != 1 ] || { accel=kvm cpu=host limit=180; }
  mkdir -p "$RUN"
  rm -f "$RUN/qemu.pid" "$RUN/port" "$RUN/console.log" "$RUN/overlay.qcow2"
  qemu-img create -q -f qcow2 -F raw -b "$img/base.img" "$RUN/overlay.qcow2" # each boot starts from the clean image
  port=$(free_port)
  t0=$(stamp)
  # psi=1: Debian's kernel has pressure stall information off by default, and systemd-oomd needs it.
  # cache=unsafe: the overlay is thrown away, so flushes to it need not reach the host's disk.
  qemu-system-x86_64 -name jobq-systemd-vm -nodefaults -machine "q35,accel=$accel" -cpu "$cpu" -smp 2 -m "$mem" \
    -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 loglevel=4 psi=1 systemd.show_status=0" \
    -drive "file=$RUN/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe" \
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=n0 -device virtio-rng-pci \
    -display none -serial "file:$RUN/console.log" -no-reboot -daemonize -pidfile "$RUN/qemu.pid" 2>"$RUN/qemu.log" ||
    die "qemu failed to start: $(tail -1 "$RUN/qemu.log")"
  echo "$port" >"$RUN/port"
  end=$((SECONDS + limit))
  # Ready = what a logged-in user gets: the lingering user manager and its D-Bus socket.
  until guest root 'systemctl is-active -q user@1000.service && test -S /run/user/1000/bus' </dev/null 2>/dev/null; do
    our_qemu >/dev/null || die "qemu exited during boot: $(tail -3 "$RUN/qemu.log" "$RUN/console.log" 2>/dev/null | tr '\n' ' ')"
    [ "$SECONDS" -lt "$end" ] || {
      tail -20 "$RUN/console.log" >&2
      die "guest not ready after $limit s ($accel; console: $RUN/console.log)"
    }
    sleep 1
  done
  log "ready after $(since "$t0") s ($accel, $mem, 2 vCPUs, ssh port $port)"
}

cmd_stop() {
  local pid sig _
  pid=$(our_qemu) || {
    log "no guest running"
    return 0
  }
  timeout 20 "${SSH[@]}" -p "$(cat "$RUN/port")" root@127.0.0.1 'systemctl poweroff --no-block' </dev/null >/dev/null 2>&1 || true
  for sig in NONE TERM KILL; do
    [ $sig = NONE ] || { our_qemu >/dev/null && kill -$sig "$pid" && log "guest did not power off; sent $sig to qemu $pid"; } || true
    for _ in $(seq 60); do
      our_qemu >/dev/null || break 2
      sleep 0.5
    done
  done
  rm -f "$RUN/qemu.pid" "$RUN/port"
  log "stopped"
}

cmd_sh() {
  local user=alice
  [ "${1:-}" != --root ] || { user=root && shift; }
  [ $# -gt 0 ] || die "sh: no command"
  # One argument goes to the guest's shell as written ('a | b'); several are quoted word by word.
  if [ $# = 1 ]; then guest "$user" "$1"; else guest "$user" "$(printf '%q ' "$@")"; fi
}

cmd_copy() {
  local src=${1:-} dst=${2:-}
  { [ -d "$src" ] && [ -n "$dst" ]; } || die "copy HOSTDIR GUESTDIR [TAR-OPTION...]"
  shift 2
  # Extracted by alice, so alice owns every file; GUESTDIR may be relative to her home. A file that changed while
  # tar read it (others work in the same checkout) is copied as read, not an error: tar's exit 1 is accepted.
  tar -C "$src" --warning=no-file-changed "$@" -cf - . | guest alice "mkdir -p $(printf %q "$dst") && tar -C $(printf %q "$dst") -xf -" ||
    [ "${PIPESTATUS[*]}" = "1 0" ]
}

cmd_oomd() {
  case ${1:-} in
  # "on" holds only once oomd itself lists alice's user manager as watched (it learns it from PID 1, not at once).
  on) guest root "set -e; rm -f $DROPINS; systemctl unmask -q systemd-oomd.socket systemd-oomd.service; systemctl daemon-reload
      systemctl enable -q --now systemd-oomd.socket systemd-oomd.service
      for i in \$(seq 20); do
        oomctl | awk '/Pressure Duration:/ {d = \$NF} /Path:/ {p = \$2} p ~ /user@1000/ && /Memory Pressure Limit:/ {l = \$NF}
          END {if (!l) exit 1; print \"systemd-oomd on: kills in user@1000.service above \" l \" memory pressure for \" d}' && exit 0
        sleep 0.5
      done
      echo 'systemd-oomd does not watch user@1000.service' >&2; exit 1" </dev/null ;;
  off) guest root "set -e; systemctl disable -q --now systemd-oomd.service systemd-oomd.socket; $OOMD_OFF; systemctl daemon-reload
      echo systemd-oomd off: \$(systemctl is-active systemd-oomd)" </dev/null ;;
  *) die "oomd on|off" ;;
  esac
}

# ---------------------------------------------------------------- CI

unavailable() { # no guest can be had here: skip, saying why, except in CI, which must run the suite
  if [ "${CI:-}" = true ]; then
    log "the guest suite cannot run, and CI=true requires it: $*"
    exit 1
  fi
  echo "guest suite skipped: $*"
  exit 0
}

cmd_test() {
  if [ "${JOBQ_VM_SKIP:-}" = 1 ]; then
    echo "guest suite skipped: JOBQ_VM_SKIP=1"
    return 0
  fi
  local repo why t tb tboot toomd tcopy tsuite tstop rc=0 limit=${JOBQ_VM_SUITE_TIMEOUT:-900}
  repo=$(dirname "$(dirname "$SELF")")
  { [ -f "$repo/node_modules/vitest/vitest.mjs" ] && [ -d "$repo/dist" ]; } || die "test: run npm ci (it builds dist/) in $repo first"
  mkdir -p "$DIR" 2>/dev/null || unavailable "cannot create $DIR"
  # A run dir of its own: a guest someone else started from $DIR/run is left alone.
  export JOBQ_VM_RUN
  JOBQ_VM_RUN=$(mktemp -d "$DIR/test-run.XXXXXX")
  why=$JOBQ_VM_RUN/why
  trap 'bash "$SELF" stop 2>/dev/null; rm -rf --one-file-system "$JOBQ_VM_RUN"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  t=$(stamp)
  JOBQ_VM_WHY=$why bash "$SELF" build || unavailable "$(cat "$why" 2>/dev/null || echo 'the image build failed (output above)')"
  tb=$(since "$t") t=$(stamp)
  JOBQ_VM_WHY=$why bash "$SELF" start --mem 1536M || unavailable "$(cat "$why" 2>/dev/null || echo 'the guest did not boot (output above)')"
  tboot=$(since "$t") t=$(stamp)
  bash "$SELF" oomd on || die "could not turn systemd-oomd on in the guest"
  toomd=$(since "$t") t=$(stamp)
  # The host's checkout as built by npm ci: node_modules and dist included; .git and test scratch dirs are not needed.
  bash "$SELF" copy "$repo" /home/alice/jobq --exclude=./.git --exclude='.jobq-test-*' || die "copying the checkout in failed"
  tcopy=$(since "$t") t=$(stamp)
  # A plain ssh login: pam_systemd gives it a session, XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS, as users have.
  timeout -k 10 "$limit" bash "$SELF" sh \
    'cd ~/jobq && JOBQ_GUEST=1 exec node node_modules/vitest/vitest.mjs run --config test/guest/vitest.config.ts' \
    </dev/null 2>&1 | tee "$JOBQ_VM_RUN/suite.log" || rc=$?
  tsuite=$(since "$t") t=$(stamp)
  [ "$rc" != 124 ] || log "the guest suite ran past $limit s (JOBQ_VM_SUITE_TIMEOUT) and was stopped"
  bash "$SELF" stop
  tstop=$(since "$t")
  echo "systemd-vm: build ${tb}s, boot ${tboot}s, oomd ${toomd}s, copy ${tcopy}s, suite ${tsuite}s, stop ${tstop}s; suite exit $rc"
  # The suite's own summary last, for whoever reads the last line.
  grep -E '^[0-9]+ passed, [0-9]+ failed' "$JOBQ_VM_RUN/suite.log" | tail -1 || true
  return "$rc"
}

case ${1:-} in
build | start | stop | sh | copy | oomd | test)
  cmd=$1
  shift
  "cmd_$cmd" "$@"
  ;;
*)
  sed -n '5,11p' "$SELF" | sed 's/^# \{0,1\}//'
  [ -z "${1:-}" ] || exit 2
  ;;
esac

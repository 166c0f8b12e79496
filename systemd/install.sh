#!/bin/sh
# Installs (or removes) lsusd, lsused, wakealarmd, lsus-idle,
# request-suspend and lsusctl with their systemd units, tmpfiles.d and
# sysusers.d entries, man pages and shell completions. See systemd/README.md.
#
#   systemd/install.sh [--prefix P] [--destdir D] [--with-logind] [--uninstall]
#
#   --prefix P    where to install (default /usr/local): P/sbin (daemons),
#                 P/bin (request-suspend, lsusctl), P/lib/systemd/system,
#                 P/lib/tmpfiles.d, P/lib/sysusers.d, P/share/man,
#                 P/share/{bash-completion/completions,zsh/site-functions,
#                 fish/vendor_completions.d}; with P=/usr the units go to
#                 /usr/lib/systemd/system as well. systemd reads all of these.
#   --destdir D   stage everything under D (for packaging): nothing is
#                 started, no user is created.
#   --with-logind also lsus-logind (P/sbin), its unit (enabled on a live
#                 system) and the drop-in that sends logind's suspends
#                 through lsusd (P/lib/systemd/system/
#                 systemd-suspend.service.d/lsusd.conf).
#   --uninstall   remove what an install put there, lsus-logind and the
#                 drop-in included (the group `suspend` and the users
#                 `lsused` and `lsus-idle` stay: files may still belong
#                 to them).
#
# The binaries come from target/release (built with `cargo build --release`
# when they are missing and cargo is there). On a live system (no --destdir,
# systemd running) it also creates the group and the run directory and
# reloads systemd; enabling the services is left to you. lsus-idle (idle
# autosuspend) is installed with its unit but never enabled by this script.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
prefix=/usr/local
destdir=
uninstall=no
with_logind=no

usage() {
    sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'
    exit "$1"
}
while [ $# -gt 0 ]; do
    case $1 in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
    --destdir=*) destdir=${1#*=}; shift ;;
    --uninstall) uninstall=yes; shift ;;
    --with-logind) with_logind=yes; shift ;;
    -h | --help) usage 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage 2 >&2 ;;
    esac
done
case $prefix in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac

daemons="lsusd lsused wakealarmd lsus-idle"
tools="request-suspend lsusctl"
units="lsusd.service lsused.service wakealarmd.service lsus-idle.service"
# Removing takes everything away, whatever the install had.
if [ "$with_logind" = yes ] || [ "$uninstall" = yes ]; then
    daemons="$daemons lsus-logind"
    units="$units lsus-logind.service"
fi
dropin=systemd-suspend.service.d/lsusd.conf
sbindir=$prefix/sbin
bindir=$prefix/bin
unitdir=$prefix/lib/systemd/system
tmpfilesdir=$prefix/lib/tmpfiles.d
sysusersdir=$prefix/lib/sysusers.d
mandir=$prefix/share/man
bashdir=$prefix/share/bash-completion/completions
zshdir=$prefix/share/zsh/site-functions
fishdir=$prefix/share/fish/vendor_completions.d

live=no
if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then
    live=yes
fi

# Every file this script installs, one "SOURCE TARGET MODE" per line.
manifest() {
    for b in $daemons; do echo "$root/target/release/$b $sbindir/$b 0755"; done
    for b in $tools; do echo "$root/target/release/$b $bindir/$b 0755"; done
    for u in $units; do echo "$here/$u $unitdir/$u 0644"; done
    echo "$here/tmpfiles.conf $tmpfilesdir/lsusd.conf 0644"
    echo "$here/sysusers.conf $sysusersdir/lsusd.conf 0644"
    case $units in *lsus-logind*) echo "$here/$dropin $unitdir/$dropin 0644" ;; esac
    for page in "$root"/doc/man/man*/*; do
        sec=$(basename "$(dirname "$page")")
        case $page in
        */lsus-logind.*) case $daemons in *lsus-logind*) ;; *) continue ;; esac ;;
        esac
        echo "$page $mandir/$sec/$(basename "$page") 0644"
    done
    for b in $daemons $tools; do
        echo "$root/doc/completions/bash/$b $bashdir/$b 0644"
        echo "$root/doc/completions/zsh/_$b $zshdir/_$b 0644"
        echo "$root/doc/completions/fish/$b.fish $fishdir/$b.fish 0644"
    done
}

if [ "$uninstall" = yes ]; then
    if [ "$live" = yes ]; then
        # shellcheck disable=SC2086 # a list of unit names
        systemctl disable --now $units 2>/dev/null || true
    fi
    manifest | while read -r _src dst _mode; do
        if [ -e "$destdir$dst" ] || [ -L "$destdir$dst" ]; then
            rm -f "$destdir$dst"
            echo "removed $destdir$dst"
        fi
    done
    rmdir "$destdir$unitdir/systemd-suspend.service.d" 2>/dev/null || true
    [ "$live" = yes ] && systemctl daemon-reload
    exit 0
fi

missing=
for b in $daemons $tools; do
    [ -x "$root/target/release/$b" ] || missing="$missing $b"
done
if [ -n "$missing" ]; then
    command -v cargo >/dev/null 2>&1 ||
        { echo "install.sh: target/release lacks$missing: build with cargo build --release" >&2; exit 1; }
    echo "building$missing (cargo build --release)"
    pkgs=
    for b in $missing; do pkgs="$pkgs -p $b"; done
    # shellcheck disable=SC2086 # a list of options
    (cd "$root" && cargo build --release --bins $pkgs)
fi

manifest | while read -r src dst mode; do
    [ -e "$src" ] || { echo "install.sh: $src is missing" >&2; exit 1; }
    mkdir -p "$destdir$(dirname "$dst")"
    case $dst in
    *.service | *.service.d/*.conf)
        # ExecStart= names the programs where this prefix puts them.
        sed -e "s|^ExecStart=/usr/local/sbin/|ExecStart=$sbindir/|" \
            -e "s|^ExecStart=/usr/local/bin/|ExecStart=$bindir/|" "$src" >"$destdir$dst.tmp"
        chmod "$mode" "$destdir$dst.tmp"
        mv -f "$destdir$dst.tmp" "$destdir$dst"
        ;;
    *) install -m "$mode" "$src" "$destdir$dst" ;;
    esac
    echo "installed $destdir$dst"
done

if [ "$live" = yes ]; then
    systemd-sysusers "$sysusersdir/lsusd.conf"
    systemd-tmpfiles --create "$tmpfilesdir/lsusd.conf"
    systemctl daemon-reload
    if [ "$with_logind" = yes ]; then
        systemctl enable lsus-logind.service
        echo "lsus-logind is enabled; logind's suspends now go through lsusd (request-suspend)"
    fi
    echo
    echo "next: systemctl enable --now lsusd lsused wakealarmd"
    echo "      systemctl enable --now lsus-idle   # optional: suspend after 5 min without input"
    [ "$with_logind" = yes ] && echo "      systemctl start lsus-logind"
    echo "      usermod -aG suspend USER   # for each user who may block, watch or request suspend"
fi

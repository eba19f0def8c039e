#!/bin/sh
# run.sh - starts facteurd in the foreground on the quickstart configuration
# (what `make run` does after building).
#
# The shipped main.cf uses placeholders because main.cf paths must be
# absolute: this script writes the effective configuration to ./run/conf/
# (replacing @RUNDIR@, @UID@ and @GID@), copies the maps beside it, creates
# ./run/queue and ./run/mail, prints how to send a test message, then execs
# build/bin/facteurd -c ./run/conf -f. ./run is at the top of the source tree
# (`make clean` removes it). Queue and maildirs are kept between runs; the
# configuration is rewritten every time from the shipped files.
#
# Started as root, facteurd binds its ports and then runs as mail_owner, as
# a real installation does: this script then uses the system user "vmail"
# (created if missing), gives it the queue, the maildirs and the log, and
# sets mail_owner and the uid/gid maps to it. If vmail cannot reach ./run
# (a tree under /root, mode 0700), the run directory is placed in
# /var/tmp/facteur-quickstart and ./run becomes a symbolic link to it.
#
# Environment: FACTEUR_BUILD (default: <tree>/build), FACTEUR_RUNDIR
# (default: <tree>/run).

set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
build=${FACTEUR_BUILD:-$top/build}
rundir=${FACTEUR_RUNDIR:-$top/run}
daemon=$build/bin/facteurd

if [ ! -x "$daemon" ]; then
	echo "run.sh: $daemon not found; build it first (make all)" >&2
	exit 1
fi

user=""
if [ "$(id -u)" = 0 ]; then
	user=vmail
	if ! id "$user" >/dev/null 2>&1; then
		echo "run.sh: creating the system user $user (owner of queue and maildirs)"
		if command -v useradd >/dev/null 2>&1; then
			useradd --system --user-group --no-create-home --home-dir /nonexistent \
				--shell /usr/sbin/nologin --comment "facteur virtual mail" "$user"
		elif command -v pw >/dev/null 2>&1; then
			pw groupadd "$user" 2>/dev/null || true
			pw useradd "$user" -g "$user" -d /nonexistent -s /usr/sbin/nologin \
				-c "facteur virtual mail"
		else
			echo "run.sh: cannot create user $user (no useradd or pw)" >&2
			exit 1
		fi
	fi
fi

# True if every directory from / down to $1 can be searched by others.
reachable() {
	p=$1
	while [ -n "$p" ] && [ "$p" != / ]; do
		if [ -d "$p" ] && [ -z "$(find "$p" -maxdepth 0 -perm -0001 2>/dev/null)" ]; then
			return 1
		fi
		p=$(dirname "$p")
	done
	return 0
}

if [ -n "$user" ] && [ -z "${FACTEUR_RUNDIR:-}" ] && [ ! -L "$rundir" ] &&
	! reachable "$top"; then
	if [ -e "$rundir" ]; then
		echo "run.sh: $user cannot reach $rundir (a parent directory is not" >&2
		echo "  searchable by others); remove it to let run.sh move it, or set FACTEUR_RUNDIR" >&2
		exit 1
	fi
	mkdir -p /var/tmp/facteur-quickstart
	chmod 755 /var/tmp/facteur-quickstart
	ln -s /var/tmp/facteur-quickstart "$rundir"
fi
mkdir -p "$rundir"
# The physical path: main.cf must name directories the daemon can reach.
rundir=$(cd -P "$rundir" && pwd -P)
case $rundir in
*[\|\&\\\ \	]*)
	# main.cf lists split on white space; sed below uses | and &.
	echo "run.sh: the run directory path must not contain white space, |, & or \\: $rundir" >&2
	exit 1
	;;
esac
if [ -n "$user" ]; then
	uid=$(id -u "$user")
	gid=$(id -g "$user")
else
	uid=$(id -u)
	gid=$(id -g)
fi

mkdir -p "$rundir/conf" "$rundir/queue" "$rundir/mail"
chmod 755 "$rundir" "$rundir/conf"
chmod 700 "$rundir/queue" "$rundir/mail"
touch "$rundir/maillog"
for f in main.cf master.cf vmailbox valias; do
	sed -e "s|@RUNDIR@|$rundir|g" -e "s|@UID@|$uid|g" -e "s|@GID@|$gid|g" \
		"$here/$f" >"$rundir/conf/$f.tmp"
	mv "$rundir/conf/$f.tmp" "$rundir/conf/$f"
done
if [ -n "$user" ]; then
	printf '\n# Added by run.sh (started as root): the user facteurd runs as.\nmail_owner = %s\n' \
		"$user" >>"$rundir/conf/main.cf"
	chown -R "$uid:$gid" "$rundir/queue" "$rundir/mail" "$rundir/maillog"
fi

cat <<EOF
facteur quickstart
  configuration  $rundir/conf/ (main.cf, master.cf, vmailbox, valias)
  listening on   127.0.0.1:2525 (domain example.test: alice@, bob@;
                 postmaster@ and abuse@ are aliases of alice@)
  log            $rundir/maillog (and this terminal)

Send a test message from another terminal:

  swaks --server 127.0.0.1:2525 --from someone@example.org --to alice@example.test

or without swaks:

  { printf 'EHLO me\r\n'; sleep 1; printf 'MAIL FROM:<someone@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n'; sleep 1; printf 'Subject: hello\r\n\r\nHello Alice.\r\n.\r\nQUIT\r\n'; sleep 1; } | nc 127.0.0.1 2525

It lands in $rundir/mail/example.test/alice/new/
Stop facteurd with Ctrl-C.

EOF

exec "$daemon" -c "$rundir/conf" -f

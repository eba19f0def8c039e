#!/bin/sh
# install-deps.sh - installs what facteur needs and is missing, nothing else.
#
#   sh contrib/install-deps.sh [-n] build   compiler, make, pkg-config, libraries,
#                                           and the SMTP clients (swaks, nc) that
#                                           `make run` tells the user to paste
#   sh contrib/install-deps.sh [-n] test    the above + cmocka, pytest, swaks,
#                                           clang (fuzz/ASan), postfix tools
#
# Every requirement is checked first (pkg-config modules, headers, commands,
# a Python module); the package manager runs only when something is missing,
# once, for exactly the packages that provide the missing pieces.
# -n prints what would be installed and exits 1 if anything is missing.
#
# Debian/Ubuntu: apt-get. Postfix (wanted for smtp-source/smtp-sink and the
# benchmark's private reference instance), slapd, mariadb-server,
# dovecot-imapd, dovecot-lmtpd, dovecot-ldap and dovecot-mysql (the tests
# start private instances) and
# fail2ban (only fail2ban-regex is used) and opendkim (test_milter.py runs
# its own signing instance) are installed without debconf
# dialogs and without being started: "No configuration" is preseeded and a
# temporary /usr/sbin/policy-rc.d forbids service starts during the install.
# FreeBSD: pkg (packages named in the fbsd_* lists below; build with gmake).
#
# Must not: install anything when all is present, start services, or touch
# a policy-rc.d it did not create.

set -u

usage() {
	echo "usage: sh contrib/install-deps.sh [-n] build|test" >&2
	exit 2
}

dry=0
if [ "${1:-}" = "-n" ]; then
	dry=1
	shift
fi
mode=${1:-}
case $mode in
build|test) ;;
*) usage ;;
esac

# Requirements: "CHECK PACKAGE", one per line. CHECK is one of
#   cmd:NAME   a command in PATH          file:PATH  an existing file
#   pc:MOD     pkg-config --exists MOD     hdr:NAME   a header in a system include dir
#   py:MOD     $PYTHON can import MOD      fuzz       clang links -fsanitize=fuzzer,address
deb_build='
cmd:gcc gcc
hdr:stdio.h libc6-dev
cmd:make make
cmd:pkg-config pkg-config
pc:libevent libevent-dev
pc:libevent_openssl libevent-dev
pc:libevent_pthreads libevent-dev
pc:openssl libssl-dev
pc:libsodium libsodium-dev
pc:libcares libc-ares-dev
pc:libpcre2-8 libpcre2-dev
pc:lmdb liblmdb-dev
hdr:crypt.h libcrypt-dev
cmd:swaks swaks
cmd:nc netcat-openbsd
pc:libmariadb libmariadb-dev
pc:ldap libldap-dev
'
deb_test='
pc:cmocka libcmocka-dev
py:pytest python3-pytest
cmd:swaks swaks
file:/usr/sbin/smtp-source postfix
cmd:clang clang
fuzz libclang-rt-@CLANGMAJOR@-dev
cmd:openssl openssl
cmd:nc netcat-openbsd
file:/usr/sbin/dnsmasq dnsmasq-base
cmd:shellcheck shellcheck
cmd:mandoc mandoc
file:/usr/sbin/slapd slapd
cmd:ldapadd ldap-utils
file:/usr/sbin/mariadbd mariadb-server
file:/usr/lib/dovecot/imap dovecot-imapd
file:/usr/lib/dovecot/lmtp dovecot-lmtpd
file:/usr/lib/dovecot/modules/auth/libauthdb_ldap.so dovecot-ldap
file:/usr/lib/dovecot/modules/auth/libdriver_mysql.so dovecot-mysql
cmd:sieve-test dovecot-sieve
cmd:fail2ban-regex fail2ban
cmd:pflogsumm pflogsumm
cmd:php php-cli
file:/usr/share/php/Net/SMTP.php php-net-smtp
file:/usr/share/php/Net/Sieve.php php-net-sieve
file:/usr/sbin/postgrey postgrey
file:/usr/bin/policyd-spf postfix-policyd-spf-python
py:Milter python3-milter
py:dkim python3-dkim
file:/usr/sbin/opendkim opendkim
cmd:opendkim-genkey opendkim-tools
'
fbsd_build='
cmd:gmake gmake
cmd:pkg-config pkgconf
pc:libevent libevent
pc:libevent_openssl libevent
pc:libevent_pthreads libevent
pc:openssl openssl
pc:libsodium libsodium
pc:libcares c-ares
pc:libpcre2-8 pcre2
hdr:lmdb.h lmdb
pc:libmariadb mariadb-connector-c
pc:ldap openldap26-client
cmd:swaks swaks
'
fbsd_test='
pc:cmocka cmocka
cmd:python3 python3
py:pytest py311-pytest
cmd:swaks swaks
file:/usr/local/sbin/smtp-source postfix
cmd:clang llvm
cmd:openssl openssl
cmd:shellcheck hs-ShellCheck
file:/usr/local/sbin/dnsmasq dnsmasq
file:/usr/local/libexec/slapd openldap26-server
file:/usr/local/bin/mariadb-install-db mariadb1011-server
file:/usr/local/libexec/dovecot/imap dovecot
file:/usr/local/libexec/dovecot/lmtp dovecot
file:/usr/local/lib/dovecot/auth/libauthdb_ldap.so dovecot
file:/usr/local/lib/dovecot/auth/libdriver_mysql.so dovecot
cmd:sieve-test dovecot-pigeonhole
cmd:fail2ban-regex py311-fail2ban
cmd:pflogsumm pflogsumm
cmd:php php83
file:/usr/local/share/pear/Net/SMTP.php php83-pear-Net_SMTP
file:/usr/local/share/pear/Net/Sieve.php php83-pear-Net_Sieve
file:/usr/local/sbin/postgrey postgrey
file:/usr/local/bin/policyd-spf py311-spf-engine
py:Milter py311-pymilter
py:dkim py311-dkimpy
file:/usr/local/sbin/opendkim opendkim
'

if command -v apt-get >/dev/null 2>&1; then
	os=debian
	PYTHON=/usr/bin/python3
	reqs=$deb_build
	[ "$mode" = test ] && reqs="$reqs$deb_test"
elif [ "$(uname -s)" = FreeBSD ] && command -v pkg >/dev/null 2>&1; then
	os=freebsd
	PYTHON=python3
	reqs=$fbsd_build
	[ "$mode" = test ] && reqs="$reqs$fbsd_test"
else
	echo "install-deps: no apt-get or FreeBSD pkg here; install by hand:" >&2
	echo "  a C11 compiler, GNU make, pkg-config, and the development files of" >&2
	echo "  libevent (with _openssl, _pthreads), openssl, libsodium, c-ares, pcre2," >&2
	echo "  lmdb, crypt, libmariadb, openldap; for tests also cmocka, pytest, swaks," >&2
	echo "  clang, postfix, slapd + ldap-utils, mariadb-server" >&2
	exit 1
fi

# The compiler-rt package follows clang's major version (14 on Debian 12).
clang_major=14
if command -v clang >/dev/null 2>&1; then
	v=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9][0-9]*\)\..*/\1/p' | head -n 1)
	[ -n "$v" ] && clang_major=$v
fi

fuzz_links() {
	command -v clang >/dev/null 2>&1 || return 1
	fz=$(mktemp -d 2>/dev/null) || return 1
	printf '%s\n' 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)' \
		'{ (void)d; (void)n; return 0; }' >"$fz/f.c"
	clang -fsanitize=fuzzer,address -o "$fz/f" "$fz/f.c" >/dev/null 2>&1
	frc=$?
	rm -rf "$fz"
	return $frc
}

have() {
	case $1 in
	cmd:*) command -v "${1#cmd:}" >/dev/null 2>&1 ;;
	file:*) [ -e "${1#file:}" ] ;;
	pc:*) command -v pkg-config >/dev/null 2>&1 &&
		pkg-config --exists "${1#pc:}" ;;
	hdr:*) [ -e "/usr/include/${1#hdr:}" ] || [ -e "/usr/local/include/${1#hdr:}" ] ||
		[ -e "/usr/include/$(uname -m)-linux-gnu/${1#hdr:}" ] ;;
	py:*) "$PYTHON" -c "import ${1#py:}" >/dev/null 2>&1 ;;
	fuzz) fuzz_links ;;
	*) echo "install-deps: bad check $1" >&2; return 1 ;;
	esac
}

# Collects the packages for the missing requirements (each package once).
missing() {
	out=""
	what=""
	while read -r check pkg; do
		[ -n "$check" ] || continue
		pkg=$(printf '%s' "$pkg" | sed "s/@CLANGMAJOR@/$clang_major/")
		if ! have "$check"; then
			what="$what ${check#*:}"
			case " $out " in
			*" $pkg "*) ;;
			*) out="$out $pkg" ;;
			esac
		fi
	done <<EOF
$reqs
EOF
	missing_what=$what
	missing_pkgs=${out# }
}

missing
if [ -z "$missing_pkgs" ]; then
	echo "dependencies: all present"
	exit 0
fi
echo "dependencies: missing:$missing_what"
echo "dependencies: installing: $missing_pkgs"
if [ "$dry" = 1 ]; then
	exit 1
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		if [ "$os" = debian ]; then
			echo "install-deps: not root and no sudo; as root run:" >&2
			echo "  apt-get update && apt-get install -y --no-install-recommends $missing_pkgs" >&2
		else
			echo "install-deps: not root and no sudo; as root run:" >&2
			echo "  pkg install -y $missing_pkgs" >&2
		fi
		exit 1
	fi
fi

policy_created=0
cleanup() {
	if [ "$policy_created" = 1 ]; then
		$SUDO rm -f /usr/sbin/policy-rc.d
		policy_created=0
	fi
}
trap cleanup EXIT
trap 'cleanup; exit 1' HUP INT TERM

rc=0
if [ "$os" = debian ]; then
	case " $missing_pkgs " in
	*" postfix "*|*" slapd "*|*" mariadb-server "*|*" fail2ban "*|*" dovecot-imapd "*|*" dovecot-lmtpd "*|*" dovecot-sieve "*|*" dovecot-ldap "*|*" dovecot-mysql "*|*" postgrey "*|*" opendkim "*)
		echo "postfix postfix/main_mailer_type select No configuration" |
			$SUDO debconf-set-selections || exit 1
		echo "slapd slapd/no_configuration boolean true" |
			$SUDO debconf-set-selections || exit 1
		if [ ! -e /usr/sbin/policy-rc.d ]; then
			# 101 = "action forbidden by policy": the package's start is skipped.
			printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null &&
				$SUDO chmod 755 /usr/sbin/policy-rc.d && policy_created=1
		fi
		;;
	esac
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q update >/dev/null || rc=$?
	if [ "$rc" = 0 ]; then
		# shellcheck disable=SC2086  # the list is meant to split
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q install -y \
			--no-install-recommends $missing_pkgs || rc=$?
	fi
else
	# BATCH=yes keeps package scripts (postfix's mailer.conf question) quiet.
	# shellcheck disable=SC2086
	$SUDO env ASSUME_ALWAYS_YES=yes BATCH=yes pkg install -y $missing_pkgs || rc=$?
fi
cleanup
if [ "$rc" != 0 ]; then
	echo "install-deps: the package manager failed (exit $rc)" >&2
	exit "$rc"
fi

missing
if [ -n "$missing_pkgs" ]; then
	echo "install-deps: still missing after install:$missing_what" >&2
	exit 1
fi
echo "dependencies: installed"

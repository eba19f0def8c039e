<?php
/*
 * Roundcube with facteur as its submission server.
 *
 * Add these lines to Roundcube's config/config.inc.php (Debian:
 * /etc/roundcube/config.inc.php); the managesieve lines go to
 * plugins/managesieve/config.inc.php (Debian:
 * /etc/roundcube/plugins/managesieve/config.inc.php).
 *
 * facteurd's side, in master.cf (as Postfix ships its submission line):
 *
 *   submission inet n - n - - smtpd
 *     -o syslog_name=facteur/submission
 *     -o smtpd_tls_security_level=encrypt
 *     -o smtpd_sasl_auth_enable=yes
 *     -o smtpd_tls_auth_only=yes
 *     -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
 *
 * and in main.cf smtpd_tls_cert_file / smtpd_tls_key_file, and
 * smtpd_sasl_passdb = passwd-file:/etc/facteur/users (Dovecot's
 * passwd-file format; the same file can serve Dovecot IMAP, so that the
 * user and password Roundcube logs in to IMAP with also work for SMTP).
 *
 * Tested by tests/integration/test_roundcube.py, which sends through
 * Net_SMTP (the library under rcube_smtp) with these settings.
 */

/*
 * SMTP submission, port 587 with STARTTLS (RFC 3207) and SMTP AUTH.
 * Roundcube 1.6: "tls://" = connect, then STARTTLS; "ssl://" = implicit
 * TLS (facteur's smtps line, smtpd_tls_wrappermode=yes, port 465).
 * Use the host name the certificate is issued for: the name is verified.
 */
$config['smtp_host'] = 'tls://mail.example.com:587';
/* Roundcube 1.5 and older use two settings instead:
 * $config['smtp_server'] = 'tls://mail.example.com';
 * $config['smtp_port'] = 587;
 */

/*
 * Log in to SMTP with the IMAP user name (%u) and password (%p): the
 * users of facteur's passdb are full addresses (user@domain), so the IMAP
 * login must be the full address too (Dovecot with the same passwd-file).
 */
$config['smtp_user'] = '%u';
$config['smtp_pass'] = '%p';

/*
 * facteurd offers PLAIN and LOGIN (after STARTTLS only, with
 * smtpd_tls_auth_only = yes); empty = the best method the server offers.
 */
$config['smtp_auth_type'] = '';

/*
 * Name sent in EHLO; empty = the web server's name. Set it when that name
 * is not a valid host name (facteurd may be told to reject those with
 * reject_invalid_helo_hostname).
 */
$config['smtp_helo_host'] = 'webmail.example.com';

/* Seconds to wait for the connection and for each reply. */
$config['smtp_timeout'] = 30;

/*
 * TLS: verify facteurd's certificate. With a certificate from a public CA
 * the system's CA store is enough and these lines can go; with a private
 * CA, name its file here.
 */
$config['smtp_conn_options'] = [
    'ssl' => [
        'verify_peer'      => true,
        'verify_peer_name' => true,
        // 'cafile'        => '/etc/ssl/certs/example-ca.pem',
    ],
];

/*
 * Sieve filters (plugins/managesieve): ManageSieve (RFC 5804) on port
 * 4190 with STARTTLS. facteur delivers with Sieve from the user's
 * <home>/.dovecot.sieve and stores scripts as Dovecot does (<home>/sieve/
 * NAME.sieve, the active one linked as .dovecot.sieve), so a Dovecot
 * ManageSieve server on the same maildirs (Debian dovecot-managesieved)
 * edits what facteurd runs.
 * Roundcube 1.6: host with scheme and port.
 */
$config['managesieve_host'] = 'tls://mail.example.com:4190';
$config['managesieve_auth_type'] = null;   // best offered (PLAIN/LOGIN)
$config['managesieve_conn_options'] = [   // as smtp_conn_options
    'ssl' => ['verify_peer' => true, 'verify_peer_name' => true],
];
$config['managesieve_vacation'] = 1;       // a "Vacation" tab
/* Roundcube 1.5 and older:
 * $config['managesieve_host'] = 'mail.example.com';
 * $config['managesieve_port'] = 4190;
 * $config['managesieve_usetls'] = true;
 */

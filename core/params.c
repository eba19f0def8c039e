/*
 * params.c - the one table of every parameter facteur knows (Postfix's
 * names and defaults, facteur's where documented below), value parsers
 * for the typed kinds, and settings_load which fills struct settings.
 * Must not: read files or log; errors go to the caller's errbuf, naming
 * the file and line the bad value came from.
 *
 * Defaults that differ from Postfix: mail_name/syslog_name "facteur",
 * mail_owner "vmail", queue_directory /var/spool/facteur,
 * default_process_limit 10000 (a slot is a session here, not a process),
 * postscreen_cache_map under $facteur_data_directory (LMDB, owned by
 * mail_owner; $data_directory stays Postfix's and is ignored),
 * mynetworks "127.0.0.0/8 [::1]/128" (loopback only, whatever the
 * interfaces; mynetworks_style is accepted but does not widen it),
 * smtp_tls_loglevel 1 (the SMTP client logs its TLS connections, as
 * facteur always did; Postfix's 0 turns that off).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/lib/xmalloc.h"
#include "core/params.h"

#define F(x)	offsetof(struct settings, x)
#define NOF	PARAM_NO_FIELD
#define LATER	PARAM_F_LATER
#define INTERN	PARAM_F_INTERNAL

/* Real parameters, read into struct settings. */
#define S(n, d)			{ #n, PARAM_STR, d, 0, 0, 0, F(n) }
#define I(n, d, min)		{ #n, PARAM_INT, d, 0, min, 0, F(n) }
#define Z(n, d, min)		{ #n, PARAM_SIZE, d, 0, min, 0, F(n) }
#define B(n, d)			{ #n, PARAM_BOOL, d, 0, 0, 0, F(n) }
#define T(n, d, u, min)		{ #n, PARAM_TIME, d, u, min, 0, F(n) }
/* Known, no field (yet): a later module reads them with config_get. */
#define SL(n, d)		{ #n, PARAM_STR, d, 0, 0, LATER, NOF }
#define IL(n, d, min)		{ #n, PARAM_INT, d, 0, min, LATER, NOF }
#define ZL(n, d, min)		{ #n, PARAM_SIZE, d, 0, min, LATER, NOF }
#define BL(n, d)		{ #n, PARAM_BOOL, d, 0, 0, LATER, NOF }
#define TL(n, d, u, min)	{ #n, PARAM_TIME, d, u, min, LATER, NOF }
/* Known to facteur, used by config_get, but without a settings field. */
#define SN(n, d)		{ #n, PARAM_STR, d, 0, 0, 0, NOF }
#define IN(n, d, min)		{ #n, PARAM_INT, d, 0, min, 0, NOF }
#define TN(n, d, u, min)	{ #n, PARAM_TIME, d, u, min, 0, NOF }
#define BN(n, d)		{ #n, PARAM_BOOL, d, 0, 0, 0, NOF }
/* Postfix internals: accepted with a notice, never validated or used. */
#define X(n, d)			{ #n, PARAM_STR, d, 0, 0, INTERN, NOF }

#ifndef FACTEUR_VERSION
#define FACTEUR_VERSION "0.1"
#endif

static const struct param_def table[] = {
	/* identity */
	S(myhostname, ""),		/* filled by params_init */
	S(mydomain, ""),		/* derived from myhostname (config.c) */
	S(myorigin, "$myhostname"),
	S(mydestination, "$myhostname, localhost.$mydomain, localhost"),
	S(mail_name, "facteur"),
	SN(mail_version, FACTEUR_VERSION),
	S(smtpd_banner, "$myhostname ESMTP $mail_name"),
	S(syslog_name, "facteur"),
	S(maillog_file, ""),
	S(mail_owner, "vmail"),
	/* network */
	S(inet_interfaces, "all"),
	S(inet_protocols, "all"),
	S(mynetworks, "127.0.0.0/8 [::1]/128"),
	S(mynetworks_style, "host"),
	S(relay_domains, ""),
	S(relayhost, ""),
	/* smtpd */
	Z(message_size_limit, "10240000", 0),
	Z(header_size_limit, "102400", 1),
	I(line_length_limit, "2048", 1),
	I(smtpd_recipient_limit, "1000", 1),
	T(smtpd_timeout, "300s", 's', 1),
	I(hopcount_limit, "50", 1),
	I(smtpd_soft_error_limit, "10", 0),
	I(smtpd_hard_error_limit, "20", 1),
	T(smtpd_error_sleep_time, "1s", 's', 0),
	I(smtpd_junk_command_limit, "100", 1),
	I(default_process_limit, "10000", 1),
	B(smtpd_helo_required, "no"),
	B(disable_vrfy_command, "no"),
	B(smtpd_delay_reject, "yes"),
	B(strict_rfc821_envelopes, "no"),
	B(smtpd_peername_lookup, "yes"),
	/* the client name lookup (PTR + forward) never takes longer than
	 * this; then the name is unknown with a temporary status */
	T(facteur_peername_timeout, "5s", 's', 1),
	/* behind a load balancer (core/proxy_proto.c): "" or haproxy */
	S(smtpd_upstream_proxy_protocol, ""),
	T(smtpd_upstream_proxy_timeout, "5s", 's', 1),
	B(enable_original_recipient, "yes"),
	S(smtpd_client_restrictions, ""),
	S(smtpd_helo_restrictions, ""),
	S(smtpd_sender_restrictions, ""),
	S(smtpd_relay_restrictions,
	  "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"),
	S(smtpd_recipient_restrictions, ""),
	S(smtpd_data_restrictions, ""),
	/* addressing */
	S(recipient_delimiter, ""),
	S(virtual_mailbox_domains, "$virtual_mailbox_maps"),
	S(virtual_mailbox_base, ""),
	S(virtual_mailbox_maps, ""),
	/* Postfix 3's default: the pre-2.0 name virtual_maps (seed 003's
	 * "virtual_maps=hash:/etc/postfix/virtual") still works */
	S(virtual_alias_maps, "$virtual_maps"),
	SN(virtual_maps, ""),
	S(virtual_alias_domains, "$virtual_alias_maps"),
	S(virtual_uid_maps, ""),
	S(virtual_gid_maps, ""),
	I(virtual_minimum_uid, "100", 1),
	I(virtual_alias_recursion_limit, "1000", 1),
	I(virtual_alias_expansion_limit, "1000", 1),
	/* queue */
	S(queue_directory, "/var/spool/facteur"),
	/* LMDB stores: postscreen cache, greylisting (core/kvstore.c); not
	 * Postfix's data_directory, which stays a Postfix internal */
	SN(facteur_data_directory, "$queue_directory/data"),
	IN(lmdb_map_size, "16777216", 65536),	/* largest size of one store file */
	T(maximal_queue_lifetime, "5d", 'd', 0),
	T(bounce_queue_lifetime, "5d", 'd', 0),
	T(delay_warning_time, "0h", 'h', 0),
	T(minimal_backoff_time, "300s", 's', 1),
	T(maximal_backoff_time, "4000s", 's', 1),
	T(queue_run_delay, "300s", 's', 1),
	I(facteur_worker_threads, "16", 1),
	/* outbound: the DNS servers c-ares asks ("" = the system's) */
	S(facteur_dns_servers, ""),
	/* SIGTERM: sessions may finish this long, then 421 (facteurd.c) */
	T(facteur_shutdown_timeout, "30s", 's', 0),
	/* Prometheus text endpoint, host:port ("" = off; core/status.c) */
	S(facteur_metrics_listen, ""),
	/* alias_maps ":include:/file" targets (address lists) are read only
	 * when this is yes; |command and /file targets are always refused */
	B(facteur_alias_include, "no"),

	/* ---- known; used by modules to come ---- */
	/* smtpd TLS */
	S(smtpd_tls_security_level, ""),
	S(smtpd_tls_cert_file, ""),
	S(smtpd_tls_key_file, "$smtpd_tls_cert_file"),
	S(smtpd_tls_chain_files, ""),
	S(smtpd_tls_dcert_file, ""),	/* a DSA certificate (PEM, with its chain), beside the RSA one */
	S(smtpd_tls_dkey_file, "$smtpd_tls_dcert_file"),	/* its private key */
	S(smtpd_tls_eccert_file, ""),	/* an ECDSA certificate (PEM, with its chain): OpenSSL picks by the client's signature algorithms */
	S(smtpd_tls_eckey_file, "$smtpd_tls_eccert_file"),	/* its private key */
	S(smtpd_tls_CAfile, ""),	/* CA certificates that verify client certificates (and are named in the request) */
	S(smtpd_tls_CApath, ""),	/* directory of hashed CA certificates for client certificates */
	S(smtpd_tls_dh1024_param_file, ""),	/* DH parameters (PEM) for DHE; empty: OpenSSL's built-in groups */
	S(smtpd_tls_protocols, ">=TLSv1"),
	S(smtpd_tls_mandatory_protocols, ">=TLSv1.2"),
	S(smtpd_tls_ciphers, "medium"),
	S(smtpd_tls_mandatory_ciphers, "medium"),
	S(smtpd_tls_exclude_ciphers, ""),
	S(smtpd_tls_mandatory_exclude_ciphers, ""),
	I(smtpd_tls_loglevel, "0", 0),
	B(smtpd_tls_received_header, "no"),
	B(smtpd_tls_ask_ccert, "no"),	/* ask the client for a certificate */
	B(smtpd_tls_req_ccert, "no"),	/* at encrypt: a client without a verified certificate gets 421 4.7.1 */
	I(smtpd_tls_ccert_verifydepth, "9", 1),	/* verification depth of client certificate chains */
	B(smtpd_tls_wrappermode, "no"),
	B(smtpd_tls_auth_only, "no"),
	B(smtpd_enforce_tls, "no"),
	B(smtpd_use_tls, "no"),
	S(smtpd_tls_fingerprint_digest, "sha256"),	/* digest of client certificate fingerprints (sha256, sha1, md5 ...) */
	T(smtpd_tls_session_cache_timeout, "3600s", 's', 0),
	S(tls_server_sni_maps, ""),
	S(tls_high_cipherlist, ""),
	S(tls_medium_cipherlist, ""),
	B(tls_preempt_cipherlist, "no"),
	S(tls_low_cipherlist, ""),	/* OpenSSL list of the low grade; empty: facteur's (OpenSSL 3 has nothing below medium) */
	S(tls_export_cipherlist, ""),	/* OpenSSL list of the export grade; empty: as low */
	S(tls_null_cipherlist, "eNULL:!aNULL"),	/* OpenSSL list of the null grade (no encryption) */
	S(tls_eecdh_auto_curves, "X25519 X448 prime256v1 secp521r1 secp384r1"),	/* key exchange groups in order of preference; names OpenSSL lacks are skipped */
	S(smtpd_tls_eecdh_grade, "auto"),	/* auto (tls_eecdh_auto_curves), strong (prime256v1), ultra (secp384r1) or none (OpenSSL's groups) */
	B(tls_append_default_CA, "no"),	/* also trust OpenSSL's default CAs beside smtpd_tls_CAfile / smtp_tls_CAfile */
	S(tls_ssl_options, ""),	/* OpenSSL options by name (NO_TICKET, PRIORITIZE_CHACHA ...) or as hex, for the server and the client */
	/* smtp client and TLS */
	S(smtp_tls_security_level, ""),
	S(smtp_tls_CAfile, ""),
	S(smtp_tls_CApath, ""),
	S(smtp_tls_cert_file, ""),	/* SMTP client certificate (PEM, with its chain), read as root at start */
	S(smtp_tls_key_file, ""),	/* its private key (PEM); empty: in smtp_tls_cert_file */
	S(smtp_tls_chain_files, ""),	/* PEM files, each a key then its certificate chain (instead of the two above) */
	S(smtp_tls_policy_maps, ""),
	S(smtp_tls_protocols, "!SSLv2, !SSLv3"),
	S(smtp_tls_mandatory_protocols, ">=TLSv1"),
	S(smtp_tls_ciphers, "medium"),	/* cipher grade at the may level (high, medium, low, export, null) */
	S(smtp_tls_mandatory_ciphers, "medium"),	/* cipher grade at encrypt and above */
	S(smtp_tls_exclude_ciphers, ""),	/* OpenSSL cipher names or classes the SMTP client never offers */
	S(smtp_tls_mandatory_exclude_ciphers, ""),	/* more exclusions at encrypt and above */
	S(smtp_tls_verify_cert_match, "hostname"),	/* names the server certificate must match at the verify level (hostname, nexthop, dot-nexthop, literal names) */
	S(smtp_tls_secure_cert_match, "nexthop, dot-nexthop"),	/* the same at the secure level */
	I(smtp_tls_scert_verifydepth, "9", 1),	/* verification depth of server certificate chains (1: issued by a trusted CA directly) */
	I(smtp_tls_loglevel, "1", 0),	/* 0: no TLS log line; 1: "... TLS connection established to ..." (facteur's default: 1) */
	B(smtp_tls_note_starttls_offer, "no"),	/* log "Host offered STARTTLS" when TLS is not used */
	B(smtp_tls_wrappermode, "no"),	/* TLS from the first byte (port 465 next hops); needs encrypt */
	B(smtp_use_tls, "no"),	/* obsolete: may, when smtp_tls_security_level is empty */
	B(smtp_enforce_tls, "no"),	/* obsolete: encrypt, when smtp_tls_security_level is empty */
	S(smtp_bind_address, ""),
	S(smtp_bind_address6, ""),
	B(smtp_bind_address_enforce, "no"),
	B(smtp_connection_cache_on_demand, "yes"),
	S(smtp_connection_cache_destinations, ""),
	T(smtp_connection_cache_time_limit, "2s", 's', 1),
	I(smtp_connection_reuse_count_limit, "0", 0),
	T(smtp_connection_reuse_time_limit, "300s", 's', 1),
	T(smtp_rset_timeout, "20s", 's', 1),
	B(disable_mime_output_conversion, "no"),
	S(smtp_helo_name, "$myhostname"),
	T(smtp_connect_timeout, "30s", 's', 1),
	T(smtp_helo_timeout, "300s", 's', 1),
	T(smtp_mail_timeout, "300s", 's', 1),
	T(smtp_rcpt_timeout, "300s", 's', 1),
	T(smtp_data_init_timeout, "120s", 's', 1),
	T(smtp_data_xfer_timeout, "180s", 's', 1),
	T(smtp_data_done_timeout, "600s", 's', 1),
	T(smtp_quit_timeout, "300s", 's', 1),
	B(smtp_sasl_auth_enable, "no"),
	S(smtp_sasl_password_maps, ""),
	S(smtp_sasl_security_options, "noplaintext, noanonymous"),
	S(smtp_sasl_tls_security_options, "$smtp_sasl_security_options"),
	S(smtp_sasl_mechanism_filter, ""),
	S(smtp_generic_maps, ""),	/* generic(5): envelope and header addresses rewritten for mail leaving by SMTP */
	S(smtp_dns_support_level, ""),	/* disabled (no MX lookups), enabled, or dnssec (DNSSEC-validated lookups; needed by the dane TLS levels) */
	SL(smtp_host_lookup, "dns"),
	/* smtpd SASL */
	B(smtpd_sasl_auth_enable, "no"),
	S(smtpd_sasl_type, "builtin"),
	SL(smtpd_sasl_path, "smtpd"),
	S(smtpd_sasl_passdb, ""),
	S(smtpd_sasl_security_options, "noanonymous"),
	S(smtpd_sasl_tls_security_options, "$smtpd_sasl_security_options"),
	S(smtpd_sasl_mechanisms, "plain login"),	/* Dovecot's auth_mechanisms */
	B(smtpd_sasl_authenticated_header, "no"),
	S(smtpd_sasl_local_domain, ""),	/* realm appended to a login name without "@" (Dovecot's auth_default_realm) */
	SN(smtpd_sasl_exceptions_networks, ""),	/* clients (network list) not offered AUTH in EHLO */
	SN(smtpd_sender_login_maps, ""),
	B(broken_sasl_auth_clients, "no"),
	/* restrictions and limits */
	SN(smtpd_end_of_data_restrictions, ""),
	SL(smtpd_etrn_restrictions, ""),
	SN(smtpd_restriction_classes, ""),
	SN(smtpd_discard_ehlo_keywords, ""),	/* EHLO keywords not announced (pipelining, chunking, auth, silent-discard ...) */
	SN(smtpd_discard_ehlo_keyword_address_maps, ""),	/* client address -> EHLO keywords not announced to it */
	BL(smtpd_client_port_logging, "no"),
	/* client limits per service and IP, counted in facteurd (core/anvil.c,
	 * core/smtpd_limits.c); 0 = no limit */
	I(smtpd_client_connection_count_limit, "50", 0),	/* concurrent sessions */
	I(smtpd_client_connection_rate_limit, "0", 0),	/* connections per unit */
	I(smtpd_client_message_rate_limit, "0", 0),	/* MAIL FROM per unit */
	I(smtpd_client_recipient_rate_limit, "0", 0),	/* RCPT TO per unit */
	I(smtpd_client_new_tls_session_rate_limit, "0", 0),	/* new TLS sessions per unit */
	I(smtpd_client_auth_rate_limit, "0", 0),	/* AUTH commands per unit */
	S(smtpd_client_event_limit_exceptions, "$mynetworks"),	/* clients never limited */
	T(anvil_rate_time_unit, "60s", 's', 1),	/* the window of every rate */
	I(smtpd_client_ipv4_prefix_length, "32", 1),	/* IPv4 clients counted per network of this size */
	I(smtpd_client_ipv6_prefix_length, "84", 1),	/* IPv6 clients counted per network of this size */
	/* per SASL user sending limits (core/user_limits.c); 0 = no limit */
	I(smtpd_sasl_user_message_rate_limit, "0", 0),	/* MAIL FROM per unit */
	I(smtpd_sasl_user_recipient_rate_limit, "0", 0),	/* RCPT TO per unit */
	S(smtpd_sasl_user_limit_maps, ""),	/* login -> "message_rate_limit=N recipient_rate_limit=N hold_threshold=Nx" */
	S(smtpd_sasl_user_hold_threshold, "3x"),	/* this multiple of a limit: hold the user's mail */
	T(smtpd_sasl_user_rate_time_unit, "$anvil_rate_time_unit", 's', 1),	/* window of the user rates */
	T(smtpd_sasl_user_hold_time, "1d", 's', 1),	/* how long mail stays held; one notice per period */
	S(smtpd_sasl_user_notice_recipient, "postmaster"),	/* who is told a user was put on hold */
	TL(anvil_status_update_time, "600s", 's', 1),
	IL(smtpd_history_flush_threshold, "100", 1),
	SN(smtpd_reject_footer, ""),	/* appended to 4xx/5xx replies; \\n line break, leading \\c no break, $client_address $client_name $localtime $server_name */
	SL(smtpd_authorized_xclient_hosts, ""),
	SL(smtpd_authorized_xforward_hosts, ""),
	SN(smtpd_forbidden_commands, "CONNECT GET POST"),	/* non-SMTP commands (names or type:table) answered 221 2.7.0 and disconnected */
	SN(smtpd_null_access_lookup_key, "<>"),
	SL(smtpd_command_filter, ""),
	/* Sendmail milters (core/milter.c), Postfix's names and defaults */
	S(smtpd_milters, ""),	/* milters for SMTP mail: inet:host:port, unix:/path or { address, name=value ... } */
	S(non_smtpd_milters, ""),	/* milters for mail from sendmail (shown as from localhost [127.0.0.1]) */
	S(milter_default_action, "tempfail"),	/* a milter that fails: accept, reject, tempfail or quarantine */
	I(milter_protocol, "6", 2),	/* the milter protocol version offered (2 to 6) */
	T(milter_connect_timeout, "30s", 's', 1),	/* connecting to a milter */
	T(milter_command_timeout, "30s", 's', 1),	/* a milter's answer to the negotiation or one SMTP stage */
	T(milter_content_timeout, "300s", 's', 1),	/* a milter's answer to a header, body chunk or the end of message */
	S(milter_connect_macros, "j {daemon_name} {daemon_addr} v _"),	/* macros sent with the connection */
	S(milter_helo_macros, "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}"),	/* macros sent with HELO/EHLO */
	S(milter_mail_macros, "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}"),	/* macros sent with MAIL FROM */
	S(milter_rcpt_macros, "i {rcpt_addr} {rcpt_host} {rcpt_mailer}"),	/* macros sent with RCPT TO */
	S(milter_data_macros, "i"),	/* macros sent with DATA */
	S(milter_end_of_header_macros, "i"),	/* macros sent at the end of the headers */
	S(milter_end_of_data_macros, "i"),	/* macros sent at the end of the message */
	SL(milter_unknown_command_macros, ""),	/* no SMFIC_UNKNOWN is sent */
	S(milter_macro_daemon_name, "$myhostname"),	/* the {daemon_name} macro */
	S(milter_macro_v, "$mail_name $mail_version"),	/* the v macro */
	S(milter_header_checks, ""),	/* header_checks tables for the header lines milters add or change */
	S(milter_macro_defaults, ""),	/* name=value defaults for macros facteur has no value for */
	BN(smtpd_reject_unlisted_recipient, "yes"),	/* after the restrictions: refuse recipients unknown in hosted domains */
	BN(smtpd_reject_unlisted_sender, "no"),	/* after the restrictions: refuse senders unknown in hosted domains */
	SN(maps_rbl_domains, ""),	/* DNS lists reject_maps_rbl (obsolete) looks the client up in */
	SN(rbl_reply_maps, ""),
	SN(default_rbl_reply, ""),
	SN(parent_domain_matches_subdomains,
	   "debug_peer_list, fast_flush_domains, mynetworks, "
	   "permit_mbox_mx_backup_networks, qmqpd_authorized_clients, "
	   "relay_domains, smtpd_access_maps"),
	SN(permit_mx_backup_networks, ""),	/* permit_mx_backup only when the primary MX hosts are in these networks */
	S(relay_recipient_maps, ""),	/* valid relay_domains recipients; others get unknown_relay_recipient_reject_code */
	S(relay_clientcerts, ""),	/* certificate or public key fingerprints permit_tls_clientcerts trusts */
	IN(unknown_local_recipient_reject_code, "550", 400),	/* unknown user in a mydestination domain */
	IN(unknown_virtual_mailbox_reject_code, "550", 400),
	IN(unknown_virtual_alias_reject_code, "550", 400),	/* unknown user in a virtual_alias_domains domain */
	IN(unknown_relay_recipient_reject_code, "550", 400),	/* relay_domains recipient not in relay_recipient_maps */
	IN(unknown_address_reject_code, "450", 400),
	IN(unknown_client_reject_code, "450", 400),
	IN(unknown_hostname_reject_code, "450", 400),
	IN(unverified_recipient_reject_code, "450", 400),	/* reject_unverified_recipient: the probe said the address is undeliverable */
	IN(unverified_sender_reject_code, "450", 400),	/* reject_unverified_sender: the probe said the address is undeliverable */
	IN(unverified_recipient_defer_code, "450", 400),	/* reject_unverified_recipient: no result yet, or the probe failed temporarily */
	IN(unverified_sender_defer_code, "450", 400),	/* reject_unverified_sender: no result yet, or the probe failed temporarily */
	IN(relay_domains_reject_code, "554", 400),
	IN(maps_rbl_reject_code, "554", 400),
	IN(access_map_reject_code, "554", 400),
	IN(access_map_defer_code, "450", 400),
	/* check_policy_service (one connection per query) */
	TN(smtpd_policy_service_timeout, "100s", 's', 1),
	SN(smtpd_policy_service_default_action,
	   "451 4.3.5 Server configuration problem"),
	IN(smtpd_policy_service_try_limit, "2", 1),
	TN(smtpd_policy_service_retry_delay, "1s", 's', 0),
	TN(smtpd_policy_service_max_idle, "300s", 's', 0),	/* a kept policy connection is closed after this idle time (0: one connection per query) */
	TN(smtpd_policy_service_max_ttl, "1000s", 's', 1),	/* a kept policy connection is closed this long after it was opened */
	IN(smtpd_policy_service_request_limit, "0", 0),	/* queries per policy connection (0: no limit) */
	X(policy_time_limit, "1000s"),
	IN(invalid_hostname_reject_code, "501", 400),
	IN(non_fqdn_reject_code, "504", 400),
	IN(reject_code, "554", 400),
	IN(defer_code, "450", 400),
	IN(plaintext_reject_code, "450", 400),	/* reply code of reject_plaintext_session */
	IN(multi_recipient_bounce_reject_code, "550", 400),	/* reply code of reject_multi_recipient_bounce */
	SN(unknown_address_tempfail_action, "defer_if_permit"),
	SN(unknown_helo_hostname_tempfail_action,
	   "$unknown_address_tempfail_action"),
	SN(unverified_recipient_tempfail_action, "defer_if_permit"),	/* defer_if_permit or defer, when a recipient could not be verified yet */
	SN(unverified_sender_tempfail_action, "defer_if_permit"),	/* defer_if_permit or defer, when a sender could not be verified yet */
	/* address verification (core/verify.c, delivery/smtp_probe.c) */
	SN(address_verify_map, "lmdb:$facteur_data_directory/verify_cache"),	/* probe results, kept in LMDB as PATH.lmdb (empty: forgotten at restart) */
	TN(address_verify_positive_expire_time, "31d", 'd', 1),	/* a deliverable result is forgotten after this */
	TN(address_verify_positive_refresh_time, "7d", 'd', 1),	/* a deliverable result is probed again after this (the old one answers meanwhile) */
	TN(address_verify_negative_expire_time, "3d", 'd', 1),	/* an undeliverable result is forgotten after this */
	TN(address_verify_negative_refresh_time, "3h", 'h', 1),	/* an undeliverable result is probed again after this */
	BN(address_verify_negative_cache, "yes"),	/* keep undeliverable results (no: probe at every query) */
	IN(address_verify_poll_count, "3", 1),	/* an SMTP reply looks this many times for a probe result */
	TN(address_verify_poll_delay, "3s", 's', 1),	/* ... this long apart, then answers "Address verification in progress" */
	SN(address_verify_sender, "$double_bounce_sender"),	/* MAIL FROM of probes (@$myorigin added; <> for the null sender) */
	SN(address_verify_relayhost, "$relayhost"),	/* relayhost for probes */
	SN(address_verify_transport_maps, "$transport_maps"),	/* transport_maps for probes */
	SN(address_verify_default_transport, "$default_transport"),	/* default_transport for probes */
	SN(address_verify_relay_transport, "$relay_transport"),	/* relay_transport for probes */
	SN(address_verify_virtual_transport, "$virtual_transport"),	/* virtual_transport for probes */
	SN(unverified_recipient_reject_reason, ""),	/* replaces the probe's text in unverified-recipient replies (empty: the probe's text) */
	SN(unverified_sender_reject_reason, ""),	/* replaces the probe's text in unverified-sender replies (empty: the probe's text) */
	SL(address_verify_local_transport, "$local_transport"),
	SN(address_verify_sender_dependent_relayhost_maps, "$sender_dependent_relayhost_maps"),	/* sender_dependent_relayhost_maps for probes (key: the probe's sender) */
	SN(address_verify_sender_dependent_default_transport_maps, "$sender_dependent_default_transport_maps"),	/* sender_dependent_default_transport_maps for probes */
	TL(address_verify_sender_ttl, "0s", 's', 0),
	TL(address_verify_cache_cleanup_interval, "12h", 's', 0),
	X(address_verify_service_name, "verify"),
	SN(mua_client_restrictions, ""),	/* used as $mua_client_restrictions in master.cf -o values */
	SN(mua_helo_restrictions, ""),	/* used as $mua_helo_restrictions in master.cf -o values */
	SN(mua_sender_restrictions, ""),	/* used as $mua_sender_restrictions in master.cf -o values */
	/* content inspection */
	S(header_checks, ""),
	S(mime_header_checks, "$header_checks"),	/* header_checks tables for MIME headers (Content-*, MIME-Version) of the message and of every MIME part */
	S(nested_header_checks, "$header_checks"),	/* header_checks tables for the non-MIME headers of attached message/rfc822 parts */
	S(body_checks, ""),
	S(smtp_header_checks, ""),	/* header checks on mail leaving through the SMTP client (WARN INFO IGNORE REPLACE PREPEND DUNNO OK) */
	S(smtp_body_checks, ""),	/* body checks on mail leaving through the SMTP client (same actions) */
	S(smtp_mime_header_checks, ""),	/* smtp_header_checks for MIME headers and part headers of mail leaving by SMTP */
	S(smtp_nested_header_checks, ""),	/* smtp_header_checks for attached messages' headers of mail leaving by SMTP */
	S(lmtp_header_checks, ""),	/* smtp_header_checks for mail delivered over LMTP */
	S(lmtp_mime_header_checks, ""),	/* smtp_mime_header_checks for mail delivered over LMTP */
	S(lmtp_nested_header_checks, ""),	/* smtp_nested_header_checks for mail delivered over LMTP */
	S(lmtp_body_checks, ""),	/* smtp_body_checks for mail delivered over LMTP */
	I(mime_nesting_limit, "100", 1),	/* multipart and message/rfc822 levels the MIME walk follows (deeper: 550 5.6.0 when checks are on) */
	I(mime_boundary_length_limit, "2048", 1),	/* MIME boundary bytes compared (longer ones are cut, as Postfix) */
	Z(body_checks_size_limit, "51200", 0),
	B(disable_mime_input_processing, "no"),	/* yes: no MIME structure; all after the message headers is body (no mime/nested_header_checks) */
	B(strict_8bitmime, "no"),	/* both strict_7bit_headers and strict_8bitmime_body */
	B(strict_7bit_headers, "no"),	/* reject mail with 8-bit data in a header (550 5.6.0) */
	B(strict_8bitmime_body, "no"),	/* reject 8-bit body text whose MIME encoding says 7bit or nothing (550 5.6.0) */
	B(strict_mime_encoding_domain, "no"),	/* reject message and multipart entities encoded base64 or quoted-printable (550 5.6.0) */
	S(content_filter, ""),	/* after-queue filter "transport:nexthop" for mail received while set (recorded in the queue file) */
	S(receive_override_options, ""),	/* per listener: no_address_mappings, no_header_body_checks, no_unknown_recipient_checks, no_milters */
	S(notify_classes, "resource, software"),	/* postmaster notices: bounce 2bounce delay (queue), resource software policy protocol data (SMTP session transcripts) */
	S(bounce_notice_recipient, "postmaster"),
	S(error_notice_recipient, "postmaster"),	/* who gets the SMTP session transcripts (resource, software, policy, protocol, data) */
	{ "2bounce_notice_recipient", PARAM_STR, "postmaster", 0, 0, 0,
	  F(double_bounce_notice_recipient) },
	S(delay_notice_recipient, "postmaster"),
	S(double_bounce_sender, "double-bounce"),
	SL(bounce_template_file, ""),
	Z(bounce_size_limit, "50000", 0),
	/* postscreen (core/postscreen*.c): a master.cf "postscreen" line */
	SN(postscreen_access_list, "permit_mynetworks"),	/* permit_mynetworks, cidr: tables answering permit/reject/dunno */
	SN(postscreen_blacklist_action, "ignore"),	/* old name of postscreen_denylist_action */
	SN(postscreen_denylist_action, "$postscreen_blacklist_action"),	/* access list reject: ignore, enforce or drop */
	SN(postscreen_dnsbl_sites, ""),	/* domain[=filter][*weight] list, asked in parallel */
	IN(postscreen_dnsbl_threshold, "1", 1),	/* score that fails the DNSBL test */
	IN(postscreen_dnsbl_whitelist_threshold, "0", INT_MIN),	/* old name of postscreen_dnsbl_allowlist_threshold */
	IN(postscreen_dnsbl_allowlist_threshold, "$postscreen_dnsbl_whitelist_threshold", INT_MIN),	/* score (< 0) that skips every test */
	SN(postscreen_dnsbl_action, "ignore"),	/* DNSBL test failed: ignore, enforce or drop */
	SN(postscreen_dnsbl_reply_map, ""),	/* DNSBL name with a secret -> name shown in replies */
	SN(postscreen_dnsbl_ttl, ""),	/* old form of postscreen_dnsbl_max_ttl */
	TN(postscreen_dnsbl_min_ttl, "60s", 's', 1),	/* cache time of a listed client under the threshold */
	TN(postscreen_dnsbl_max_ttl, "${postscreen_dnsbl_ttl?{$postscreen_dnsbl_ttl}:{1h}}", 's', 1),	/* cache time of a clean client */
	TN(postscreen_dnsbl_timeout, "10s", 's', 1),	/* a DNSBL answer later than this does not count */
	SN(postscreen_greet_action, "ignore"),	/* pre-greet talker: ignore, enforce or drop */
	SN(postscreen_greet_banner, "$smtpd_banner"),	/* the "220-" teaser text ("" = none) */
	TN(postscreen_greet_wait, "6s", 's', 1),	/* silence expected after the teaser */
	TN(postscreen_greet_ttl, "1d", 's', 1),	/* cache time of a passed pre-greet test */
	BN(postscreen_pipelining_enable, "no"),	/* after-220 test: commands sent ahead */
	SN(postscreen_pipelining_action, "enforce"),	/* ignore, enforce or drop */
	TN(postscreen_pipelining_ttl, "30d", 's', 1),	/* cache time of a pass */
	BN(postscreen_non_smtp_command_enable, "no"),	/* after-220 test: CONNECT, GET, POST, header lines */
	SN(postscreen_non_smtp_command_action, "drop"),	/* ignore, enforce or drop */
	TN(postscreen_non_smtp_command_ttl, "30d", 's', 1),	/* cache time of a pass */
	BN(postscreen_bare_newline_enable, "no"),	/* after-220 test: LF without CR */
	SN(postscreen_bare_newline_action, "ignore"),	/* ignore, enforce or drop */
	TN(postscreen_bare_newline_ttl, "30d", 's', 1),	/* cache time of a pass */
	SN(postscreen_cache_map, "btree:$facteur_data_directory/postscreen_cache"),	/* kept in LMDB as PATH.lmdb */
	TN(postscreen_cache_retention_time, "7d", 's', 0),	/* kept this long after the last pass expired */
	TN(postscreen_cache_cleanup_interval, "12h", 's', 0),	/* expired entries removed this often (0 = never) */
	IN(postscreen_client_connection_count_limit, "$smtpd_client_connection_count_limit", 0),	/* screened at once per client (0 = no limit) */
	IN(postscreen_post_queue_limit, "$default_process_limit", 1),	/* SMTP sessions behind postscreen; then 421 4.3.2 All server ports are busy */
	IN(postscreen_pre_queue_limit, "$default_process_limit", 1),	/* clients screened at once */
	S(postscreen_upstream_proxy_protocol, ""),	/* core/smtpd_listener.c */
	SN(postscreen_forbidden_commands, "$smtpd_forbidden_commands"),	/* non-SMTP commands */
	SN(postscreen_whitelist_interfaces, "static:all"),	/* old name of postscreen_allowlist_interfaces */
	SN(postscreen_allowlist_interfaces, "$postscreen_whitelist_interfaces"),	/* local addresses where a client may become allowlisted (ALLOWLIST VETO elsewhere) */
	TN(postscreen_command_time_limit, "300s", 's', 1),	/* dummy engine: idle limit */
	SN(postscreen_helo_required, "$smtpd_helo_required"),	/* dummy engine: MAIL needs HELO/EHLO first (yes/no) */
	SL(postscreen_tls_security_level, "$smtpd_tls_security_level"),
	SL(postscreen_use_tls, "$smtpd_use_tls"),
	SL(postscreen_enforce_tls, "$smtpd_enforce_tls"),
	SL(postscreen_disable_vrfy_command, "$disable_vrfy_command"),
	SL(postscreen_discard_ehlo_keywords, "$smtpd_discard_ehlo_keywords"),
	SL(postscreen_discard_ehlo_keyword_address_maps, "$smtpd_discard_ehlo_keyword_address_maps"),
	SL(postscreen_command_filter, "${smtpd_command_filter}"),
	SL(postscreen_expansion_filter, ""),
	SL(postscreen_reject_footer, "$smtpd_reject_footer"),
	SL(postscreen_reject_footer_maps, ""),
	T(postscreen_upstream_proxy_timeout, "5s", 's', 1),
	SL(postscreen_watchdog_timeout, "10s"),
	IN(postscreen_command_count_limit, "20", 1),	/* dummy engine: commands per session */
	/* greylisting (core/greylist.c): check_greylist in smtpd_*_restrictions */
	SN(greylist_database, "lmdb:$facteur_data_directory/greylist"),	/* triplets, kept in LMDB as PATH.lmdb */
	TN(greylist_delay, "300s", 's', 0),	/* a new triplet is deferred this long */
	TN(greylist_retry_window, "2d", 's', 1),	/* a retry must come within this time after the delay */
	TN(greylist_max_age, "35d", 'd', 1),	/* passed triplets and clients are forgotten after this */
	IN(greylist_auto_allow_count, "5", 0),	/* passes after which a client network skips greylisting (0 = never) */
	SN(greylist_text, "Greylisted, see http://postgrey.schweikert.ch/help/%r.html"),	/* reply text: %r recipient domain, %s seconds left */
	/* rewriting */
	S(canonical_maps, ""),
	S(sender_canonical_maps, ""),
	S(recipient_canonical_maps, ""),
	S(canonical_classes, "envelope_sender, envelope_recipient, header_sender, header_recipient"),
	S(sender_canonical_classes, "envelope_sender, header_sender"),
	S(recipient_canonical_classes, "envelope_recipient, header_recipient"),
	S(masquerade_domains, ""),
	S(masquerade_exceptions, ""),
	S(masquerade_classes, "envelope_sender, header_sender, header_recipient"),
	S(propagate_unmatched_extensions, "canonical, virtual"),
	S(remote_header_rewrite_domain, ""),
	S(local_header_rewrite_clients, "permit_inet_interfaces"),
	S(alias_maps, ""),
	S(transport_maps, ""),
	S(sender_dependent_relayhost_maps, ""),	/* relayhost by envelope sender, then @domain (core/qmgr.c) */
	S(sender_dependent_default_transport_maps, ""),	/* default_transport by envelope sender, then @domain */
	S(empty_address_relayhost_maps_lookup_key, "<>"),	/* sender_dependent_relayhost_maps key for the null sender */
	S(empty_address_default_transport_maps_lookup_key, "<>"),	/* sender_dependent_default_transport_maps key for the null sender */
	S(relocated_maps, ""),	/* address -> new contact: refused at RCPT (5.1.6 User has moved to ...) and bounced */
	S(sender_bcc_maps, ""),	/* envelope sender -> BCC address, added as mail enters the queue */
	S(recipient_bcc_maps, ""),	/* original recipient -> BCC address, added as mail enters the queue */
	S(always_bcc, ""),	/* address that gets a blind copy of every message received */
	SL(empty_address_recipient, "MAILER-DAEMON"),
	BL(owner_request_special, "yes"),
	BL(expand_owner_alias, "no"),
	/* delivery */
	S(virtual_transport, "virtual"),
	SL(local_transport, "local:$myhostname"),
	S(default_transport, "smtp"),
	S(relay_transport, "relay"),
	SL(mailbox_transport, ""),
	SL(fallback_transport, ""),
	/* facteur: a mailbox quota, off unless set (Postfix: a file limit) */
	Z(virtual_mailbox_limit, "0", 0),
	S(virtual_mailbox_limit_maps, ""),
	B(virtual_mailbox_full_tempfail, "no"),
	/* facteur: percentages of the quota at which the user is warned
	 * once (Dovecot's quota_warning idea), e.g. "80 90" */
	S(virtual_mailbox_quota_warning, ""),
	ZL(mailbox_size_limit, "51200000", 0),
	SL(virtual_mailbox_lock, "fcntl, dotlock"),
	SL(home_mailbox, ""),
	SL(mail_spool_directory, "/var/mail"),
	SL(mailbox_command, ""),
	SL(local_recipient_maps, "proxy:unix:passwd.byname $alias_maps"),
	S(sieve_before, ""),
	S(sieve_after, ""),
	/* RFC 6609 include :global: a directory of NAME.sieve (Pigeonhole's
	 * sieve_global = file:DIR is accepted too) */
	S(sieve_global_dir, ""),
	S(sieve_global, ""),
	I(default_destination_concurrency_limit, "20", 0),
	IL(default_destination_recipient_limit, "50", 0),
	I(smtp_destination_concurrency_limit, "$default_destination_concurrency_limit", 0),
	I(smtp_destination_recipient_limit, "$default_destination_recipient_limit", 0),
	IL(virtual_destination_concurrency_limit, "$default_destination_concurrency_limit", 0),
	IL(virtual_destination_recipient_limit, "$default_destination_recipient_limit", 0),
	IL(initial_destination_concurrency, "5", 1),
	IL(qmgr_message_recipient_limit, "20000", 1),
	B(soft_bounce, "no"),	/* bounces become deferrals, smtpd 5xx replies become 4xx */
	S(syslog_facility, "mail"),	/* syslog facility of the lines sent to syslog (mail, local0 ... local7, ...) */
	/* lookups */
	TN(address_verify_cache_expire, "31d", 'd', 0),	/* older name of address_verify_positive_expire_time (used when only it is set) */

	/* ---- Postfix internals: accepted with a notice ---- */
	X(compatibility_level, "0"),
	X(data_directory, "/var/lib/postfix"),
	X(command_directory, "/usr/sbin"),
	X(daemon_directory, "/usr/libexec/postfix"),
	X(meta_directory, "/etc/postfix"),
	X(shlib_directory, "no"),
	X(sample_directory, "/etc/postfix"),
	X(readme_directory, "no"),
	X(html_directory, "no"),
	X(manpage_directory, "/usr/local/man"),
	X(newaliases_path, "/usr/bin/newaliases"),
	X(mailq_path, "/usr/bin/mailq"),
	X(sendmail_path, "/usr/sbin/sendmail"),
	X(setgid_group, "postdrop"),
	X(maillog_file_prefixes, "/var, /dev/stdout"),
	X(maillog_file_rotate_suffix, "%Y%m%d-%H%M%S"),
	X(maillog_file_compressor, "gzip"),
	X(postlog_service_name, "postlog"),
	X(alias_database, "hash:/etc/aliases"),
	X(biff, "yes"),
	B(append_dot_mydomain, "no"),
	B(append_at_myorigin, "yes"),
	X(smtputf8_enable, "yes"),
	X(allow_percent_hack, "yes"),
	X(swap_bangpath, "yes"),
	X(queue_minfree, "0"),
	X(smtpd_tls_session_cache_database, ""),
	X(smtp_tls_session_cache_database, ""),
	X(lmtp_tls_session_cache_database, ""),
	X(lmtp_tls_security_level, ""),
	X(lmtp_tls_CAfile, ""),
	X(lmtp_tls_CApath, ""),
	X(lmtp_destination_concurrency_limit, "$default_destination_concurrency_limit"),
	X(lmtp_destination_recipient_limit, "$default_destination_recipient_limit"),
	X(debug_peer_level, "2"),
	X(debug_peer_list, ""),
	X(debugger_command, ""),
	X(in_flow_delay, "1s"),
	X(process_id_directory, "pid"),
	X(default_privs, "nobody"),
	X(default_database_type, "hash"),
	X(default_cache_db_type, "btree"),
	X(command_time_limit, "1000s"),
	X(daemon_timeout, "18000s"),
	X(ipc_timeout, "3600s"),
	X(ipc_idle, "5s"),
	X(ipc_ttl, "1000s"),
	X(max_idle, "100s"),
	X(max_use, "100"),
	X(service_throttle_time, "60s"),
	X(stress, ""),
	X(multi_instance_enable, "no"),
	X(multi_instance_directories, ""),
	X(multi_instance_name, ""),
	X(multi_instance_group, ""),
	X(multi_instance_wrapper, ""),
	X(import_environment, ""),
	X(export_environment, "TZ MAIL_CONFIG LANG"),
	X(fast_flush_domains, "$relay_domains"),
	X(qmgr_message_active_limit, "20000"),
	X(qmgr_clog_warn_time, "300s"),
	X(qmgr_daemon_timeout, "1000s"),
	X(tls_random_source, "dev:/dev/urandom"),
	X(tls_random_exchange_name, "${data_directory}/prng_exch"),
	X(tls_daemon_random_bytes, "32"),
	X(smtp_tls_connection_reuse, "no"),
	X(smtpd_service_name, "smtpd"),
	SN(proxy_interfaces, ""),	/* addresses a proxy or NAT receives our mail on (permit_mx_backup, permit_inet_interfaces) */
	X(proxy_read_maps, ""),
	X(proxy_write_maps, ""),
	X(message_strip_characters, ""),
	X(mail_release_date, ""),
	X(hash_queue_depth, "1"),
	X(hash_queue_names, "deferred, defer"),
	X(authorized_submit_users, "static:anyone"),
	X(authorized_mailq_users, "static:anyone"),
	X(authorized_flush_users, "static:anyone"),
	X(master_service_disable, ""),
	X(dnsblog_service_name, "dnsblog"),
	X(tlsproxy_service_name, "tlsproxy"),
	X(trigger_timeout, "10s"),
	X(enable_long_queue_ids, "no"),
	X(config_directory, "/etc/postfix"),
	X(respectful_logging, "yes"),
	BN(show_user_unknown_table_name, "yes"),	/* no: "User unknown" without the table name in smtpd replies */
	X(mailbox_delivery_lock, "fcntl, dotlock"),
	X(forward_path, "$home/.forward${recipient_delimiter}${extension}, $home/.forward"),
	X(allow_mail_to_commands, "alias, forward"),
	X(allow_mail_to_files, "alias, forward"),
	X(local_destination_concurrency_limit, "2"),
	X(local_destination_recipient_limit, "1"),
	X(disable_dns_lookups, "no"),
	X(smtp_dns_resolver_options, ""),
	X(detect_8bit_encoding_header, "yes"),
	X(fallback_relay, ""),
	X(berkeley_db_create_buffer_size, "16777216"),
	X(berkeley_db_read_buffer_size, "131072"),
};

#define NPARAMS (sizeof(table) / sizeof(table[0]))

static struct param_def all[NPARAMS + 1];	/* sorted, NULL-terminated */
static size_t nall;
static char hostname_def[256], domain_def[256];
static pthread_once_t params_once = PTHREAD_ONCE_INIT;

static int
cmp_def(const void *a, const void *b)
{
	return strcmp(((const struct param_def *)a)->name,
		      ((const struct param_def *)b)->name);
}

/*
 * Postfix's myhostname default: the system's name, lowercased; a name
 * without a dot gets ".localdomain" appended. mydomain's default (shown
 * by conf -d) is that minus its first label.
 */
static void
system_hostname(void)
{
	char h[256];
	const char *dot;

	memset(h, 0, sizeof(h));
	if (gethostname(h, sizeof(h) - 1) < 0 || h[0] == '\0')
		snprintf(h, sizeof(h), "localhost");
	for (char *p = h; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (strchr(h, '.') == NULL)
		snprintf(hostname_def, sizeof(hostname_def), "%.200s.localdomain", h);
	else
		snprintf(hostname_def, sizeof(hostname_def), "%s", h);
	dot = strchr(hostname_def, '.');
	snprintf(domain_def, sizeof(domain_def), "%s",
		 dot && dot[1] ? dot + 1 : "localdomain");
}

static void
params_init(void)
{
	size_t i, j;

	system_hostname();
	memcpy(all, table, sizeof(table));
	for (i = 0; i < NPARAMS; i++) {
		if (strcmp(all[i].name, "myhostname") == 0)
			all[i].def = hostname_def;
		else if (strcmp(all[i].name, "mydomain") == 0)
			all[i].def = domain_def;
	}
	qsort(all, NPARAMS, sizeof(all[0]), cmp_def);
	/* A name listed twice by mistake: the first in sort order wins. */
	for (i = j = 0; i < NPARAMS; i++)
		if (j == 0 || strcmp(all[j - 1].name, all[i].name) != 0)
			all[j++] = all[i];
	nall = j;
	memset(&all[nall], 0, (NPARAMS + 1 - nall) * sizeof(all[0]));
}

const struct param_def *
params_find(const char *name)
{
	struct param_def key;

	pthread_once(&params_once, params_init);
	memset(&key, 0, sizeof(key));
	key.name = name;
	return bsearch(&key, all, nall, sizeof(all[0]), cmp_def);
}

const struct param_def *
params_all(void)
{
	pthread_once(&params_once, params_init);
	return all;
}

/* ---- value parsers ---- */

int
params_parse_bool(const char *v, bool *r)
{
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 ||
	    strcmp(v, "1") == 0) {
		*r = true;
		return 0;
	}
	if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 ||
	    strcmp(v, "0") == 0) {
		*r = false;
		return 0;
	}
	return -1;
}

/* Decimal digits with an optional '-', no white space, overflow checked. */
static int
parse_ll(const char *v, size_t n, long long *r)
{
	unsigned long long acc = 0, lim;
	bool neg = false;
	size_t i = 0;

	if (n > 0 && v[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == n)
		return -1;
	lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	for (; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		if (acc > (lim - (unsigned long long)(v[i] - '0')) / 10)
			return -1;
		acc = acc * 10 + (unsigned long long)(v[i] - '0');
	}
	if (neg)
		*r = acc == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN :
		     -(long long)acc;
	else
		*r = (long long)acc;
	return 0;
}

int
params_parse_int(const char *v, long long *r)
{
	return parse_ll(v, strlen(v), r);
}

static long long
unit_seconds(char u)
{
	switch (tolower((unsigned char)u)) {
	case 's': return 1;
	case 'm': return 60;
	case 'h': return 3600;
	case 'd': return 86400;
	case 'w': return 7 * 86400;
	default:  return 0;
	}
}

int
params_parse_time(const char *v, char def_unit, long long *seconds_r)
{
	size_t n = strlen(v);
	long long num, mult;
	char u = def_unit ? def_unit : 's';

	if (n > 0 && isalpha((unsigned char)v[n - 1])) {
		u = v[n - 1];
		n--;
	}
	if ((mult = unit_seconds(u)) == 0 || n == 0 || v[0] == '-' ||
	    parse_ll(v, n, &num) < 0)
		return -1;
	if (num > LLONG_MAX / mult)
		return -1;
	*seconds_r = num * mult;
	return 0;
}

/* ---- settings ---- */

static const char *
expected(const struct param_def *d)
{
	switch (d->type) {
	case PARAM_INT:	 return "an integer";
	case PARAM_SIZE: return "a size in bytes";
	case PARAM_BOOL: return "yes or no";
	case PARAM_TIME: return "a time: a number with an optional unit s, m, "
				"h, d or w";
	default:	 return "a string";
	}
}

static void
bad_value(const struct param_def *d, const struct config *c, const char *v,
	  const char *why, struct errbuf *err)
{
	const char *file;
	int line;

	if (config_where(c, d->name, &file, &line)) {
		if (line > 0)
			errbuf_set(err, "%s, line %d: bad value for %s: \"%.200s\" "
				   "(%s)", file, line, d->name, v, why);
		else
			errbuf_set(err, "%s: bad value for %s: \"%.200s\" (%s)",
				   file, d->name, v, why);
	} else {
		errbuf_set(err, "default value for %s: bad value: \"%.200s\" (%s)",
			   d->name, v, why);
	}
}

/* Checks (and if field is set, stores) one typed value. 0 or -1 + err. */
static int
load_one(struct settings *s, const struct param_def *d, const struct config *c,
	 struct errbuf *err)
{
	char why[160];
	const char *v;
	long long n = 0;
	bool b = false;
	void *field;

	if ((v = config_get_err(c, d->name, err)) == NULL)
		return -1;
	switch (d->type) {
	case PARAM_STR:
		break;
	case PARAM_BOOL:
		if (params_parse_bool(v, &b) < 0) {
			bad_value(d, c, v, "expected yes or no", err);
			return -1;
		}
		break;
	case PARAM_INT:
	case PARAM_SIZE:
	case PARAM_TIME:
		if ((d->type == PARAM_TIME ? params_parse_time(v, d->def_unit, &n) :
		     params_parse_int(v, &n)) < 0) {
			snprintf(why, sizeof(why), "expected %s", expected(d));
			bad_value(d, c, v, why, err);
			return -1;
		}
		if (n < d->min) {
			snprintf(why, sizeof(why), "expected %s, at least %lld%s",
				 expected(d), d->min,
				 d->type == PARAM_TIME ? " seconds" : "");
			bad_value(d, c, v, why, err);
			return -1;
		}
		break;
	}
	if (d->offset == PARAM_NO_FIELD || s == NULL)
		return 0;
	field = (char *)s + d->offset;
	switch (d->type) {
	case PARAM_STR:
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		break;
	case PARAM_BOOL:
		*(bool *)field = b;
		break;
	default:
		*(long long *)field = n;
		break;
	}
	return 0;
}

int
settings_load(struct settings *s, const struct config *c, struct errbuf *err)
{
	const struct param_def *all_defs = params_all();
	struct strlist names;
	int rc = 0;

	s->cfg = c;	/* for the master.cf transports (core/qmgr.c) */
	for (const struct param_def *d = all_defs; d->name; d++) {
		if (d->flags & PARAM_F_INTERNAL)
			continue;	/* Postfix's business, never read */
		if (load_one(s, d, c, err) < 0)
			return -1;
	}
	/* Every value set, known or not, must at least expand cleanly. */
	strlist_init(&names);
	config_names_set(c, &names);
	for (size_t i = 0; i < names.n; i++) {
		const struct param_def *d = params_find(names.v[i]);

		if (d && (d->flags & PARAM_F_INTERNAL))
			continue;
		if (config_get_err(c, names.v[i], err) == NULL) {
			rc = -1;
			break;
		}
	}
	strlist_free(&names);
	return rc;
}

void
settings_free(struct settings *s)
{
	const struct param_def *all_defs = params_all();

	for (const struct param_def *d = all_defs; d->name; d++)
		if (d->offset != PARAM_NO_FIELD && d->type == PARAM_STR)
			xfree((char **)((char *)s + d->offset));
	memset(s, 0, sizeof(*s));
}

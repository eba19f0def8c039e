/*
 * params.h - every parameter facteur knows: name, type, default, and the
 * typed settings struct that modules read (Postfix's CONFIG_*_TABLE idea).
 * A parameter not in the table is "unknown" (warned about); one marked
 * PARAM_F_INTERNAL only tunes Postfix internals and is accepted with a notice.
 */
#ifndef FACTEUR_PARAMS_H
#define FACTEUR_PARAMS_H
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/lib/errbuf.h"

enum param_type {
	PARAM_STR,	/* any string (lists and maps are strings too) */
	PARAM_INT,	/* decimal integer >= min */
	PARAM_BOOL,	/* yes/no (also true/false, 1/0) */
	PARAM_TIME,	/* number + optional unit s m h d w; default unit in def_unit */
	PARAM_SIZE,	/* bytes; plain number (Postfix has no suffixes here) */
};

enum param_flags {
	PARAM_F_INTERNAL = 1 << 0,	/* Postfix-internal knob: notice, ignored */
	PARAM_F_LATER    = 1 << 1,	/* known; used by a module not built yet */
};

struct param_def {
	const char     *name;
	enum param_type type;
	const char     *def;		/* default value, may contain $name */
	char            def_unit;	/* PARAM_TIME: 's', 'm', 'h', 'd', 'w' */
	long long       min;		/* PARAM_INT/TIME/SIZE lower bound */
	unsigned        flags;
	size_t          offset;		/* offsetof(struct settings, x) or PARAM_NO_FIELD */
};
#define PARAM_NO_FIELD ((size_t)-1)

const struct param_def *params_find(const char *name);
/* The table, terminated by an entry with name == NULL. */
const struct param_def *params_all(void);

/*
 * Typed values. Strings are expanded and owned by the struct. Times are in
 * seconds, sizes in bytes. Lists and maps stay strings: the modules that
 * use them split them (strlist_split) or open them (table_list_open).
 */
struct config;

struct settings {
	/* identity */
	char *myhostname, *mydomain, *myorigin, *mydestination, *mail_name;
	char *smtpd_banner, *syslog_name, *maillog_file, *mail_owner;
	/* network */
	char *inet_interfaces, *inet_protocols, *mynetworks, *mynetworks_style;
	char *relay_domains, *relayhost;
	char *relay_recipient_maps, *relocated_maps;	/* core/resolve.c */
	/* smtpd */
	long long message_size_limit, header_size_limit, line_length_limit;
	long long smtpd_recipient_limit, smtpd_timeout, hopcount_limit;
	long long smtpd_soft_error_limit, smtpd_hard_error_limit;
	long long smtpd_error_sleep_time, smtpd_junk_command_limit;
	long long default_process_limit;
	bool smtpd_helo_required, disable_vrfy_command, smtpd_delay_reject;
	bool strict_rfc821_envelopes, smtpd_peername_lookup;
	long long facteur_peername_timeout;	/* core/smtpd_peername.c */
	char *smtpd_upstream_proxy_protocol;	/* core/proxy_proto.c */
	long long smtpd_upstream_proxy_timeout;
	char *postscreen_upstream_proxy_protocol;	/* the same, postscreen */
	long long postscreen_upstream_proxy_timeout;
	bool enable_original_recipient;
	/* client and SASL user rate limits (core/smtpd_limits.c) */
	long long smtpd_client_connection_count_limit;
	long long smtpd_client_connection_rate_limit;
	long long smtpd_client_message_rate_limit, smtpd_client_recipient_rate_limit;
	long long smtpd_client_new_tls_session_rate_limit;
	long long smtpd_client_auth_rate_limit, anvil_rate_time_unit;
	char *smtpd_client_event_limit_exceptions;
	long long smtpd_client_ipv4_prefix_length, smtpd_client_ipv6_prefix_length;
	long long smtpd_sasl_user_message_rate_limit;
	long long smtpd_sasl_user_recipient_rate_limit;
	long long smtpd_sasl_user_rate_time_unit, smtpd_sasl_user_hold_time;
	char *smtpd_sasl_user_limit_maps, *smtpd_sasl_user_hold_threshold;
	char *smtpd_sasl_user_notice_recipient;
	char *smtpd_client_restrictions, *smtpd_helo_restrictions;
	char *smtpd_sender_restrictions, *smtpd_relay_restrictions;
	char *smtpd_recipient_restrictions, *smtpd_data_restrictions;
	/* addressing */
	char *recipient_delimiter;
	char *virtual_mailbox_domains, *virtual_mailbox_base, *virtual_mailbox_maps;
	char *virtual_alias_maps, *virtual_alias_domains;
	/* rewriting (core/rewrite.c) and local aliases (core/rewrite_alias.c) */
	char *canonical_maps, *sender_canonical_maps, *recipient_canonical_maps;
	char *canonical_classes, *sender_canonical_classes;
	char *recipient_canonical_classes, *masquerade_domains;
	char *masquerade_exceptions, *masquerade_classes;
	char *propagate_unmatched_extensions, *remote_header_rewrite_domain;
	char *local_header_rewrite_clients, *alias_maps;
	bool append_dot_mydomain, append_at_myorigin, facteur_alias_include;
	char *virtual_uid_maps, *virtual_gid_maps;
	long long virtual_minimum_uid;
	long long virtual_alias_recursion_limit, virtual_alias_expansion_limit;
	/* queue */
	char *queue_directory;
	long long maximal_queue_lifetime, bounce_queue_lifetime, delay_warning_time;
	long long minimal_backoff_time, maximal_backoff_time, queue_run_delay;
	long long facteur_worker_threads;
	long long bounce_size_limit;	/* delivery/bounce.c via qmgr */
	/* outbound (core/dns.c, core/qmgr.c, delivery/) */
	char *facteur_dns_servers;
	/* daemon control (core/facteurd.c, core/status.c) */
	long long facteur_shutdown_timeout;
	char *facteur_metrics_listen;
	char *transport_maps, *default_transport, *relay_transport;
	char *content_filter;	/* core/smtpd_commit.c, core/pickup.c, qmgr */
	char *sender_dependent_relayhost_maps;	/* core/qmgr.c */
	char *sender_dependent_default_transport_maps;
	char *empty_address_relayhost_maps_lookup_key;
	char *empty_address_default_transport_maps_lookup_key;
	const struct config *cfg;	/* what settings_load read (not owned) */
	char *virtual_transport, *smtp_helo_name;
	long long smtp_connect_timeout, smtp_helo_timeout, smtp_mail_timeout;
	long long smtp_rcpt_timeout, smtp_data_init_timeout, smtp_data_xfer_timeout;
	long long smtp_data_done_timeout, smtp_quit_timeout;
	long long default_destination_concurrency_limit;
	/* outbound STARTTLS and AUTH (delivery/smtp_tls.c, smtp_client.c) */
	char *smtp_tls_security_level, *smtp_tls_CAfile, *smtp_tls_CApath;
	bool smtp_sasl_auth_enable;
	char *smtp_sasl_password_maps, *smtp_sasl_security_options;
	char *smtp_sasl_tls_security_options, *smtp_sasl_mechanism_filter;
	/* outbound connections, notices, MIME (core/qmgr.c, delivery/) */
	char *smtp_bind_address, *smtp_bind_address6, *smtp_tls_policy_maps;
	bool smtp_bind_address_enforce, smtp_connection_cache_on_demand;
	char *smtp_connection_cache_destinations;
	long long smtp_connection_cache_time_limit, smtp_connection_reuse_count_limit;
	long long smtp_connection_reuse_time_limit, smtp_rset_timeout;
	long long smtp_destination_concurrency_limit;
	bool disable_mime_output_conversion;
	char *notify_classes, *bounce_notice_recipient, *error_notice_recipient;
	char *double_bounce_notice_recipient;	/* 2bounce_notice_recipient */
	char *delay_notice_recipient, *double_bounce_sender;
	char *smtp_tls_protocols, *smtp_tls_mandatory_protocols;
	long long smtp_destination_recipient_limit;
	/* delivery: Sieve (delivery/deliver.c) */
	char *sieve_before, *sieve_after;
	char *sieve_global_dir, *sieve_global;	/* include :global */
	/* delivery: Maildir++ quota (delivery/quota.c via deliver.c) */
	long long virtual_mailbox_limit;
	char *header_checks, *body_checks;	/* core/cleanup_headers.c */
	char *mime_header_checks, *nested_header_checks;	/* the same */
	char *smtp_header_checks, *smtp_body_checks;	/* delivery/smtp_checks.c */
	char *smtp_mime_header_checks, *smtp_nested_header_checks;
	char *lmtp_header_checks, *lmtp_mime_header_checks;
	char *lmtp_nested_header_checks, *lmtp_body_checks;
	long long mime_nesting_limit, mime_boundary_length_limit;
	bool disable_mime_input_processing, strict_8bitmime, strict_7bit_headers;
	bool strict_8bitmime_body, strict_mime_encoding_domain;
	long long body_checks_size_limit;
	char *virtual_mailbox_limit_maps;
	bool virtual_mailbox_full_tempfail;
	char *virtual_mailbox_quota_warning;	/* "80 90": percentages */
	/* smtpd TLS (core/tls.c) */
	char *smtpd_tls_security_level, *smtpd_tls_cert_file, *smtpd_tls_key_file;
	char *smtpd_tls_chain_files, *smtpd_tls_protocols;
	char *smtpd_tls_mandatory_protocols, *smtpd_tls_ciphers;
	char *smtpd_tls_mandatory_ciphers, *smtpd_tls_exclude_ciphers;
	char *smtpd_tls_mandatory_exclude_ciphers;
	char *tls_high_cipherlist, *tls_medium_cipherlist;
	long long smtpd_tls_loglevel, smtpd_tls_session_cache_timeout;
	bool smtpd_tls_received_header, smtpd_tls_wrappermode;
	bool smtpd_enforce_tls, smtpd_use_tls, tls_preempt_cipherlist;
	/* smtpd SASL (auth/) */
	char *smtpd_sasl_type, *smtpd_sasl_passdb, *smtpd_sasl_security_options;
	char *smtpd_sasl_tls_security_options, *smtpd_sasl_mechanisms;
	char *tls_server_sni_maps, *smtpd_sasl_local_domain;
	char *syslog_facility;
	bool smtpd_sasl_auth_enable, smtpd_sasl_authenticated_header;
	bool broken_sasl_auth_clients, smtpd_tls_auth_only;
	/* Sendmail milters (core/milter.c) */
	char *smtpd_milters, *non_smtpd_milters, *milter_default_action;
	long long milter_protocol, milter_connect_timeout;
	long long milter_command_timeout, milter_content_timeout;
	char *milter_connect_macros, *milter_helo_macros, *milter_mail_macros;
	char *milter_rcpt_macros, *milter_data_macros;
	char *milter_end_of_header_macros, *milter_end_of_data_macros;
	char *milter_macro_daemon_name, *milter_macro_v, *milter_macro_defaults;
	char *milter_header_checks;
	/* BCC, generic maps, client certificates, soft_bounce (helper H3) */
	char *always_bcc, *sender_bcc_maps, *recipient_bcc_maps;
	char *smtp_generic_maps, *receive_override_options;
	char *smtp_tls_cert_file, *smtp_tls_key_file, *smtp_tls_chain_files;
	bool soft_bounce;
	/* DNSSEC for the SMTP client's DANE (helper H5) */
	char *smtp_dns_support_level;
	/* more certificates, client certificates, OpenSSL options (core/tls.c,
	 * core/smtpd_ccert.c, delivery/smtp_tls.c; helper H7) */
	char *smtpd_tls_dcert_file, *smtpd_tls_dkey_file;
	char *smtpd_tls_eccert_file, *smtpd_tls_eckey_file;
	char *smtpd_tls_CAfile, *smtpd_tls_CApath, *smtpd_tls_dh1024_param_file;
	char *smtpd_tls_fingerprint_digest, *tls_ssl_options, *relay_clientcerts;
	bool smtpd_tls_ask_ccert, smtpd_tls_req_ccert;
	long long smtpd_tls_ccert_verifydepth;
	char *smtp_tls_ciphers, *smtp_tls_mandatory_ciphers;
	char *smtp_tls_exclude_ciphers;
	long long smtp_tls_loglevel;
	bool smtp_tls_note_starttls_offer, smtp_tls_wrappermode;
	bool smtp_use_tls, smtp_enforce_tls;
	char *tls_low_cipherlist, *tls_export_cipherlist, *tls_null_cipherlist;
	char *tls_eecdh_auto_curves, *smtpd_tls_eecdh_grade;
	char *smtp_tls_mandatory_exclude_ciphers;
	long long smtp_tls_scert_verifydepth;
	char *smtp_tls_verify_cert_match, *smtp_tls_secure_cert_match;
	bool tls_append_default_CA;
};

/*
 * Fills s from c. On a bad value returns -1 with err naming the place:
 * "/etc/facteur/main.cf, line 12: bad value for message_size_limit: \"10x\"
 * (expected a size in bytes)" (or "default" when the bad value came from a
 * default's expansion). s must be zeroed or freed before.
 */
int  settings_load(struct settings *s, const struct config *c, struct errbuf *err);
void settings_free(struct settings *s);

/*
 * Value parsers shared with the CLI and tests. Return 0, or -1 if the text
 * is not a valid value of that kind.
 */
int params_parse_bool(const char *v, bool *r);
int params_parse_time(const char *v, char def_unit, long long *seconds_r);
int params_parse_int(const char *v, long long *r);

#endif

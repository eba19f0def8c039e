/*
 * milter_proto.h - the Sendmail milter wire protocol (versions 2 to 6),
 * as libmilter, Postfix and every milter (rspamd, OpenDKIM, OpenDMARC)
 * speak it: packets are a 4-byte big-endian length (command byte
 * included), one command byte, then the command's data. This module only
 * encodes what the MTA sends and decodes what a milter answers, on bytes
 * in memory; core/milter.c does the sockets and the SMTP session glue.
 * Must not: do I/O, log, or trust a packet (every length and every string
 * is checked; a bad packet is an error, never a decision).
 */
#ifndef FACTEUR_MILTER_PROTO_H
#define FACTEUR_MILTER_PROTO_H
#include <stddef.h>
#include <stdint.h>

#include "core/lib/buf.h"

/* MTA -> milter commands (SMFIC_*) */
#define MILTER_C_ABORT    'A'
#define MILTER_C_BODY     'B'
#define MILTER_C_CONNECT  'C'
#define MILTER_C_MACRO    'D'
#define MILTER_C_BODYEOB  'E'
#define MILTER_C_HELO     'H'
#define MILTER_C_QUIT_NC  'K'
#define MILTER_C_HEADER   'L'
#define MILTER_C_MAIL     'M'
#define MILTER_C_EOH      'N'
#define MILTER_C_OPTNEG   'O'
#define MILTER_C_QUIT     'Q'
#define MILTER_C_RCPT     'R'
#define MILTER_C_DATA     'T'
#define MILTER_C_UNKNOWN  'U'

/* milter -> MTA replies (SMFIR_*) */
#define MILTER_R_ADDRCPT     '+'
#define MILTER_R_DELRCPT     '-'
#define MILTER_R_ADDRCPT_PAR '2'
#define MILTER_R_SHUTDOWN    '4'
#define MILTER_R_ACCEPT      'a'
#define MILTER_R_REPLBODY    'b'
#define MILTER_R_CONTINUE    'c'
#define MILTER_R_DISCARD     'd'
#define MILTER_R_CHGFROM     'e'
#define MILTER_R_CONN_FAIL   'f'
#define MILTER_R_ADDHEADER   'h'
#define MILTER_R_INSHEADER   'i'
#define MILTER_R_SETSYMLIST  'l'
#define MILTER_R_CHGHEADER   'm'
#define MILTER_R_PROGRESS    'p'
#define MILTER_R_QUARANTINE  'q'
#define MILTER_R_REJECT      'r'
#define MILTER_R_SKIP        's'
#define MILTER_R_TEMPFAIL    't'
#define MILTER_R_REPLYCODE   'y'
#define MILTER_R_OPTNEG      'O'

/* actions a milter may take (SMFIF_*) */
#define MILTER_F_ADDHDRS     0x001u
#define MILTER_F_CHGBODY     0x002u
#define MILTER_F_ADDRCPT     0x004u
#define MILTER_F_DELRCPT     0x008u
#define MILTER_F_CHGHDRS     0x010u
#define MILTER_F_QUARANTINE  0x020u
#define MILTER_F_CHGFROM     0x040u
#define MILTER_F_ADDRCPT_PAR 0x080u
#define MILTER_F_SETSYMLIST  0x100u
#define MILTER_F_ALL         0x1ffu

/* protocol steps the milter does not want, or answers not (SMFIP_*) */
#define MILTER_P_NOCONNECT   0x000001u
#define MILTER_P_NOHELO      0x000002u
#define MILTER_P_NOMAIL      0x000004u
#define MILTER_P_NORCPT      0x000008u
#define MILTER_P_NOBODY      0x000010u
#define MILTER_P_NOHDRS      0x000020u
#define MILTER_P_NOEOH       0x000040u
#define MILTER_P_NR_HDR      0x000080u
#define MILTER_P_NOUNKNOWN   0x000100u
#define MILTER_P_NODATA      0x000200u
#define MILTER_P_SKIP        0x000400u
#define MILTER_P_RCPT_REJ    0x000800u
#define MILTER_P_NR_CONN     0x001000u
#define MILTER_P_NR_HELO     0x002000u
#define MILTER_P_NR_MAIL     0x004000u
#define MILTER_P_NR_RCPT     0x008000u
#define MILTER_P_NR_DATA     0x010000u
#define MILTER_P_NR_UNKN     0x020000u
#define MILTER_P_NR_EOH      0x040000u
#define MILTER_P_NR_BODY     0x080000u
#define MILTER_P_HDR_LEADSPC 0x100000u
/* What facteur offers: everything but RCPT_REJ (rejected recipients are
 * not shown to milters) and the larger body chunk sizes. */
#define MILTER_P_OFFER       0x1ff7ffu

/* macro stages of the OPTNEG symbol lists (SMFIM_*) */
enum milter_stage {
	MILTER_M_CONNECT = 0, MILTER_M_HELO, MILTER_M_ENVFROM,
	MILTER_M_ENVRCPT, MILTER_M_DATA, MILTER_M_EOM, MILTER_M_EOH,
	MILTER_M_COUNT
};

#define MILTER_CHUNK_MAX   65535	/* SMFIC_BODY data */
#define MILTER_REPLY_MAX   (1024 * 1024 + 16)	/* one reply packet */

/* Appends one packet (length, command, data) to out. */
void milter_put(struct buf *out, int cmd, const void *data, size_t len);
/* OPTNEG as the MTA sends it. */
void milter_put_optneg(struct buf *out, uint32_t version, uint32_t actions,
		       uint32_t protocol);
/* CONNECT: host name, then the address: family '4' or '6' with port and
 * address text, or 'U' (unknown) when addr is NULL or empty. */
void milter_put_connect(struct buf *out, const char *host, const char *addr,
			unsigned port);
/* A command whose data is NUL-terminated strings (HELO, MAIL, RCPT,
 * HEADER): n of them. */
void milter_put_strings(struct buf *out, int cmd, const char *const *v,
			size_t n);
/* MACRO for the command cmd: n name/value pairs (names[i], values[i]). */
void milter_put_macros(struct buf *out, int cmd, const char *const *names,
		       const char *const *values, size_t n);

/*
 * One packet at the start of p[0..len): 1 when complete (cmd, data and
 * dlen set, *used = its size), 0 when more bytes are needed, -1 when it
 * cannot be a packet (length 0 or above max).
 */
int milter_get(const unsigned char *p, size_t len, size_t max, int *cmd,
	       const unsigned char **data, size_t *dlen, size_t *used);

struct milter_optneg {
	uint32_t version, actions, protocol;
	/* symbol lists asked for each stage (space-separated), or NULL;
	 * they point into the packet data */
	const char *macros[MILTER_M_COUNT];
	size_t      macros_len[MILTER_M_COUNT];
};
/* The milter's OPTNEG reply. 0, or -1 when malformed. */
int milter_parse_optneg(const unsigned char *d, size_t len,
			struct milter_optneg *o);

/*
 * Splits data into exactly n NUL-terminated strings (the last may be
 * followed by nothing else). skip bytes of a leading 32-bit index are
 * decoded into *index when index is not NULL. 0, or -1 when the data is
 * not that shape (a missing NUL, a string too many or too few).
 * ADDRCPT_PAR and CHGFROM carry an optional second string: use
 * milter_parse_strings_opt.
 */
int milter_parse_strings(const unsigned char *d, size_t len, uint32_t *index,
			 const char **v, size_t n);
/* 1 to max strings; returns how many, or -1. */
int milter_parse_strings_opt(const unsigned char *d, size_t len,
			     const char **v, size_t max);

/*
 * A REPLYCODE's text as an SMTP reply for the client: "4xx"/"5xx", an
 * optional enhanced code, the text; multi-line replies are kept when
 * every line carries the same code. The result (no final CRLF) goes into
 * out. 0, or -1 when it is not a 4xx/5xx reply (the caller then uses the
 * default action).
 */
int milter_reply_text(const char *text, struct buf *out);

/* "SMFIC_OPTNEG" ... for log lines. */
const char *milter_cmd_name(int cmd);

#endif

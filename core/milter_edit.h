/*
 * milter_edit.h - the message as milters see and edit it: the header
 * fields one by one and the body, taken from the transaction's content
 * (LF line ends, as smtpd_session.c stores it) and put back after the
 * milters' header changes and body replacement (ADDHEADER, INSHEADER,
 * CHGHEADER, REPLBODY), with Sendmail's and Postfix's index rules.
 * Must not: do I/O or log; grow past the caller's size bound (every
 * change that would is refused and reported).
 */
#ifndef FACTEUR_MILTER_EDIT_H
#define FACTEUR_MILTER_EDIT_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/buf.h"
#include "core/lib/strlist.h"

struct milter_msg {
	struct strlist hdrs;	/* "Name: value", continuation lines joined
				   by "\n", no final line end */
	const char    *body;	/* the body as loaded (points into the
				   caller's content), LF line ends */
	size_t         body_len;
	struct buf     newbody;	/* REPLBODY, LF line ends */
	bool           replaced;	/* newbody replaces body */
	bool           pending_cr;	/* a replacement chunk ended in CR */
	size_t         max;	/* bound of the whole message, 0 = none */
	size_t         size;	/* current header bytes (approximate) */
};

/* Splits content into header fields and body. body points into content,
 * which must outlive m. */
void milter_msg_load(struct milter_msg *m, const char *content, size_t len,
		     size_t max);
void milter_msg_free(struct milter_msg *m);

/* The header's name (length), and its value as a milter gets it: after
 * the colon, the leading white space kept only with leadspc. The value
 * is written into v (reset first). */
size_t milter_hdr_name(const char *field);
void   milter_hdr_value(const char *field, bool leadspc, struct buf *v);

/* Header changes. value as the milter sent it (CR LF or LF folding);
 * leadspc: the milter negotiated HDR_LEADSPC (the value carries its own
 * leading space). -1 when the change is malformed (bad name) or would
 * exceed the bound. */
int milter_msg_add(struct milter_msg *m, const char *name, const char *value,
		   bool leadspc);
/* index 0 = before the first header; past the end = at the end. */
int milter_msg_insert(struct milter_msg *m, unsigned index, const char *name,
		      const char *value, bool leadspc);
/* index: the index-th header of that name (1-based; 0 counts as 1); an
 * empty value deletes it; a missing one is added at the end (unless the
 * value is empty). */
int milter_msg_change(struct milter_msg *m, unsigned index, const char *name,
		      const char *value, bool leadspc);
/* One REPLBODY chunk (CR LF line ends become LF). -1 past the bound. */
int milter_msg_body_chunk(struct milter_msg *m, const char *p, size_t n);

/* The body bytes currently in effect (replacement or original). */
const char *milter_msg_body(const struct milter_msg *m, size_t *len);
/* Writes headers, the empty line, and the body into out (reset first).
 * -1 when it exceeds the bound (out is then empty). */
int milter_msg_store(const struct milter_msg *m, struct buf *out);

/* The address of a milter's CHGFROM/ADDRCPT/DELRCPT into out (reset
 * first), without its enclosing <> when it has them. false when out
 * cannot grow. Used by milter.c and milter_sync.c. */
bool milter_strip_addr(const char *a, struct buf *out);

#endif

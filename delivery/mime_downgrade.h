/*
 * mime_downgrade.h - 8BITMIME to 7BIT conversion (RFC 6152 section 3, as
 * Postfix's smtp(8) does it unless disable_mime_output_conversion = yes)
 * for a server that does not announce 8BITMIME: every leaf MIME part whose
 * body holds 8-bit bytes is re-encoded as quoted-printable (RFC 2045 6.7)
 * and its Content-Transfer-Encoding replaced; multipart and message/rfc822
 * parts are walked (bounded depth) and a declared 8bit/binary encoding on
 * them becomes 7bit. A message without MIME-Version gets MIME headers for
 * text/plain (charset utf-8 when the body is UTF-8, else unknown-8bit).
 * Headers are left as they are (8-bit header text cannot be downgraded).
 * Pure: no I/O, no logging.
 * Must not: read outside the input, change a part that is already 7-bit
 * (base64, quoted-printable, 7-bit text), or recurse without bound.
 */
#ifndef FACTEUR_MIME_DOWNGRADE_H
#define FACTEUR_MIME_DOWNGRADE_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/buf.h"

#define MIME_DOWNGRADE_DEPTH 20	/* nested multipart / message levels */

/* Whether msg (header and body) has a byte above 0x7f. */
bool mime_has_8bit(const char *msg, size_t len);

/*
 * Appends the 7-bit form of msg (LF or CRLF line ends: text copied keeps
 * its own, lines written here end in LF) to out. Returns 1 when something
 * was converted, 0 when nothing could be (7-bit body, 8-bit bytes only in
 * headers or in encoded parts): out then holds a copy of msg.
 */
int mime_downgrade(const char *msg, size_t len, struct buf *out);

/*
 * Quoted-printable (RFC 2045 6.7) of one body: line breaks kept as hard
 * breaks ("\n"), lines of at most 76 characters with soft breaks, '=' and
 * bytes outside printable ASCII encoded, white space before a line end
 * encoded. Appends to out.
 */
void mime_qp_encode(const char *body, size_t len, struct buf *out);

#endif

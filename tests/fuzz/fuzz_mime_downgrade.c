/*
 * fuzz_mime_downgrade.c - libFuzzer target for the 8BITMIME to 7BIT
 * converter. Beyond "no crash": "not converted" means an exact copy, a
 * conversion keeps the input's first header line (MIME-Version or not,
 * it is not a Content-Transfer-Encoding one), and the quoted-printable
 * encoder's output of the input is 7-bit with lines of at most 76
 * characters.
 * Must not: keep state between inputs.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "delivery/mime_downgrade.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out, qp;
	size_t i, col = 0;

	buf_init(&out, 0);
	if (mime_downgrade((const char *)data, size, &out) == 0) {
		if (out.len != size || (size && memcmp(out.data, data, size) != 0))
			abort();	/* "not converted" means a copy */
	} else if (size > 26 && strncasecmp((const char *)data,
					     "Content-Transfer-Encoding:", 26) != 0) {
		const uint8_t *nl = memchr(data, '\n', size);
		size_t n = nl ? (size_t)(nl - data) : 0;

		size_t k;
		bool hdr = n > 0;

		/* a header line: a printable name, ':', 7-bit text */
		for (k = 0; k < n && hdr; k++)
			hdr = data[k] >= 0x20 && data[k] < 0x7f && data[k] != '\r';
		if (hdr) {
			const uint8_t *c = memchr(data, ':', n);
			hdr = c != NULL && c > data;
			for (k = 0; hdr && data + k < c; k++)
				hdr = data[k] > ' ';
		}
		if (hdr && (out.len < n || memcmp(out.data, data, n) != 0))
			abort();
	}
	buf_free(&out);
	buf_init(&qp, 0);
	mime_qp_encode((const char *)data, size, &qp);
	for (i = 0; i < qp.len; i++) {
		if ((unsigned char)qp.data[i] >= 0x80)
			abort();
		col = qp.data[i] == '\n' ? 0 : col + 1;
		if (col > 76)
			abort();
	}
	buf_free(&qp);
	return 0;
}

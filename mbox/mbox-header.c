/*
 * mbox-header.c: a message's bytes as one range, found without walking its header.
 *
 * FETCH and SEARCH read a message from its first visible header line to its end.  Finding
 * that line through mbox_header_next() walks every line of the header; here only the hidden
 * metadata fields that may stand before the first visible line are looked at (usually none),
 * so a caller that keeps its own index of the header pays nothing per message to find it.
 */
#include "mbox/mbox.h"
#include "mbox/mbox-private.h"

int
mbox_msg_range(const struct mbox *mb, uint32_t i, const unsigned char **p_r, size_t *len_r,
    size_t *hdr_len_r, uint64_t *off_r)
{
	const unsigned char *map;
	struct mbox_msg tmp;
	const struct mbox_msg *m = mbox_msg_bytes(mb, i, &map, &tmp);
	uint64_t p, start;
	struct hdr_line l;

	if (m == NULL) {
		*p_r = (const unsigned char *)"";
		*len_r = 0;
		*hdr_len_r = 0;
		*off_r = 0;
		return -1;
	}
	/* the same first line as mbox_header_next(): leading hidden fields skipped */
	p = m->from_off + m->from_len;
	start = m->body_off;
	while (p < m->body_off && mbox_hdr_next(map, &p, m->body_off, &l)) {
		if (l.empty || l.name_len == 0 ||
		    mbox_meta_kind(map + l.off, l.name_len) == 0) {
			start = l.off;
			break;
		}
	}
	*p_r = map + start;
	*len_r = (size_t)(m->end - start);
	*hdr_len_r = (size_t)(m->body_off - start);
	/* a kept copy is not at any offset of the file: one no cache entry of a message in
	 * the file can have (parse caches key on it) */
	*off_r = map == mb->map ? start : (UINT64_C(1) << 63) | start;
	return 0;
}

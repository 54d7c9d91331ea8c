#ifndef MBOX_CHARSET_FOLD_H
#define MBOX_CHARSET_FOLD_H

#include <stdint.h>

/* Longest folded form of one code point in the table, in bytes. */
#define CHARSET_FOLD_MAX	8

/* The folded (lower case, NFKD) UTF-8 form of cp, or NULL when cp folds to itself or lies
 * outside the table (ASCII is handled by the caller). */
const char *charset_fold_lookup(uint32_t cp);

#endif

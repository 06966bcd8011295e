/*
 * hex - the value of one hexadecimal digit, either case (RFC 2047's
 * Q-encoding, quoted-printable, the fuzz dictionaries' \xNN). Protocols
 * that allow one case only (xtext, our key files) check it themselves.
 */
#ifndef POSTERN_UTIL_HEX_H
#define POSTERN_UTIL_HEX_H

/* 0..15, or -1 when c is not a hexadecimal digit. */
static inline int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif

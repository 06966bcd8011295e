/*
 * b64 - the value of one base64 digit, shared by the SASL codec (RFC 4648
 * alphabet, 63 is '/') and modified UTF-7 (RFC 3501, 63 is ',').
 */
#ifndef POSTERN_UTIL_B64_H
#define POSTERN_UTIL_B64_H

/* 0..63 for a digit of the alphabet whose 63rd digit is c63, else -1. */
static inline int
b64_digit(unsigned char c, unsigned char c63)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == c63)
		return 63;
	return -1;
}

#endif

/*
 * mboxname - the folder name rule (contract in mboxname.h).
 *
 * Invariant: a name that passes contains no byte that could make a
 * Maildir++ path leave the Maildir ('/' becomes '.', and neither '.' nor
 * a control character nor invalid UTF-8 gets through).
 */
#include "proto/mboxname.h"

#include "proto/mutf7.h"

int
mboxname_check(const char *name, size_t len, const char **why_r)
{
	size_t i, level = 0, depth = 1;

	if (len == 0) {
		*why_r = "Mailbox name is empty";
		return -1;
	}
	if (len > MBOXNAME_LEN_MAX) {
		*why_r = "Mailbox name is too long";
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f) {
			*why_r = "Mailbox name has control characters";
			return -1;
		}
		if (c == '.' || c == '\\') {
			*why_r = "Mailbox name may not contain '.' or '\\'";
			return -1;
		}
		if (c != '/') {
			level++;
			continue;
		}
		if (level == 0)
			break;
		level = 0;
		if (++depth > MBOXNAME_DEPTH_MAX) {
			*why_r = "Mailbox name has too many levels";
			return -1;
		}
	}
	if (level == 0) {
		*why_r = "Mailbox name has an empty level";
		return -1;
	}
	if (!utf8_valid(name, len)) {
		*why_r = "Mailbox name is not valid UTF-8";
		return -1;
	}
	return 0;
}

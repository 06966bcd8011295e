/*
 * managesieve - ManageSieve (RFC 5804) responses; see managesieve.h.
 */
#include <string.h>

#include "proto/imap.h"
#include "proto/managesieve.h"

void
msieve_capabilities(struct buf *out, unsigned flags, const char *extensions,
    unsigned long max_redirects)
{
	buf_puts(out, "\"IMPLEMENTATION\" \"Postern\"\r\n");
	buf_printf(out, "\"SIEVE\" \"%s\"\r\n", extensions);
	if (!(flags & MSIEVE_CAP_AUTHED))
		buf_printf(out, "\"SASL\" \"%s\"\r\n",
		    flags & MSIEVE_CAP_SASL ? "PLAIN LOGIN" : "");
	if ((flags & (MSIEVE_CAP_STARTTLS | MSIEVE_CAP_AUTHED)) == MSIEVE_CAP_STARTTLS)
		buf_puts(out, "\"STARTTLS\"\r\n");
	if (max_redirects > 0)
		buf_printf(out, "\"MAXREDIRECTS\" \"%lu\"\r\n", max_redirects);
	buf_puts(out, "\"VERSION\" \"1.0\"\r\n");
}

void
msieve_reply(struct buf *out, const char *kind, const char *code, const char *text)
{
	buf_puts(out, kind);
	if (code != NULL)
		buf_printf(out, " (%s)", code);
	if (text != NULL) {
		buf_putc(out, ' ');
		imap_quote(out, text, strlen(text), IMAP_Q_UTF8);
	}
	buf_puts(out, "\r\n");
}

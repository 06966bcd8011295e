/*
 * Unit tests for lib/sieve: the examples of RFC 5228, 5229, 5230 and 5232
 * that have a defined result, the extensions, broken scripts (with the
 * line of the error) and the bounds. Each case is a script, a message and
 * the actions wanted, written as "keep[\Seen];fileinto:spam;...".
 */
/* Most cases leave dup_seen out (0). */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/strv.h"
#include "sieve/sieve.h"

/* The RFC 5228 section 9 sample message, more or less. */
static const char msg_coyote[] =
    "Date: Tue, 1 Apr 1997 09:06:31 -0800 (PST)\r\n"
    "From: coyote@desert.example.org\r\n"
    "To: roadrunner@acme.example.com\r\n"
    "Subject: I have a present for you\r\n"
    "X-Caffeine: C8H10N4O2\r\n"
    "\r\n"
    "Look, I'm sorry about the whole anvil thing, and I really\r\n"
    "didn't mean to try and drop it on you from the top of the\r\n"
    "cliff.  I want to try to make it up to you.  I've got some\r\n"
    "great birdseed over here at my place--top of the line\r\n"
    "stuff--and if you come by, I'll have it all wrapped up\r\n"
    "for you.  I'm really sorry for all the problems I've caused\r\n"
    "for you over the years, but I know we can work this out.\r\n"
    "--\r\n"
    "Wile E. Coyote   \"Super Genius\"   coyote@desert.example.org\r\n";

static const char msg_list[] =
    "From: Some One <someone@example.org>\r\n"
    "To: me@example.com\r\n"
    "Sender: owner-ietf-mta-filters@imc.org\r\n"
    "List-ID: Sieve discussion <sieve.ietf.org>\r\n"
    "Subject: [acme-users] [fwd] version 1.0 is out\r\n"
    "Message-ID: <123@example.org>\r\n"
    "Received: from a by b; Wed, 2 Dec 2026 10:00:00 +0100\r\n"
    "Date: Wed, 2 Dec 2026 10:00:00 +0100\r\n"
    "X-Spam: yes\r\n"
    "\r\n"
    "the body text\r\n";

static const char msg_enc[] =
    "From: =?utf-8?q?J=C3=B6rg?= <joerg+lists@example.net>\r\n"
    "To: me+sieve@example.com, \"Other, Person\" <other@example.com>\r\n"
    "Cc: group: a@x.example, b@y.example;\r\n"
    "Subject: =?iso-8859-1?q?caf=E9?= =?utf-8?b?w6k=?=\r\n"
    "Received: one\r\n"
    "Received: two\r\n"
    "Received: three\r\n"
    "\r\n"
    "body\r\n";

static const char msg_mime[] =
    "From: a@example.org\r\n"
    "To: me@example.com\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--XX\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Caf=E9 au lait\r\n"
    "--XX\r\n"
    "Content-Type: text/html\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "PGI+aHRtbCBvbmx5PC9iPg==\r\n"
    "--XX\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "binary stuff\r\n"
    "--XX--\r\n";

struct kase {
	const char *name;
	const char *script;
	const char *msg;
	const char *from, *to;     /* envelope; NULL: defaults */
	const char *want;          /* actions, or "ERROR" */
	int dup_seen;              /* duplicate callback answer */
	uint64_t size;             /* message size, 0: its length */
};

/* Render a result the way the table says it. */
static char *
render(const struct sieve_result *res)
{
	struct buf b = BUF_INIT(0);
	static const char *const names[] = { "keep", "fileinto", "redirect", "discard",
		"reject", "ereject", "vacation", "notify" };

	for (size_t i = 0; i < res->nacts; i++) {
		const struct sieve_action *a = &res->acts[i];

		if (i > 0)
			buf_putc(&b, ';');
		buf_puts(&b, names[a->type]);
		if (a->type != SIEVE_KEEP && a->type != SIEVE_DISCARD)
			buf_printf(&b, ":%s", a->target);
		if (a->copy)
			buf_puts(&b, "(copy)");
		if (a->flags != NULL && a->flags[0] != NULL) {
			buf_putc(&b, '[');
			for (size_t k = 0; a->flags[k] != NULL; k++)
				buf_printf(&b, "%s%s", k ? " " : "", a->flags[k]);
			buf_putc(&b, ']');
		}
	}
	return b.data != NULL ? buf_steal(&b) : xstrdup("");
}

static int
dup_yes(void *ctx, const char *id)
{
	(void)id;
	return *(int *)ctx;
}

static int
include_cb(void *ctx, int global, const char *name, struct sieve_script **s_r, char **err_r)
{
	const char *src = NULL;
	int line;

	(void)ctx;
	if (strcmp(name, "spam") == 0 && !global)
		src = "require \"fileinto\"; if header :is \"X-Spam\" \"yes\" { fileinto \"Junk\"; }";
	else if (strcmp(name, "stopper") == 0 && global)
		src = "require \"include\"; keep; return; discard;";
	else if (strcmp(name, "self") == 0)
		src = "require \"include\"; include \"self\";";
	else if (strcmp(name, "setvar") == 0)
		src = "require [\"include\", \"variables\"]; global \"who\"; set \"who\" \"inner\";";
	if (src == NULL)
		return -1;
	if (sieve_compile(src, strlen(src), NULL, s_r, &line, err_r) < 0)
		return -2;
	return 0;
}

static int
mbox_exists(void *ctx, const char *name)
{
	(void)ctx;
	return strcmp(name, "Lists") == 0 || strcmp(name, "INBOX") == 0;
}


#define RFC5232_6 "require [\"fileinto\", \"imap4flags\", \"variables\"];\n" \
	"if size :over 1M\n        {\n        addflag \"MyFlags\" \"Big\";\n" \
	"        if header :is \"From\" \"boss@company.example.com\"\n" \
	"                    {\n                    addflag \"MyFlags\" \"\\\\Flagged\";\n" \
	"                    }\n        fileinto :flags \"${MyFlags}\" \"Big messages\";\n" \
	"        }\n" \
	"if header :is \"From\" \"grandma@example.net\"\n        {\n" \
	"        addflag \"MyFlags\" [\"\\\\Answered\", \"$MDNSent\"];\n" \
	"        fileinto :flags \"${MyFlags}\" \"GrandMa\";\n        }\n" \
	"if header :is \"Sender\" \"owner-ietf-mta-filters@example.org\"\n        {\n" \
	"        set \"MyFlags\" \"\\\\Flagged $Work\";\n" \
	"        keep :flags \"${MyFlags}\";\n        }\n" \
	"elsif address :domain :is [\"From\", \"To\"] \"company.example.com\"\n        {\n" \
	"        keep :flags \"${MyFlags}\"; # keep in \"Inbox\" folder\n        }\n" \
	"elsif anyof (not address :all :contains\n                [\"To\", \"Cc\"] \"me@company.example.com\",\n" \
	"            header :matches \"subject\"\n" \
	"                [\"*make*money*fast*\", \"*university*dipl*mas*\"])\n            {\n" \
	"        removeflag \"MyFlags\" \"\\\\Flagged\";\n" \
	"        fileinto :flags \"${MyFlags}\" \"spam\";\n        }\n" \
	"else\n        {\n        fileinto :flags \"${MyFlags}\" \"personal\";\n}\n"

static const struct kase cases[] = {
	/* ---- RFC 5228 ---- */
	{ "2.10.2 implicit keep", "", msg_coyote, NULL, NULL, "keep" },
	{ "3.1 if/elsif/else", "require \"fileinto\";\n"
	  "if header :contains \"from\" \"coyote\" {\n discard;\n"
	  "} elsif header :contains [\"subject\"] [\"$$$\"] {\n discard;\n"
	  "} else {\n fileinto \"INBOX\";\n}\n", msg_coyote, NULL, NULL, "discard" },
	{ "3.1 else branch", "require \"fileinto\";\n"
	  "if header :contains \"from\" \"coyote\" { discard; }"
	  " elsif header :contains [\"subject\"] [\"$$$\"] { discard; }"
	  " else { fileinto \"INBOX\"; }", msg_list, NULL, NULL, "fileinto:INBOX" },
	{ "3.2 require unknown", "require \"frobnicate\";", msg_coyote, NULL, NULL, "ERROR" },
	{ "3.3 stop", "stop; discard;", msg_coyote, NULL, NULL, "keep" },
	{ "4.2 redirect", "redirect \"bart@example.com\";", msg_coyote, NULL, NULL,
	  "redirect:bart@example.com" },
	{ "4.3 keep", "if size :under 1M { keep; } else { discard; }", msg_coyote, NULL, NULL,
	  "keep" },
	{ "4.4 discard", "if header :contains [\"from\"] [\"idiot@example.com\"] { discard; }",
	  msg_coyote, NULL, NULL, "keep" },
	{ "5.1 address :is :all", "if address :is :all \"from\" \"tim@example.com\" { discard; }",
	  msg_coyote, NULL, NULL, "keep" },
	{ "5.1 address :domain", "if address :domain :is \"from\" \"DESERT.example.org\" "
	  "{ discard; }", msg_coyote, NULL, NULL, "discard" },
	{ "5.1 address :localpart", "if address :localpart :is \"from\" \"coyote\" "
	  "{ discard; }", msg_coyote, NULL, NULL, "discard" },
	{ "5.2 allof", "if allof (true, false) { discard; }", msg_coyote, NULL, NULL, "keep" },
	{ "5.3 anyof", "if anyof (false, true) { discard; }", msg_coyote, NULL, NULL,
	  "discard" },
	{ "5.4 envelope", "require \"envelope\";\n"
	  "if envelope :all :is \"from\" \"tim@example.com\" { discard; }", msg_coyote,
	  "tim@example.com", NULL, "discard" },
	{ "5.4 envelope needs require", "if envelope :all :is \"from\" \"tim@example.com\""
	  " { discard; }", msg_coyote, NULL, NULL, "ERROR" },
	{ "5.5 exists", "if not exists [\"From\",\"Date\"] { discard; }", msg_coyote, NULL,
	  NULL, "keep" },
	{ "5.5 exists missing", "if exists [\"From\",\"X-None\"] { discard; }", msg_coyote,
	  NULL, NULL, "keep" },
	{ "5.7 header octet", "if header :contains :comparator \"i;octet\" \"Subject\" "
	  "\"MAKE MONEY FAST\" { discard; }", msg_coyote, NULL, NULL, "keep" },
	{ "5.7 header casemap", "if header :contains \"Subject\" \"PRESENT\" { discard; }",
	  msg_coyote, NULL, NULL, "discard" },
	{ "5.7 header :is empty", "if header :is \"X-None\" \"\" { discard; }", msg_coyote, NULL,
	  NULL, "keep" },
	{ "5.8 not", "if not size :over 100K { discard; }", msg_coyote, NULL, NULL, "discard" },
	{ "5.9 size", "if size :over 500K { discard; }", msg_coyote, NULL, NULL, "keep" },
	{ "2.7.1 :matches", "if header :matches \"Subject\" \"I have a*\" { discard; }",
	  msg_coyote, NULL, NULL, "discard" },
	{ "2.7.1 :matches ?", "if header :matches \"X-Caffeine\" \"C?H10N4O?\" { discard; }",
	  msg_coyote, NULL, NULL, "discard" },
	{ "2.7.1 :matches escaped", "if header :matches \"Subject\" \"*\\\\*\" { discard; }",
	  msg_coyote, NULL, NULL, "keep" },
	{ "2.3 comments", "if size :over 100k { # this is a comment\n    discard;\n}\n"
	  "if size :over 100K { /* this is a comment\n    this is still a comment */ discard "
	  "/* this is a comment\n    */ ;\n}\n", msg_coyote, NULL, NULL, "keep" },
	{ "2.4.2.4 header with encoded $$$", "require \"encoded-character\";\n"
	  "if header :contains \"Subject\" \"$${hex:24 24}\" {\n    discard;\n}\n",
	  "Subject: earn $$$ now\r\n\r\n", NULL, NULL, "discard" },
	{ "3.1 anyof not exists", "if anyof (not exists [\"From\", \"Date\"],\n"
	  "    header :contains \"from\" \"fool@example.com\") {\n    discard;\n}\n",
	  "From: fool@example.com\r\nDate: x\r\n\r\n", NULL, NULL, "discard" },
	{ "3.1 anyof not exists: no Date", "if anyof (not exists [\"From\", \"Date\"],\n"
	  "    header :contains \"from\" \"fool@example.com\") {\n    discard;\n}\n",
	  "From: a@example.com\r\n\r\n", NULL, NULL, "discard" },
	{ "4.2 three redirects", "if header :contains [\"From\"] [\"coyote\"] {\n"
	  "    redirect \"acm@example.com\";\n} elsif header :contains \"Subject\" \"$$$\" {\n"
	  "    redirect \"postmaster@example.com\";\n} else {\n"
	  "    redirect \"field@example.com\";\n}\n", msg_list, NULL, NULL,
	  "redirect:field@example.com" },
	{ "4.1 fileinto harassment", "require \"fileinto\";\n"
	  "if header :contains [\"from\"] \"coyote\" {\n    fileinto \"INBOX.harassment\";\n}\n",
	  msg_coyote, NULL, NULL, "fileinto:INBOX.harassment" },
	{ "5.7 X-Caffeine present", "require \"fileinto\";\n"
	  "if anyof(header :is [\"X-Caffeine\"] [\"\"], header :contains [\"X-Caffeine\"] [\"\"],"
	  " not header :matches \"Cc\" \"?*\") { fileinto \"yes\"; }", "X-Caffeine: C8H10N4O2\r\n"
	  "Cc: a@b.c\r\n\r\n", NULL, NULL, "fileinto:yes" },
	{ "5.7 X-Caffeine absent, Cc present", "require \"fileinto\";\n"
	  "if anyof(header :is [\"X-Caffeine\"] [\"\"], header :contains [\"X-Caffeine\"] [\"\"],"
	  " not header :matches \"Cc\" \"?*\") { fileinto \"yes\"; }", "Cc: a@b.c\r\n\r\n", NULL,
	  NULL, "keep" },
	{ "5.7 X-Caffeine absent, no Cc", "require \"fileinto\";\n"
	  "if anyof(header :is [\"X-Caffeine\"] [\"\"], header :contains [\"X-Caffeine\"] [\"\"],"
	  " not header :matches \"Cc\" \"?*\") { fileinto \"yes\"; }", "From: a@b.c\r\n\r\n", NULL,
	  NULL, "fileinto:yes" },
	{ "9 example: filter", "# Example Sieve Filter\n"
	  "require [\"fileinto\"];\n"
	  "if header :is \"Sender\" \"owner-ietf-mta-filters@imc.org\"\n"
	  "        {\n        fileinto \"filter\";  # move to \"filter\" mailbox\n        }\n"
	  "elsif address :DOMAIN :is [\"From\", \"To\"] \"example.com\"\n"
	  "        {\n        keep;\n        }\n"
	  "elsif anyof (NOT address :all :contains\n"
	  "               [\"To\", \"Cc\", \"Bcc\"] \"me@example.com\",\n"
	  "             header :matches \"subject\"\n"
	  "               [\"*make*money*fast*\", \"*university*dipl*mas*\"])\n"
	  "        {\n        fileinto \"spam\";\n        }\n"
	  "else\n        {\n        fileinto \"personal\";\n        }\n",
	  msg_list, NULL, NULL, "fileinto:filter" },
	{ "9 example: spam", "require [\"fileinto\"];\n"
	  "if header :is \"Sender\" \"owner-ietf-mta-filters@imc.org\" { fileinto \"filter\"; }\n"
	  "elsif address :DOMAIN :is [\"From\", \"To\"] \"example.com\" { keep; }\n"
	  "elsif anyof (NOT address :all :contains [\"To\", \"Cc\", \"Bcc\"] \"me@example.com\",\n"
	  "  header :matches \"subject\" [\"*make*money*fast*\", \"*university*dipl*mas*\"])\n"
	  "  { fileinto \"spam\"; }\n"
	  "else { fileinto \"personal\"; }\n", msg_coyote, NULL, NULL, "fileinto:spam" },
	{ "2.4.2.4 encoded-character", "require [\"encoded-character\", \"fileinto\"];\n"
	  "fileinto \"$${hex:24 24}${hex:40}${ unicode:40}${UnICoDE:0000040}${hex:400}\";",
	  msg_coyote, NULL, NULL, "fileinto:$$$@${ unicode:40}@${hex:400}" },
	{ "2.4.2.4 encoded-character off", "require \"fileinto\"; fileinto \"${hex:40}\";",
	  msg_coyote, NULL, NULL, "fileinto:${hex:40}" },
	{ "2.4.2.4 bad unicode", "require \"encoded-character\"; keep; "
	  "if header :is \"a\" \"${Unicode:DF01}\" { stop; }", msg_coyote, NULL, NULL, "ERROR" },
	{ "2.4.2 multi-line string", "require \"reject\";\nreject text:\n"
	  "line one\n..dot line\n.\n;\n", msg_coyote, NULL, NULL,
	  "reject:line one\r\n.dot line\r\n" },
	{ "numbers K", "if size :under 1K { discard; }", msg_coyote, NULL, NULL, "discard" },
	{ "fileinto twice is one copy", "require \"fileinto\"; fileinto \"a\"; fileinto \"a\";",
	  msg_coyote, NULL, NULL, "fileinto:a" },
	{ "keep then discard", "keep; discard;", msg_coyote, NULL, NULL, "keep;discard" },

	/* ---- RFC 5229 variables ---- */
	{ "5229 3 set and text", "require [\"variables\", \"reject\"];\n"
	  "set \"honorific\"  \"Mr\";\nset \"first_name\" \"Wile\";\n"
	  "set \"last_name\"  \"Coyote\";\nset \"vacation\" text:\n"
	  "Dear ${HONORIFIC} ${last_name},\n"
	  "I'm out, please leave a message after the meep.\n.\n;\nreject \"${vacation}\";",
	  msg_coyote, NULL, NULL,
	  "reject:Dear Mr Coyote,\r\nI'm out, please leave a message after the meep.\r\n" },
	{ "5229 3 unknown and bad names", "require [\"variables\", \"fileinto\"];\n"
	  "set \"company\" \"ACME\";\n"
	  "fileinto \"${company}-${nonexist}-${President}-${.x}-${a.b.c}\";",
	  msg_coyote, NULL, NULL, "fileinto:ACME---${.x}-" },
	{ "5229 3.1 ${${company}}", "require [\"variables\", \"fileinto\"];\n"
	  "set \"company\" \"ACME\"; fileinto \"${${company}}\";", msg_coyote, NULL, NULL,
	  "fileinto:${ACME}" },
	{ "5229 3.2 match variables", "require [\"fileinto\", \"variables\"];\n"
	  "if header :matches \"List-ID\" \"*<*@*\" {\n"
	  "    fileinto \"INBOX.lists.${2}\"; stop;\n}\n"
	  "if header :matches \"Subject\" \"[*] *\" {\n"
	  "    fileinto \"INBOX.lists.${1}\"; stop;\n}\n", msg_list, NULL, NULL,
	  "fileinto:INBOX.lists.acme-users" },
	{ "5229 3.2 match ${2}", "require [\"fileinto\", \"variables\"];\n"
	  "if header :matches \"Subject\" \"[*] *\" {\n"
	  "    fileinto \"${2}|${0}\"; stop;\n}\n", msg_list, NULL, NULL,
	  "fileinto:[fwd] version 1.0 is out|[acme-users] [fwd] version 1.0 is out" },
	{ "5229 3.2 to address", "require [\"fileinto\", \"variables\"];\n"
	  "if address :matches [\"To\", \"Cc\"] [\"coyote@**.com\", \"wile@**.com\"] "
	  "{ fileinto \"x${1}|${2}\"; }", "To: coyote@ACME.Example.COM\r\n\r\n", NULL, NULL,
	  "fileinto:x|ACME.Example" },
	{ "5229 3 no recursive expansion", "require [\"variables\", \"fileinto\"];\n"
	  "set \"dollar\" \"$\";\nset \"text\" \"regarding ${dollar}{beep}\"; fileinto \"${text}\";",
	  msg_coyote, NULL, NULL, "fileinto:regarding ${beep}" },
	{ "5229 3 encoded-character then variables",
	  "require [\"encoded-character\", \"variables\", \"fileinto\"];\n"
	  "set \"name\" \"Ethelbert\";\n"
	  "if header :contains \"Subject\" \"dear${hex:20 24 7b 4e}ame}\" {\n"
	  "    fileinto \"yes\";\n}\n", "Subject: Hello dear Ethelbert!\r\n\r\n", NULL, NULL,
	  "fileinto:yes" },
	{ "5229 3.2 List-ID", "require [\"fileinto\", \"variables\"];\n"
	  "if header :matches \"List-ID\" \"*<*@*\" {\n"
	  "    fileinto \"INBOX.lists.${2}\"; stop;\n}\n",
	  "List-ID: Sieve users <sieve-users@example.org>\r\n\r\n", NULL, NULL,
	  "fileinto:INBOX.lists.sieve-users" },
	{ "5229 3.2 no match variables after an unevaluated test",
	  "require [\"fileinto\", \"variables\"];\n"
	  "if anyof (true, address :domain :matches \"To\" \"*.com\") {\n"
	  "    fileinto \"x${1}y\"; stop;\n}\n", "To: a@b.com\r\n\r\n", NULL, NULL,
	  "fileinto:xy" },
	{ "5229 4 modifiers", "require [\"variables\", \"fileinto\"];\n"
	  "set \"a\" \"juMBlEd lETteRS\";\n"
	  "set :length \"b\" \"${a}\"; fileinto \"${b}\";\n"
	  "set :lower \"b\" \"${a}\"; fileinto \"${b}\";\n"
	  "set :upperfirst \"b\" \"${a}\"; fileinto \"${b}\";\n"
	  "set :upperfirst :lower \"b\" \"${a}\"; fileinto \"${b}\";\n"
	  "set :quotewildcard \"b\" \"Rock*\"; fileinto \"${b}\";\n",
	  msg_coyote, NULL, NULL,
	  "fileinto:15;fileinto:jumbled letters;fileinto:JuMBlEd lETteRS;"
	  "fileinto:Jumbled letters;fileinto:Rock\\*" },
	{ "5229 4 conflicting modifiers", "require \"variables\"; set :lower :upper \"a\" \"b\";",
	  msg_coyote, NULL, NULL, "ERROR" },
	{ "5229 5 string test", "require \"variables\";\n"
	  "set \"state\" \"${state} pending\";\n"
	  "if string :matches \" ${state} \" \"* pending *\" { discard; }", msg_coyote, NULL, NULL,
	  "discard" },
	{ "5229 5 string :count", "require [\"variables\", \"relational\", "
	  "\"comparator-i;ascii-numeric\"];\n"
	  "if string :count \"eq\" :comparator \"i;ascii-numeric\" [\"\", \"a\", \"b\"] \"2\" "
	  "{ discard; }", msg_coyote, NULL, NULL, "discard" },
	{ "5229 bad variable name", "require \"variables\"; set \"1a\" \"x\";", msg_coyote,
	  NULL, NULL, "ERROR" },

	/* ---- RFC 5230 vacation ---- */
	{ "5230 4 example", "require \"vacation\";\n"
	  "if header :contains \"subject\" \"cyrus\" {\n"
	  "    vacation \"I'm out -- send mail to cyrus-bugs\";\n"
	  "} else {\n    vacation \"I'm out -- call me at +1 304 555 0123\";\n}\n",
	  msg_coyote, NULL, NULL, "vacation:I'm out -- call me at +1 304 555 0123;keep" },
	{ "5230 4.1 days/addresses", "require \"vacation\";\n"
	  "vacation :days 23 :addresses [\"tjs@example.edu\",\n"
	  "                              \"ts4z@landru.example.edu\"]\n"
	  "   \"I'm away until October 19.\n"
	  "   If it's an emergency, call 911, I guess.\" ;\n", msg_coyote, NULL, NULL,
	  "vacation:I'm away until October 19.\n   If it's an emergency, call 911, I guess.;keep" },
	{ "5230 4.2 subject with match var", "require [\"vacation\", \"variables\"];\n"
	  "if header :matches \"subject\" \"*\" {\n"
	  "    vacation :subject \"Automatic response to: ${1}\" \"I'm away\";\n}\n",
	  msg_coyote, NULL, NULL, "vacation:I'm away;keep" },
	{ "5230 4.4 :from", "require \"vacation\";\n"
	  "vacation :days 7 :from \"hemingway@example.com\" \"Gone fishing\";", msg_coyote,
	  NULL, NULL, "vacation:Gone fishing;keep" },
	{ "5230 4.5 :mime", "require \"vacation\";\nvacation :mime text:\n"
	  "Content-Type: text/plain\n\nI'm away\n.\n;", msg_coyote, NULL, NULL,
	  "vacation:Content-Type: text/plain\r\n\r\nI'm away\r\n;keep" },
	{ "5230 4.6 :mime multipart", "require \"vacation\";\nvacation :mime text:\n"
	  "Content-Type: multipart/alternative; boundary=foo\n\n--foo\n\n"
	  "I'm at the beach relaxing.  Mmmm, surf...\n\n--foo\n"
	  "Content-Type: text/html; charset=us-ascii\n\n<P>beach</P>\n\n--foo--\n.\n;\n",
	  msg_coyote, NULL, NULL,
	  "vacation:Content-Type: multipart/alternative; boundary=foo\r\n\r\n--foo\r\n\r\n"
	  "I'm at the beach relaxing.  Mmmm, surf...\r\n\r\n--foo\r\n"
	  "Content-Type: text/html; charset=us-ascii\r\n\r\n<P>beach</P>\r\n\r\n--foo--\r\n;keep" },
	{ "5230 two vacations", "require \"vacation\"; vacation \"a\"; vacation \"b\";",
	  msg_coyote, NULL, NULL, "ERROR" },
	{ "5230 vacation + discard", "require \"vacation\"; vacation \"a\"; discard;",
	  msg_coyote, NULL, NULL, "vacation:a;discard" },

	/* ---- RFC 5232 imap4flags ---- */
	{ "5232 3.1 setflag", "require \"imap4flags\";\n"
	  "if size :over 1 { setflag \"\\\\Deleted\"; }", msg_coyote, NULL, NULL,
	  "keep[\\Deleted]" },
	{ "5232 3.2 addflag and fileinto", "require [\"imap4flags\", \"fileinto\"];\n"
	  "addflag \"\\\\Seen\"; addflag [\"\\\\Answered\", \"\\\\Seen\"];\n"
	  "fileinto \"Read\"; removeflag \"\\\\Seen\"; keep;",
	  msg_coyote, NULL, NULL, "fileinto:Read[\\Seen \\Answered];keep[\\Answered]" },
	{ "5232 3.2 variable flags", "require [\"imap4flags\", \"variables\", \"fileinto\"];\n"
	  "addflag \"flagvar\" \"\\\\Deleted\";\naddflag \"flagvar\" \"\\\\Answered\";\n"
	  "removeflag \"flagvar\" \"\\\\Deleted\";\n"
	  "fileinto :flags \"${flagvar}\" \"boss\";", msg_coyote, NULL, NULL,
	  "fileinto:boss[\\Answered]" },
	{ "5232 4 hasflag", "require [\"imap4flags\", \"relational\", "
	  "\"comparator-i;ascii-numeric\"];\n"
	  "setflag [\"Junk\", \"$Forwarded\"];\n"
	  "if allof (hasflag :contains \"Junk\", hasflag :count \"ge\" "
	  ":comparator \"i;ascii-numeric\" \"2\", not hasflag \"Junk2\") { discard; }",
	  msg_coyote, NULL, NULL, "discard" },
	{ "5232 5 :flags on keep", "require \"imap4flags\"; keep :flags \"\\\\Flagged  $Work\";",
	  msg_coyote, NULL, NULL, "keep[\\Flagged $Work]" },
	{ "5232 implicit keep flags", "require \"imap4flags\"; addflag \"\\\\Seen\";",
	  msg_coyote, NULL, NULL, "keep[\\Seen]" },

	{ "5232 3.1 setflag variable", "require [\"fileinto\", \"imap4flags\", \"variables\"];\n"
	  "if header :contains \"from\" \"boss@frobnitzm.example.edu\" {\n"
	  "    setflag \"flagvar\" \"\\\\Flagged\";\n"
	  "    fileinto :flags \"${flagvar}\" \"INBOX.From Boss\";\n}\n",
	  "From: boss@frobnitzm.example.edu\r\n\r\n", NULL, NULL,
	  "fileinto:INBOX.From Boss[\\Flagged]" },
	{ "5232 3.2 addflag forms", "require [\"fileinto\", \"imap4flags\", \"variables\"];\n"
	  "addflag \"flagvar\" \"\\\\Deleted\";\naddflag \"flagvar\" \"\\\\Answered\";\n"
	  "fileinto :flags \"${flagvar}\" \"a\";\n"
	  "addflag \"f2\" [\"\\\\Deleted\", \"\\\\Answered\"]; fileinto :flags \"${f2}\" \"b\";\n"
	  "addflag \"f3\" \"\\\\Deleted \\\\Answered\"; fileinto :flags \"${f3}\" \"c\";\n",
	  msg_coyote, NULL, NULL,
	  "fileinto:a[\\Deleted \\Answered];fileinto:b[\\Deleted \\Answered];"
	  "fileinto:c[\\Deleted \\Answered]" },
	{ "5232 3.3 removeflag", "require [\"fileinto\", \"imap4flags\", \"variables\"];\n"
	  "if header :contains \"Disposition-Notification-To\"\n    \"mel@example.com\" {\n"
	  "    addflag \"flagvar\" \"$MDNRequired\";\n}\n"
	  "if header :contains \"from\" \"imap@cac.washington.example.edu\" {\n"
	  "    removeflag \"flagvar\" \"$MDNRequired\";\n"
	  "    fileinto :flags \"${flagvar}\" \"INBOX.imap-list\";\n}\n",
	  "From: imap@cac.washington.example.edu\r\nDisposition-Notification-To: "
	  "mel@example.com\r\n\r\n", NULL, NULL, "fileinto:INBOX.imap-list" },
	{ "5232 4 hasflag on variables", "require [\"fileinto\", \"imap4flags\", \"variables\", "
	  "\"relational\", \"comparator-i;ascii-numeric\"];\n"
	  "set \"MyVar\" \"label1 JUNK $Forwarded\"; set \"MyFlags\" \"a b\";\n"
	  "if allof(hasflag :contains \"MyVar\" \"Junk\",\n"
	  "        hasflag :contains \"MyVar\" [\"label\", \"forward\"],\n"
	  "        hasflag :count \"ge\" :comparator \"i;ascii-numeric\"\n"
	  "            \"MyFlags\" \"2\") {\n"
	  "            fileinto :flags \"\\\\Deleted\" \"INBOX.From Boss\";\n"
	  "            keep :flags \"hello\";\n        }\n", msg_coyote, NULL, NULL,
	  "fileinto:INBOX.From Boss[\\Deleted];keep[hello]" },
	{ "5232 6 big mail from the boss", RFC5232_6,
	  "From: boss@company.example.com\r\nTo: me@company.example.com\r\n\r\nx\r\n",
	  NULL, NULL, "fileinto:Big messages[Big \\Flagged];keep[Big \\Flagged]", 0, 2000000 },
	{ "5232 6 grandma", RFC5232_6,
	  "From: grandma@example.net\r\nTo: me@company.example.com\r\nSubject: hi\r\n\r\nx\r\n",
	  NULL, NULL,
	  "fileinto:GrandMa[\\Answered $MDNSent];keep[\\Answered $MDNSent]" },
	{ "5232 6 grandma by Cc", RFC5232_6,
	  "From: grandma@example.net\r\nTo: x@example.net\r\nCc: me@company.example.com\r\n\r\n",
	  NULL, NULL,
	  "fileinto:GrandMa[\\Answered $MDNSent];fileinto:personal[\\Answered $MDNSent]" },
	{ "5232 6 list", RFC5232_6,
	  "From: x@example.org\r\nSender: owner-ietf-mta-filters@example.org\r\n\r\nx\r\n",
	  NULL, NULL, "keep[\\Flagged $Work]" },
	{ "5232 6 spam", RFC5232_6,
	  "From: x@example.org\r\nTo: you@example.org\r\nSubject: make lots of money fast\r\n\r\n",
	  NULL, NULL, "fileinto:spam" },
	/* ---- other extensions ---- */
	{ "copy", "require [\"copy\", \"fileinto\"]; fileinto :copy \"x\"; "
	  "redirect :copy \"a@example.com\";", msg_coyote, NULL, NULL,
	  "fileinto:x(copy);redirect:a@example.com(copy);keep" },
	{ "mailbox :create", "require [\"fileinto\", \"mailbox\"];"
	  "if mailboxexists \"Lists\" { fileinto :create \"Lists/new\"; }", msg_coyote, NULL,
	  NULL, "fileinto:Lists/new" },
	{ "mailboxexists false", "require [\"fileinto\", \"mailbox\"];"
	  "if mailboxexists [\"Lists\", \"Nope\"] { discard; }", msg_coyote, NULL, NULL, "keep" },
	{ "reject", "require \"reject\"; reject \"no thanks\";", msg_coyote, NULL, NULL,
	  "reject:no thanks" },
	{ "ereject", "require \"ereject\"; ereject \"no\";", msg_coyote, NULL, NULL,
	  "ereject:no" },
	{ "reject + keep conflict", "require \"reject\"; keep; reject \"no\";", msg_coyote,
	  NULL, NULL, "ERROR" },
	{ "body :contains", "require \"body\"; if body :contains \"birdseed\" { discard; }",
	  msg_coyote, NULL, NULL, "discard" },
	{ "body :raw no", "require \"body\"; if body :raw :contains \"nothere\" { discard; }",
	  msg_coyote, NULL, NULL, "keep" },
	{ "body :text decodes parts", "require [\"body\", \"fileinto\"];"
	  "if body :text :contains \"Caf\xc3\xa9 au\" { fileinto \"qp\"; }"
	  "if body :text :contains \"html only\" { fileinto \"html\"; }"
	  "if body :content \"text/html\" :contains \"<b>html\" { fileinto \"b64\"; }"
	  "if body :content \"application\" :contains \"binary\" { fileinto \"app\"; }"
	  "if body :content \"image\" :contains \"\" { fileinto \"img\"; }"
	  "if body :raw :contains \"PGI+\" { fileinto \"raw\"; }"
	  "if body :text :contains \"preamble\" { fileinto \"pre\"; }",
	  msg_mime, NULL, NULL,
	  "fileinto:qp;fileinto:html;fileinto:b64;fileinto:app;fileinto:raw" },
	{ "relational :value", "require [\"relational\", \"comparator-i;ascii-numeric\"];"
	  "if header :value \"gt\" :comparator \"i;ascii-numeric\" \"X-Num\" \"10\" "
	  "{ discard; }", "X-Num: 11\r\n\r\n", NULL, NULL, "discard" },
	{ "relational :count header", "require [\"relational\", \"comparator-i;ascii-numeric\"];"
	  "if header :count \"eq\" :comparator \"i;ascii-numeric\" \"Received\" \"3\" "
	  "{ discard; }", msg_enc, NULL, NULL, "discard" },
	{ "numeric non-digits are infinite", "require \"comparator-i;ascii-numeric\";"
	  "if header :is :comparator \"i;ascii-numeric\" \"X-A\" \"abc\" { discard; }",
	  "X-A: xyz\r\n\r\n", NULL, NULL, "discard" },
	{ "numeric :contains refused", "require \"comparator-i;ascii-numeric\";"
	  "if header :contains :comparator \"i;ascii-numeric\" \"X-A\" \"1\" { discard; }",
	  msg_coyote, NULL, NULL, "ERROR" },
	{ "subaddress", "require [\"subaddress\", \"envelope\", \"fileinto\", \"variables\"];"
	  "if envelope :detail :matches \"to\" \"*\" { fileinto \"d-${1}\"; }"
	  "if envelope :user :is \"to\" \"me\" { fileinto \"user\"; }",
	  msg_coyote, "x@example.org", "me+lists@example.com", "fileinto:d-lists;fileinto:user" },
	{ "subaddress no detail", "require [\"subaddress\", \"envelope\"];"
	  "if envelope :detail :is \"to\" \"\" { discard; }",
	  msg_coyote, "x@example.org", "me@example.com", "keep" },
	{ "address decoded and grouped", "require [\"fileinto\", \"subaddress\"];"
	  "if address :is \"cc\" \"b@y.example\" { fileinto \"grp\"; }"
	  "if address :is \"to\" \"other@example.com\" { fileinto \"quoted\"; }"
	  "if header :is \"from\" \"J\xc3\xb6rg <joerg+lists@example.net>\" { fileinto \"2047\"; }"
	  "if header :is \"subject\" \"caf\xc3\xa9\xc3\xa9\" { fileinto \"subj\"; }"
	  "if address :detail \"from\" \"lists\" { fileinto \"detail\"; }",
	  msg_enc, NULL, NULL,
	  "fileinto:grp;fileinto:quoted;fileinto:2047;fileinto:subj;fileinto:detail" },
	{ "index", "require [\"index\", \"fileinto\"];"
	  "if header :index 2 :is \"Received\" \"two\" { fileinto \"second\"; }"
	  "if header :index 1 :last :is \"Received\" \"three\" { fileinto \"last\"; }",
	  msg_enc, NULL, NULL, "fileinto:second;fileinto:last" },
	{ "date", "require [\"date\", \"fileinto\"];"
	  "if date :is \"date\" \"year\" \"1997\" { fileinto \"y\"; }"
	  "if date :zone \"+0000\" :is \"date\" \"hour\" \"17\" { fileinto \"h\"; }"
	  "if date :originalzone :is \"date\" \"zone\" \"-0800\" { fileinto \"z\"; }"
	  "if date :originalzone :is \"date\" \"iso8601\" \"1997-04-01T09:06:31-08:00\" "
	  "{ fileinto \"iso\"; }"
	  "if currentdate :zone \"+0000\" :is \"date\" \"2026-12-05\" { fileinto \"now\"; }",
	  msg_coyote, NULL, NULL,
	  "fileinto:y;fileinto:h;fileinto:z;fileinto:iso;fileinto:now" },
	{ "regex", "require [\"regex\", \"variables\", \"fileinto\"];"
	  "if header :regex \"subject\" \"^\\\\[([a-z-]+)\\\\]\" { fileinto \"${1}\"; }",
	  msg_list, NULL, NULL, "fileinto:acme-users" },
	{ "regex bad", "require \"regex\"; if header :regex \"subject\" \"([\" { stop; }",
	  msg_list, NULL, NULL, "ERROR" },
	{ "include", "require [\"include\"]; include :personal \"spam\";", msg_list, NULL, NULL,
	  "fileinto:Junk" },
	{ "include return", "require [\"include\"]; include :global \"stopper\"; discard;",
	  msg_list, NULL, NULL, "keep;discard" },
	{ "include missing", "require \"include\"; include \"nope\";", msg_list, NULL, NULL,
	  "ERROR" },
	{ "include :optional", "require \"include\"; include :optional \"nope\";", msg_list,
	  NULL, NULL, "keep" },
	{ "include loop bounded", "require \"include\"; include \"self\";", msg_list, NULL, NULL,
	  "ERROR" },
	{ "include global variable", "require [\"include\", \"variables\", \"fileinto\"];"
	  "global \"who\"; set \"who\" \"outer\"; include \"setvar\"; fileinto \"${who}\";",
	  msg_list, NULL, NULL, "fileinto:inner" },
	{ "include global. namespace", "require [\"include\", \"variables\", \"fileinto\"];"
	  "set \"global.i_am_on_vacation\" \"1\"; global \"i_am_on_vacation\";"
	  "fileinto \"v${i_am_on_vacation}${global.i_am_on_vacation}\";",
	  msg_list, NULL, NULL, "fileinto:v11" },
	{ "unknown namespace", "require \"variables\"; set \"foo.bar\" \"1\";",
	  msg_list, NULL, NULL, "ERROR" },
	{ "include bad name", "require \"include\"; include \"../x\";", msg_list, NULL, NULL,
	  "ERROR" },
	{ "duplicate not seen", "require \"duplicate\"; if duplicate { discard; }", msg_list,
	  NULL, NULL, "keep", 0 },
	{ "duplicate seen", "require \"duplicate\"; if duplicate { discard; }", msg_list,
	  NULL, NULL, "discard", 1 },
	{ "duplicate no message-id", "require \"duplicate\"; if duplicate { discard; }",
	  msg_coyote, NULL, NULL, "keep", 1 },
	{ "ihave known", "require \"ihave\"; if ihave \"fileinto\" { fileinto \"x\"; }",
	  msg_coyote, NULL, NULL, "fileinto:x" },
	{ "ihave unknown block not checked", "require \"ihave\";"
	  "if ihave \"x-frob\" { frobnicate :hard \"x\"; } else { discard; }",
	  msg_coyote, NULL, NULL, "discard" },
	{ "error", "require \"ihave\"; error \"bad idea\";", msg_coyote, NULL, NULL, "ERROR" },
	{ "fileinto needs require", "fileinto \"x\";", msg_coyote, NULL, NULL, "ERROR" },

	/* ---- broken scripts ---- */
	{ "missing semicolon", "keep", msg_coyote, NULL, NULL, "ERROR" },
	{ "unknown command", "frob;", msg_coyote, NULL, NULL, "ERROR" },
	{ "unknown test", "if frob { keep; }", msg_coyote, NULL, NULL, "ERROR" },
	{ "unterminated string", "redirect \"abc;", msg_coyote, NULL, NULL, "ERROR" },
	{ "unterminated comment", "/* keep;", msg_coyote, NULL, NULL, "ERROR" },
	{ "require late", "keep; require \"fileinto\";", msg_coyote, NULL, NULL, "ERROR" },
	{ "else without if", "else { keep; }", msg_coyote, NULL, NULL, "ERROR" },
	{ "if without block", "if true keep;", msg_coyote, NULL, NULL, "ERROR" },
	{ "size without tag", "if size 100 { keep; }", msg_coyote, NULL, NULL, "ERROR" },
	{ "two match types", "if header :is :contains \"a\" \"b\" { keep; }", msg_coyote, NULL,
	  NULL, "ERROR" },
	{ "list where string", "redirect [\"a@b.c\", \"d@e.f\"];", msg_coyote, NULL, NULL,
	  "ERROR" },
	{ "anyof needs list", "if anyof true { keep; }", msg_coyote, NULL, NULL, "ERROR" },
	/* ---- RFC 5183 environment ---- */
	{ "5183 name and location", "require \"environment\";\n"
	  "if allof (environment :is \"name\" \"Postern\", environment :is \"location\" \"MDA\",\n"
	  "  environment :is \"phase\" \"during\", environment :matches \"host\" \"*.example.test\",\n"
	  "  environment :is \"domain\" \"example.test\", environment :matches \"version\" \"*.*\")\n"
	  "  { discard; }", msg_coyote, NULL, NULL, "discard" },
	{ "5183 unknown item is false", "require \"environment\";\n"
	  "if environment :matches \"remote-ip\" \"*\" { discard; }", msg_coyote, NULL, NULL,
	  "keep" },
	{ "5183 needs require", "if environment \"name\" \"Postern\" { discard; }", msg_coyote,
	  NULL, NULL, "ERROR" },
	/* ---- RFC 5435/5436 enotify with mailto ---- */
	{ "5435 notify", "require [\"enotify\", \"fileinto\"];\n"
	  "if header :contains \"from\" \"coyote\" {\n"
	  "  notify :importance \"1\" :message \"boss\" \"mailto:alm@example.com\";\n"
	  "  notify \"mailto:alm@example.com\";\n"           /* a duplicate */
	  "  fileinto \"Boss\";\n}", msg_coyote, NULL, NULL,
	  "notify:mailto:alm@example.com;fileinto:Boss" },
	{ "5435 notify keeps implicit keep", "require \"enotify\";\n"
	  "notify \"mailto:a@example.com?subject=hi\";", msg_coyote, NULL, NULL,
	  "notify:mailto:a@example.com?subject=hi;keep" },
	{ "5435 notify with reject", "require [\"enotify\", \"reject\"];\n"
	  "notify \"mailto:a@example.com\"; reject \"no\";", msg_coyote, NULL, NULL,
	  "notify:mailto:a@example.com;reject:no" },
	{ "5435 unsupported method", "require \"enotify\";\nnotify \"xmpp:a@example.com\";",
	  msg_coyote, NULL, NULL, "ERROR" },
	{ "5435 bad importance", "require \"enotify\";\n"
	  "notify :importance \"4\" \"mailto:a@example.com\";", msg_coyote, NULL, NULL, "ERROR" },
	{ "5435 method from a variable", "require [\"enotify\", \"variables\"];\n"
	  "set \"to\" \"b@example.com\";\nnotify \"mailto:${to}\";", msg_coyote, NULL, NULL,
	  "notify:mailto:b@example.com;keep" },
	{ "5435 bad method at run time", "require [\"enotify\", \"variables\"];\n"
	  "set \"to\" \"not an address\";\nnotify \"mailto:${to}\";", msg_coyote, NULL, NULL,
	  "ERROR" },
	{ "5435 valid_notify_method", "require \"enotify\";\n"
	  "if allof (valid_notify_method \"mailto:a@example.com\",\n"
	  "  not valid_notify_method [\"mailto:a@example.com\", \"tel:+14085551212\"],\n"
	  "  notify_method_capability :is \"mailto:a@example.com\" \"online\" \"maybe\",\n"
	  "  not notify_method_capability \"mailto:a@example.com\" \"frob\" \"maybe\")\n"
	  "  { discard; }", msg_coyote, NULL, NULL, "discard" },
	{ "5435 7 :encodeurl", "require [\"enotify\", \"variables\"];\n"
	  "set :encodeurl \"s\" \"a b&c=d/\u00e9\";\n"
	  "if string :is \"${s}\" \"a%20b%26c%3Dd%2F%C3%A9\" { discard; }", msg_coyote, NULL,
	  NULL, "discard" },
	{ "5435 :encodeurl needs enotify", "require \"variables\";\n"
	  "set :encodeurl \"s\" \"x\";", msg_coyote, NULL, NULL, "ERROR" },
	/* ---- RFC 6131 vacation-seconds ---- */
	{ "6131 :seconds", "require \"vacation-seconds\";\nvacation :seconds 3600 \"back soon\";",
	  msg_coyote, NULL, NULL, "vacation:back soon;keep" },
	{ "6131 :seconds needs require", "require \"vacation\";\nvacation :seconds 60 \"x\";",
	  msg_coyote, NULL, NULL, "ERROR" },
	{ "6131 :days and :seconds", "require \"vacation-seconds\";\n"
	  "vacation :days 1 :seconds 60 \"x\";", msg_coyote, NULL, NULL, "ERROR" },
	{ "stray brace", "keep; }", msg_coyote, NULL, NULL, "ERROR" },
	{ "number overflow", "if size :over 99999999999999999999 { keep; }", msg_coyote, NULL,
	  NULL, "ERROR" },
	{ "bad comparator", "if header :comparator \"i;frob\" :is \"a\" \"b\" { keep; }",
	  msg_coyote, NULL, NULL, "ERROR" },
	{ "redirect bad address", "redirect \"not an address\";", msg_coyote, NULL, NULL,
	  "ERROR" },
	{ "too many redirects", "redirect \"a@x.org\"; redirect \"b@x.org\"; "
	  "redirect \"c@x.org\"; redirect \"d@x.org\"; redirect \"e@x.org\";", msg_coyote, NULL,
	  NULL, "ERROR" },
};

START_TEST(test_cases)
{
	const struct kase *k = &cases[_i];
	struct sieve_script *s = NULL;
	struct sieve_result res;
	struct sieve_env env;
	const char *sep;
	char *err = NULL, *got;
	int line, rc, seen = k->dup_seen;

	rc = sieve_compile(k->script, strlen(k->script), NULL, &s, &line, &err);
	if (rc < 0) {
		ck_assert_msg(strcmp(k->want, "ERROR") == 0, "%s: compile failed: line %d: %s",
		    k->name, line, err);
		free(err);
		return;
	}
	memset(&env, 0, sizeof(env));
	sep = strstr(k->msg, "\r\n\r\n");
	env.hdr = k->msg;
	env.hdrlen = sep != NULL ? (size_t)(sep - k->msg) + 2 : strlen(k->msg);
	env.body = sep != NULL ? sep + 4 : "";
	env.bodylen = strlen(env.body);
	env.size = k->size != 0 ? k->size : strlen(k->msg);
	env.env_from = k->from != NULL ? k->from : "coyote@desert.example.org";
	env.env_to = k->to != NULL ? k->to : "roadrunner@acme.example.com";
	env.delim = "+";
	env.host = "mx.example.test";
	env.domain = "example.test";
	env.version = "0.5.0";
	env.now = 1796428800;      /* 2026-12-05 00:00:00 UTC */
	env.include = include_cb;
	env.duplicate = dup_yes;
	env.mailbox_exists = mbox_exists;
	env.ctx = &seen;
	rc = sieve_run(&s, 1, &env, &res);
	if (rc < 0) {
		ck_assert_msg(strcmp(k->want, "ERROR") == 0, "%s: run failed: line %d: %s",
		    k->name, res.error_line, res.error);
	} else {
		got = render(&res);
		ck_assert_msg(strcmp(got, k->want) == 0, "%s: got '%s', want '%s'", k->name, got,
		    k->want);
		free(got);
	}
	sieve_result_free(&res);
	sieve_free(&s);
}
END_TEST

/* Errors carry the line they are on. */
START_TEST(test_error_lines)
{
	static const struct {
		const char *src;
		int line;
	} ls[] = {
		{ "keep;\n\nfrob;\n", 3 },
		{ "require \"fileinto\";\nif true {\n  fileinto \"a\"\n}\n", 4 },
		{ "# comment\n/* multi\nline */ redirect 1;", 3 },
		{ "if header :is \"a\" text:\nx\ny\n.\n { keep; }\nbogus;", 6 },
	};

	for (size_t i = 0; i < sizeof(ls) / sizeof(ls[0]); i++) {
		struct sieve_script *s = NULL;
		char *err = NULL;
		int line = 0;

		ck_assert_int_eq(sieve_compile(ls[i].src, strlen(ls[i].src), NULL, &s, &line,
		    &err), -1);
		ck_assert_msg(line == ls[i].line, "case %zu: line %d, want %d (%s)", i, line,
		    ls[i].line, err);
		free(err);
	}
}
END_TEST

/* The bounds: size, nesting, actions, steps. */
START_TEST(test_limits)
{
	struct sieve_limits lim;
	struct sieve_script *s = NULL;
	struct sieve_result res;
	struct sieve_env env;
	struct buf b = BUF_INIT(0);
	char *err = NULL;
	int line;

	sieve_limits_default(&lim);
	lim.script_max = 10;
	ck_assert_int_eq(sieve_compile("keep; keep; keep;", 17, &lim, &s, &line, &err), -1);
	free(err);
	sieve_limits_default(&lim);
	for (int i = 0; i < 100; i++)
		buf_puts(&b, "if true {");
	for (int i = 0; i < 100; i++)
		buf_puts(&b, "}");
	ck_assert_int_eq(sieve_compile(b.data, b.len, &lim, &s, &line, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "nested"));
	free(err);
	buf_reset(&b);
	for (int i = 0; i < 100; i++)
		buf_puts(&b, "not ");
	buf_puts(&b, "true");
	buf_free(&b);
	/* actions */
	buf_puts(&b, "require \"fileinto\";");
	for (int i = 0; i < 40; i++)
		buf_printf(&b, "fileinto \"f%d\";", i);
	ck_assert_int_eq(sieve_compile(b.data, b.len, &lim, &s, &line, &err), 0);
	memset(&env, 0, sizeof(env));
	env.hdr = msg_coyote;
	env.hdrlen = strlen(msg_coyote);
	ck_assert_int_eq(sieve_run(&s, 1, &env, &res), -1);
	ck_assert_ptr_nonnull(strstr(res.error, "too many actions"));
	sieve_result_free(&res);
	sieve_free(&s);
	buf_free(&b);
	/* a pathological :matches stays bounded */
	buf_puts(&b, "if header :matches \"x\" \"*a*a*a*a*a*a*a*a*a*a*a*b\" { discard; }");
	ck_assert_int_eq(sieve_compile(b.data, b.len, &lim, &s, &line, &err), 0);
	{
		struct buf m = BUF_INIT(0);

		buf_puts(&m, "X: ");
		for (int i = 0; i < 5000; i++)
			buf_putc(&m, 'a');
		buf_puts(&m, "\r\n");
		env.hdr = m.data;
		env.hdrlen = m.len;
		ck_assert_int_eq(sieve_run(&s, 1, &env, &res), 0);
		ck_assert_int_eq(res.acts[0].type, SIEVE_KEEP);
		sieve_result_free(&res);
		buf_free(&m);
	}
	sieve_free(&s);
	buf_free(&b);
}
END_TEST

/* before, user and after scripts run as one: a stop ends them all. */
START_TEST(test_multiscript)
{
	const char *before = "require \"fileinto\"; if header :is \"X-Spam\" \"yes\" "
	    "{ fileinto \"Junk\"; stop; }";
	const char *user = "require \"fileinto\"; fileinto \"User\";";
	const char *after = "require \"imap4flags\"; addflag \"$after\";";
	struct sieve_script *s[3];
	struct sieve_result res;
	struct sieve_env env;
	char *err = NULL, *got;
	int line;

	ck_assert_int_eq(sieve_compile(before, strlen(before), NULL, &s[0], &line, &err), 0);
	ck_assert_int_eq(sieve_compile(user, strlen(user), NULL, &s[1], &line, &err), 0);
	ck_assert_int_eq(sieve_compile(after, strlen(after), NULL, &s[2], &line, &err), 0);
	memset(&env, 0, sizeof(env));
	env.hdr = msg_list;
	env.hdrlen = strlen(msg_list);
	ck_assert_int_eq(sieve_run(s, 3, &env, &res), 0);
	got = render(&res);
	ck_assert_str_eq(got, "fileinto:Junk");
	free(got);
	sieve_result_free(&res);
	env.hdr = msg_coyote;
	env.hdrlen = strlen(msg_coyote);
	ck_assert_int_eq(sieve_run(s, 3, &env, &res), 0);
	got = render(&res);
	ck_assert_str_eq(got, "fileinto:User");
	free(got);
	sieve_result_free(&res);
	for (int i = 0; i < 3; i++)
		sieve_free(&s[i]);
}
END_TEST

/* RFC 5230 4.5 and RFC 3834: who gets no vacation reply. */
START_TEST(test_vacation_allowed)
{
	static const struct {
		const char *hdr;
		const char *from;
		int want;
	} vc[] = {
		{ "To: me@example.com\r\n", "you@example.org", 1 },
		{ "To: me@example.com\r\n", "", 0 },
		{ "To: me@example.com\r\n", "MAILER-DAEMON@example.org", 0 },
		{ "To: me@example.com\r\n", "owner-list@example.org", 0 },
		{ "To: me@example.com\r\n", "list-request@example.org", 0 },
		{ "To: me@example.com\r\nAuto-Submitted: auto-replied\r\n", "you@example.org", 0 },
		{ "To: me@example.com\r\nAuto-Submitted: no\r\n", "you@example.org", 1 },
		{ "To: me@example.com\r\nPrecedence: bulk\r\n", "you@example.org", 0 },
		{ "To: me@example.com\r\nList-Id: <l.example.org>\r\n", "you@example.org", 0 },
		{ "To: someone@example.com\r\n", "you@example.org", 0 },
		{ "To: alias@example.com\r\n", "you@example.org", 1 },
		{ "Cc: Me <ME@example.com>\r\n", "you@example.org", 1 },
		{ "To: me@example.com\r\n", "me@example.com", 0 },
	};
	const char *mine[] = { "me@example.com", NULL };
	struct sieve_action a;
	char *addrs[] = { "alias@example.com", NULL };

	memset(&a, 0, sizeof(a));
	a.type = SIEVE_VACATION;
	a.addresses = addrs;
	for (size_t i = 0; i < sizeof(vc) / sizeof(vc[0]); i++) {
		struct sieve_env env;
		const char *why = NULL;

		memset(&env, 0, sizeof(env));
		env.hdr = vc[i].hdr;
		env.hdrlen = strlen(vc[i].hdr);
		env.env_from = vc[i].from;
		ck_assert_msg(sieve_vacation_allowed(&env, &a, mine, &why) == vc[i].want,
		    "case %zu: want %d (%s)", i, vc[i].want, why != NULL ? why : "");
	}
}
END_TEST


/* RFC 5230 4.2: :handle ties responses together; without it the reason,
 * :subject and :from tell them apart. */
START_TEST(test_vacation_handle)
{
	static const char *const src[] = {
		"require \"vacation\";\nif header :contains \"subject\" \"lunch\" {\n"
		"    vacation :handle \"ran-away\" \"I'm out and can't meet for lunch\";\n"
		"} else {\n    vacation :handle \"ran-away\" \"I'm out\";\n}\n",
		"require \"vacation\"; vacation \"I'm out\";",
		"require \"vacation\"; vacation :subject \"x\" \"I'm out\";",
		"require \"vacation\"; vacation :days 0 \"I'm out\";",
		"require \"vacation\"; vacation :days 1000 \"I'm out\";",
		"require \"vacation-seconds\"; vacation :seconds 172800 \"I'm out\";",
		"require \"vacation-seconds\"; vacation :seconds 60 \"I'm out\";",
	};
	char *handles[7];
	long days[7];

	for (size_t i = 0; i < 7; i++) {
		struct sieve_script *s = NULL;
		struct sieve_result res;
		struct sieve_env env;
		char *err = NULL;
		int line;

		ck_assert_int_eq(sieve_compile(src[i], strlen(src[i]), NULL, &s, &line, &err), 0);
		memset(&env, 0, sizeof(env));
		env.hdr = msg_coyote;
		env.hdrlen = strlen(msg_coyote);
		ck_assert_int_eq(sieve_run(&s, 1, &env, &res), 0);
		ck_assert_int_eq(res.acts[0].type, SIEVE_VACATION);
		handles[i] = xstrdup(res.acts[0].handle);
		days[i] = res.acts[0].days;
		sieve_result_free(&res);
		sieve_free(&s);
	}
	ck_assert_str_eq(handles[0], "ran-away");
	ck_assert_str_ne(handles[1], handles[2]);
	ck_assert_str_eq(handles[1], handles[3]);
	ck_assert_int_eq(days[1], 7 * 86400);     /* the default */
	ck_assert_int_eq(days[3], 1 * 86400);     /* raised to the minimum */
	ck_assert_int_eq(days[4], 60 * 86400);    /* lowered to the maximum */
	ck_assert_int_eq(days[5], 2 * 86400);     /* :seconds as given */
	ck_assert_int_eq(days[6], 1 * 86400);     /* under the same minimum */
	ck_assert_str_eq(handles[5], handles[1]); /* the period is not the handle */
	for (size_t i = 0; i < 7; i++)
		free(handles[i]);
}
END_TEST

/* Byte-at-a-time truncations of a script never crash the compiler. */
START_TEST(test_truncations)
{
	const char *src = cases[25].script;
	size_t n = strlen(src);

	for (size_t i = 0; i <= n; i++) {
		struct sieve_script *s = NULL;
		char *err = NULL;
		int line;

		if (sieve_compile(src, i, NULL, &s, &line, &err) == 0)
			sieve_free(&s);
		free(err);
	}
}
END_TEST

/* RFC 6068 mailto as RFC 5436 reads it. */
START_TEST(test_mailto)
{
	char **to = NULL, *subject = NULL, *body = NULL;

	ck_assert_int_eq(sieve_mailto_parse("mailto:timo@example.com%2cstephan@dovecot.example.net"
	    "?cc=postmaster@frop.example.org&subject=Frop%20received&bcc=hidden@x.org"
	    "&body=line%0Aline&from=forged@x.org", &to, &subject, &body), 0);
	ck_assert_uint_eq(strv_len(to), 3);
	ck_assert_str_eq(to[0], "timo@example.com");
	ck_assert_str_eq(to[1], "stephan@dovecot.example.net");
	ck_assert_str_eq(to[2], "postmaster@frop.example.org");
	ck_assert_str_eq(subject, "Frop received");
	ck_assert_str_eq(body, "line\nline");
	strv_free(&to);
	free(subject);
	free(body);
	ck_assert_int_eq(sieve_mailto_parse("MAILTO:?to=a@example.com", &to, NULL, NULL), 0);
	ck_assert_str_eq(to[0], "a@example.com");
	strv_free(&to);
	static const char *const bad[] = {
		"mailto:", "mailto:?subject=x", "http://a@example.com", "mailto:a%0d@example.com",
		"mailto:a@example.com%", "mailto:a@example.com%4", "mailto:a b@example.com",
		"mailto:a@example.com?to", "mailto:<a@example.com>", "mailto:a@example.com%00",
		"mailto:noat",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(sieve_mailto_parse(bad[i], NULL, NULL, NULL) == -1, "%s", bad[i]);
}
END_TEST

static Suite *
sieve_suite(void)
{
	Suite *s = suite_create("sieve");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_cases, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_error_lines);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_multiscript);
	tcase_add_test(tc, test_vacation_allowed);
	tcase_add_test(tc, test_vacation_handle);
	tcase_add_test(tc, test_mailto);
	tcase_add_test(tc, test_truncations);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sieve_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

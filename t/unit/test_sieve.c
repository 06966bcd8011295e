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

struct kase {
	const char *name;
	const char *script;
	const char *msg;
	const char *from, *to;     /* envelope; NULL: defaults */
	const char *want;          /* actions, or "ERROR" */
	int dup_seen;              /* duplicate callback answer */
};

/* Render a result the way the table says it. */
static char *
render(const struct sieve_result *res)
{
	struct buf b = BUF_INIT(0);
	static const char *const names[] = { "keep", "fileinto", "redirect", "discard",
		"reject", "ereject", "vacation" };

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
	env.size = strlen(k->msg);
	env.env_from = k->from != NULL ? k->from : "coyote@desert.example.org";
	env.env_to = k->to != NULL ? k->to : "roadrunner@acme.example.com";
	env.delim = "+";
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

/*
 * test_dns - DNS answer handling without a network: MX answers crafted
 * in wire format for dns_parse_mx(), and the ordering / null-MX rules of
 * dns_mx_sort() with a deterministic random source.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "mail/dns.h"

struct rr {
	int pref;
	const char *host;     /* dotted, "" or "." for the root */
};

/* A reply for "b.test" MX with the given answer records. */
static size_t
build_mx_reply(unsigned char *out, size_t cap, const struct rr *rrs, size_t n, int rcode)
{
	size_t len = 0, i;
	static const unsigned char q[] = { 1, 'b', 4, 't', 'e', 's', 't', 0, 0, 15, 0, 1 };

	memset(out, 0, cap);
	out[0] = 0x12;
	out[1] = 0x34;
	out[2] = 0x81;                 /* QR, RD */
	out[3] = (unsigned char)(0x80 | rcode);   /* RA */
	out[5] = 1;                    /* QDCOUNT */
	out[7] = (unsigned char)n;     /* ANCOUNT */
	len = 12;
	memcpy(out + len, q, sizeof(q));
	len += sizeof(q);
	for (i = 0; i < n; i++) {
		size_t rdstart, rdlen_at;
		const char *h = rrs[i].host, *dot;

		out[len++] = 0xc0;
		out[len++] = 12;               /* pointer to the question name */
		out[len++] = 0;
		out[len++] = 15;               /* MX */
		out[len++] = 0;
		out[len++] = 1;                /* IN */
		out[len++] = 0;
		out[len++] = 0;
		out[len++] = 0x0e;
		out[len++] = 0x10;             /* TTL 3600 */
		rdlen_at = len;
		len += 2;
		rdstart = len;
		out[len++] = (unsigned char)(rrs[i].pref >> 8);
		out[len++] = (unsigned char)(rrs[i].pref & 0xff);
		if (strcmp(h, ".") == 0)
			h = "";
		while (*h != '\0') {
			dot = strchr(h, '.');
			size_t l = dot != NULL ? (size_t)(dot - h) : strlen(h);

			out[len++] = (unsigned char)l;
			memcpy(out + len, h, l);
			len += l;
			h += l;
			if (*h == '.')
				h++;
		}
		out[len++] = 0;
		out[rdlen_at] = (unsigned char)((len - rdstart) >> 8);
		out[rdlen_at + 1] = (unsigned char)((len - rdstart) & 0xff);
	}
	return len;
}

/* Deterministic "random": always the last index (reverses equal runs
 * in a way we can predict), or always 0. */
static unsigned
rnd_zero(unsigned n, void *ctx)
{
	(void)n;
	(void)ctx;
	return 0;
}

static unsigned
rnd_seq(unsigned n, void *ctx)
{
	unsigned *s = ctx;

	return (*s)++ % n;
}

static struct dns_mx *
mk(const struct rr *rrs, size_t n)
{
	struct dns_mx *mx = xcalloc(n + 1, sizeof(*mx));
	size_t i;

	for (i = 0; i < n; i++) {
		mx[i].host = xstrdup(rrs[i].host);
		mx[i].pref = rrs[i].pref;
	}
	return mx;
}

START_TEST(parse_two_mx)
{
	unsigned char buf[512];
	struct rr rrs[] = { { 20, "mx2.b.test" }, { 10, "mx1.b.test" } };
	size_t len = build_mx_reply(buf, sizeof(buf), rrs, 2, 0), n = 0;
	struct dns_mx *mx = NULL;

	ck_assert_int_eq(dns_parse_mx(buf, (int)len, &mx, &n), DNS_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(mx[0].host, "mx2.b.test");
	ck_assert_int_eq(mx[0].pref, 20);
	ck_assert_int_eq(dns_mx_sort(mx, &n, NULL, NULL), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(mx[0].host, "mx1.b.test");
	ck_assert_str_eq(mx[1].host, "mx2.b.test");
	dns_mx_free(mx, n);
}
END_TEST

START_TEST(parse_null_mx)
{
	unsigned char buf[512];
	struct rr rrs[] = { { 0, "." } };
	size_t len = build_mx_reply(buf, sizeof(buf), rrs, 1, 0), n = 0;
	struct dns_mx *mx = NULL;

	ck_assert_int_eq(dns_parse_mx(buf, (int)len, &mx, &n), DNS_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(dns_mx_sort(mx, &n, NULL, NULL), 1);
	dns_mx_free(mx, n);
}
END_TEST

START_TEST(parse_nodata)
{
	unsigned char buf[512];
	size_t len = build_mx_reply(buf, sizeof(buf), NULL, 0, 0), n = 0;
	struct dns_mx *mx = NULL;

	ck_assert_int_eq(dns_parse_mx(buf, (int)len, &mx, &n), DNS_NODATA);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(mx);
}
END_TEST

START_TEST(parse_garbage)
{
	unsigned char buf[512];
	struct rr rrs[] = { { 10, "mx1.b.test" } };
	size_t len = build_mx_reply(buf, sizeof(buf), rrs, 1, 0), n = 0, cut;
	struct dns_mx *mx = NULL;
	enum dns_status st;

	ck_assert_int_eq(dns_parse_mx(NULL, 0, &mx, &n), DNS_BADANSWER);
	ck_assert_int_eq(dns_parse_mx(buf, 5, &mx, &n), DNS_BADANSWER);
	/* Every truncation of a valid answer: an error, never a crash. */
	for (cut = 0; cut < len; cut++) {
		unsigned char *copy = xmalloc(cut + 1);

		memcpy(copy, buf, cut);
		st = dns_parse_mx(copy, (int)cut, &mx, &n);
		ck_assert_msg(st != DNS_OK, "truncated at %zu parsed", cut);
		free(copy);
	}
	/* A name that points at itself: rejected, not followed forever. */
	buf[len - 12] = 0xc0;
	buf[len - 11] = (unsigned char)(len - 12);
	(void)dns_parse_mx(buf, (int)len, &mx, &n);
	dns_mx_free(mx, n);
}
END_TEST

START_TEST(sort_random_among_equal)
{
	struct rr rrs[] = { { 10, "a.test" }, { 5, "best.test" }, { 10, "b.test" },
	    { 10, "c.test" }, { 20, "last.test" } };
	int seen_first[3] = { 0, 0, 0 };
	unsigned seed;
	size_t n, i;

	for (seed = 0; seed < 30; seed++) {
		struct dns_mx *mx = mk(rrs, 5);
		unsigned s = seed;

		n = 5;
		ck_assert_int_eq(dns_mx_sort(mx, &n, rnd_seq, &s), 0);
		ck_assert_uint_eq(n, 5);
		ck_assert_str_eq(mx[0].host, "best.test");
		ck_assert_str_eq(mx[4].host, "last.test");
		for (i = 1; i < 4; i++)
			ck_assert_int_eq(mx[i].pref, 10);
		seen_first[mx[1].host[0] - 'a']++;
		dns_mx_free(mx, n);
	}
	/* Each of the three equals came first at least once. */
	for (i = 0; i < 3; i++)
		ck_assert_int_gt(seen_first[i], 0);
}
END_TEST

START_TEST(sort_table)
{
	static const struct {
		struct rr in[4];
		size_t n;
		int null;
		size_t nout;
		const char *first;
	} cases[] = {
		{ { { 0, "." } }, 1, 1, 1, NULL },
		{ { { 0, "" } }, 1, 1, 1, NULL },
		/* non-zero preference: not a valid null MX, and no host left */
		{ { { 10, "." } }, 1, 0, 0, NULL },
		/* root mixed with a real host: the root is ignored */
		{ { { 0, "." }, { 10, "mx.test" } }, 2, 0, 1, "mx.test" },
		{ { { 10, "MX.Example.TEST." } }, 1, 0, 1, "mx.example.test" },
		{ { { 30, "c.test" }, { 20, "b.test" }, { 10, "a.test" } }, 3, 0, 3, "a.test" },
		{ { { 65535, "z.test" }, { 0, "a.test" } }, 2, 0, 2, "a.test" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dns_mx *mx = mk(cases[i].in, cases[i].n);
		size_t n = cases[i].n;
		int got = dns_mx_sort(mx, &n, rnd_zero, NULL);

		ck_assert_msg(got == cases[i].null, "case %zu: null got %d want %d", i, got,
		    cases[i].null);
		ck_assert_msg(n == cases[i].nout, "case %zu: n got %zu want %zu", i, n,
		    cases[i].nout);
		if (cases[i].first != NULL)
			ck_assert_str_eq(mx[0].host, cases[i].first);
		dns_mx_free(mx, n);
	}
}
END_TEST

START_TEST(open_bad_servers)
{
	char *err = NULL;
	struct dns *d = dns_open("not-an-address:xx", 1000, &err);

	ck_assert_ptr_null(d);
	ck_assert_ptr_nonnull(err);
	free(err);
	d = dns_open("127.0.0.1:5353, 127.0.0.2", 1000, &err);
	ck_assert_ptr_nonnull(d);
	dns_close(&d);
	ck_assert_ptr_null(d);
}
END_TEST

static Suite *
dns_suite(void)
{
	Suite *s = suite_create("dns");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, parse_two_mx);
	tcase_add_test(tc, parse_null_mx);
	tcase_add_test(tc, parse_nodata);
	tcase_add_test(tc, parse_garbage);
	tcase_add_test(tc, sort_random_among_equal);
	tcase_add_test(tc, sort_table);
	tcase_add_test(tc, open_bad_servers);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(dns_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}

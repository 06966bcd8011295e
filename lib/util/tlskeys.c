/*
 * tlskeys - the shared session-ticket key chain (see tlskeys.h).
 *
 * Derivation is HMAC-SHA256 keyed with the epoch's secret over a fixed
 * label, one label per output, so no output reveals another or the
 * secret. The name carries the epoch's first bytes of its own HMAC, so
 * a ticket from an unknown key is told apart at once (full handshake).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/tlskeys.h"

static void
prf(const unsigned char *secret, const char *label, unsigned char out[32])
{
	unsigned int n = 32;

	(void)HMAC(EVP_sha256(), secret, TLSKEYS_SECRET_LEN,
	    (const unsigned char *)label, strlen(label), out, &n);
}

static void
derive(const unsigned char *secret, struct tlskey *key)
{
	unsigned char name[32];

	prf(secret, "postern ticket name", name);
	memcpy(key->name, name, sizeof(key->name));
	prf(secret, "postern ticket aes", key->aes);
	prf(secret, "postern ticket mac", key->mac);
	OPENSSL_cleanse(name, sizeof(name));
}

void
tlskeys_init(struct tlskeys *k, const unsigned char *secret, int interval,
    long long epoch)
{
	memset(k, 0, sizeof(*k));
	k->interval = interval > 0 ? interval : 1;
	k->epoch = epoch;
	memcpy(k->secret, secret, TLSKEYS_SECRET_LEN);
	derive(k->secret, &k->cur);
}

void
tlskeys_advance(struct tlskeys *k, time_t now)
{
	long long target = (long long)now / k->interval;
	unsigned char next[32];

	while (k->epoch < target) {
		prf(k->secret, "postern ticket chain", next);
		memcpy(k->secret, next, sizeof(k->secret));
		k->prev = k->cur;
		k->have_prev = 1;
		derive(k->secret, &k->cur);
		k->epoch++;
	}
	OPENSSL_cleanse(next, sizeof(next));
}

const struct tlskey *
tlskeys_find(const struct tlskeys *k, const unsigned char *name, int *is_prev_r)
{
	*is_prev_r = 0;
	if (CRYPTO_memcmp(name, k->cur.name, TLSKEYS_NAME_LEN) == 0)
		return &k->cur;
	if (k->have_prev && CRYPTO_memcmp(name, k->prev.name, TLSKEYS_NAME_LEN) == 0) {
		*is_prev_r = 1;
		return &k->prev;
	}
	return NULL;
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
unhex(const char *s, size_t slen, unsigned char *out, size_t n)
{
	size_t i;

	if (slen != 2 * n)
		return -1;
	for (i = 0; i < 2 * n; i++) {
		int v;
		char c = s[i];

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (unsigned char)(v << 4);
		else
			out[i / 2] |= (unsigned char)v;
	}
	return 0;
}

#define KEY_BYTES (TLSKEYS_NAME_LEN + 32 + 32)

int
tlskeys_format(const struct tlskeys *k, char *buf, size_t len)
{
	char secret[2 * TLSKEYS_SECRET_LEN + 1], prev[2 * KEY_BYTES + 1];
	unsigned char raw[KEY_BYTES];
	int n;

	hex(k->secret, TLSKEYS_SECRET_LEN, secret);
	if (k->have_prev) {
		memcpy(raw, k->prev.name, TLSKEYS_NAME_LEN);
		memcpy(raw + TLSKEYS_NAME_LEN, k->prev.aes, 32);
		memcpy(raw + TLSKEYS_NAME_LEN + 32, k->prev.mac, 32);
		hex(raw, sizeof(raw), prev);
	} else {
		strcpy(prev, "-");
	}
	n = snprintf(buf, len, "postern-ticket-keys 1 %d %lld %s %s\n",
	    k->interval, k->epoch, secret, prev);
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(prev, sizeof(prev));
	OPENSSL_cleanse(raw, sizeof(raw));
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* The next space-separated field of [*p, end): its start and length. */
static int
field(const char **p, const char *end, const char **f, size_t *flen)
{
	const char *s = *p;

	while (s < end && *s == ' ')
		s++;
	*f = s;
	while (s < end && *s != ' ' && *s != '\n')
		s++;
	*flen = (size_t)(s - *f);
	*p = s;
	return *flen > 0 ? 0 : -1;
}

static int
number(const char *f, size_t n, long long max, long long *out)
{
	long long v = 0;
	size_t i;

	if (n == 0 || n > 18)
		return -1;
	for (i = 0; i < n; i++) {
		if (f[i] < '0' || f[i] > '9')
			return -1;
		v = v * 10 + (f[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

int
tlskeys_parse(const char *text, size_t len, struct tlskeys *k, const char **err_r)
{
	const char *p = text, *end, *f;
	size_t n;
	long long interval, epoch;
	unsigned char secret[TLSKEYS_SECRET_LEN], raw[KEY_BYTES];

	*err_r = "malformed key file";
	if (len > TLSKEYS_TEXT_MAX) {
		*err_r = "key file too long";
		return -1;
	}
	end = text + len;
	if (field(&p, end, &f, &n) < 0 || n != 19 ||
	    memcmp(f, "postern-ticket-keys", n) != 0)
		return -1;
	if (field(&p, end, &f, &n) < 0 || n != 1 || *f != '1') {
		*err_r = "unknown key file version";
		return -1;
	}
	if (field(&p, end, &f, &n) < 0 || number(f, n, TLSKEYS_INTERVAL_MAX, &interval) < 0 ||
	    interval < 1)
		return -1;
	if (field(&p, end, &f, &n) < 0 || number(f, n, 1LL << 40, &epoch) < 0)
		return -1;
	if (field(&p, end, &f, &n) < 0 || unhex(f, n, secret, sizeof(secret)) < 0)
		return -1;
	tlskeys_init(k, secret, (int)interval, epoch);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (field(&p, end, &f, &n) < 0)
		goto bad;
	if (!(n == 1 && *f == '-')) {
		if (unhex(f, n, raw, sizeof(raw)) < 0)
			goto bad;
		memcpy(k->prev.name, raw, TLSKEYS_NAME_LEN);
		memcpy(k->prev.aes, raw + TLSKEYS_NAME_LEN, 32);
		memcpy(k->prev.mac, raw + TLSKEYS_NAME_LEN + 32, 32);
		k->have_prev = 1;
		OPENSSL_cleanse(raw, sizeof(raw));
	}
	if (p < end && *p == '\n')
		p++;
	if (p != end)
		goto bad;
	return 0;
bad:
	tlskeys_wipe(k);
	return -1;
}

void
tlskeys_wipe(struct tlskeys *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}

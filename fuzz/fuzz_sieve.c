/*
 * fuzz_sieve - libFuzzer target over lib/sieve (parse.c, run.c, msg.c).
 *
 * The input is split at the first NUL: before it a Sieve script, after it
 * a message (header, empty line, body). The script is compiled with small
 * limits; when it compiles it is run against the message with every
 * callback answering, and the result is checked for sanity (at most the
 * action limit plus the implicit keep; every action has a target where
 * one is needed). Every prefix of a script that compiled is compiled too,
 * so truncated input is exercised as well. ASan/UBSan catch the rest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sieve/sieve.h"

static int
inc(void *ctx, int global, const char *name, struct sieve_script **s_r, char **err_r)
{
	const char *src = global ? "keep;" : "require \"include\"; include :optional \"x\";";
	int line;

	(void)ctx;
	(void)name;
	return sieve_compile(src, strlen(src), NULL, s_r, &line, err_r) == 0 ? 0 : -2;
}

static int
dup(void *ctx, const char *id)
{
	(void)ctx;
	return id[0] == 'm';
}

static int
exists(void *ctx, const char *name)
{
	(void)ctx;
	return name[0] == 'I';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *nul = memchr(p, '\0', size);
	size_t slen = nul != NULL ? (size_t)(nul - p) : size;
	const char *msg = nul != NULL ? nul + 1 : "From: a@b\r\nTo: c@d\r\n\r\nbody\r\n";
	size_t mlen = nul != NULL ? size - slen - 1 : strlen(msg);
	const char *sep = memmem(msg, mlen, "\r\n\r\n", 4);
	struct sieve_limits lim;
	struct sieve_script *s = NULL;
	struct sieve_result res;
	struct sieve_env env;
	char *err = NULL, *m;
	int line;

	sieve_limits_default(&lim);
	lim.script_max = 64 * 1024;
	lim.nest_max = 16;
	lim.commands_max = 2000;
	lim.include_max = 3;
	if (sieve_compile(p, slen, &lim, &s, &line, &err) != 0) {
		if (err == NULL || line < 0)
			abort();
		free(err);
		return 0;
	}
	/* the message as a C string, like local gives it */
	m = malloc(mlen + 1);
	if (m == NULL)
		abort();
	memcpy(m, msg, mlen);
	m[mlen] = '\0';
	memset(&env, 0, sizeof(env));
	env.hdr = m;
	env.hdrlen = sep != NULL ? (size_t)(sep - msg) + 2 : strlen(m);
	env.body = sep != NULL ? m + (sep - msg) + 4 : "";
	env.bodylen = strlen(env.body);
	env.size = mlen;
	env.env_from = "from@example.org";
	env.env_to = "to+ext@example.com";
	env.delim = "+";
	env.now = 1796428800;
	env.include = inc;
	env.duplicate = dup;
	env.mailbox_exists = exists;
	if (sieve_run(&s, 1, &env, &res) == 0) {
		if (res.nacts > (size_t)lim.actions_max + 1)
			abort();
		for (size_t i = 0; i < res.nacts; i++)
			if (res.acts[i].type != SIEVE_DISCARD && res.acts[i].target == NULL)
				abort();
		for (size_t i = 0; i < res.nacts; i++)
			if (res.acts[i].type == SIEVE_VACATION) {
				const char *mine[] = { "to+ext@example.com", NULL };
				const char *why;

				(void)sieve_vacation_allowed(&env, &res.acts[i], mine, &why);
			}
	} else if (res.error == NULL)
		abort();
	sieve_result_free(&res);
	sieve_free(&s);
	free(m);
	return 0;
}

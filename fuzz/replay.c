/*
 * replay - runs a fuzz target's LLVMFuzzerTestOneInput without libFuzzer,
 * so every harness is built and exercised by the ordinary build and ctest
 * (gcc, and the sanitizer build): a harness that no longer compiles or
 * links, or a parser that crashes on the inputs below, fails the suite.
 *
 *   fuzz_x_replay FILE...           each file is one input (a crash
 *                                   artifact or corpus entry from libFuzzer)
 *   fuzz_x_replay [-d DICT] [-n N] [-s SEED]
 *                                   N inputs (default 2000) made from the
 *                                   libFuzzer dictionary's tokens, random
 *                                   bytes and line ends, from SEED - the
 *                                   same inputs on every run
 *
 * Not a fuzzer: no coverage feedback. It keeps the harnesses honest
 * between real runs (fuzz/CMakeLists.txt says how to start those).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/hex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOKENS_MAX 4096
#define TOKEN_LEN_MAX 256
#define INPUT_MAX (64 * 1024)
#define FILE_MAX (16 * 1024 * 1024)

struct token {
	unsigned char b[TOKEN_LEN_MAX];
	size_t n;
};

static struct token tokens[TOKENS_MAX];
static size_t ntokens;
static uint64_t rng = 88172645463325252ULL;

static uint64_t
next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* One dictionary line: [name=]"text" with only the escapes libFuzzer
 * takes (\\, \" and \xNN): anything else (\r, say) makes libFuzzer
 * refuse the whole file, so it is an error here too. */
static int
add_token(const char *line)
{
	const char *p = line;
	struct token *t;
	int hi, lo;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '#' || *p == '\n' || *p == '\0')
		return 0;
	if ((p = strchr(p, '"')) == NULL || ntokens == TOKENS_MAX)
		return -1;
	t = &tokens[ntokens];
	t->n = 0;
	for (p++; *p != '\0' && *p != '"' && t->n < TOKEN_LEN_MAX; p++) {
		if (*p != '\\') {
			t->b[t->n++] = (unsigned char)*p;
		} else if (p[1] == '\\' || p[1] == '"') {
			t->b[t->n++] = (unsigned char)*++p;
		} else if (p[1] == 'x' && (hi = hex_digit(p[2])) >= 0 &&
		    (lo = hex_digit(p[3])) >= 0) {
			t->b[t->n++] = (unsigned char)(hi * 16 + lo);
			p += 3;
		} else {
			return -1;
		}
	}
	if (*p != '"')
		return -1;
	ntokens++;
	return 0;
}

static int
load_dict(const char *path)
{
	char line[1024];
	FILE *f = fopen(path, "r");
	int lineno = 0;

	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (add_token(line) < 0) {
			fprintf(stderr, "%s:%d: not a libFuzzer dictionary entry: %s",
			    path, lineno, line);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

static size_t
make_input(unsigned char *buf)
{
	size_t n = 0, pieces = 1 + next() % 12, i, k, len;

	for (i = 0; i < pieces; i++) {
		switch (next() % 6) {
		case 0:
		case 1:
		case 2:
			if (ntokens == 0)
				break;
			k = next() % ntokens;
			len = tokens[k].n;
			if (n + len > INPUT_MAX)
				return n;
			memcpy(buf + n, tokens[k].b, len);
			n += len;
			break;
		case 3:
			len = 1 + next() % 24;
			if (n + len > INPUT_MAX)
				return n;
			for (k = 0; k < len; k++)
				buf[n + k] = (unsigned char)next();
			n += len;
			break;
		case 4:
			if (n + 2 > INPUT_MAX)
				return n;
			buf[n++] = '\r';
			buf[n++] = '\n';
			break;
		default:
			/* printable noise: digits, letters, spaces, brackets */
			len = 1 + next() % 16;
			if (n + len > INPUT_MAX)
				return n;
			for (k = 0; k < len; k++)
				buf[n + k] = (unsigned char)(" ()[]{}<>\"0123456789abcXYZ*%.:"[next() % 30]);
			n += len;
			break;
		}
	}
	return n;
}

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *data;
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	data = malloc(FILE_MAX);
	if (data == NULL) {
		fclose(f);
		return -1;
	}
	n = fread(data, 1, FILE_MAX, f);
	fclose(f);
	(void)LLVMFuzzerTestOneInput(data, n);
	free(data);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *dict = NULL;
	unsigned long count = 2000, i;
	unsigned char *buf;
	int c;

	while ((c = getopt(argc, argv, "d:n:s:")) != -1) {
		switch (c) {
		case 'd':
			dict = optarg;
			break;
		case 'n':
			count = strtoul(optarg, NULL, 10);
			break;
		case 's':
			rng = strtoull(optarg, NULL, 10) | 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-d dict] [-n count] [-s seed] [file...]\n",
			    argv[0]);
			return 2;
		}
	}
	if (optind < argc) {
		for (; optind < argc; optind++)
			if (run_file(argv[optind]) < 0)
				return 1;
		return 0;
	}
	if (dict != NULL && load_dict(dict) < 0)
		return 1;
	buf = malloc(INPUT_MAX);
	if (buf == NULL)
		return 1;
	/* The empty input, every token alone, then the mixtures. */
	(void)LLVMFuzzerTestOneInput(buf, 0);
	for (i = 0; i < ntokens; i++)
		(void)LLVMFuzzerTestOneInput(tokens[i].b, tokens[i].n);
	for (i = 0; i < count; i++) {
		size_t n = make_input(buf);
		unsigned char *copy = malloc(n > 0 ? n : 1);

		/* An exact-size copy, so the sanitizers see any overread. */
		if (copy == NULL)
			return 1;
		memcpy(copy, buf, n);
		(void)LLVMFuzzerTestOneInput(copy, n);
		free(copy);
	}
	free(buf);
	printf("%lu inputs, %zu dictionary tokens\n", count + ntokens + 1, ntokens);
	return 0;
}

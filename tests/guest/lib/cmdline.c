/* SPDX-License-Identifier: MIT */
/* `key=value` words of the kernel command line (space separated). */
#include "kit.h"

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* Start of the word `key` or `key=...`, or NULL. */
static const char *cmdline_find(const char *cmdline, const char *key)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	while (p && *p) {
		while (is_space(*p))
			p++;
		if (!strncmp(p, key, klen) && (p[klen] == '=' || p[klen] == '\0' || is_space(p[klen])))
			return p;
		while (*p && !is_space(*p))
			p++;
	}
	return NULL;
}

int cmdline_has(const char *cmdline, const char *word)
{
	return cmdline_find(cmdline, word) != NULL;
}

int cmdline_get(const char *cmdline, const char *key, char *buf, size_t size)
{
	const char *p = cmdline_find(cmdline, key);
	size_t n = 0;

	if (!p || p[strlen(key)] != '=' || size == 0)
		return -1;
	p += strlen(key) + 1;
	while (p[n] && !is_space(p[n]) && n + 1 < size) {
		buf[n] = p[n];
		n++;
	}
	buf[n] = '\0';
	return 0;
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

int parse_u64(const char *s, uint64_t *value)
{
	unsigned base = 10;
	uint64_t v = 0;
	int d, any = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16, s += 2;
	for (; (d = digit_value(*s)) < (int)base; s++, any = 1)
		v = v * base + (unsigned)d;
	switch (*s) {
	case 'K': case 'k': v <<= 10, s++; break;
	case 'M': case 'm': v <<= 20, s++; break;
	case 'G': case 'g': v <<= 30, s++; break;
	}
	if (!any || *s)
		return -1;
	*value = v;
	return 0;
}

int cmdline_get_u64(const char *cmdline, const char *key, uint64_t *value)
{
	char buf[32];

	if (cmdline_get(cmdline, key, buf, sizeof(buf)))
		return -1;
	return parse_u64(buf, value);
}

uint64_t cmdline_get_u64_default(const char *cmdline, const char *key, uint64_t def)
{
	uint64_t v;

	return cmdline_get_u64(cmdline, key, &v) ? def : v;
}

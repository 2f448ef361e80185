/* SPDX-License-Identifier: MIT */
/*
 * A small printf: %s %c %d %i %u %x %X %p %% with l/ll/z length modifiers,
 * '0' padding and a field width.  Output is formatted into a buffer first,
 * then written to COM1.
 */
#include "kit.h"

struct fmt_out {
	char *buf;
	size_t size;
	size_t len;
};

static void fmt_putc(struct fmt_out *out, char c)
{
	if (out->len + 1 < out->size)
		out->buf[out->len] = c;
	out->len++;
}

static void fmt_number(struct fmt_out *out, uint64_t v, unsigned base, int neg, int width,
		       char pad, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	for (int i = n; i < width; i++)
		fmt_putc(out, pad);
	while (n)
		fmt_putc(out, tmp[--n]);
}

static void fmt_string(struct fmt_out *out, const char *s, int width)
{
	int n;

	if (!s)
		s = "(null)";
	n = (int)strlen(s);
	for (int i = n; i < width; i++)
		fmt_putc(out, ' ');
	while (*s)
		fmt_putc(out, *s++);
}

static uint64_t fmt_arg(va_list *ap, int longs, int is_signed, int *neg)
{
	int64_t sv;

	*neg = 0;
	if (!is_signed)
		return longs ? va_arg(*ap, uint64_t) : va_arg(*ap, unsigned);
	sv = longs ? va_arg(*ap, int64_t) : va_arg(*ap, int);
	if (sv < 0) {
		*neg = 1;
		return (uint64_t)0 - (uint64_t)sv;
	}
	return (uint64_t)sv;
}

static int fmt_format(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct fmt_out out = { buf, size, 0 };
	va_list args;

	va_copy(args, ap);
	for (; *fmt; fmt++) {
		int width = 0, longs = 0, neg;
		char pad = ' ';
		uint64_t v;

		if (*fmt != '%') {
			fmt_putc(&out, *fmt);
			continue;
		}
		if (*++fmt == '0')
			pad = '0', fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z')
			longs = 1, fmt++;
		switch (*fmt) {
		case 'd':
		case 'i':
			v = fmt_arg(&args, longs, 1, &neg);
			fmt_number(&out, v, 10, neg, width, pad, 0);
			break;
		case 'u':
			fmt_number(&out, fmt_arg(&args, longs, 0, &neg), 10, 0, width, pad, 0);
			break;
		case 'x':
		case 'X':
			v = fmt_arg(&args, longs, 0, &neg);
			fmt_number(&out, v, 16, 0, width, pad, *fmt == 'X');
			break;
		case 'p':
			fmt_putc(&out, '0');
			fmt_putc(&out, 'x');
			fmt_number(&out, (uint64_t)va_arg(args, void *), 16, 0, width, pad, 0);
			break;
		case 'c':
			fmt_putc(&out, (char)va_arg(args, int));
			break;
		case 's':
			fmt_string(&out, va_arg(args, const char *), width);
			break;
		case '%':
			fmt_putc(&out, '%');
			break;
		default:
			fmt_putc(&out, '%');
			if (!*fmt)
				goto done;
			fmt_putc(&out, *fmt);
		}
	}
done:
	va_end(args);
	if (size)
		buf[out.len < size ? out.len : size - 1] = '\0';
	return (int)out.len;
}

int console_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = fmt_format(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

int console_vprintf(const char *fmt, va_list ap)
{
	char buf[512];
	int n = fmt_format(buf, sizeof(buf), fmt, ap);

	serial_puts(buf);
	return n;
}

int console_printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = console_vprintf(fmt, ap);
	va_end(ap);
	return n;
}

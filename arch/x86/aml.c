// SPDX-License-Identifier: MIT
/* AML byte-code and resource-descriptor writer; see aml.h. */
#include "arch/x86/aml.h"

#include <string.h>

/* ACPI 6.4 §20.3 AML Byte Stream Byte Values */
enum {
	AML_ZERO_OP = 0x00,
	AML_ONE_OP = 0x01,
	AML_NAME_OP = 0x08,
	AML_BYTE_PREFIX = 0x0a,
	AML_WORD_PREFIX = 0x0b,
	AML_DWORD_PREFIX = 0x0c,
	AML_STRING_PREFIX = 0x0d,
	AML_QWORD_PREFIX = 0x0e,
	AML_SCOPE_OP = 0x10,
	AML_BUFFER_OP = 0x11,
	AML_PACKAGE_OP = 0x12,
	AML_DUAL_NAME_PREFIX = 0x2e,
	AML_MULTI_NAME_PREFIX = 0x2f,
	AML_EXT_OP_PREFIX = 0x5b,
	AML_DEVICE_OP = 0x82, /* after AML_EXT_OP_PREFIX */
	AML_ROOT_CHAR = '\\',
	AML_PARENT_PREFIX_CHAR = '^',
	AML_ONES_OP = 0xff,
};

/* Room reserved for a PkgLength until its size is known (§20.2.4: 1..4 bytes). */
#define AML_PKGLENGTH_MAX 4
#define AML_PKGLENGTH_LIMIT (1u << 28)

void aml_init(struct aml_writer *w, uint8_t *data, size_t cap)
{
	w->data = data;
	w->cap = cap;
	w->len = 0;
	w->overflow = false;
}

void aml_bytes(struct aml_writer *w, const void *src, size_t len)
{
	if (w->overflow)
		return;
	if (len > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->data + w->len, src, len);
	w->len += len;
}

void aml_byte(struct aml_writer *w, uint8_t v)
{
	aml_bytes(w, &v, 1);
}

void aml_le16(struct aml_writer *w, uint16_t v)
{
	uint8_t b[2] = {v & 0xff, v >> 8};

	aml_bytes(w, b, sizeof(b));
}

void aml_le32(struct aml_writer *w, uint32_t v)
{
	uint8_t b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};

	aml_bytes(w, b, sizeof(b));
}

static void aml_le64(struct aml_writer *w, uint64_t v)
{
	aml_le32(w, (uint32_t)v);
	aml_le32(w, (uint32_t)(v >> 32));
}

/* §20.2.2 NameSeg: LeadNameChar NameChar NameChar NameChar, '_'-padded. */
static const char *aml_name_seg(struct aml_writer *w, const char *s)
{
	size_t n = 0;

	for (; s[n] && s[n] != '.'; n++)
		;
	if (n == 0 || n > 4) {
		w->overflow = true; /* a malformed name is a programming error */
		return s + n;
	}
	for (size_t i = 0; i < 4; i++)
		aml_byte(w, i < n ? (uint8_t)s[i] : '_');
	return s + n;
}

void aml_name_string(struct aml_writer *w, const char *path)
{
	size_t nr_segs = 0;

	if (*path == AML_ROOT_CHAR)
		aml_byte(w, *path++);
	else
		while (*path == AML_PARENT_PREFIX_CHAR)
			aml_byte(w, *path++);

	if (*path == '\0') {
		aml_byte(w, 0x00); /* NullName */
		return;
	}
	nr_segs = 1;
	for (const char *p = path; *p; p++)
		nr_segs += *p == '.';
	if (nr_segs == 2) {
		aml_byte(w, AML_DUAL_NAME_PREFIX);
	} else if (nr_segs > 2) {
		aml_byte(w, AML_MULTI_NAME_PREFIX);
		aml_byte(w, (uint8_t)nr_segs);
	}
	for (;;) {
		path = aml_name_seg(w, path);
		if (*path != '.')
			break;
		path++;
	}
}

void aml_integer(struct aml_writer *w, uint64_t v)
{
	if (v == 0) {
		aml_byte(w, AML_ZERO_OP);
	} else if (v == 1) {
		aml_byte(w, AML_ONE_OP);
	} else if (v == UINT64_MAX) {
		aml_byte(w, AML_ONES_OP); /* DSDT revision 2: integers are 64-bit */
	} else if (v <= UINT8_MAX) {
		aml_byte(w, AML_BYTE_PREFIX);
		aml_byte(w, (uint8_t)v);
	} else if (v <= UINT16_MAX) {
		aml_byte(w, AML_WORD_PREFIX);
		aml_le16(w, (uint16_t)v);
	} else if (v <= UINT32_MAX) {
		aml_dword(w, (uint32_t)v);
	} else {
		aml_byte(w, AML_QWORD_PREFIX);
		aml_le64(w, v);
	}
}

void aml_dword(struct aml_writer *w, uint32_t v)
{
	aml_byte(w, AML_DWORD_PREFIX);
	aml_le32(w, v);
}

void aml_string(struct aml_writer *w, const char *s)
{
	aml_byte(w, AML_STRING_PREFIX);
	aml_bytes(w, s, strlen(s) + 1);
}

static int aml_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * EISA id "LLLhhhh": three upper-case letters as 5-bit values (c - 0x40)
 * in bits 14..0 of a big-endian word, then four hex digits as a big-endian
 * word; stored little-endian, so "PNP0A03" becomes 0x030ad041.
 */
uint32_t aml_eisaid_value(const char *id)
{
	uint32_t vendor = 0, product = 0;

	if (strlen(id) != 7)
		return 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return 0;
		vendor = (vendor << 5) | (uint32_t)(id[i] - 0x40);
	}
	for (int i = 3; i < 7; i++) {
		int d = aml_hex_digit(id[i]);

		if (d < 0)
			return 0;
		product = (product << 4) | (uint32_t)d;
	}
	return (vendor >> 8) | ((vendor & 0xff) << 8) | ((product >> 8) << 16) |
	       ((product & 0xff) << 24);
}

void aml_name(struct aml_writer *w, const char *name)
{
	aml_byte(w, AML_NAME_OP);
	aml_name_string(w, name);
}

void aml_name_integer(struct aml_writer *w, const char *name, uint64_t v)
{
	aml_name(w, name);
	aml_integer(w, v);
}

void aml_name_eisaid(struct aml_writer *w, const char *name, const char *id)
{
	uint32_t v = aml_eisaid_value(id);

	if (v == 0)
		w->overflow = true; /* malformed id: programming error */
	aml_name(w, name);
	aml_dword(w, v);
}

/* Reserve the widest PkgLength; aml_end() shrinks it to what the body needs. */
static size_t aml_pkg_begin(struct aml_writer *w)
{
	size_t mark = w->len;
	static const uint8_t placeholder[AML_PKGLENGTH_MAX];

	aml_bytes(w, placeholder, sizeof(placeholder));
	return mark;
}

/*
 * §20.2.4: PkgLength counts itself plus the body.  One byte holds lengths up
 * to 63 in bits 5:0; otherwise bits 7:6 of the lead byte give the number of
 * following bytes (1-3), bits 3:0 hold the low nibble and each following
 * byte the next 8 bits.
 */
size_t aml_pkglength_encode(size_t body_len, uint8_t out[4])
{
	size_t total;

	if (body_len + 1 <= 0x3f) {
		out[0] = (uint8_t)(body_len + 1);
		return 1;
	}
	for (size_t n = 2; n <= AML_PKGLENGTH_MAX; n++) {
		total = body_len + n;
		if (total >= (size_t)1 << (4 + 8 * (n - 1)))
			continue;
		out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
		for (size_t i = 1; i < n; i++)
			out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
		return n;
	}
	return 0;
}

void aml_end(struct aml_writer *w, size_t mark)
{
	uint8_t enc[AML_PKGLENGTH_MAX];
	size_t body, body_len, n;

	if (w->overflow)
		return;
	body = mark + AML_PKGLENGTH_MAX;
	body_len = w->len - body;
	n = aml_pkglength_encode(body_len, enc);
	if (n == 0) {
		w->overflow = true;
		return;
	}
	memmove(w->data + mark + n, w->data + body, body_len);
	memcpy(w->data + mark, enc, n);
	w->len -= AML_PKGLENGTH_MAX - n;
}

size_t aml_scope_begin(struct aml_writer *w, const char *path)
{
	size_t mark;

	aml_byte(w, AML_SCOPE_OP);
	mark = aml_pkg_begin(w);
	aml_name_string(w, path);
	return mark;
}

size_t aml_device_begin(struct aml_writer *w, const char *name)
{
	size_t mark;

	aml_byte(w, AML_EXT_OP_PREFIX);
	aml_byte(w, AML_DEVICE_OP);
	mark = aml_pkg_begin(w);
	aml_name_string(w, name);
	return mark;
}

size_t aml_package_begin(struct aml_writer *w, uint8_t nr_elements)
{
	size_t mark;

	aml_byte(w, AML_PACKAGE_OP);
	mark = aml_pkg_begin(w);
	aml_byte(w, nr_elements);
	return mark;
}

/* §20.2.5.4 DefBuffer: BufferOp PkgLength BufferSize ByteList. */
void aml_name_buffer(struct aml_writer *w, const char *name, const uint8_t *bytes, size_t len)
{
	size_t mark;

	aml_name(w, name);
	aml_byte(w, AML_BUFFER_OP);
	mark = aml_pkg_begin(w);
	aml_integer(w, len);
	aml_bytes(w, bytes, len);
	aml_end(w, mark);
}

/* --- Resource descriptors (ACPI 6.4 §6.4) --- */

/* General flags of address space descriptors (§6.4.3.5, Table 6.44). */
#define AML_RES_MIN_FIXED (1u << 2)
#define AML_RES_MAX_FIXED (1u << 3)
/* Resource types of address space descriptors. */
#define AML_RES_TYPE_MEMORY 0
#define AML_RES_TYPE_IO 1
#define AML_RES_TYPE_BUS 2

/* §6.4.2.5 I/O Port Descriptor: IO(Decode16, base, base, 1, len). */
void aml_res_io(struct aml_writer *w, uint16_t base, uint8_t len)
{
	aml_byte(w, 0x47);
	aml_byte(w, 0x01); /* decodes 16 address bits */
	aml_le16(w, base); /* range minimum base */
	aml_le16(w, base); /* range maximum base */
	aml_byte(w, 0x01); /* base alignment */
	aml_byte(w, len);
}

/* §6.4.2.1 IRQ Descriptor, 2-byte form: IRQNoFlags(){irq} (ISA: edge, high). */
void aml_res_irq_noflags(struct aml_writer *w, uint8_t irq)
{
	uint16_t mask = irq < 16 ? (uint16_t)(1u << irq) : 0;

	if (irq >= 16)
		w->overflow = true;
	aml_byte(w, 0x22);
	aml_le16(w, mask);
}

/* §6.4.3.4 32-Bit Fixed Memory Range Descriptor: Memory32Fixed(ReadWrite, ...). */
void aml_res_memory32_fixed(struct aml_writer *w, uint32_t base, uint32_t len)
{
	aml_byte(w, 0x86);
	aml_le16(w, 9);	   /* length of the data that follows */
	aml_byte(w, 0x01); /* read/write */
	aml_le32(w, base);
	aml_le32(w, len);
}

/*
 * §6.4.3.5.3 Word Address Space Descriptor, produced by the bridge for its
 * children (ResourceProducer, PosDecode, MinFixed, MaxFixed), granularity
 * 0, no translation.
 */
static void aml_res_word(struct aml_writer *w, uint8_t type, uint8_t type_flags, uint16_t min,
			 uint16_t max)
{
	aml_byte(w, 0x88);
	aml_le16(w, 13); /* length of the data that follows */
	aml_byte(w, type);
	aml_byte(w, AML_RES_PRODUCER | AML_RES_MIN_FIXED | AML_RES_MAX_FIXED);
	aml_byte(w, type_flags);
	aml_le16(w, 0); /* granularity */
	aml_le16(w, min);
	aml_le16(w, max);
	aml_le16(w, 0); /* translation offset */
	aml_le16(w, (uint16_t)(max - min + 1));
}

void aml_res_word_bus(struct aml_writer *w, uint16_t min, uint16_t max)
{
	aml_res_word(w, AML_RES_TYPE_BUS, 0, min, max);
}

/* Type-specific flags 0x03: _RNG = EntireRange (ISA and non-ISA ports). */
void aml_res_word_io(struct aml_writer *w, uint16_t min, uint16_t max)
{
	aml_res_word(w, AML_RES_TYPE_IO, 0x03, min, max);
}

/*
 * §6.4.3.5.2 DWord Address Space Descriptor for memory: ResourceProducer,
 * PosDecode, MinFixed, MaxFixed; type-specific flags 0x01: ReadWrite,
 * NonCacheable (_MEM = 0), AddressRangeMemory, TypeStatic.
 */
void aml_res_dword_memory(struct aml_writer *w, uint32_t min, uint32_t max)
{
	aml_byte(w, 0x87);
	aml_le16(w, 23); /* length of the data that follows */
	aml_byte(w, AML_RES_TYPE_MEMORY);
	aml_byte(w, AML_RES_PRODUCER | AML_RES_MIN_FIXED | AML_RES_MAX_FIXED);
	aml_byte(w, 0x01);
	aml_le32(w, 0); /* granularity */
	aml_le32(w, min);
	aml_le32(w, max);
	aml_le32(w, 0); /* translation offset */
	aml_le32(w, max - min + 1);
}

/* §6.4.2.9 End Tag; checksum 0 means "treat as correct". */
void aml_res_end(struct aml_writer *w)
{
	aml_byte(w, 0x79);
	aml_byte(w, 0x00);
}

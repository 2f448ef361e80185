/* SPDX-License-Identifier: MIT */
/*
 * A small AML byte-code writer (ACPI 6.4 §20, "ACPI Machine Language
 * Specification") and resource-descriptor writer (ACPI 6.4 §6.4), enough to
 * build isola's DSDT: names, integers, strings, packages, buffers, scopes,
 * devices and the resource descriptors a _CRS needs.
 *
 * Writes never go past the buffer: once a write does not fit, the writer
 * sets `overflow` and ignores every later write, so callers build the whole
 * table and check `overflow` once at the end.
 *
 * Objects with a PkgLength (Scope, Device, Package) are written as
 * begin/end pairs:
 *
 *     size_t dev = aml_device_begin(w, "COM1");
 *     aml_name_eisaid(w, "_HID", "PNP0501");
 *     aml_end(w, dev);
 */
#ifndef ISOLA_ARCH_X86_AML_H
#define ISOLA_ARCH_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml_writer {
	uint8_t *data;
	size_t cap;
	size_t len;
	bool overflow;
};

void aml_init(struct aml_writer *w, uint8_t *data, size_t cap);

/* Raw bytes and little-endian fields (used by the resource writers too). */
void aml_byte(struct aml_writer *w, uint8_t v);
void aml_bytes(struct aml_writer *w, const void *src, size_t len);
void aml_le16(struct aml_writer *w, uint16_t v);
void aml_le32(struct aml_writer *w, uint32_t v);

/* §20.2.2 NameString: "\_SB.PCI0", "^FOO", "_HID"; segments padded with '_'. */
void aml_name_string(struct aml_writer *w, const char *path);
/* §20.2.3 ComputationalData: smallest of Zero/One/Ones/Byte/Word/DWord/QWord. */
void aml_integer(struct aml_writer *w, uint64_t v);
/* DWordConst, whatever the value (EISA ids are always DWords). */
void aml_dword(struct aml_writer *w, uint32_t v);
/* §20.2.3 String: StringPrefix AsciiCharList NullChar. */
void aml_string(struct aml_writer *w, const char *s);
/* §19.6 EISAID("PNP0A03") compressed to its 32-bit form, or 0 if malformed. */
uint32_t aml_eisaid_value(const char *id);

/* §20.2.5.1 NameOp NameString: the object written next is its value. */
void aml_name(struct aml_writer *w, const char *name);
void aml_name_integer(struct aml_writer *w, const char *name, uint64_t v);
void aml_name_eisaid(struct aml_writer *w, const char *name, const char *id);
/* Name(name, Buffer(){bytes}) — how a ResourceTemplate is stored. */
void aml_name_buffer(struct aml_writer *w, const char *name, const uint8_t *bytes, size_t len);

/* Begin objects with a PkgLength; each returns a mark for aml_end(). */
size_t aml_scope_begin(struct aml_writer *w, const char *path);	     /* §20.2.5.1 ScopeOp */
size_t aml_device_begin(struct aml_writer *w, const char *name);     /* §20.2.5.2 DeviceOp */
size_t aml_package_begin(struct aml_writer *w, uint8_t nr_elements); /* §20.2.5.4 PackageOp */
/* Close the object begun at mark: write its PkgLength (§20.2.4). */
void aml_end(struct aml_writer *w, size_t mark);

/* §20.2.4 PkgLength encoding of a package whose body is body_len bytes; 0 if too big. */
size_t aml_pkglength_encode(size_t body_len, uint8_t out[4]);

/*
 * Resource descriptors (§6.4), appended to a writer used as a plain byte
 * buffer; aml_res_end() appends the End Tag that ResourceTemplate() adds.
 */
#define AML_RES_PRODUCER 0 /* general flags bit 0 clear: resource producer */
void aml_res_io(struct aml_writer *w, uint16_t base, uint8_t len);		/* §6.4.2.5 */
void aml_res_irq_noflags(struct aml_writer *w, uint8_t irq);			/* §6.4.2.1 */
void aml_res_memory32_fixed(struct aml_writer *w, uint32_t base, uint32_t len); /* §6.4.3.4 */
void aml_res_word_bus(struct aml_writer *w, uint16_t min, uint16_t max);	/* §6.4.3.5.3 */
void aml_res_word_io(struct aml_writer *w, uint16_t min, uint16_t max);		/* §6.4.3.5.3 */
void aml_res_dword_memory(struct aml_writer *w, uint32_t min, uint32_t max);	/* §6.4.3.5.2 */
void aml_res_end(struct aml_writer *w);						/* §6.4.2.9 */

#endif

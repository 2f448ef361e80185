/* SPDX-License-Identifier: MIT */
/*
 * init_sipi_storm (--cpus 2): hundreds of INIT, SIPI, NMI and fixed IPIs
 * at the AP (APIC ID 1), to all-excluding-self, to APIC IDs that do not
 * exist, to the broadcast ID 0xff (SIPI/NMI/fixed only: INIT there would
 * reset the sender), with reserved delivery modes and logical destinations.
 * The AP runs a 16-bit trampoline at 0x10000 that counts its starts and
 * halts; its real-mode NMI vector is an IRET.  isola must survive an AP
 * bouncing between wait-for-SIPI and running (KVM_RUN's EAGAIN), IPIs to
 * nobody, and NMIs at the BSP, then a final INIT-SIPI must still start the
 * AP; the guest exits PASS (status 1) well within the timeout.
 */
#include "hostile.h"

#define TRAMPOLINE 0x10000u
#define COUNTER_OFF 0x100
#define ICR_FIXED 0x000
#define ICR_SMI 0x200
#define ICR_NMI 0x400
#define ICR_INIT 0x500
#define ICR_SIPI 0x600
#define ICR_LOGICAL 0x800
#define ICR_ASSERT 0x4000
#define ICR_LEVEL 0x8000
#define ICR_ALL_BUT_SELF 0xc0000
#define ICR_SELF 0x40000
#define FIXED_VECTOR 0x50

/* cli; 1: inc word cs:[0x100]; 2: hlt; jmp 2b; nmi: iret */
static const uint8_t trampoline_code[] = {
	0xfa, 0x2e, 0xff, 0x06, 0x00, 0x01, 0xf4, 0xeb, 0xfd, 0xcf,
};
#define NMI_HANDLER_OFF 9

static volatile unsigned nmi_hits, fixed_hits;

static void nmi_handler(struct idt_frame *frame)
{
	(void)frame;
	nmi_hits++;
}

static void fixed_handler(struct idt_frame *frame)
{
	(void)frame;
	fixed_hits++;
	lapic_eoi();
}

static volatile uint16_t *ap_counter(void)
{
	return phys_ptr(TRAMPOLINE + COUNTER_OFF);
}

static void ipi(uint32_t dest, uint32_t icr)
{
	(void)lapic_send_ipi(dest, icr);
}

static void install_trampoline(void)
{
	uint16_t *ivt = phys_ptr(0);

	memcpy(phys_ptr(TRAMPOLINE), trampoline_code, sizeof(trampoline_code));
	*ap_counter() = 0;
	ivt[2 * 2] = NMI_HANDLER_OFF;  /* real-mode IVT entry 2: offset */
	ivt[2 * 2 + 1] = TRAMPOLINE >> 4; /* segment */
}

static void storm(void)
{
	const uint8_t sipi = TRAMPOLINE >> 12;
	unsigned sent = 0;

	for (unsigned round = 0; round < 100; round++) {
		uint32_t nobody = 2 + (uint32_t)(hostile_rand() % 250); /* 2..251: no such CPU */

		ipi(1, ICR_INIT | ICR_ASSERT | ICR_LEVEL);
		ipi(1, ICR_SIPI | sipi);
		ipi(1, ICR_SIPI | sipi); /* second SIPI: ignored unless waiting */
		ipi(1, ICR_NMI);
		ipi(0, ICR_ALL_BUT_SELF | ICR_INIT | ICR_ASSERT);
		ipi(0, ICR_ALL_BUT_SELF | ICR_SIPI | sipi);
		ipi(0, ICR_ALL_BUT_SELF | ICR_NMI);
		ipi(nobody, ICR_INIT | ICR_ASSERT);
		ipi(nobody, ICR_SIPI | (uint8_t)hostile_rand());
		ipi(nobody, ICR_NMI);
		ipi(nobody, ICR_SMI);
		ipi(nobody, ICR_FIXED | FIXED_VECTOR);
		ipi(0xff, ICR_SIPI | sipi);  /* broadcast: BSP ignores SIPI */
		ipi(0xff, ICR_NMI);          /* broadcast: includes us */
		ipi(0xff, ICR_FIXED | FIXED_VECTOR);
		ipi(0, ICR_SELF | ICR_NMI);
		ipi(0, ICR_SELF | ICR_FIXED | FIXED_VECTOR);
		ipi((uint32_t)hostile_rand() & 0xff, ICR_LOGICAL | ICR_NMI);
		ipi((uint32_t)hostile_rand() & 0xff, ICR_LOGICAL | ICR_SIPI | sipi);
		ipi(1, 0x300 | FIXED_VECTOR);         /* reserved delivery mode 011 */
		ipi(1, 0x700 | FIXED_VECTOR);         /* ExtINT by IPI: reserved */
		ipi(0, ICR_ALL_BUT_SELF | ICR_INIT | ICR_LEVEL); /* INIT level de-assert */
		ipi(1, ICR_FIXED | 0x05);             /* illegal vector < 16 */
		sent += 23;
	}
	console_printf("init_sipi_storm: %u IPIs sent, BSP took %u NMIs, AP started %u times\n",
		       sent, nmi_hits, *ap_counter());
}

int guest_main(const struct boot_info *info)
{
	uint16_t before;
	uint32_t t0;

	(void)info;
	idt_set_handler(VECTOR_NMI, nmi_handler);
	idt_set_handler(FIXED_VECTOR, fixed_handler);
	idt_set_handler(0x05, fixed_handler);
	lapic_enable();
	install_trampoline();
	storm();
	/* The AP must still come up with a clean INIT-SIPI. */
	before = *ap_counter();
	ipi(1, ICR_INIT | ICR_ASSERT | ICR_LEVEL);
	delay_us(10000);
	ipi(1, ICR_SIPI | (TRAMPOLINE >> 12));
	t0 = pmtimer_read();
	while (*ap_counter() == before && pmtimer_elapsed_us(t0) < 2000000)
		cpu_relax();
	test_check(*ap_counter() != before, "AP starts after the storm", "counter stuck at %u",
		   before);
	test_check(nmi_hits > 0, "NMIs reached the BSP", "none");
	cpu_sti();
	delay_us(1000);
	cpu_cli();
	test_check(fixed_hits > 0, "self-IPIs delivered once interrupts were enabled", "none");
	return 0;
}

# isola test guests (tests/guest/README.md).  Included by the top Makefile.
#   make guests   -> build/guests/NAME.elf        PVH ELF per tests/guest/NAME.c
#                    build/guests/bootparams.bzimage   bzImage (Linux boot protocol)
#                    build/guests/hostile/NAME.elf per tests/guest/hostile/NAME.c
#                    build/guests/disks/*.img      disk images (mkdisk.sh)

GUEST_SRC := tests/guest
GUEST_OUT ?= build/guests
GUEST_CC ?= gcc
GUEST_OBJCOPY ?= objcopy
GUEST_CFLAGS := -std=gnu11 -O2 -g -ffreestanding -nostdlib -static -fno-pic -fno-pie \
	-mgeneral-regs-only -mno-red-zone -mno-sse -mno-mmx -mno-80387 -mcmodel=small \
	-fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables \
	-fno-tree-loop-distribute-patterns -fno-common \
	-Wall -Wextra -Werror -Wshadow -Wvla \
	-Wa,--noexecstack -I. -Iinclude -I$(GUEST_SRC)/lib -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,max-page-size=0x1000 \
	-Wl,--no-warn-rwx-segments -Wl,-z,noexecstack

# Special guests: bootparams is a bzImage, not a PVH ELF.
GUEST_BZ_NAMES := bootparams
GUEST_NAMES := $(filter-out $(GUEST_BZ_NAMES), \
	$(patsubst $(GUEST_SRC)/%.c,%,$(wildcard $(GUEST_SRC)/*.c)))
GUEST_HOSTILE_NAMES := $(patsubst $(GUEST_SRC)/hostile/%.c,%,$(wildcard $(GUEST_SRC)/hostile/*.c))

GUEST_LIB_SRCS := $(filter-out $(GUEST_SRC)/lib/pvh_note.S $(GUEST_SRC)/lib/bzhead.S, \
	$(wildcard $(GUEST_SRC)/lib/*.c $(GUEST_SRC)/lib/*.S))
GUEST_LIB_OBJS := $(patsubst $(GUEST_SRC)/%,$(GUEST_OUT)/obj/%.o,$(GUEST_LIB_SRCS))
GUEST_PVH_OBJS := $(GUEST_LIB_OBJS) $(GUEST_OUT)/obj/lib/pvh_note.S.o
GUEST_BZ_OBJS := $(GUEST_LIB_OBJS) $(GUEST_OUT)/obj/lib/bzhead.S.o

GUEST_ELFS := $(GUEST_NAMES:%=$(GUEST_OUT)/%.elf)
GUEST_BZIMAGES := $(GUEST_BZ_NAMES:%=$(GUEST_OUT)/%.bzimage)
GUEST_HOSTILE_ELFS := $(GUEST_HOSTILE_NAMES:%=$(GUEST_OUT)/hostile/%.elf)

.PHONY: guests
.PRECIOUS: $(GUEST_OUT)/obj/%.c.o $(GUEST_OUT)/obj/%.S.o $(GUEST_OUT)/%.bz.elf
guests: $(GUEST_ELFS) $(GUEST_BZIMAGES) $(GUEST_HOSTILE_ELFS) $(GUEST_OUT)/disks/.made

# Disk images of the virtio cases (cases.list: $GUESTS/disks/NAME.img).
$(GUEST_OUT)/disks/.made: $(GUEST_SRC)/mkdisk.sh
	sh $(GUEST_SRC)/mkdisk.sh $(GUEST_OUT)/disks
	@touch $@

$(GUEST_OUT)/obj/%.c.o: $(GUEST_SRC)/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_OUT)/obj/%.S.o: $(GUEST_SRC)/%.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_OUT)/%.elf: $(GUEST_OUT)/obj/%.c.o $(GUEST_PVH_OBJS) $(GUEST_SRC)/lib/guest.ld
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_LDFLAGS) -T $(GUEST_SRC)/lib/guest.ld -o $@ $< $(GUEST_PVH_OBJS)

# bzImage: link at 0x100000 with the setup sectors in front, then flatten.
$(GUEST_OUT)/%.bz.elf: $(GUEST_OUT)/obj/%.c.o $(GUEST_BZ_OBJS) $(GUEST_SRC)/lib/bzimage.ld
	$(GUEST_CC) $(GUEST_LDFLAGS) -T $(GUEST_SRC)/lib/bzimage.ld -o $@ $< $(GUEST_BZ_OBJS)

$(GUEST_OUT)/%.bzimage: $(GUEST_OUT)/%.bz.elf
	$(GUEST_OBJCOPY) -O binary $< $@

-include $(shell find $(GUEST_OUT)/obj -name '*.d' 2>/dev/null)

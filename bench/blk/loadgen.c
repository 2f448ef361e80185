// SPDX-License-Identifier: MIT
/*
 * blk-loadgen: a virtio-blk driver in a fake guest, for benchmarking
 * vhost-user-blk back-ends (isola-blk, qemu-storage-daemon) from the host.
 *
 * "Guest memory" is a memfd this process maps; the back-end gets it with
 * SET_MEM_TABLE (guest_address 0, user_address = our mapping).  One split
 * virtqueue (virtio 1.2 §2.7) lives at its start; each request slot owns a
 * three-descriptor chain (header, one data buffer, status byte) and a
 * page-aligned data buffer, so the back-end can use O_DIRECT.  The loop is
 * closed: every completion is replaced by a new random request at once, so
 * the queue depth stays constant; kicks go through the kick eventfd and
 * completions are awaited on the call eventfd (poll, read), as a guest
 * waits for its interrupt, or by spinning on the used ring with --poll.
 *
 * Latency is submit (just before avail->idx is published) to the moment the
 * used entry is seen.  One line of key=value figures goes to stdout
 * (bench/blk/run.sh reads it).  Single-threaded on purpose: on a small host
 * the back-end's thread needs the other core.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bench/blk/loadgen.h"

/* Set by the watchdog timer's handler; the only state a signal handler can
 * touch.  completions counts progress, ticks the seconds without any. */
static volatile sig_atomic_t lg_progress;
static volatile sig_atomic_t lg_idle_ticks;

static void lg_watchdog(int sig)
{
	static const char msg[] = "blk-loadgen: no completion for 10 s; the back-end is stuck\n";

	(void)sig;
	if (lg_progress) {
		lg_progress = 0;
		lg_idle_ticks = 0;
	} else if (++lg_idle_ticks >= LG_WATCHDOG_SECONDS) {
		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
			/* nothing more to do: we exit anyway */
		}
		_exit(3);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the driver ----------------------------------------------------------- */

/* Fill slot's chain with a new request (random, or the next block in the
 * sequential modes) and make it available (the caller publishes
 * avail->idx). */
static void lg_queue_request(struct loadgen *lg, struct lg_queue *q, unsigned slot)
{
	const struct lg_options *opt = lg->opt;
	uint64_t n = (uint64_t)q->index * LG_MAX_SLOTS + slot; /* memory slot */
	uint16_t head = (uint16_t)(slot * LG_DESCS_PER_REQ);
	struct virtio_blk_outhdr *hdr = lg_ptr(lg, LG_HDR_GPA + 16ull * n);
	uint8_t *status = lg_ptr(lg, LG_STATUS_GPA + n);
	uint64_t block;
	bool write;

	if (opt->rw == LG_READ || opt->rw == LG_WRITE) {
		/* Each queue streams through its own part of the disk. */
		block = (q->next_block++ + q->index * (lg->capacity_blocks / opt->queues)) %
			lg->capacity_blocks;
	} else {
		block = lg_random(lg) % lg->capacity_blocks;
	}
	if (opt->rw == LG_RANDRW)
		write = lg_random(lg) % 100 >= opt->rwmixread;
	else
		write = opt->rw == LG_RANDWRITE || opt->rw == LG_WRITE;
	*hdr = (struct virtio_blk_outhdr){
	    .type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
	    .sector = block * opt->bs / VIRTIO_BLK_SECTOR,
	};
	*status = 0xff;
	/* §2.7.5: header readable, data writable for IN, status writable. */
	q->desc[head] = (struct virtq_desc){LG_HDR_GPA + 16ull * n, 16, VIRTQ_DESC_F_NEXT,
					    (uint16_t)(head + 1)};
	q->desc[head + 1] = (struct virtq_desc){
	    LG_DATA_GPA + n * opt->bs, opt->bs,
	    (uint16_t)(VIRTQ_DESC_F_NEXT | (write ? 0 : VIRTQ_DESC_F_WRITE)), (uint16_t)(head + 2)};
	q->desc[head + 2] = (struct virtq_desc){LG_STATUS_GPA + n, 1, VIRTQ_DESC_F_WRITE, 0};
	q->avail->ring[q->avail_idx % opt->queue_size] = head;
	q->avail_idx++;
	q->slots[slot].write = write;
	q->slots[slot].submit_ns = now_ns();
	q->in_flight++;
}

/* §2.7.13.3: publish avail->idx, then kick unless the device said not to
 * (§2.7.10: VIRTQ_USED_F_NO_NOTIFY, or avail_event with EVENT_IDX). */
static void lg_publish_and_kick(struct loadgen *lg, struct lg_queue *q)
{
	uint16_t old = q->kicked_idx, new = q->avail_idx;
	uint64_t one = 1;
	bool kick;

	__atomic_store_n(&q->avail->idx, new, __ATOMIC_RELEASE);
	/* The device reads idx then writes avail_event; we write idx then
	 * read avail_event: a full barrier, or both could miss each other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (lg->features & (1ull << VIRTIO_F_EVENT_IDX)) {
		uint16_t event = __atomic_load_n(q->avail_event, __ATOMIC_RELAXED);

		kick = (uint16_t)(new - event - 1) < (uint16_t)(new - old); /* vring_need_event */
	} else {
		kick =
		    !(__atomic_load_n(&q->used->flags, __ATOMIC_RELAXED) & VIRTQ_USED_F_NO_NOTIFY);
	}
	q->kicked_idx = new;
	if (kick) {
		lg->kicks++;
		if (write(q->kick_fd, &one, sizeof(one)) < 0)
			fprintf(stderr, "blk-loadgen: kick: %s\n", strerror(errno));
	}
}

static int lg_record(struct lg_samples *s, uint64_t ns)
{
	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1 << 20;
		uint32_t *ns_array = realloc(s->ns, cap * sizeof(*ns_array));

		if (!ns_array)
			return -ENOMEM;
		s->ns = ns_array;
		s->cap = cap;
	}
	s->ns[s->count++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
	return 0;
}

/* Take every new used entry of q; resubmit each slot at once unless the
 * run is over (resubmit false).  Returns how many completed, or -errno. */
static int lg_reap(struct loadgen *lg, struct lg_queue *q, bool resubmit)
{
	uint16_t used_idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
	uint64_t now;
	int n = 0;

	if (used_idx == q->last_used)
		return 0;
	now = now_ns();
	while (q->last_used != used_idx) {
		struct virtq_used_elem *e = &q->used->ring[q->last_used % lg->opt->queue_size];
		unsigned slot = e->id / LG_DESCS_PER_REQ;
		struct lg_slot *s = &q->slots[slot];

		if (e->id % LG_DESCS_PER_REQ || slot >= lg->opt->iodepth || !q->in_flight) {
			fprintf(stderr,
				"blk-loadgen: queue %u: the device returned head %u, never made "
				"available\n",
				q->index, e->id);
			return -EPROTO;
		}
		q->last_used++;
		q->in_flight--;
		lg->all_ios++;
		n++;
		if (*(uint8_t *)lg_ptr(lg, LG_STATUS_GPA + (uint64_t)q->index * LG_MAX_SLOTS +
					       slot) != VIRTIO_BLK_S_OK)
			lg->errors++;
		if (lg->measuring) {
			lg->ios++;
			if (s->write)
				lg->writes++;
			else
				lg->reads++;
			if (lg_record(&lg->samples, now - s->submit_ns))
				return -ENOMEM;
		}
		if (resubmit)
			lg_queue_request(lg, q, slot);
	}
	lg_progress = 1;
	if (resubmit)
		lg_publish_and_kick(lg, q);
	return n;
}

/* Every queue once; the completions in all, or -errno. */
static int lg_reap_all(struct loadgen *lg, bool resubmit)
{
	int total = 0;

	for (unsigned i = 0; i < lg->opt->queues; i++) {
		int n = lg_reap(lg, &lg->queues[i], resubmit);

		if (n < 0)
			return n;
		total += n;
	}
	return total;
}

/* Has a queue with requests in flight a used entry not yet reaped? */
static bool lg_used_pending(const struct loadgen *lg)
{
	for (unsigned i = 0; i < lg->opt->queues; i++) {
		const struct lg_queue *q = &lg->queues[i];

		if (q->in_flight &&
		    __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) != q->last_used)
			return true;
	}
	return false;
}

/* Sleep until a device signals a call eventfd, having first asked for an
 * interrupt at the next used entry of each queue with requests in flight
 * (§2.7.7: used_event with EVENT_IDX; without it, avail->flags stays 0 and
 * every used batch interrupts).  One poll covers all queues, as one vCPU
 * would take the interrupts of several.
 *
 * With --halt-poll-us the driver first spins that long, as a guest's idle
 * vCPU does in KVM before the host thread sleeps (halt polling: KVM's
 * halt_poll_ns, KVM_HALT_POLL_NS_DEFAULT = 200 us on x86).  Interrupts stay
 * wanted, so the device signals as it would for a real guest; the spin
 * watches the used ring, which the device writes just before it signals.
 * The counts a caught spin leaves in the call eventfds are drained by the
 * next sleep, which sleeps again when that was all it found. */
static int lg_wait(struct loadgen *lg)
{
	struct pollfd pfd[LG_MAX_QUEUES];
	uint64_t value;

	if (lg->opt->poll)
		return 0;
	for (unsigned i = 0; i < lg->opt->queues; i++) {
		struct lg_queue *q = &lg->queues[i];

		pfd[i] = (struct pollfd){.fd = q->in_flight ? q->call_fd : -1, .events = POLLIN};
		if (q->in_flight && (lg->features & (1ull << VIRTIO_F_EVENT_IDX)))
			__atomic_store_n(q->used_event, q->last_used, __ATOMIC_RELAXED);
	}
	/* Write used_event, then re-read used->idx (the device does the
	 * reverse): a completion in between must not be slept through. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (lg_used_pending(lg))
		return 0;
	if (lg->opt->halt_poll_ns) {
		uint64_t start = now_ns();

		lg->halt_polls++;
		do {
			if (lg_used_pending(lg)) {
				lg->halt_polls_caught++;
				return 0;
			}
			__builtin_ia32_pause();
		} while (now_ns() - start < lg->opt->halt_poll_ns);
	}
	for (;;) {
		/* poll, then read: a back-end may make the shared file
		 * description O_NONBLOCK (qemu-storage-daemon does), so read()
		 * alone would spin. */
		lg->wakeups++;
		if (poll(pfd, lg->opt->queues, -1) < 0) {
			if (errno != EINTR)
				return -errno;
			return 0; /* the watchdog's tick */
		}
		for (unsigned i = 0; i < lg->opt->queues; i++)
			if ((pfd[i].revents & POLLIN) &&
			    read(pfd[i].fd, &value, sizeof(value)) < 0 && errno != EAGAIN &&
			    errno != EINTR)
				return -errno;
		/* Only a caught spin's stale signal: nothing new, sleep again. */
		if (!lg->opt->halt_poll_ns || lg_used_pending(lg))
			return 0;
	}
}

/* In --poll mode the device need not signal at all: keep used_event far
 * ahead (EVENT_IDX) or set VIRTQ_AVAIL_F_NO_INTERRUPT. */
static void lg_suppress_interrupts(struct loadgen *lg)
{
	for (unsigned i = 0; i < lg->opt->queues; i++) {
		struct lg_queue *q = &lg->queues[i];

		if (lg->features & (1ull << VIRTIO_F_EVENT_IDX))
			__atomic_store_n(q->used_event, (uint16_t)(q->last_used + 0x7fff),
					 __ATOMIC_RELAXED);
		else
			q->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	}
}

static void lg_add_pid(struct loadgen *lg, int pid)
{
	for (unsigned i = 0; i < lg->nr_pids; i++)
		if (lg->pids[i] == pid)
			return; /* named twice, or a child also named */
	if (lg->nr_pids < LG_MAX_CPU_PIDS)
		lg->pids[lg->nr_pids++] = pid;
}

/* The --cpu-pid processes and their descendants, as they are when the
 * measured phase starts (a sandboxed back-end forks its server only after
 * it listens, so a script cannot name it early enough).  At most
 * LG_MAX_CPU_PIDS. */
static void lg_collect_pids(struct loadgen *lg)
{
	lg->nr_pids = 0;
	for (unsigned i = 0; i < lg->opt->nr_cpu_pids; i++)
		lg_add_pid(lg, lg->opt->cpu_pids[i]);
	/* breadth first: each process's children go to the end of the list */
	for (unsigned i = 0; i < lg->nr_pids; i++) {
		char path[64], line[512];
		struct dirent *d;
		DIR *dir;

		snprintf(path, sizeof(path), "/proc/%d/task", lg->pids[i]);
		dir = opendir(path);
		if (!dir)
			continue;
		while ((d = readdir(dir)) && lg->nr_pids < LG_MAX_CPU_PIDS) {
			char children[400];
			FILE *f;

			if (d->d_name[0] == '.')
				continue;
			snprintf(children, sizeof(children), "%s/%s/children", path, d->d_name);
			f = fopen(children, "r");
			if (!f)
				continue;
			if (fgets(line, sizeof(line), f)) {
				char *save = NULL;

				for (char *t = strtok_r(line, " \n", &save);
				     t && lg->nr_pids < LG_MAX_CPU_PIDS;
				     t = strtok_r(NULL, " \n", &save))
					lg->pids[lg->nr_pids++] = (int)strtol(t, NULL, 10);
			}
			fclose(f);
		}
		closedir(dir);
	}
}

/* CPU time of lg->pids, in ns: the sum of their live threads' run time,
 * /proc/PID/task/TID/schedstat's first field (exact, where
 * /proc/PID/stat's utime + stime are sampled at the tick).  A thread that
 * exits inside the measured phase takes its time with it: the back-ends'
 * queue threads live as long as the connection. */
static uint64_t lg_pids_cpu_ns(const struct loadgen *lg)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < lg->nr_pids; i++) {
		char path[64];
		struct dirent *d;
		DIR *dir;

		snprintf(path, sizeof(path), "/proc/%d/task", lg->pids[i]);
		dir = opendir(path);
		if (!dir)
			continue;
		while ((d = readdir(dir))) {
			unsigned long long ns;
			char stat[400];
			FILE *f;

			if (d->d_name[0] == '.')
				continue;
			snprintf(stat, sizeof(stat), "%s/%s/schedstat", path, d->d_name);
			f = fopen(stat, "r");
			if (!f)
				continue;
			if (fscanf(f, "%llu", &ns) == 1)
				sum += ns;
			fclose(f);
		}
		closedir(dir);
	}
	return sum;
}

static uint64_t lg_self_cpu_ns(struct rusage *ru)
{
	getrusage(RUSAGE_SELF, ru);
	return (uint64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000000ull +
	       (uint64_t)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1000ull;
}

/* Warm-up, then the measured phase, then drain what is in flight. */
static int lg_run(struct loadgen *lg, double *elapsed)
{
	uint64_t start = now_ns();
	uint64_t measure_at = start + (uint64_t)(lg->opt->warmup * 1e9), end;
	struct rusage ru;
	int ret;

	for (unsigned i = 0; i < lg->opt->queues; i++) {
		for (unsigned slot = 0; slot < lg->opt->iodepth; slot++)
			lg_queue_request(lg, &lg->queues[i], slot);
		lg_publish_and_kick(lg, &lg->queues[i]);
	}
	for (;;) {
		uint64_t now;

		if (lg->opt->poll)
			lg_suppress_interrupts(lg);
		ret = lg_reap_all(lg, true);
		if (ret < 0)
			return ret;
		if (ret == 0) {
			ret = lg_wait(lg);
			if (ret < 0)
				return ret;
			continue;
		}
		now = now_ns();
		if (!lg->measuring && now >= measure_at) {
			lg->measuring = true;
			lg->ios = lg->reads = lg->writes = lg->kicks = lg->wakeups = 0;
			lg->halt_polls = lg->halt_polls_caught = 0;
			lg->samples.count = 0;
			lg->cpu.self_ns = lg_self_cpu_ns(&ru);
			lg->cpu.nvcsw = ru.ru_nvcsw;
			lg->cpu.nivcsw = ru.ru_nivcsw;
			lg_collect_pids(lg);
			lg->cpu.pid_ns = lg_pids_cpu_ns(lg);
			start = now;
		} else if (lg->measuring && now - start >= (uint64_t)(lg->opt->runtime * 1e9)) {
			break;
		}
	}
	end = now_ns();
	lg->cpu.self_ns = lg_self_cpu_ns(&ru) - lg->cpu.self_ns;
	lg->cpu.nvcsw = ru.ru_nvcsw - lg->cpu.nvcsw;
	lg->cpu.nivcsw = ru.ru_nivcsw - lg->cpu.nivcsw;
	lg->cpu.pid_ns = lg_pids_cpu_ns(lg) - lg->cpu.pid_ns;
	*elapsed = (double)(end - start) / 1e9;
	lg->measuring = false;
	for (;;) {
		unsigned in_flight = 0;

		for (unsigned i = 0; i < lg->opt->queues; i++)
			in_flight += lg->queues[i].in_flight;
		if (!in_flight)
			break;
		ret = lg_reap_all(lg, false);
		if (ret < 0)
			return ret;
		if (ret == 0 && (ret = lg_wait(lg)) < 0)
			return ret;
	}
	return 0;
}

/* ---- report --------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile, in microseconds. */
static double lg_percentile_us(const struct lg_samples *s, double pct)
{
	size_t rank;

	if (!s->count)
		return 0;
	rank = (size_t)(pct / 100.0 * (double)s->count + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > s->count)
		rank = s->count;
	return s->ns[rank - 1] / 1000.0;
}

static void lg_report(struct loadgen *lg, double elapsed)
{
	static const char *const names[] = {"randread", "randwrite", "randrw", "read", "write"};
	struct lg_samples *s = &lg->samples;
	double sum = 0, ios = lg->ios ? (double)lg->ios : 1;
	double load_us = (double)lg->cpu.self_ns / 1000.0 / ios;
	double server_us = (double)lg->cpu.pid_ns / 1000.0 / ios;

	qsort(s->ns, s->count, sizeof(*s->ns), cmp_u32);
	for (size_t i = 0; i < s->count; i++)
		sum += s->ns[i];
	printf("rw=%s bs=%u iodepth=%u queues=%u runtime_s=%.2f ios=%llu reads=%llu writes=%llu "
	       "iops=%.0f mib_s=%.1f mean_us=%.1f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
	       "max_us=%.1f kicks_per_io=%.3f sleeps_per_io=%.3f load_cpu_us_per_io=%.2f "
	       "load_csw_per_io=%.3f load_icsw_per_io=%.3f",
	       names[lg->opt->rw], lg->opt->bs, lg->opt->iodepth, lg->opt->queues, elapsed,
	       (unsigned long long)lg->ios, (unsigned long long)lg->reads,
	       (unsigned long long)lg->writes, (double)lg->ios / elapsed,
	       (double)lg->ios * lg->opt->bs / elapsed / (1 << 20),
	       s->count ? sum / (double)s->count / 1000.0 : 0, lg_percentile_us(s, 50),
	       lg_percentile_us(s, 99), lg_percentile_us(s, 99.9),
	       s->count ? s->ns[s->count - 1] / 1000.0 : 0, (double)lg->kicks / ios,
	       (double)lg->wakeups / ios, load_us, (double)lg->cpu.nvcsw / ios,
	       (double)lg->cpu.nivcsw / ios);
	/* --cpu-pid: the back-end's CPU per request, and requests per
	 * CPU-second of back-end and load generator together (what polling
	 * costs shows here, not in IOPS). */
	if (lg->opt->nr_cpu_pids)
		printf(" server_cpu_us_per_io=%.2f ios_per_cpu_s=%.0f", server_us,
		       1e6 / (load_us + server_us));
	printf(" all_ios=%llu errors=%llu event_idx=%d poll=%d halt_poll_us=%u",
	       (unsigned long long)lg->all_ios, (unsigned long long)lg->errors,
	       !!(lg->features & (1ull << VIRTIO_F_EVENT_IDX)), lg->opt->poll,
	       lg->opt->halt_poll_ns / 1000u);
	/* How often the halt-poll spin caught the completion, per spin. */
	if (lg->opt->halt_poll_ns)
		printf(" halt_polls_per_io=%.3f halt_poll_caught=%.3f",
		       (double)lg->halt_polls / ios,
		       lg->halt_polls ? (double)lg->halt_polls_caught / (double)lg->halt_polls : 0);
	printf("\n");
}

/* ---- main ----------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: blk-loadgen --socket PATH [--rw MODE] [--rwmixread PCT]\n"
	    "                   [--iodepth N] [--queues N] [--bs BYTES] [--runtime S] [--warmup "
	    "S]\n"
	    "                   [--mem MIB] [--queue-size N] [--poll | --halt-poll-us N]\n"
	    "                   [--no-event-idx] [--seed N]\n"
	    "                   [--cpu-pid PID]...\n"
	    "A virtio-blk driver in a fake guest: drives the virtqueues of a vhost-user-blk\n"
	    "back-end (isola-blk, qemu-storage-daemon) at a fixed queue depth from one thread\n"
	    "and prints IOPS, throughput, submit-to-completion latency percentiles and CPU\n"
	    "time per request on one line.\n"
	    "  --socket PATH      the back-end's vhost-user socket\n"
	    "  --rw MODE          randread (default), randwrite, randrw, or sequential\n"
	    "                     read or write (each queue streams through its share)\n"
	    "  --rwmixread PCT    percent reads for randrw (default 70)\n"
	    "  --iodepth N        requests kept in flight per queue, 1 to %u (default 1)\n"
	    "  --queues N         virtqueues driven, 1 to %u (default 1; VIRTIO_BLK_F_MQ)\n"
	    "  --cpu-pid PID      report this process's CPU time (all threads, and its\n"
	    "                     descendants') per request over the measured phase, as\n"
	    "                     server_cpu_us_per_io (repeatable, up to 8)\n"
	    "  --bs BYTES         request size, a multiple of 4096 up to 1 MiB (default 4096)\n"
	    "  --runtime S        measured seconds (default 10)\n"
	    "  --warmup S         unmeasured seconds first (default 1)\n"
	    "  --mem MIB          guest memory, a memfd (default 256)\n"
	    "  --queue-size N     virtqueue size, a power of two up to %u (default 256)\n"
	    "  --poll             spin on the used ring instead of sleeping on the call fd\n"
	    "                     (interrupts off, as a guest's polled queues)\n"
	    "  --halt-poll-us N   spin up to N us on the used ring before sleeping, with\n"
	    "                     interrupts on, as KVM polls a halted vCPU (its\n"
	    "                     halt_poll_ns, 200 us by default); default 0, up to %u\n"
	    "  --no-event-idx     do not negotiate VIRTIO_F_EVENT_IDX\n"
	    "  --seed N           random seed (default 1)\n",
	    LG_MAX_SLOTS, LG_MAX_QUEUES, LG_MAX_QUEUE_SIZE, LG_MAX_HALT_POLL_US);
}

/* One option into o; -1 if its value is unknown. */
static int parse_option(int opt, const char *arg, struct lg_options *o)
{
	static const char *const modes[] = {"randread", "randwrite", "randrw", "read", "write"};

	switch (opt) {
	case 's':
		o->socket = arg;
		return 0;
	case 'm':
		o->rwmixread = (unsigned)strtoul(arg, NULL, 10);
		return 0;
	case 'd':
		o->iodepth = (unsigned)strtoul(arg, NULL, 10);
		return 0;
	case 'b':
		o->bs = (unsigned)strtoul(arg, NULL, 10);
		return 0;
	case 't':
		o->runtime = strtod(arg, NULL);
		return 0;
	case 'w':
		o->warmup = strtod(arg, NULL);
		return 0;
	case 'M':
		o->mem_bytes = strtoull(arg, NULL, 10) << 20;
		return 0;
	case 'q':
		o->queue_size = (unsigned)strtoul(arg, NULL, 10);
		return 0;
	case 'p':
		o->poll = true;
		return 0;
	case 'H': {
		char *end;
		unsigned long us = strtoul(arg, &end, 10);

		if (*arg < '0' || *arg > '9' || *end || us > LG_MAX_HALT_POLL_US)
			return -1;
		o->halt_poll_ns = (uint32_t)us * 1000u;
		return 0;
	}
	case 'e':
		o->event_idx = false;
		return 0;
	case 'S':
		o->seed = strtoull(arg, NULL, 10);
		return 0;
	case 'Q':
		o->queues = (unsigned)strtoul(arg, NULL, 10);
		return 0;
	case 'P':
		if (o->nr_cpu_pids >= sizeof(o->cpu_pids) / sizeof(o->cpu_pids[0]))
			return -1;
		o->cpu_pids[o->nr_cpu_pids++] = (int)strtol(arg, NULL, 10);
		return 0;
	case 'r':
		for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
			if (!strcmp(arg, modes[i])) {
				o->rw = (enum lg_rw)i;
				return 0;
			}
		return -1;
	default:
		return -1;
	}
}

static bool options_valid(const struct lg_options *o)
{
	bool pow2 = o->queue_size && !(o->queue_size & (o->queue_size - 1));

	return !(o->poll && o->halt_poll_ns) && o->rwmixread <= 100 && o->runtime > 0 &&
	       o->warmup >= 0 && pow2 && o->queue_size <= LG_MAX_QUEUE_SIZE && o->iodepth >= 1 &&
	       o->iodepth <= o->queue_size / LG_DESCS_PER_REQ && o->bs && o->bs % 4096 == 0 &&
	       o->bs <= (1u << 20) && o->queues >= 1 && o->queues <= LG_MAX_QUEUES &&
	       LG_DATA_GPA + (uint64_t)o->queues * LG_MAX_SLOTS * o->bs <= o->mem_bytes;
}

/* 0 to run, 1 done (--help), -1 bad usage. */
static int parse_args(int argc, char **argv, struct lg_options *o)
{
	static const struct option options[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"rw", required_argument, NULL, 'r'},
	    {"rwmixread", required_argument, NULL, 'm'},
	    {"iodepth", required_argument, NULL, 'd'},
	    {"bs", required_argument, NULL, 'b'},
	    {"runtime", required_argument, NULL, 't'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"mem", required_argument, NULL, 'M'},
	    {"queue-size", required_argument, NULL, 'q'},
	    {"poll", no_argument, NULL, 'p'},
	    {"halt-poll-us", required_argument, NULL, 'H'},
	    {"no-event-idx", no_argument, NULL, 'e'},
	    {"seed", required_argument, NULL, 'S'},
	    {"queues", required_argument, NULL, 'Q'},
	    {"cpu-pid", required_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int opt;

	*o = (struct lg_options){.rw = LG_RANDREAD,
				 .rwmixread = 70,
				 .iodepth = 1,
				 .queues = 1,
				 .bs = 4096,
				 .queue_size = 256,
				 .runtime = 10,
				 .warmup = 1,
				 .mem_bytes = 256ull << 20,
				 .event_idx = true,
				 .seed = 1};
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 1;
		}
		if (parse_option(opt, optarg, o)) {
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc || !o->socket) {
		usage(stderr);
		return -1;
	}
	if (!options_valid(o)) {
		fprintf(stderr, "blk-loadgen: an option is out of range (see --help)\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct lg_options opt;
	static struct loadgen lg;
	struct sigaction sa = {.sa_handler = lg_watchdog}; /* no SA_RESTART: read() returns */
	struct itimerval tick = {{1, 0}, {1, 0}};
	double elapsed;
	int ret;

	ret = parse_args(argc, argv, &opt);
	if (ret)
		return ret > 0 ? 0 : 2;
	lg = (struct loadgen){
	    .opt = &opt, .sock = -1, .memfd = -1, .rng = opt.seed * 0x9e3779b97f4a7c15ull | 1};
	for (unsigned i = 0; i < LG_MAX_QUEUES; i++)
		lg.queues[i].kick_fd = lg.queues[i].call_fd = -1;
	signal(SIGPIPE, SIG_IGN);
	if (loadgen_connect(&lg) || loadgen_negotiate(&lg) || loadgen_setup_memory(&lg) ||
	    loadgen_start_queues(&lg))
		return 1;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &tick, NULL);
	ret = lg_run(&lg, &elapsed);
	if (ret) {
		fprintf(stderr, "blk-loadgen: run: %s\n", strerror(-ret));
		return 1;
	}
	setitimer(ITIMER_REAL, &(struct itimerval){0}, NULL);
	loadgen_stop_queues(&lg);
	lg_report(&lg, elapsed);
	if (lg.errors) {
		fprintf(stderr, "blk-loadgen: %llu requests failed (status not OK)\n",
			(unsigned long long)lg.errors);
		return 1;
	}
	return 0;
}

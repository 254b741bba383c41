/* Unit tests for uring.c: queued non-blocking recv / send / sendmsg on real
 * sockets come back from one uring_run with the syscall's result and the
 * caller's tag, without ever waiting.
 *
 * Every operation must complete during the submission: when one does not,
 * uring_run reports it as -EAGAIN and switches the ring off (u->on false).
 * So each test also checks that the ring is still on after its runs: that is
 * what tells "completed at once with -EAGAIN" from "waited and was given up".
 *
 * Where the machine has no io_uring (an old kernel, a seccomp profile,
 * kernel.io_uring_disabled), uring_init fails and every test calls cmocka's
 * skip(): there is nothing of uring.c to test there (forkd then uses plain
 * system calls, which the integration tests cover). ring_or_skip decides. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "uring.h"

#define MAX_RESULTS 16

/* What uring_run handed to done, in the order it came. */
struct results {
	unsigned n;
	uint64_t tag[MAX_RESULTS];
	int res[MAX_RESULTS];
};

static void collect(void *ctx, uint64_t tag, int res)
{
	struct results *r = ctx;

	assert_true(r->n < MAX_RESULTS);
	r->tag[r->n] = tag;
	r->res[r->n] = res;
	r->n++;
}

/* The result of the operation queued with tag; fails unless exactly one came. */
static int result_of(const struct results *r, uint64_t tag)
{
	int found = 0, res = 0;

	for (unsigned i = 0; i < r->n; i++) {
		if (r->tag[i] == tag) {
			found++;
			res = r->res[i];
		}
	}
	assert_int_equal(found, 1);
	return res;
}

/* A ring of room operations, or the test is skipped (see the top). The skip
 * depends on the kernel alone: a plain ring it refuses means no io_uring
 * here. A kernel that gives one but that uring_init still rejects fails the
 * test instead, so a broken uring_init cannot pass as "unavailable". */
static void ring_or_skip(struct uring *u, unsigned room)
{
	struct io_uring probe;
	int rc = io_uring_queue_init(room, &probe, 0);

	if (rc < 0) {
		print_message("skipped: io_uring unavailable here (%s)\n", strerror(-rc));
		skip();
	}
	io_uring_queue_exit(&probe);
	rc = uring_init(u, room);
	if (rc < 0)
		print_message("uring_init: %s\n", strerror(-rc));
	assert_int_equal(rc, 0);
	assert_true(u->on);
}

/* Runs what is queued; every result must have come and the ring stay on. */
static void run(struct uring *u, struct results *r, unsigned expect)
{
	memset(r, 0, sizeof *r);
	assert_int_equal(uring_run(u, collect, r), (int)expect);
	assert_int_equal(r->n, expect);
	assert_true(u->on); /* nothing waited: see the top */
}

/* sv[0] and sv[1]: a connected non-blocking pair (AF_UNIX or loopback TCP). */
typedef void pair_fn(int sv[2]);

static void unix_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static void tcp_pair(int sv[2])
{
	struct sockaddr_in a;
	socklen_t alen = sizeof a;
	int one = 1;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(l >= 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sv[0] >= 0);
	assert_int_equal(connect(sv[0], (struct sockaddr *)&a, sizeof a), 0);
	sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(sv[1] >= 0);
	close(l);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK), 0);
		setsockopt(sv[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
}

static void close_pair(int sv[2])
{
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
}

/* Reads everything fd holds now (non-blocking) into out (at most cap bytes). */
static size_t drain(int fd, char *out, size_t cap)
{
	size_t got = 0;

	for (;;) {
		char tmp[65536];
		ssize_t n = read(fd, tmp, sizeof tmp);
		if (n <= 0) {
			assert_true(n == 0 || errno == EAGAIN);
			return got;
		}
		assert_true(got + (size_t)n <= cap);
		memcpy(out + got, tmp, (size_t)n);
		got += (size_t)n;
	}
}

static void test_recv_returns_bytes_and_tag(void **state)
{
	static pair_fn *const pairs[] = {unix_pair, tcp_pair};
	const uint64_t tag = 0xfedcba9876543210ULL; /* all 64 bits come back */
	(void)state;

	for (size_t p = 0; p < 2; p++) {
		struct uring u;
		struct results r;
		char buf[64];
		int sv[2];

		ring_or_skip(&u, 8);
		pairs[p](sv);
		assert_int_equal(write(sv[1], "hello, ring", 11), 11);
		/* TCP over loopback: the bytes are queued by the time write returns. */
		memset(buf, 0, sizeof buf);
		assert_true(uring_recv(&u, sv[0], buf, sizeof buf, tag));
		run(&u, &r, 1);
		assert_true(r.tag[0] == tag);
		assert_int_equal(r.res[0], 11);
		assert_memory_equal(buf, "hello, ring", 11);
		close_pair(sv);
		uring_free(&u);
		assert_false(u.on);
	}
}

static void test_recv_on_empty_socket_is_eagain_at_once(void **state)
{
	struct uring u;
	struct results r;
	char buf[16];
	int sv[2];
	(void)state;

	ring_or_skip(&u, 8);
	unix_pair(sv);
	assert_true(uring_recv(&u, sv[0], buf, sizeof buf, 7));
	/* Had the recv waited for data, uring_run would hang here or (it does not
	 * wait for results) give it up, switching the ring off: run() checks. */
	run(&u, &r, 1);
	assert_true(r.tag[0] == 7);
	assert_int_equal(r.res[0], -EAGAIN);
	/* The ring is usable again, and the socket was left intact. */
	assert_int_equal(write(sv[1], "z", 1), 1);
	assert_true(uring_recv(&u, sv[0], buf, sizeof buf, 8));
	run(&u, &r, 1);
	assert_true(r.tag[0] == 8);
	assert_int_equal(r.res[0], 1);
	assert_int_equal(buf[0], 'z');
	close_pair(sv);
	uring_free(&u);
}

static void test_recv_at_end_of_stream_is_zero(void **state)
{
	struct uring u;
	struct results r;
	char buf[16];
	int sv[2];
	(void)state;

	ring_or_skip(&u, 8);
	unix_pair(sv);
	close(sv[1]);
	sv[1] = -1;
	assert_true(uring_recv(&u, sv[0], buf, sizeof buf, 3));
	run(&u, &r, 1);
	assert_int_equal(result_of(&r, 3), 0);
	close_pair(sv);
	uring_free(&u);
}

static void test_send_and_sendmsg_deliver_in_order(void **state)
{
	static pair_fn *const pairs[] = {unix_pair, tcp_pair};
	(void)state;

	for (size_t p = 0; p < 2; p++) {
		struct uring u;
		struct results r;
		struct iovec iov[2] = {{"defg", 4}, {"hij", 3}};
		struct msghdr msg;
		char got[32];
		int sv[2];

		ring_or_skip(&u, 8);
		pairs[p](sv);
		memset(&msg, 0, sizeof msg);
		msg.msg_iov = iov;
		msg.msg_iovlen = 2;
		assert_true(uring_send(&u, sv[0], "abc", 3, 1));
		assert_true(uring_sendmsg(&u, sv[0], &msg, 2));
		assert_true(uring_send(&u, sv[0], "kl", 2, 3));
		run(&u, &r, 3);
		assert_int_equal(result_of(&r, 1), 3);
		assert_int_equal(result_of(&r, 2), 7);
		assert_int_equal(result_of(&r, 3), 2);
		assert_int_equal(drain(sv[1], got, sizeof got), 12);
		assert_memory_equal(got, "abcdefghijkl", 12);
		close_pair(sv);
		uring_free(&u);
	}
}

static void test_many_operations_in_one_run(void **state)
{
	enum { PAIRS = 5 };
	struct uring u;
	struct results r;
	int sv[PAIRS][2];
	char rbuf[3][32];
	struct iovec iov[2] = {{"sendmsg ", 8}, {"two", 3}};
	struct msghdr msg;
	char got[32];
	/* Tags as a caller would make them: unordered, sparse, full width. */
	const uint64_t t_data = 0x100000001ULL, t_empty = 42, t_send = UINT64_MAX,
		       t_eof = 0, t_msg = 0x8000000000000000ULL;
	(void)state;

	ring_or_skip(&u, 16);
	for (int i = 0; i < PAIRS; i++)
		unix_pair(sv[i]);
	assert_int_equal(write(sv[0][1], "data", 4), 4);
	close(sv[3][1]);
	sv[3][1] = -1;
	memset(&msg, 0, sizeof msg);
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;

	/* Twice: the ring is reused after a run, and tags do not leak between runs. */
	for (int round = 0; round < 2; round++) {
		if (round)
			assert_int_equal(write(sv[0][1], "more", 4), 4);
		assert_true(uring_send(&u, sv[2][0], "plain", 5, t_send));
		assert_true(uring_recv(&u, sv[0][0], rbuf[0], sizeof rbuf[0], t_data));
		assert_true(uring_recv(&u, sv[1][0], rbuf[1], sizeof rbuf[1], t_empty));
		assert_true(uring_sendmsg(&u, sv[4][0], &msg, t_msg));
		assert_true(uring_recv(&u, sv[3][0], rbuf[2], sizeof rbuf[2], t_eof));
		run(&u, &r, 5);
		assert_int_equal(result_of(&r, t_data), 4);
		assert_memory_equal(rbuf[0], round ? "more" : "data", 4);
		assert_int_equal(result_of(&r, t_empty), -EAGAIN);
		assert_int_equal(result_of(&r, t_send), 5);
		assert_int_equal(result_of(&r, t_eof), 0);
		assert_int_equal(result_of(&r, t_msg), 11);
		assert_int_equal(drain(sv[2][1], got, sizeof got), 5);
		assert_memory_equal(got, "plain", 5);
		assert_int_equal(drain(sv[4][1], got, sizeof got), 11);
		assert_memory_equal(got, "sendmsg two", 11);
	}
	/* Nothing queued: nothing to hand out. */
	memset(&r, 0, sizeof r);
	assert_int_equal(uring_run(&u, collect, &r), 0);
	assert_int_equal(r.n, 0);
	for (int i = 0; i < PAIRS; i++)
		close_pair(sv[i]);
	uring_free(&u);
}

/* A power of two, and sizes the kernel rounds up to one. */
static const unsigned rooms[] = {4, 3, 5};

static void test_queuing_beyond_room_fails(void **state)
{
	(void)state;

	for (size_t k = 0; k < sizeof rooms / sizeof rooms[0]; k++) {
		const unsigned room = rooms[k];
		struct uring u;
		struct results r;
		struct msghdr msg;
		struct iovec iov = {"m", 1};
		char buf[8][4];
		int sv[2];

		ring_or_skip(&u, room);
		unix_pair(sv);
		memset(&msg, 0, sizeof msg);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		/* Twice: after a run the whole room is free again. */
		for (int round = 0; round < 2; round++) {
			for (unsigned i = 0; i < room; i++)
				assert_true(uring_recv(&u, sv[0], buf[i], sizeof buf[i], i));
			/* Full: no kind of operation is taken, and none is lost. */
			assert_false(uring_recv(&u, sv[0], buf[0], sizeof buf[0], 100));
			assert_false(uring_send(&u, sv[1], "x", 1, 101));
			assert_false(uring_sendmsg(&u, sv[1], &msg, 102));
			run(&u, &r, room);
			for (unsigned i = 0; i < room; i++)
				assert_int_equal(result_of(&r, i), -EAGAIN);
		}
		close_pair(sv);
		uring_free(&u);
	}
}

/* A ring takes exactly room operations, and the whole room again after a run. */
static void test_room_is_whole_again_after_a_run(void **state)
{
	(void)state;

	for (size_t k = 0; k < sizeof rooms / sizeof rooms[0]; k++) {
		const unsigned room = rooms[k];
		struct uring u;
		struct results r;
		char buf[8][4];
		int sv[2];

		ring_or_skip(&u, room);
		unix_pair(sv);
		for (int round = 0; round < 2; round++) {
			unsigned queued = 0;
			while (queued < 8 &&
			       uring_recv(&u, sv[0], buf[queued], sizeof buf[queued], queued))
				queued++;
			assert_int_equal(queued, room);
			run(&u, &r, queued);
		}
		close_pair(sv);
		uring_free(&u);
	}
}

/* Waits (bounded) until fd reports that its peer is gone. */
static void wait_hangup(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_true(p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLIN));
}

static void test_send_to_closed_peer_is_an_error_without_sigpipe(void **state)
{
	static pair_fn *const pairs[] = {unix_pair, tcp_pair};
	struct sigaction dfl, old;
	(void)state;

	/* SIGPIPE at its default action: a send that raised it would kill the
	 * test. (Current kernels add MSG_NOSIGNAL to io_uring sends themselves;
	 * uring.c asks for it anyway, for the kernels that do not.) */
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
	for (size_t p = 0; p < 2; p++) {
		struct uring u;
		struct results r;
		struct iovec iov[2] = {{"ab", 2}, {"cd", 2}};
		struct msghdr msg;
		int sv[2];

		ring_or_skip(&u, 8);
		pairs[p](sv);
		if (pairs[p] == tcp_pair) {
			/* A reset (unread data, or linger 0) rather than an orderly close:
			 * then the very first send fails. */
			struct linger lg = {1, 0};
			assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
		}
		close(sv[1]);
		sv[1] = -1;
		wait_hangup(sv[0]);
		memset(&msg, 0, sizeof msg);
		msg.msg_iov = iov;
		msg.msg_iovlen = 2;
		assert_true(uring_send(&u, sv[0], "x", 1, 1));
		assert_true(uring_sendmsg(&u, sv[0], &msg, 2));
		run(&u, &r, 2);
		for (uint64_t t = 1; t <= 2; t++) {
			int res = result_of(&r, t);
			assert_true(res == -EPIPE || res == -ECONNRESET);
		}
		close_pair(sv);
		uring_free(&u);
	}
	assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

static void test_large_send_into_small_buffer_never_blocks(void **state)
{
	static pair_fn *const pairs[] = {unix_pair, tcp_pair};
	enum { BIG = 1 << 20, TRIES = 4096 };
	static char data[BIG], got[BIG];
	(void)state;

	for (size_t i = 0; i < BIG; i++)
		data[i] = (char)(i * 7 + i / 251);
	for (size_t p = 0; p < 2; p++) {
		struct uring u;
		struct results r;
		int sv[2];
		int small = 4096;
		size_t sent = 0;
		bool full = false;

		ring_or_skip(&u, 8);
		pairs[p](sv);
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
		/* Nobody reads: each send takes what fits, or nothing (-EAGAIN) once
		 * the buffers are full; none waits for room. Bounded: 1 MiB never fits. */
		for (int i = 0; i < TRIES && !full; i++) {
			size_t len = BIG - sent;
			assert_true(uring_send(&u, sv[0], data + sent, len, 9));
			run(&u, &r, 1);
			int res = result_of(&r, 9);
			if (res == -EAGAIN) {
				full = true;
			} else {
				assert_true(res > 0);
				assert_true((size_t)res < len); /* partial */
				sent += (size_t)res;
			}
		}
		assert_true(full);
		assert_true(sent < BIG);
		/* What was reported sent is exactly what arrives. */
		size_t n = 0;
		for (int i = 0; i < TRIES && n < sent; i++) {
			struct pollfd pf = {.fd = sv[1], .events = POLLIN};
			assert_int_equal(poll(&pf, 1, 10000), 1);
			n += drain(sv[1], got + n, BIG - n);
		}
		assert_int_equal(n, sent);
		if (sent)
			assert_memory_equal(got, data, sent);
		close_pair(sv);
		uring_free(&u);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recv_returns_bytes_and_tag),
		cmocka_unit_test(test_recv_on_empty_socket_is_eagain_at_once),
		cmocka_unit_test(test_recv_at_end_of_stream_is_zero),
		cmocka_unit_test(test_send_and_sendmsg_deliver_in_order),
		cmocka_unit_test(test_many_operations_in_one_run),
		cmocka_unit_test(test_queuing_beyond_room_fails),
		cmocka_unit_test(test_room_is_whole_again_after_a_run),
		cmocka_unit_test(test_send_to_closed_peer_is_an_error_without_sigpipe),
		cmocka_unit_test(test_large_send_into_small_buffer_never_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

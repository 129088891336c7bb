/*
 * cell_ring: single-producer single-consumer rings of variable-length frames in a shared
 * memory segment, futex sleep/wake, and the Unix-socket handshake primitives of Cell's
 * shared-memory transport. See docs/ring.md for the layout and the memory ordering.
 *
 * Conventions: every symbol starts with cell_ring_; int results are 0 or a count on success
 * and -errno on failure.
 */
#ifndef CELL_RING_H
#define CELL_RING_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the segment layout and of this API. */
#define CELL_RING_VERSION 2
/* "CRNG", little-endian, at offset 0 of every segment. */
#define CELL_RING_MAGIC 0x474e5243u

/* Byte offsets in a segment; every group sits on its own 64-byte cache line. */
#define CELL_RING_OFF_MAGIC 0
#define CELL_RING_OFF_VERSION 4
#define CELL_RING_OFF_CAPACITY 8   /* bytes of data in each ring, a power of two */
#define CELL_RING_OFF_CREATOR 12   /* pid of the process that created the segment */
/* Per side (0 = client, 1 = server): the futex word it sleeps on, and its closed flag. */
#define CELL_RING_OFF_SLEEP(side) (64 + 64 * (side))
#define CELL_RING_OFF_CLOSED(side) (64 + 64 * (side) + 4)
/* Per ring (0 = client to server, 1 = server to client): the producer's tail, the consumer's head. */
#define CELL_RING_OFF_TAIL(ring) (192 + 128 * (ring))
#define CELL_RING_OFF_HEAD(ring) (256 + 128 * (ring))
#define CELL_RING_HEADER_BYTES 512
#define CELL_RING_OFF_DATA(capacity, ring) (CELL_RING_HEADER_BYTES + (uint64_t)(capacity) * (ring))

/*
 * Record header flags: a record is a little-endian u32 header (its length, CELL_RING_PRESENT and
 * maybe CELL_RING_MORE), then its bytes, padded to 8. A producer zeroes the header slot after a
 * record before it stores the record's header (release), so a consumer may poll the header at
 * its position instead of the tail: non-zero means written in this lap. It therefore keeps
 * CELL_RING_RESERVE bytes free past every record.
 */
#define CELL_RING_MORE 0x80000000u    /* more records of the same message follow */
#define CELL_RING_PRESENT 0x40000000u /* set in every record header */
#define CELL_RING_LENGTH 0x3fffffffu  /* the length bits of a header */
#define CELL_RING_PAD 0xffffffffu     /* skip to the start of the ring */
#define CELL_RING_RESERVE 8u
#define CELL_RING_MIN_CAPACITY 4096u
#define CELL_RING_MAX_CAPACITY (1u << 30)

/* Largest record body a ring of `capacity` bytes carries: capacity / 4. */
uint32_t cell_ring_max_record(uint32_t capacity);
/* Bytes of a segment holding two rings of `capacity` bytes each. */
uint64_t cell_ring_segment_bytes(uint32_t capacity);
/* Writes the segment header (magic, version, capacity, creator) on zeroed memory. */
int cell_ring_init(void *segment, uint32_t capacity);
/* Checks the header of a mapped segment of `bytes` bytes: returns its capacity or -EPROTO. */
int cell_ring_check(const void *segment, uint64_t bytes);

/*
 * Copies `len` bytes from `src` to `offset` in a segment of `bytes` bytes: 0, or -EINVAL (nothing
 * copied) when they do not lie inside it. JavaScript writers stage a batch of small records and
 * copy it with one call: a C copy keeps many cache-line transfers in flight, where per-record
 * copies from JavaScript wait on them one by one (see docs/ring.md). On x86-64, copies of 256
 * bytes or more write their whole cache lines with non-temporal stores (no read for
 * ownership), then fence them before the caller's next store.
 */
int cell_ring_copy(void *segment, uint32_t bytes, uint32_t offset, const void *src, uint32_t len);
/*
 * Appends one record to `ring`. `flags` is 0 or CELL_RING_MORE. Returns 0, -EAGAIN when the
 * ring is full, -EMSGSIZE when `len` exceeds cell_ring_max_record, -EPROTO when the consumer's
 * head is impossible (corrupt segment). Only one thread may produce on a ring.
 */
int cell_ring_push(void *segment, int ring, const void *data, uint32_t len, uint32_t flags);
/*
 * Takes the next record of `ring` into `buf`. Returns its length, -EAGAIN when the ring is
 * empty, -ENOBUFS when `cap` is too small (nothing is consumed), -EPROTO when the producer wrote
 * an impossible tail or record length (the ring must be abandoned). `*flags` receives
 * CELL_RING_MORE or 0. Never reads outside the ring, whatever the segment holds.
 */
int cell_ring_pop(void *segment, int ring, void *buf, uint32_t cap, uint32_t *flags);

/* Shared memory: names are POSIX shm names ("/cell-ring-..."). */
/* Creates a segment of `bytes` bytes with mode 0600 (O_EXCL); returns its fd. */
int cell_ring_shm_create(const char *name, uint64_t bytes);
/* Opens a segment; refuses one owned by another user or readable by others. Returns its fd. */
int cell_ring_shm_open(const char *name);
/* Size of the object behind `fd` in bytes, or -errno. */
int64_t cell_ring_fd_size(int fd);
/* Maps `bytes` bytes of `fd` read-write and shared; NULL on failure (see cell_ring_errno). */
void *cell_ring_map(int fd, uint64_t bytes);
int cell_ring_unmap(void *addr, uint64_t bytes);
int cell_ring_shm_unlink(const char *name);
/*
 * Unlinks segments "/dev/shm/<prefix><pid>-..." whose creating process `pid` no longer exists;
 * returns how many.
 */
int cell_ring_collect_stale(const char *prefix);
/* errno of the last failed call of this thread that returned a pointer. */
int cell_ring_errno(void);

/*
 * Sleeps while *word == expected and *watch == 0, for at most `timeout_ms` (-1: forever).
 * Every 50 ms it checks the handshake socket `fd` (unless fd < 0) and `watch` again (unless
 * NULL). Returns 1 when woken, the word changed or *watch is non-zero, 0 on timeout, -EPIPE
 * when the peer closed the socket or died.
 *
 * `watch` is the header slot the sleeper's reader waits at: a writer whose publication is still
 * in its store buffer while it checks the sleep word (no store-load barrier between the two, as
 * with plain-store publishing) may miss the sleeper; the sleeper then sees the record here
 * before it sleeps, or within 50 ms.
 */
int cell_ring_wait(int32_t *word, int32_t expected, int fd, int32_t timeout_ms,
                   const uint32_t *watch);
/* Wakes every process sleeping on `word`; returns how many. */
int cell_ring_wake(int32_t *word);

/* Handshake sockets (Unix stream sockets, close-on-exec). */
/* Binds and listens at `path` (mode 0600); returns the listening fd. */
int cell_ring_listen(const char *path);
/* Accepts a connection within `timeout_ms`: its fd, -ETIMEDOUT, or -errno. */
int cell_ring_accept(int fd, int32_t timeout_ms);
/* Connects to `path`; returns the fd. */
int cell_ring_connect(const char *path);
/* The peer's credentials: out[0] = pid, out[1] = uid, out[2] = gid (SO_PEERCRED). */
int cell_ring_peer_cred(int fd, uint32_t *out);
/* Reads up to `len` bytes within `timeout_ms`: the count (0 at end of stream) or -errno. */
int cell_ring_read(int fd, uint8_t *buf, uint32_t len, int32_t timeout_ms);
/* Writes all `len` bytes within `timeout_ms`: `len` or -errno. */
int cell_ring_write(int fd, const uint8_t *buf, uint32_t len, int32_t timeout_ms);
/* 1 when the peer has closed the socket or sent data after the handshake, else 0. */
int cell_ring_peer_gone(int fd);
/* Shuts a socket down, waking a thread blocked in accept or read on it. */
int cell_ring_shutdown(int fd);
int cell_ring_close(int fd);
/* The effective uid of this process. */
uint32_t cell_ring_euid(void);
/* CELL_RING_VERSION. */
int cell_ring_version(void);

#ifdef __cplusplus
}
#endif
#endif

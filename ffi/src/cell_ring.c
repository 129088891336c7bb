/* cell_ring: see include/cell_ring.h and docs/ring.md. */
#define _GNU_SOURCE
#include "cell_ring.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) && defined(__SSE2__)
#include <emmintrin.h>
#endif

static _Thread_local int last_errno;

static inline _Atomic uint32_t *word_at(void *segment, uint32_t offset) {
  return (_Atomic uint32_t *)((uint8_t *)segment + offset);
}
static inline uint32_t load_u32(const void *segment, uint32_t offset) {
  uint32_t v;
  memcpy(&v, (const uint8_t *)segment + offset, 4);
  return v;
}

uint32_t cell_ring_max_record(uint32_t capacity) { return capacity / 4; }

uint64_t cell_ring_segment_bytes(uint32_t capacity) {
  return CELL_RING_HEADER_BYTES + 2 * (uint64_t)capacity;
}

static int valid_capacity(uint32_t c) {
  return c >= CELL_RING_MIN_CAPACITY && c <= CELL_RING_MAX_CAPACITY && (c & (c - 1)) == 0;
}

int cell_ring_init(void *segment, uint32_t capacity) {
  if (!valid_capacity(capacity)) return -EINVAL;
  uint32_t v = CELL_RING_VERSION, pid = (uint32_t)getpid();
  memcpy((uint8_t *)segment + CELL_RING_OFF_VERSION, &v, 4);
  memcpy((uint8_t *)segment + CELL_RING_OFF_CAPACITY, &capacity, 4);
  memcpy((uint8_t *)segment + CELL_RING_OFF_CREATOR, &pid, 4);
  atomic_store_explicit(word_at(segment, CELL_RING_OFF_MAGIC), CELL_RING_MAGIC,
                        memory_order_release);
  return 0;
}

int cell_ring_check(const void *segment, uint64_t bytes) {
  if (bytes < CELL_RING_HEADER_BYTES) return -EPROTO;
  if (load_u32(segment, CELL_RING_OFF_MAGIC) != CELL_RING_MAGIC) return -EPROTO;
  if (load_u32(segment, CELL_RING_OFF_VERSION) != CELL_RING_VERSION) return -EPROTO;
  uint32_t capacity = load_u32(segment, CELL_RING_OFF_CAPACITY);
  if (!valid_capacity(capacity) || cell_ring_segment_bytes(capacity) != bytes) return -EPROTO;
  return (int)capacity;
}

static inline uint32_t align8(uint32_t n) { return (n + 7u) & ~7u; }

/* Copies of at least this many bytes stream their whole cache lines (see cell_ring_copy). */
#define STREAM_FROM 256

int cell_ring_copy(void *segment, uint32_t bytes, uint32_t offset, const void *src, uint32_t len) {
  if (offset > bytes || len > bytes - offset) return -EINVAL;
  uint8_t *dst = (uint8_t *)segment + offset;
  const uint8_t *from = (const uint8_t *)src;
#if defined(__x86_64__) && defined(__SSE2__)
  /*
   * The lines a batch lands in were last read by the consumer: a plain store must first fetch
   * each one from the consumer's core (a read for ownership), and when the two cores sit far
   * apart those fetches limit the writer. A non-temporal store writes the whole line without
   * reading it. Partial lines at either end are copied plainly, and the sfence orders the
   * streamed lines before every later store: the header that publishes them comes after.
   */
  uintptr_t first = ((uintptr_t)dst + 63) & ~(uintptr_t)63;
  uintptr_t last = ((uintptr_t)dst + len) & ~(uintptr_t)63;
  if (len >= STREAM_FROM && first < last) {
    size_t head = first - (uintptr_t)dst;
    memcpy(dst, from, head);
    for (uintptr_t line = first; line < last; line += 64) {
      const uint8_t *in = from + (line - (uintptr_t)dst);
      __m128i a = _mm_loadu_si128((const __m128i *)in);
      __m128i b = _mm_loadu_si128((const __m128i *)(in + 16));
      __m128i c = _mm_loadu_si128((const __m128i *)(in + 32));
      __m128i d = _mm_loadu_si128((const __m128i *)(in + 48));
      _mm_stream_si128((__m128i *)line, a);
      _mm_stream_si128((__m128i *)(line + 16), b);
      _mm_stream_si128((__m128i *)(line + 32), c);
      _mm_stream_si128((__m128i *)(line + 48), d);
    }
    memcpy((uint8_t *)last, from + (last - (uintptr_t)dst), (uintptr_t)dst + len - last);
    _mm_sfence();
    return 0;
  }
#endif
  memcpy(dst, from, len);
  return 0;
}

int cell_ring_push(void *segment, int ring, const void *data, uint32_t len, uint32_t flags) {
  uint32_t capacity = load_u32(segment, CELL_RING_OFF_CAPACITY);
  if ((ring != 0 && ring != 1) || !valid_capacity(capacity)) return -EINVAL;
  if (len > cell_ring_max_record(capacity)) return -EMSGSIZE;
  uint8_t *base = (uint8_t *)segment + CELL_RING_OFF_DATA(capacity, ring);
  /* Only this producer writes the tail: a relaxed load reads back our own store. */
  uint32_t tail = atomic_load_explicit(word_at(segment, CELL_RING_OFF_TAIL(ring)),
                                       memory_order_relaxed);
  uint32_t head = atomic_load_explicit(word_at(segment, CELL_RING_OFF_HEAD(ring)),
                                       memory_order_acquire);
  uint32_t used = tail - head;
  if (used > capacity || (tail & 7u) != 0) return -EPROTO;
  uint32_t pos = tail & (capacity - 1);
  uint32_t need = align8(4 + len);
  uint32_t skip = pos + need > capacity ? capacity - pos : 0;
  if (skip + need + CELL_RING_RESERVE > capacity - used) return -EAGAIN;
  uint32_t start = skip ? 0 : pos;
  /* The next header slot reads as empty before this record becomes visible. */
  memset(base + ((start + need) & (capacity - 1)), 0, 4);
  memcpy(base + start + 4, data, len);
  atomic_store_explicit((_Atomic uint32_t *)(base + start), len | CELL_RING_PRESENT |
                        (flags & CELL_RING_MORE), memory_order_release);
  /* The padding last: a consumer waiting at `pos` then finds the record at the start. */
  if (skip) atomic_store_explicit((_Atomic uint32_t *)(base + pos), CELL_RING_PAD,
                                  memory_order_release);
  atomic_store_explicit(word_at(segment, CELL_RING_OFF_TAIL(ring)), tail + skip + need,
                        memory_order_release);
  return 0;
}

int cell_ring_pop(void *segment, int ring, void *buf, uint32_t cap, uint32_t *flags) {
  uint32_t capacity = load_u32(segment, CELL_RING_OFF_CAPACITY);
  if ((ring != 0 && ring != 1) || !valid_capacity(capacity)) return -EINVAL;
  const uint8_t *base = (const uint8_t *)segment + CELL_RING_OFF_DATA(capacity, ring);
  uint32_t head = atomic_load_explicit(word_at(segment, CELL_RING_OFF_HEAD(ring)),
                                       memory_order_relaxed);
  uint32_t tail = atomic_load_explicit(word_at(segment, CELL_RING_OFF_TAIL(ring)),
                                       memory_order_acquire);
  for (;;) {
    uint32_t avail = tail - head;
    if (avail == 0) return -EAGAIN;
    if (avail > capacity || (avail & 7u) != 0 || (head & 7u) != 0) return -EPROTO;
    uint32_t pos = head & (capacity - 1);
    uint32_t header = load_u32(base, pos);
    if (header == CELL_RING_PAD) {
      uint32_t skip = capacity - pos;
      if (skip > avail) return -EPROTO;
      head += skip;
      atomic_store_explicit(word_at(segment, CELL_RING_OFF_HEAD(ring)), head,
                            memory_order_release);
      continue;
    }
    uint32_t len = header & CELL_RING_LENGTH;
    uint32_t need = align8(4 + len);
    if (!(header & CELL_RING_PRESENT) || len > cell_ring_max_record(capacity) || need > avail ||
        pos + need > capacity) {
      return -EPROTO;
    }
    if (len > cap) return -ENOBUFS;
    memcpy(buf, base + pos + 4, len);
    if (flags) *flags = header & CELL_RING_MORE;
    atomic_store_explicit(word_at(segment, CELL_RING_OFF_HEAD(ring)), head + need,
                          memory_order_release);
    return (int)len;
  }
}

int cell_ring_shm_create(const char *name, uint64_t bytes) {
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)bytes) < 0) {
    int e = errno;
    close(fd);
    shm_unlink(name);
    return -e;
  }
  return fd;
}

int cell_ring_shm_open(const char *name) {
  int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    close(fd);
    return -EPERM;
  }
  return fd;
}

int64_t cell_ring_fd_size(int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  return (int64_t)st.st_size;
}

void *cell_ring_map(int fd, uint64_t bytes) {
  void *p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    last_errno = errno;
    return NULL;
  }
  return p;
}

int cell_ring_unmap(void *addr, uint64_t bytes) {
  return munmap(addr, (size_t)bytes) < 0 ? -errno : 0;
}

int cell_ring_shm_unlink(const char *name) { return shm_unlink(name) < 0 ? -errno : 0; }

int cell_ring_collect_stale(const char *prefix) {
  DIR *dir = opendir("/dev/shm");
  if (!dir) return -errno;
  size_t plen = strlen(prefix);
  int removed = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    if (strncmp(e->d_name, prefix, plen) != 0) continue;
    char *end;
    long pid = strtol(e->d_name + plen, &end, 10);
    if (end == e->d_name + plen || *end != '-' || pid <= 0) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    char name[300];
    snprintf(name, sizeof name, "/%s", e->d_name);
    if (shm_unlink(name) == 0) removed++;
  }
  closedir(dir);
  return removed;
}

int cell_ring_errno(void) { return last_errno; }

static long futex(int32_t *word, int op, int32_t value, const struct timespec *timeout) {
  return syscall(SYS_futex, word, op, value, timeout, NULL, 0);
}

int cell_ring_wait(int32_t *word, int32_t expected, int fd, int32_t timeout_ms,
                   const uint32_t *watch) {
  int32_t left = timeout_ms;
  for (;;) {
    if (__atomic_load_n(word, __ATOMIC_SEQ_CST) != expected) return 1;
    if (watch != NULL && __atomic_load_n(watch, __ATOMIC_ACQUIRE) != 0) return 1;
    int32_t slice = (left < 0 || left > 50) ? 50 : left;
    struct timespec ts = {slice / 1000, (long)(slice % 1000) * 1000000L};
    long r = futex(word, FUTEX_WAIT, expected, &ts);
    if (r == 0) return 1;
    int e = errno;
    if (e == EAGAIN) return 1;
    if (e != ETIMEDOUT && e != EINTR) return -e;
    if (fd >= 0 && cell_ring_peer_gone(fd)) return -EPIPE;
    if (e == ETIMEDOUT && left >= 0) {
      left -= slice;
      if (left <= 0) return 0;
    }
  }
}

int cell_ring_wake(int32_t *word) {
  long r = futex(word, FUTEX_WAKE, INT32_MAX, NULL);
  return r < 0 ? -errno : (int)r;
}

static int unix_address(const char *path, struct sockaddr_un *addr) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr->sun_path) return -ENAMETOOLONG;
  strcpy(addr->sun_path, path);
  return 0;
}

int cell_ring_listen(const char *path) {
  struct sockaddr_un addr;
  int r = unix_address(path, &addr);
  if (r < 0) return r;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || chmod(path, 0600) < 0 ||
      listen(fd, 128) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

static int wait_for(int fd, short events, int32_t timeout_ms) {
  struct pollfd p = {fd, events, 0};
  for (;;) {
    int r = poll(&p, 1, timeout_ms);
    /* A hang-up without the awaited event (a listener shut down) must not spin the caller. */
    if (r > 0) return (p.revents & events) ? 0 : -EPIPE;
    if (r == 0) return -ETIMEDOUT;
    if (errno != EINTR) return -errno;
  }
}

int cell_ring_accept(int fd, int32_t timeout_ms) {
  for (;;) {
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c >= 0) return c;
    if (errno != EAGAIN && errno != EINTR) return -errno;
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r == 0) return -ETIMEDOUT;
    if (r < 0 && errno != EINTR) return -errno;
    /* A listener that was shut down polls readable and hung up, yet accept says EAGAIN. */
    if (r > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) return -EPIPE;
  }
}

int cell_ring_connect(const char *path) {
  struct sockaddr_un addr;
  int r = unix_address(path, &addr);
  if (r < 0) return r;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  return fd;
}

int cell_ring_peer_cred(int fd, uint32_t *out) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -errno;
  out[0] = (uint32_t)cred.pid;
  out[1] = cred.uid;
  out[2] = cred.gid;
  return 0;
}

int cell_ring_read(int fd, uint8_t *buf, uint32_t len, int32_t timeout_ms) {
  for (;;) {
    ssize_t n = recv(fd, buf, len, 0);
    if (n >= 0) return (int)n;
    if (errno != EAGAIN && errno != EINTR) return -errno;
    int r = wait_for(fd, POLLIN, timeout_ms);
    if (r < 0) return r;
  }
}

int cell_ring_write(int fd, const uint8_t *buf, uint32_t len, int32_t timeout_ms) {
  uint32_t done = 0;
  while (done < len) {
    ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += (uint32_t)n;
      continue;
    }
    if (errno != EAGAIN && errno != EINTR) return -errno;
    int r = wait_for(fd, POLLOUT, timeout_ms);
    if (r < 0) return r;
  }
  return (int)len;
}

int cell_ring_peer_gone(int fd) {
  struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return 0;
  return (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) ? 1 : 0;
}

int cell_ring_shutdown(int fd) { return shutdown(fd, SHUT_RDWR) < 0 ? -errno : 0; }

int cell_ring_close(int fd) { return close(fd) < 0 ? -errno : 0; }

uint32_t cell_ring_euid(void) { return (uint32_t)geteuid(); }

int cell_ring_version(void) { return CELL_RING_VERSION; }

/* Property tests of the C ring: random record sizes against a FIFO model, wrap-around, full and
 * empty edges, split messages, and corrupt segments that must be refused without reading
 * outside the ring. Run by ffi/ring_c_test.ts; exits 0 when every check passed. */
#include "cell_ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define CHECK(cond, ...)                                     \
  do {                                                       \
    if (!(cond)) {                                           \
      failures++;                                            \
      fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                          \
      fprintf(stderr, "\n");                                 \
      if (failures > 20) exit(1);                            \
    }                                                        \
  } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state % n);
}

#define MODEL_MAX 4096
static uint32_t model_len[MODEL_MAX], model_seed[MODEL_MAX];
static uint32_t model_first, model_count;

static void fill(uint8_t *buf, uint32_t len, uint32_t seed) {
  for (uint32_t i = 0; i < len; i++) buf[i] = (uint8_t)(seed * 31 + i * 7);
}

static uint32_t used(void *seg, int ring) {
  uint32_t head, tail;
  memcpy(&tail, (uint8_t *)seg + CELL_RING_OFF_TAIL(ring), 4);
  memcpy(&head, (uint8_t *)seg + CELL_RING_OFF_HEAD(ring), 4);
  return tail - head;
}

static void random_ops(uint32_t capacity, int rounds) {
  uint64_t bytes = cell_ring_segment_bytes(capacity);
  void *seg = calloc(1, bytes);
  CHECK(cell_ring_init(seg, capacity) == 0, "init");
  CHECK(cell_ring_check(seg, bytes) == (int)capacity, "check");
  /* Start the counters near 2^32 so that they wrap during the run. */
  uint32_t start = 0u - 8u * (uint32_t)rnd(4096);
  memcpy((uint8_t *)seg + CELL_RING_OFF_TAIL(0), &start, 4);
  memcpy((uint8_t *)seg + CELL_RING_OFF_HEAD(0), &start, 4);
  uint32_t max = cell_ring_max_record(capacity);
  uint8_t *buf = malloc(max + 1), *out = malloc(max + 1);
  model_first = model_count = 0;
  uint32_t seed = 1;
  for (int r = 0; r < rounds; r++) {
    if (rnd(100) < 55) {
      uint32_t len = rnd(4) == 0 ? max - rnd(16) : rnd(max / 8 + 1);
      fill(buf, len, seed);
      uint32_t before = used(seg, 0);
      int rc = cell_ring_push(seg, 0, buf, len, len & 1 ? CELL_RING_MORE : 0);
      if (rc == 0) {
        CHECK(model_count < MODEL_MAX, "model overflow");
        uint32_t i = (model_first + model_count++) % MODEL_MAX;
        model_len[i] = len;
        model_seed[i] = seed++;
        CHECK(used(seg, 0) + CELL_RING_RESERVE <= capacity, "used %u over capacity",
              used(seg, 0));
        /* A consumer polling headers finds the slot after the last record empty. */
        uint32_t tail, next;
        memcpy(&tail, (uint8_t *)seg + CELL_RING_OFF_TAIL(0), 4);
        memcpy(&next, (uint8_t *)seg + CELL_RING_OFF_DATA(capacity, 0) + (tail & (capacity - 1)),
               4);
        CHECK(next == 0, "header slot after the last record holds %08x", next);
      } else {
        CHECK(rc == -EAGAIN, "push %d", rc);
        uint32_t tail, need = (len + 11) & ~7u;
        memcpy(&tail, (uint8_t *)seg + CELL_RING_OFF_TAIL(0), 4);
        uint32_t pos = tail & (capacity - 1);
        uint32_t skip = pos + need > capacity ? capacity - pos : 0;
        CHECK(skip + need + CELL_RING_RESERVE > capacity - before,
              "refused with room: used %u need %u", before, need);
      }
    } else {
      uint32_t flags = 7;
      int rc = cell_ring_pop(seg, 0, out, max, &flags);
      if (model_count == 0) {
        CHECK(rc == -EAGAIN, "pop on empty: %d", rc);
        CHECK(used(seg, 0) == 0, "empty ring with %u used", used(seg, 0));
      } else {
        uint32_t i = model_first;
        CHECK(rc == (int)model_len[i], "pop %d, expected %u", rc, model_len[i]);
        if (rc >= 0) {
          fill(buf, model_len[i], model_seed[i]);
          CHECK(memcmp(buf, out, model_len[i]) == 0, "bytes differ");
          CHECK(flags == (model_len[i] & 1 ? CELL_RING_MORE : 0), "flags %u", flags);
        }
        model_first = (model_first + 1) % MODEL_MAX;
        model_count--;
      }
    }
  }
  CHECK(cell_ring_push(seg, 0, buf, max + 1, 0) == -EMSGSIZE, "oversized record accepted");
  free(buf);
  free(out);
  free(seg);
}

static void fill_to_the_brim(uint32_t capacity) {
  uint64_t bytes = cell_ring_segment_bytes(capacity);
  void *seg = calloc(1, bytes);
  cell_ring_init(seg, capacity);
  uint8_t one[4] = {1, 2, 3, 4};
  uint32_t n = 0;
  while (cell_ring_push(seg, 1, one, 4, 0) == 0) n++;
  /* Every 8-byte slot but the one kept for the next header. */
  CHECK(n == capacity / 8 - 1, "a ring of %u bytes took %u 4-byte records", capacity, n);
  CHECK(used(seg, 1) == capacity - CELL_RING_RESERVE, "full ring uses %u", used(seg, 1));
  uint8_t out[4];
  uint32_t flags;
  CHECK(cell_ring_pop(seg, 1, out, 4, &flags) == 4, "pop from full");
  CHECK(cell_ring_push(seg, 1, one, 4, 0) == 0, "push after one pop");
  CHECK(cell_ring_pop(seg, 1, out, 3, &flags) == -ENOBUFS, "small buffer");
  free(seg);
}

static void copy(void) {
  uint8_t seg[64] = {0}, src[16];
  for (int i = 0; i < 16; i++) src[i] = (uint8_t)(i + 1);
  CHECK(cell_ring_copy(seg, sizeof seg, 48, src, 16) == 0, "copy to the end");
  CHECK(memcmp(seg + 48, src, 16) == 0 && seg[47] == 0, "copied bytes");
  CHECK(cell_ring_copy(seg, sizeof seg, 49, src, 16) == -EINVAL, "copy past the end accepted");
  CHECK(cell_ring_copy(seg, sizeof seg, 0xfffffff8u, src, 16) == -EINVAL, "offset wraps");
  CHECK(seg[0] == 0, "a refused copy wrote");
}

/* Copies of random lengths (streamed on x86-64 from 256 bytes) to random offsets, from
 * random source alignments: exactly the bytes asked for arrive, nothing around them changes. */
static void copy_random(void) {
  enum { SIZE = 16384 };
  static uint8_t seg[SIZE + 64], src[SIZE + 64], before[SIZE + 64];
  for (int round = 0; round < 20000; round++) {
    uint8_t *dst = seg + 64 - ((uintptr_t)seg & 63); /* line-aligned base */
    uint32_t len = rnd(round & 1 ? 600 : SIZE - 64), offset = rnd(SIZE - 63 - len);
    const uint8_t *from = src + rnd(64);
    fill(src, sizeof src, (uint32_t)round);
    fill(dst, SIZE - 64, (uint32_t)round * 7 + 1);
    memcpy(before, dst, SIZE - 64);
    CHECK(cell_ring_copy(dst, SIZE - 64, offset, from, len) == 0, "copy of %u at %u", len, offset);
    CHECK(memcmp(dst + offset, from, len) == 0, "copy of %u at %u: bytes differ", len, offset);
    CHECK(memcmp(dst, before, offset) == 0, "copy of %u at %u wrote before it", len, offset);
    CHECK(memcmp(dst + offset + len, before + offset + len, SIZE - 64 - offset - len) == 0,
          "copy of %u at %u wrote after it", len, offset);
  }
}

static void corrupt(uint32_t capacity) {
  uint64_t bytes = cell_ring_segment_bytes(capacity);
  uint8_t *seg = calloc(1, bytes);
  cell_ring_init(seg, capacity);
  uint8_t data[16] = {0}, out[4096];
  uint32_t flags;
  uint8_t *ring = seg + CELL_RING_OFF_DATA(capacity, 0);
  /* A length that runs past the tail, past the ring, or over the limit; a header without
   * CELL_RING_PRESENT. */
  uint32_t lengths[] = {100 | CELL_RING_PRESENT, capacity | CELL_RING_PRESENT, 0x7ffffff0u,
                        (capacity - 4) | CELL_RING_PRESENT, 16};
  for (unsigned k = 0; k < sizeof lengths / sizeof *lengths; k++) {
    memset(seg + CELL_RING_HEADER_BYTES, 0, 2 * capacity);
    uint32_t zero = 0;
    memcpy(seg + CELL_RING_OFF_TAIL(0), &zero, 4);
    memcpy(seg + CELL_RING_OFF_HEAD(0), &zero, 4);
    CHECK(cell_ring_push(seg, 0, data, 16, 0) == 0, "push");
    memcpy(ring, &lengths[k], 4);
    CHECK(cell_ring_pop(seg, 0, out, sizeof out, &flags) == -EPROTO, "length %u accepted",
          lengths[k]);
  }
  /* A tail beyond the capacity, or not a multiple of 8. */
  uint32_t tails[] = {capacity + 8, 12, 0xfffffff8u};
  for (unsigned k = 0; k < sizeof tails / sizeof *tails; k++) {
    uint32_t zero = 0;
    memcpy(seg + CELL_RING_OFF_HEAD(0), &zero, 4);
    memcpy(seg + CELL_RING_OFF_TAIL(0), &tails[k], 4);
    CHECK(cell_ring_pop(seg, 0, out, sizeof out, &flags) == -EPROTO, "tail %u accepted",
          tails[k]);
  }
  /* A head the consumer could not have written. */
  uint32_t head = capacity * 2;
  memcpy(seg + CELL_RING_OFF_HEAD(1), &head, 4);
  CHECK(cell_ring_push(seg, 1, data, 16, 0) == -EPROTO, "impossible head accepted");
  /* A header that is not ours. */
  seg[0] ^= 1;
  CHECK(cell_ring_check(seg, bytes) == -EPROTO, "bad magic accepted");
  free(seg);
}

int main(void) {
  uint32_t capacities[] = {4096, 8192, 65536};
  for (unsigned i = 0; i < 3; i++) {
    random_ops(capacities[i], 200000);
    fill_to_the_brim(capacities[i]);
    corrupt(capacities[i]);
  }
  copy();
  copy_random();
  if (failures) {
    fprintf(stderr, "%d checks failed\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}

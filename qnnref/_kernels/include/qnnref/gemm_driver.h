// The GEMM driver: blocking, packing of A, threading and the epilogue order.
//
// Private to gemm_scalar.cpp and gemm_avx2.cpp, which include it INSIDE
// their namespace (qnnref::scalar or qnnref::avx2) after defining the
// per-ISA pieces it calls:
//
//   int32_t pack_a_row(int32_t format, const Segment* seg, int64_t nseg, const Im2col& g,
//                      int64_t k_pad, uint8_t* dst, bool need_sum)
//       one row of A in the format's layout (pairs: int16 a - zp_a; nibbles:
//       uint8 a + o), K values then zeros up to k_pad; returns the row sum
//       (int32, wrapping) of what it wrote (or anything when !need_sum: no
//       column uses it).
//   template <int R> void tile_pairs(const uint8_t* a, int64_t lda, const uint8_t* b, int64_t k_pad,
//                                    int32_t* c, int64_t ldc)
//   template <int R> void tile_nibbles(...same...)
//       c[r * ldc + j] = dot of A row r (bytes at a + r * lda) with column j
//       of the panel b, for r < R, j < 16 (int32, wrapping).
//   bool finish_row(const int32_t* dot, int64_t n, int32_t rowsum, const int32_t* row_coef,
//                   const int32_t* col_term, const int32_t* bias, int32_t* acc)
//       the epilogue of gemm.h; row_coef and bias may be null; returns true
//       if some dot + bias does not fit int32.
//
// Every output element is computed by exactly one tile call and one
// finish_row call, with exact (modulo 2^32) arithmetic: the result does not
// depend on the blocking or the thread split.
//
// Blocking: A is packed MC rows at a time (a block that stays in L2); B is
// walked in chunks of panels (<= ~768 KB, L2); for each MR-row tile of the
// A block, all panels of the chunk are multiplied (the tile's A rows stay in
// L1) into a row-block accumulator, which is then finished row by row and
// requantized as one tile (requantize_rows of this ISA: each 8 channels'
// constants set up once for the tile's rows) while it is still in L1.

// Working memory of one thread's share (gemm_driver.h's `work`). The calling
// thread keeps its copy between calls (thread_local), so a model run does
// not allocate (and page-fault) fresh buffers each time; worker threads of
// parallel_for are new per call and allocate theirs.
struct GemmScratch {
  std::vector<uint8_t> a_block;
  std::vector<int32_t> rowsum, dot, acc;
  std::vector<Segment> segments;
};

template <typename T>
static T* grow(std::vector<T>& v, int64_t n) {
  if (int64_t(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

static void run_tile(int32_t format, int64_t rows, const uint8_t* a, int64_t lda, const uint8_t* b,
                     int64_t k_pad, int32_t* c, int64_t ldc) {
  if (format == GEMM_PAIRS) {
    switch (rows) {
      case 1: tile_pairs<1>(a, lda, b, k_pad, c, ldc); break;
      case 2: tile_pairs<2>(a, lda, b, k_pad, c, ldc); break;
      case 3: tile_pairs<3>(a, lda, b, k_pad, c, ldc); break;
      case 4: tile_pairs<4>(a, lda, b, k_pad, c, ldc); break;
      case 5: tile_pairs<5>(a, lda, b, k_pad, c, ldc); break;
      default: tile_pairs<6>(a, lda, b, k_pad, c, ldc); break;
    }
  } else {
    switch (rows) {
      case 1: tile_nibbles<1>(a, lda, b, k_pad, c, ldc); break;
      case 2: tile_nibbles<2>(a, lda, b, k_pad, c, ldc); break;
      case 3: tile_nibbles<3>(a, lda, b, k_pad, c, ldc); break;
      default: tile_nibbles<4>(a, lda, b, k_pad, c, ldc); break;
    }
  }
}

Status gemm(const Im2col& rows, int64_t m, const PackedB& b, const GemmOutput& out, int threads) {
  const int32_t format = b.format;
  const int64_t k_pad = gemm_k_pad(format, b.k);
  const int64_t panels = gemm_panels(b.n);
  const int64_t panel_bytes = gemm_packed_bytes(format, b.k, GEMM_NR);
  // bytes per packed A row; +64 so that rows do not alias in the cache when
  // k_pad is a large power of two
  const int64_t lda = k_pad * (format == GEMM_PAIRS ? 2 : 1) + 64;
  const int64_t mr = format == GEMM_PAIRS ? GEMM_MR : GEMM_MR_NIBBLES;  // rows per register tile
  const int64_t mr_lcm = 12;                                                // a multiple of both
  int64_t mc = (int64_t(256) * 1024 / lda) / mr_lcm * mr_lcm;
  mc = mc < mr_lcm ? mr_lcm : (mc > 120 ? 120 : mc);
  int64_t chunk = int64_t(768) * 1024 / (panel_bytes > 0 ? panel_bytes : 1);
  chunk = chunk < 1 ? 1 : (chunk > 64 ? 64 : chunk);
  chunk = chunk > panels ? panels : chunk;
  const int64_t ldc = chunk * GEMM_NR;
  const int64_t itemsize = out.out_dtype == DT_INT16 ? 2 : (out.out_dtype == DT_INT32 ? 4 : 1);
  const int64_t max_segments = rows.kh * rows.kw;
  std::atomic<int32_t> status{STATUS_OK};

  // Rows [r0, r1) times panels [p0, p1): one thread's share of the output.
  auto work = [&](int64_t r0, int64_t r1, int64_t p0, int64_t p1) {
    const int64_t block = mc < r1 - r0 ? mc : r1 - r0;
    static thread_local GemmScratch scratch;
    uint8_t* a_block = grow(scratch.a_block, block * lda);
    int32_t* rowsum = grow(scratch.rowsum, block);
    int32_t* dot = grow(scratch.dot, GEMM_MR * ldc);
    int32_t* acc = grow(scratch.acc, GEMM_MR * ldc);
    Segment* segments = grow(scratch.segments, max_segments);
    for (int64_t mb = r0; mb < r1; mb += block) {
      const int64_t mrows = block < r1 - mb ? block : r1 - mb;
      // Step 1: pack this block of A rows (im2col + zero point / offset).
      Im2colPosition pos(rows, mb);
      for (int64_t i = 0; i < mrows; ++i, pos.next(rows)) {
        const int64_t nseg = im2col_segments(rows, pos, segments);
        rowsum[i] = pack_a_row(format, segments, nseg, rows, k_pad, a_block + i * lda, b.any_row_coef != 0);
      }
      for (int64_t pc = p0; pc < p1; pc += chunk) {
        const int64_t pe = pc + chunk < p1 ? pc + chunk : p1;
        const int64_t n0 = pc * GEMM_NR;
        const int64_t ncols = (pe * GEMM_NR < b.n ? pe * GEMM_NR : b.n) - n0;
        for (int64_t rb = 0; rb < mrows; rb += mr) {
          const int64_t tile_rows = mr < mrows - rb ? mr : mrows - rb;
          // Step 2: the exact dot products of the tile rows with each panel.
          for (int64_t p = pc; p < pe; ++p) {
            run_tile(format, tile_rows, a_block + rb * lda, lda, b.data + p * panel_bytes, k_pad,
                     dot + (p - pc) * GEMM_NR, ldc);
          }
          // Step 3: zero-point corrections and bias of each tile row (an
          // overflow makes the whole call fall back to the reference, so
          // the values written are then irrelevant) ...
          for (int64_t r = 0; r < tile_rows; ++r) {
            const bool overflow = finish_row(dot + r * ldc, ncols, rowsum[rb + r],
                                             b.any_row_coef ? b.row_coef + n0 : nullptr, b.col_term + n0,
                                             out.bias ? out.bias + n0 : nullptr, acc + r * ldc);
            if (overflow) status.store(STATUS_NEEDS_REFERENCE, std::memory_order_relaxed);
          }
          // ... then the requantization of the tile's rows at once.
          uint8_t* dst = static_cast<uint8_t*>(out.out) + ((mb + rb) * out.ld + n0) * itemsize;
          if (requantize_rows(acc, ldc, tile_rows, ncols, *out.requant, out.channel0 + n0, out.out_dtype, dst,
                              out.ld) != STATUS_OK) {
            status.store(STATUS_NEEDS_REFERENCE, std::memory_order_relaxed);
          }
        }
      }
    }
  };

  if (threads <= 1 || m >= threads * mr_lcm) {
    // split the rows (in whole register tiles); every thread walks all panels
    parallel_for(threads, m, mr_lcm, [&](int64_t r0, int64_t r1) { work(r0, r1, 0, panels); });
  } else {
    // few rows (GEMV, small batches): split the column panels; every thread packs all rows
    parallel_for(threads, panels, 1, [&](int64_t p0, int64_t p1) { work(0, m, p0, p1); });
  }
  return Status(status.load());
}

// bpcheck: verifies backprop gradients against oracles in higher precision (see cli.hpp).
#include <iostream>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cblas.h>

#include "cli.hpp"

int main(int argc, char** argv) {
#if defined(__GLIBC__)
  // glibc hands the top of its heap back to the system whenever a large block is freed, and the next
  // large block (an mp100 or dual<mp100> copy of a network's parameters: 0.5–5 MB) faults its pages in
  // again. Verifying a 6.8k-parameter network by projections spent about half its time so
  // (bench/bench_verify.cpp, `MALLOC_TOP_PAD_`); a 64 MiB pad keeps those pages for the next block.
  mallopt(M_TOP_PAD, 64 << 20);
  // Blocks above the mmap threshold (glibc adapts it up to 32 MiB) are mapped and unmapped on each
  // allocation, and every page faults in again: an mp100 vector over a 100k-parameter layer is 8 MB,
  // and the verifier forms dozens per point. Kept in the heap instead, verify on 784 → dense 128 →
  // dense 10 ran 15–30% faster at the same peak memory (docs/history.md).
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  // The same for blocks above the pad (a dual<mp100> copy of a 100k-parameter layer is 72 MB): freed
  // ones stay in the heap up to 1 GiB instead of being trimmed. And one arena for all threads: a
  // thread's own arena grows in heaps of at most 64 MiB and maps anything larger on its own, which
  // would bring the faults back for `verify --jobs`. 784 → dense 128 → dense 10 verified 15% faster
  // with both, at the same peak memory (docs/history.md).
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_ARENA_MAX, 1);
#endif
  // bpcheck runs its own threads (verify's points, report's sweeps), and its float/double products are
  // a layer's at a batch of a few samples: where it is linked to OpenBLAS's pthread build (no serial
  // build installed, lib/CMakeLists.txt), that build's pool is not to take their cores for its products.
  openblas_set_num_threads(1);
  return bpcheck::cli::run_command_line(argc, argv, std::cout, std::cerr);
}

// bpcheck: verifies backprop gradients against oracles in higher precision (see cli.hpp).
#include <iostream>

#if defined(__GLIBC__)
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#endif

#include <cblas.h>

#include "cli.hpp"

#if defined(__GLIBC__)
namespace {
/// glibc puts its heap on transparent huge pages only when told so as the program starts
/// (GLIBC_TUNABLES=glibc.malloc.hugetlb=1; glibc ≥ 2.35, others ignore it), so bpcheck runs itself
/// again with it set, once, where the kernel gives huge pages on request. verify touches hundreds of
/// MB of fresh mp100 and dual numbers, and each 4 KiB page faulted in on its own: 784 → dense 128 →
/// dense 10 verified in 2.08–2.44 s with the tunable and 2.62–2.78 s without, the same runs in turn
/// (docs/history.md). Any failure leaves the program running as it is.
void restart_with_huge_pages(int argc, char** argv) {
  // Only the commands that fill memory with numbers: starting again costs about 10 ms.
  const std::string command = argc > 1 ? argv[1] : "";
  if (command != "verify" && command != "report" && command != "gradient") return;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  const std::string current = tunables ? tunables : "";
  if (current.find("glibc.malloc.hugetlb") != std::string::npos) return;  // set, by us or by the user
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  if (!std::getline(thp, modes) || modes.find("[never]") != std::string::npos) return;
  const std::string wanted = current.empty() ? "glibc.malloc.hugetlb=1" : current + ":glibc.malloc.hugetlb=1";
  if (setenv("GLIBC_TUNABLES", wanted.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  // not replaced (no /proc): go on without; the variable stays, so that a child does not try again
}
}  // namespace
#endif

int main(int argc, char** argv) {
#if defined(__GLIBC__)
  restart_with_huge_pages(argc, argv);
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
  // a layer's at a batch of a few samples: OpenBLAS's pool is not to take their cores for its products.
  openblas_set_num_threads(1);
  return bpcheck::cli::run_command_line(argc, argv, std::cout, std::cerr);
}

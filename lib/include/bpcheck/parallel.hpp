#pragma once
// Independent work items on a few threads, for the report's sweeps and verify's points.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace bpcheck {

/// The threads `jobs` asks for: itself when positive, one per core when 0.
inline int thread_count(int jobs) {
  return jobs > 0 ? jobs : int(std::max(1u, std::thread::hardware_concurrency()));
}

/// Runs work(i) for every i in [0, count) on thread_count(jobs) threads, the calling thread one of them,
/// in no fixed order. Once an item throws, items not yet started are skipped; after every thread has
/// stopped, the first failure in index order is rethrown. Results belong in slots indexed by i, so that
/// they do not depend on the threads.
template <class Work>
void parallel_for(std::size_t count, int jobs, Work&& work) {
  std::vector<std::exception_ptr> failures(count);
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  const auto worker = [&] {
    for (std::size_t i = next++; i < count && !stop; i = next++) {
      try {
        work(i);
      } catch (...) {
        failures[i] = std::current_exception();
        stop = true;
      }
    }
  };
  const int threads = std::max(1, std::min<int>(thread_count(jobs), int(count)));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  for (const auto& f : failures)
    if (f) std::rethrow_exception(f);
}

}  // namespace bpcheck

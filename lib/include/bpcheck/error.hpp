#pragma once
// Every error bpcheck raises derives from bpcheck::error; the command line turns it into one
// line on stderr and exit code 2.
#include <stdexcept>
#include <string>

namespace bpcheck {

/// Base of every exception the library throws.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Input that does not fit: wrong shapes, unknown names, NaN/Inf, malformed files.
class input_error : public error {
 public:
  using error::error;
};

/// A computation met a value that is not finite where it needs a finite one (a difference stencil that
/// leaves the function's range): a property of the point, which a verifier may move off.
class not_finite_error : public error {
 public:
  using error::error;
};

}  // namespace bpcheck

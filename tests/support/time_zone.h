// A time zone for one test: TZ set (and tzset() called) for the lifetime of the object, the
// previous TZ restored afterwards. Not for tests that run threads reading the zone meanwhile.
#pragma once

#include <stdlib.h>
#include <time.h>

#include <string>

namespace dupfs::test {

class ScopedTimeZone {
 public:
  explicit ScopedTimeZone(const char* tz) {
    if (const char* old = ::getenv("TZ")) {
      old_ = old;
      had_ = true;
    }
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~ScopedTimeZone() {
    if (had_) {
      ::setenv("TZ", old_.c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }
  ScopedTimeZone(const ScopedTimeZone&) = delete;
  ScopedTimeZone& operator=(const ScopedTimeZone&) = delete;

 private:
  std::string old_;
  bool had_ = false;
};

}  // namespace dupfs::test

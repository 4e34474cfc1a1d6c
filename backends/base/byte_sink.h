// Where a producer of bytes (a decoder, an encoder, a packet parser) sends its output.
#pragma once

#include <functional>
#include <string_view>

#include "backends/base/error.h"

namespace dupfs {

// Receives bytes in order. Returning an error aborts the producer, which then returns that
// error unchanged.
using ByteSink = std::function<Status(std::string_view)>;

}  // namespace dupfs

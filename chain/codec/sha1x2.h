// The SHA1 part of the OpenPGP iterated+salted S2K (RFC 4880 §3.7.1.3) with the x86 SHA
// extensions (SHA-NI), two hash contexts at once.
//
// A key longer than 20 octets (AES-192/256) needs two SHA1 contexts over the same repeated
// salt||passphrase, the second one preloaded with a zero octet. One SHA1 stream leaves most of
// the SHA units idle (sha1rnds4 and friends have several cycles of latency and every round
// depends on the previous one); two independent streams interleaved in one thread fill that
// latency, so both contexts cost about what one costs with OpenSSL.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace dupfs::chain {

// Whether this CPU has the instructions s2k_sha1_ni needs (SHA and SSE4.1).
bool sha1_ni_available();

// Fills `key` (1 to 40 octets) the way RFC 4880 §3.7.1 does with SHA1: octets 0..19 are
// SHA1(P), octets 20..39 are SHA1(0x00 || P), where P is the first `length` octets of
// `pattern` repeated (salt||passphrase; the caller has already raised `length` to the
// pattern's size when the coded count is smaller). Both digests are computed in one pass.
// False, with `key` untouched, when the CPU lacks SHA-NI, when key is empty or longer than 40
// octets, or when `pattern` is empty and `length` is not 0: the caller then uses OpenSSL.
bool s2k_sha1_ni(std::string_view pattern, uint64_t length, std::span<uint8_t> key);

}  // namespace dupfs::chain

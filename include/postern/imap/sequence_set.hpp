// imap/sequence_set.hpp — IMAP message sets (RFC 9051 9 "sequence-set",
// RFC 5182 "$").
// "*" stays symbolic (seq_star, which is 0: no message number or UID is 0),
// so one parsed set serves both message sequence numbers and UIDs; the
// session resolves it against the mailbox size or the largest UID in use
// (RFC 9051 6.4.8: "*" is the largest number in use). Ranges keep the order
// the client wrote ("5:3" is 3:5, RFC 9051 9 seq-range); resolve() sorts
// and merges. "$" (SEARCHRES, RFC 5182 2.1) is accepted only as the whole
// set and sets saved. The number of ranges is bounded by the caller.
// Pure; a plain value type; any thread.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "postern/util/result.hpp"

namespace postern::imap {

constexpr std::uint32_t seq_star = 0; // "*"

struct seq_range {
    std::uint32_t first = 0; // as written; seq_star for "*"
    std::uint32_t last = 0;  // == first for a single number

    friend bool operator==(const seq_range&, const seq_range&) = default;
};

struct sequence_set {
    std::vector<seq_range> ranges;
    bool saved = false; // "$": the result saved by SEARCH RETURN (SAVE)

    friend bool operator==(const sequence_set&, const sequence_set&) = default;
};

// Default bound on ranges in one set (Dovecot and Cyrus accept thousands:
// clients send long UID lists after a resync).
constexpr std::size_t default_max_ranges = 10000;

// The whole of s must be a sequence-set. errc::syntax for 0, "1:", ",",
// empty elements, numbers past 4294967295, "$" with anything else;
// errc::limit for more than max_ranges ranges.
util::result<sequence_set> parse_sequence_set(std::string_view s, std::size_t max_ranges = default_max_ranges);

// Inclusive ranges with "*" replaced by star (the highest number in use;
// 0 for an empty mailbox, which leaves nothing but ranges of "*"), each
// first <= last, sorted and merged. A saved set resolves to nothing: the
// session substitutes its saved result.
std::vector<std::pair<std::uint32_t, std::uint32_t>> resolve(const sequence_set& s, std::uint32_t star);

// Whether n lies in s once "*" is star.
bool contains(const sequence_set& s, std::uint32_t n, std::uint32_t star) noexcept;

} // namespace postern::imap

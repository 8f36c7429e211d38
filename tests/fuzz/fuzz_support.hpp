// tests/fuzz/fuzz_support.hpp — helpers shared by the libFuzzer targets.
// POSTERN_FUZZ_CHECK(cond, what) aborts with a message when an invariant of
// the code under test does not hold, so libFuzzer reports it as a crash and
// keeps the input. byte_source hands out the input's bytes as decisions
// (split points, verdicts) and yields zeros once exhausted, so every input
// is a complete, deterministic run. Single-threaded, like libFuzzer's driver.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#define POSTERN_FUZZ_CHECK(cond, what)                                                            \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            std::fprintf(stderr, "fuzz invariant failed at %s:%d: %s (%s)\n", __FILE__, __LINE__, \
                         #cond, what);                                                           \
            std::abort();                                                                        \
        }                                                                                        \
    } while (false)

namespace postern::fuzz {

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) noexcept
{
    return {reinterpret_cast<const char*>(data), size};
}

// Decisions drawn from a fixed slice of the input.
class byte_source {
public:
    explicit byte_source(std::string_view bytes) noexcept : bytes_(bytes) {}

    std::uint8_t byte() noexcept
    {
        if (pos_ >= bytes_.size())
            return 0;
        return static_cast<std::uint8_t>(bytes_[pos_++]);
    }
    // Uniform enough in [0, n) for n <= 256; 0 when n == 0.
    std::size_t below(std::size_t n) noexcept { return n == 0 ? 0 : byte() % n; }
    bool flag() noexcept { return (byte() & 1U) != 0; }
    bool empty() const noexcept { return pos_ >= bytes_.size(); }

private:
    std::string_view bytes_;
    std::size_t pos_ = 0;
};

// splitmix64, for split points that need more than a byte of range.
class prng {
public:
    explicit prng(std::uint64_t seed) noexcept : s_(seed) {}
    std::uint64_t next() noexcept
    {
        std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    std::size_t below(std::size_t n) noexcept { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }

private:
    std::uint64_t s_;
};

// A length for the next write of a stream: mostly short pieces (a line or
// less), sometimes one octet, sometimes everything that is left.
inline std::size_t chunk_length(prng& rng, std::size_t left) noexcept
{
    if (left == 0)
        return 0;
    switch (rng.below(8)) {
    case 0:
        return 1;
    case 1:
        return left;
    case 2:
        return 1 + rng.below(std::min<std::size_t>(left, 4096));
    default:
        return 1 + rng.below(std::min<std::size_t>(left, 64));
    }
}

// CR and LF occur only as CRLF pairs.
inline bool crlf_only(std::string_view s) noexcept
{
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n'))
            return false;
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            return false;
    }
    return true;
}

inline bool ends_with_crlf(std::string_view s) noexcept
{
    return s.size() >= 2 && s.substr(s.size() - 2) == "\r\n";
}

// The layout the session targets share: one selector byte (configuration
// variants), four bytes of PRNG seed (write split points, answers), then the
// byte stream itself. nullopt for inputs too short to carry the header.
struct session_input {
    std::uint8_t selector;
    std::uint64_t seed;
    std::string_view stream;
};

inline std::optional<session_input> split_session_input(const std::uint8_t* data, std::size_t size) noexcept
{
    if (size < 5)
        return std::nullopt;
    std::uint64_t seed = 0;
    for (std::size_t i = 1; i < 5; ++i)
        seed = (seed << 8) | data[i];
    return session_input{data[0], seed, as_view(data + 5, size - 5)};
}

} // namespace postern::fuzz

// fuzz_smtp_command — smtp::parse_command and smtp::parse_params on one
// command line (without its CRLF), as server_session hands them a line.
// Invariants: a recognised verb's name equals the line's first word
// (case-insensitively); every view returned points into the line; every
// accepted parameter has a valid keyword and, with "=", a valid value.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.hpp"

#include "postern/smtp/command.hpp"
#include "postern/util/strings.hpp"

namespace {

using namespace postern;

bool inside(std::string_view part, std::string_view whole) noexcept
{
    if (part.empty())
        return true;
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool keyword_ok(std::string_view k) noexcept
{
    if (k.empty())
        return false;
    for (std::size_t i = 0; i < k.size(); ++i) {
        const char c = k[i];
        const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(i > 0 && c == '-'))
            return false;
    }
    return true;
}

void check_params(std::string_view s)
{
    auto p = smtp::parse_params(s);
    if (!p)
        return;
    for (const auto& param : *p) {
        POSTERN_FUZZ_CHECK(inside(param.keyword, s), "keyword outside the input");
        POSTERN_FUZZ_CHECK(inside(param.value, s), "value outside the input");
        POSTERN_FUZZ_CHECK(keyword_ok(param.keyword), "invalid keyword accepted");
        if (!param.has_value) {
            POSTERN_FUZZ_CHECK(param.value.empty(), "value without '='");
            continue;
        }
        POSTERN_FUZZ_CHECK(!param.value.empty(), "empty value accepted");
        for (unsigned char c : param.value)
            POSTERN_FUZZ_CHECK(c >= 33 && c != '=' && c != 127, "invalid value octet accepted");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view line = fuzz::as_view(data, size);
    if (auto c = smtp::parse_command(line)) {
        POSTERN_FUZZ_CHECK(c->spec != nullptr, "command without spec");
        POSTERN_FUZZ_CHECK(inside(c->args, line), "args outside the input");
        const auto sp = line.find(' ');
        POSTERN_FUZZ_CHECK(util::iequals(line.substr(0, sp), c->spec->name), "verb does not match the line");
        check_params(c->args);
    }
    check_params(line);
    return 0;
}

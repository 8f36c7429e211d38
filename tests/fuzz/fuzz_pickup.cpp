// fuzz_pickup — what `postern sendmail` and the pickup service parse from
// local users: queue::decode_pickup on the input as a pickup file (a file
// that decodes encodes to one that decodes the same), and the input as
// standard input (mail::local_input, split where the first byte says, "."
// ending it when its low bit is set), as an address list, as a -F full
// name. Invariants: what local_input returns and separate_body /
// remove_header_field make of it has CR and LF only as CRLF and no line
// over 998 characters (DESIGN promise 4); a removed field is gone; an
// added From: stays on one line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"

#include "postern/mail/header.hpp"
#include "postern/mail/submission.hpp"
#include "postern/queue/pickup_file.hpp"

using namespace postern;

namespace {

bool crlf_only(std::string_view m)
{
    for (std::size_t i = 0; i < m.size(); ++i) {
        if (m[i] == '\r' && (i + 1 >= m.size() || m[i + 1] != '\n'))
            return false;
        if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
            return false;
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto in = fuzz::as_view(data, size);

    if (auto f = queue::decode_pickup(in)) {
        const auto text = queue::encode_pickup(f->header, f->message);
        auto again = queue::decode_pickup(text);
        POSTERN_FUZZ_CHECK(again.has_value(), text.c_str());
        POSTERN_FUZZ_CHECK(again->header == f->header && again->message == f->message, "round trip changed it");
    }

    const bool dot_ends = size > 0 && (data[0] & 1) != 0;
    const std::size_t split = size > 1 ? data[1] % (size + 1) : 0;
    mail::local_input input(dot_ends, 1 << 16);
    if (input.feed(in.substr(0, split)))
        input.feed(in.substr(split));
    input.finish();
    const auto& m = input.message();
    POSTERN_FUZZ_CHECK(crlf_only(m), "local_input left a bare CR or LF");
    POSTERN_FUZZ_CHECK(m.size() <= (1 << 16) + mail::max_line_length + 2, "over the size limit");
    const auto body = mail::separate_body(m);
    POSTERN_FUZZ_CHECK(crlf_only(body), "separate_body broke the line ends");
    const auto no_bcc = mail::remove_header_field(body, "Bcc");
    POSTERN_FUZZ_CHECK(crlf_only(no_bcc), "remove_header_field broke the line ends");
    POSTERN_FUZZ_CHECK(!mail::has_header_field(no_bcc, "Bcc"), "Bcc is still there");
    for (const auto& v : mail::header_field_values(body, "To"))
        (void)mail::parse_address_list(v, "h.test");

    const auto list = mail::parse_address_list(in, "h.test");
    for (const auto& a : list.addresses)
        POSTERN_FUZZ_CHECK(mail::parse_address(a.str()).has_value(), "an address that does not parse back");

    const auto from = mail::from_field(in, mail::address{"alice", "h.test"});
    POSTERN_FUZZ_CHECK(from.find_first_of("\r\n") == std::string::npos, "a From: over several lines");
    return 0;
}

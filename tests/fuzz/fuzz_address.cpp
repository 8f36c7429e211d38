// fuzz_address — mail::parse_path (reverse and forward, with and without
// SMTPUTF8) and mail::parse_address on the input.
// Invariants checked (mail/address.hpp): the limits of a parsed address
// (local part <= 64, domain <= 255, path <= 256 octets); rest is the tail of
// the input; without SMTPUTF8 only ASCII addresses pass; "<>" only as a
// reverse path; SMTPUTF8 and the forward kind only ever accept more; and a
// parsed address goes back on the wire (str()) as text that parses to the
// same address.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"

#include "postern/mail/address.hpp"

namespace {

using namespace postern;
using mail::path_kind;

bool same(const mail::address& a, const mail::address& b)
{
    return a.local_part == b.local_part && a.domain == b.domain;
}

void check_address(const mail::address& a, bool smtputf8)
{
    POSTERN_FUZZ_CHECK(!a.local_part.empty(), "empty local part");
    POSTERN_FUZZ_CHECK(a.local_part.size() <= 64, "local part over 64 octets");
    POSTERN_FUZZ_CHECK(a.domain.size() <= 255, "domain over 255 octets");
    POSTERN_FUZZ_CHECK(mail::is_valid_utf8(a.local_part) && mail::is_valid_utf8(a.domain), "invalid UTF-8 kept");
    if (!smtputf8)
        POSTERN_FUZZ_CHECK(a.is_ascii(), "8-bit address without SMTPUTF8");
    (void)mail::has_routing_chars(a.local_part);
    if (a.domain.empty()) {
        POSTERN_FUZZ_CHECK(a.local_part == "postmaster", "domain-less address other than postmaster");
        return;
    }
    // The bare form (configuration files) re-parses to the same address.
    const auto text = a.str();
    auto again = mail::parse_address(text);
    POSTERN_FUZZ_CHECK(again.has_value(), text.c_str());
    POSTERN_FUZZ_CHECK(same(*again, a), text.c_str());
}

void check_path(std::string_view in, path_kind kind, bool smtputf8)
{
    mail::parse_options opt;
    opt.smtputf8 = smtputf8;
    auto r = mail::parse_path(in, kind, opt);
    if (!r)
        return;
    const auto& p = r->value;
    POSTERN_FUZZ_CHECK(r->rest.data() + r->rest.size() == in.data() + in.size(), "rest is not the input's tail");
    POSTERN_FUZZ_CHECK(r->rest.size() < in.size(), "rest is the whole input");
    if (p.null) {
        POSTERN_FUZZ_CHECK(kind == path_kind::reverse, "null forward path");
        POSTERN_FUZZ_CHECK(p.addr.empty(), "null path with an address");
        POSTERN_FUZZ_CHECK(p.str() == "<>", "null path not written <>");
        return;
    }
    check_address(p.addr, smtputf8);
    if (p.addr.domain.empty())
        POSTERN_FUZZ_CHECK(kind == path_kind::forward && p.source_route.empty(), "<postmaster> out of place");

    // On the wire again: at most 256 octets, and the same address.
    const auto wire = p.str();
    POSTERN_FUZZ_CHECK(wire.size() <= 256, wire.c_str());
    auto again = mail::parse_path(wire, kind, opt);
    POSTERN_FUZZ_CHECK(again.has_value(), wire.c_str());
    POSTERN_FUZZ_CHECK(!again->value.null && same(again->value.addr, p.addr), wire.c_str());
    POSTERN_FUZZ_CHECK(again->rest.empty(), wire.c_str());

    // Monotonic: SMTPUTF8 and the forward kind accept a superset.
    if (!smtputf8) {
        mail::parse_options utf8;
        utf8.smtputf8 = true;
        auto wide = mail::parse_path(in, kind, utf8);
        POSTERN_FUZZ_CHECK(wide.has_value() && same(wide->value.addr, p.addr), "SMTPUTF8 refused an ASCII path");
    }
    if (kind == path_kind::reverse) {
        auto fwd = mail::parse_path(in, path_kind::forward, opt);
        POSTERN_FUZZ_CHECK(fwd.has_value() && same(fwd->value.addr, p.addr), "forward refused a reverse path");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view in = fuzz::as_view(data, size);
    for (auto kind : {path_kind::reverse, path_kind::forward})
        for (bool utf8 : {false, true})
            check_path(in, kind, utf8);
    if (auto a = mail::parse_address(in)) {
        POSTERN_FUZZ_CHECK(!a->domain.empty(), "bare address without domain");
        check_address(*a, true);
    }
    (void)mail::is_valid_utf8(in);
    return 0;
}

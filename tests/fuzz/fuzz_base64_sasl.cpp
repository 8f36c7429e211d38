// fuzz_base64_sasl — util::base64_decode, auth::decode_plain,
// auth::decode_login_line and auth::decode_login on the input (all of them
// see what an AUTH client sends).
//
// Invariants checked (util/base64.hpp, auth/sasl.hpp): decoding is strict,
// so decode then encode gives the input back, and encode then decode gives
// the bytes back; PLAIN/LOGIN results are never empty, never hold a NUL,
// stay within sasl_max_decoded; a PLAIN message built from parts of the
// input decodes exactly as RFC 4616 says it should.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"

#include "postern/auth/sasl.hpp"
#include "postern/util/base64.hpp"
#include "postern/util/error.hpp"

namespace {

using namespace postern;

void check_value(const std::string& v)
{
    POSTERN_FUZZ_CHECK(!v.empty(), "empty credential accepted");
    POSTERN_FUZZ_CHECK(v.find('\0') == std::string::npos, "NUL in a credential");
    POSTERN_FUZZ_CHECK(v.size() <= auth::sasl_max_decoded, "credential over the limit");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view in = fuzz::as_view(data, size);

    if (auto d = util::base64_decode(in)) {
        POSTERN_FUZZ_CHECK(util::base64_encode(*d) == in, "base64 decoding is not strict");
        POSTERN_FUZZ_CHECK(d->size() == in.size() / 4 * 3 - (in.ends_with("==") ? 2 : in.ends_with("=") ? 1 : 0),
                           "decoded size");
    }
    const auto enc = util::base64_encode(in);
    POSTERN_FUZZ_CHECK(enc.size() == (in.size() + 2) / 3 * 4, "encoded size");
    auto back = util::base64_decode(enc);
    POSTERN_FUZZ_CHECK(back.has_value() && *back == in, "base64 round trip");

    if (auto p = auth::decode_plain(in)) {
        check_value(p->username);
        check_value(p->password);
    }
    if (auto l = auth::decode_login_line(in))
        check_value(*l);
    const auto half = in.size() / 2;
    if (auto l = auth::decode_login(in.substr(0, half), in.substr(half))) {
        check_value(l->username);
        check_value(l->password);
    }

    // PLAIN from parts: authzid NUL authcid NUL passwd, split at the first
    // two octets' values.
    if (size >= 2) {
        const std::string_view body = in.substr(2);
        const std::size_t a = std::min<std::size_t>(data[0] % 16, body.size());
        const std::size_t b = std::min<std::size_t>(a + data[1] % 64, body.size());
        const std::string_view authz = body.substr(0, a);
        const std::string_view user = body.substr(a, b - a);
        const std::string_view pass = body.substr(b);
        std::string msg(authz);
        msg += '\0';
        msg += user;
        msg += '\0';
        msg += pass;
        const auto r = auth::decode_plain(util::base64_encode(msg));
        const bool nul_free = msg.size() == authz.size() + user.size() + pass.size() + 2 &&
                              authz.find('\0') == std::string_view::npos &&
                              user.find('\0') == std::string_view::npos && pass.find('\0') == std::string_view::npos;
        if (!nul_free || user.empty() || pass.empty()) {
            POSTERN_FUZZ_CHECK(!r, "malformed PLAIN accepted");
        } else if (msg.size() > auth::sasl_max_decoded) {
            POSTERN_FUZZ_CHECK(!r && r.error() == util::errc::too_long, "oversized PLAIN not too_long");
        } else if (!authz.empty() && authz != user) {
            POSTERN_FUZZ_CHECK(!r && r.error() == util::errc::refused, "proxy authorization not refused");
        } else {
            POSTERN_FUZZ_CHECK(r.has_value() && r->username == user && r->password == pass, "valid PLAIN refused");
        }
    }
    return 0;
}

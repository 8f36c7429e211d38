#include "postern/auth/sasl.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "postern/util/base64.hpp"
#include "postern/util/error.hpp"

namespace postern::auth {

namespace {

// Longest base64 text that can decode to sasl_max_decoded octets.
constexpr std::size_t max_encoded = (sasl_max_decoded + 2) / 3 * 4;

util::result<std::string> decode_bounded(std::string_view response)
{
    if (response.size() > max_encoded)
        return util::errc::too_long;
    auto r = util::base64_decode(response);
    if (r && r->size() > sasl_max_decoded)
        return util::errc::too_long;
    return r;
}

} // namespace

util::result<sasl_credentials> decode_plain(std::string_view response)
{
    auto decoded = decode_bounded(response);
    if (!decoded)
        return decoded.error();
    // RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd;
    // none of the three contains a NUL.
    const std::string_view m = *decoded;
    const auto first = m.find('\0');
    if (first == std::string_view::npos)
        return util::errc::syntax;
    const auto second = m.find('\0', first + 1);
    if (second == std::string_view::npos || m.find('\0', second + 1) != std::string_view::npos)
        return util::errc::syntax;
    const auto authzid = m.substr(0, first);
    const auto authcid = m.substr(first + 1, second - first - 1);
    const auto passwd = m.substr(second + 1);
    if (authcid.empty() || passwd.empty())
        return util::errc::syntax;
    if (!authzid.empty() && authzid != authcid)
        return util::errc::refused;
    return sasl_credentials{std::string(authcid), std::string(passwd)};
}

util::result<std::string> decode_login_line(std::string_view response)
{
    auto decoded = decode_bounded(response);
    if (!decoded)
        return decoded.error();
    if (decoded->empty() || decoded->find('\0') != std::string::npos)
        return util::errc::syntax;
    return decoded;
}

util::result<sasl_credentials> decode_login(std::string_view username_line, std::string_view password_line)
{
    auto user = decode_login_line(username_line);
    if (!user)
        return user.error();
    auto pass = decode_login_line(password_line);
    if (!pass)
        return pass.error();
    return sasl_credentials{std::move(*user), std::move(*pass)};
}

} // namespace postern::auth

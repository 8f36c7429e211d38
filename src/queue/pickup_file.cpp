#include "postern/queue/pickup_file.hpp"

#include <limits>

#include <nlohmann/json.hpp>

#include "postern/mail/address.hpp"
#include "postern/util/error.hpp"

namespace postern::queue {

namespace {

using json = nlohmann::json;

// The header line is small; anything longer is no pickup file of ours.
constexpr std::size_t max_header_line = 65536;
constexpr std::size_t max_recipients = 100000;

// RFC 5322 2.1, DESIGN promise 4: CR and LF only as CRLF.
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

bool is_address(const std::string& s)
{
    return static_cast<bool>(mail::parse_address(s));
}

util::result<pickup_header> read_header(const json& j)
{
    const auto corrupt = util::make_error_code(util::errc::corrupt);
    if (!j.is_object() || !j.contains("version") || !j["version"].is_number_integer())
        return corrupt;
    if (j["version"].get<std::int64_t>() != pickup_version)
        return util::make_error_code(util::errc::unsupported_version);
    for (const auto& [key, value] : j.items()) {
        (void)value;
        if (key != "version" && key != "sender" && key != "recipients" && key != "uid" && key != "login" &&
            key != "time" && key != "full_name")
            return corrupt;
    }
    pickup_header h;
    const auto& sender = j.value("sender", json());
    const auto& rcpts = j.value("recipients", json());
    const auto& uid = j.value("uid", json());
    const auto& login = j.value("login", json());
    const auto& time = j.value("time", json());
    const auto& full_name = j.value("full_name", json(""));
    if (!sender.is_string() || !rcpts.is_array() || rcpts.empty() || rcpts.size() > max_recipients ||
        !uid.is_number_unsigned() || !login.is_string() || !time.is_number_integer() || !full_name.is_string())
        return corrupt;
    if (uid.get<std::uint64_t>() > std::numeric_limits<std::uint32_t>::max())
        return corrupt;
    h.sender = sender.get<std::string>();
    if (!h.sender.empty() && !is_address(h.sender))
        return corrupt;
    for (const auto& r : rcpts) {
        if (!r.is_string() || !is_address(r.get<std::string>()))
            return corrupt;
        h.recipients.push_back(r.get<std::string>());
    }
    h.uid = static_cast<std::uint32_t>(uid.get<std::uint64_t>());
    h.login = login.get<std::string>();
    h.time = time.get<std::int64_t>();
    h.full_name = full_name.get<std::string>();
    if (h.login.empty())
        return corrupt;
    return h;
}

} // namespace

std::string encode_pickup(const pickup_header& h, std::string_view message)
{
    // Ordered: "version" comes first, for a human reading the file.
    nlohmann::ordered_json j = {{"version", pickup_version}, {"sender", h.sender}, {"recipients", h.recipients},
              {"uid", h.uid},   {"login", h.login},   {"time", h.time},
              {"full_name", h.full_name}};
    auto out = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    out += '\n';
    out.append(message);
    return out;
}

util::result<pickup_file> decode_pickup(std::string_view bytes)
{
    const auto corrupt = util::make_error_code(util::errc::corrupt);
    auto eol = bytes.find('\n');
    if (eol == std::string_view::npos || eol > max_header_line)
        return corrupt;
    auto j = json::parse(bytes.substr(0, eol), nullptr, false);
    if (j.is_discarded())
        return corrupt;
    auto h = read_header(j);
    if (!h)
        return h.error();
    pickup_file f{std::move(*h), std::string(bytes.substr(eol + 1))};
    if (!crlf_only(f.message))
        return corrupt;
    return f;
}

} // namespace postern::queue

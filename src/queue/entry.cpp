#include "postern/queue/entry.hpp"

#include <nlohmann/json.hpp>

namespace postern::queue {

namespace {

using json = nlohmann::json;

const char* state_name(rcpt_state s)
{
    switch (s) {
    case rcpt_state::pending: return "pending";
    case rcpt_state::done: return "done";
    case rcpt_state::bounced: return "bounced";
    }
    return "pending";
}

bool state_from(std::string_view s, rcpt_state& out)
{
    for (auto st : {rcpt_state::pending, rcpt_state::done, rcpt_state::bounced})
        if (s == state_name(st)) {
            out = st;
            return true;
        }
    return false;
}

} // namespace

bool entry::all_final() const noexcept
{
    for (const auto& r : recipients)
        if (r.state == rcpt_state::pending)
            return false;
    return true;
}

std::string encode_envelope(const entry& e)
{
    json rcpts = json::array();
    for (const auto& r : e.recipients)
        rcpts.push_back({{"address", r.address},
                         {"state", state_name(r.state)},
                         {"attempts", r.attempts},
                         {"next_attempt", r.next_attempt},
                         {"last_error", r.last_error}});
    json j = {{"version", envelope_version},
              {"id", e.id},
              {"sender", e.sender},
              {"received_at", e.received_at},
              {"size", e.size},
              {"client_ip", e.client_ip},
              {"helo", e.helo},
              {"smtputf8", e.smtputf8},
              {"eight_bit", e.eight_bit},
              {"recipients", std::move(rcpts)}};
    // Addresses may hold any octet a client sent (SMTPUTF8); replace rather
    // than throw on invalid UTF-8 — the parser admitted only valid UTF-8.
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

util::result<entry> decode_envelope(std::string_view text)
{
    auto j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return util::errc::corrupt;
    auto v = j.find("version");
    if (v == j.end() || !v->is_number_integer())
        return util::errc::corrupt;
    if (v->get<int>() != envelope_version)
        return util::errc::unsupported_version;
    try {
        entry e;
        e.id = j.at("id").get<std::string>();
        e.sender = j.at("sender").get<std::string>();
        e.received_at = j.at("received_at").get<std::int64_t>();
        e.size = j.at("size").get<std::uint64_t>();
        e.client_ip = j.at("client_ip").get<std::string>();
        e.helo = j.at("helo").get<std::string>();
        e.smtputf8 = j.at("smtputf8").get<bool>();
        e.eight_bit = j.at("eight_bit").get<bool>();
        for (const auto& r : j.at("recipients")) {
            recipient rc;
            rc.address = r.at("address").get<std::string>();
            if (!state_from(r.at("state").get<std::string>(), rc.state))
                return util::errc::corrupt;
            rc.attempts = r.at("attempts").get<std::uint32_t>();
            rc.next_attempt = r.at("next_attempt").get<std::int64_t>();
            rc.last_error = r.at("last_error").get<std::string>();
            e.recipients.push_back(std::move(rc));
        }
        if (e.recipients.empty())
            return util::errc::corrupt;
        return e;
    } catch (const json::exception&) {
        // nlohmann reports wrong types by throwing; at this boundary that is a value.
        return util::errc::corrupt;
    }
}

} // namespace postern::queue

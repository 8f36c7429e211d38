#include "postern/queue/entry.hpp"

#include <cstdint>

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
    for (const auto& r : e.recipients) {
        json jr = {{"address", r.address},
                   {"state", state_name(r.state)},
                   {"attempts", r.attempts},
                   {"next_attempt", r.next_attempt},
                   {"last_error", r.last_error}};
        // DSN fields only when given: records stay as they were without them.
        if (r.notify != 0)
            jr["notify"] = r.notify;
        if (!r.orcpt.empty())
            jr["orcpt"] = r.orcpt;
        rcpts.push_back(std::move(jr));
    }
    json j = {{"version", envelope_version},
              {"id", e.id},
              {"sender", e.sender},
              {"received_at", e.received_at},
              {"size", e.size},
              {"client_ip", e.client_ip},
              {"helo", e.helo},
              {"smtputf8", e.smtputf8},
              {"eight_bit", e.eight_bit},
              {"delay_warned", e.delay_warned},
              {"held", e.held},
              {"recipients", std::move(rcpts)}};
    if (e.binary)
        j["binarymime"] = true;
    if (e.ret != 0)
        j["ret"] = e.ret;
    if (!e.envid.empty())
        j["envid"] = e.envid;
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
    if (!v->is_number_unsigned() || v->get<std::uint64_t>() != envelope_version)
        return util::errc::unsupported_version;
    // Exact types only: nlohmann would quietly turn -1 into 4294967295 or
    // 12.5 into 12, and a damaged record must be quarantined, not guessed at.
    bool ok = true;
    auto str = [&](const json& o, const char* k) {
        auto it = o.find(k);
        if (it == o.end() || !it->is_string()) {
            ok = false;
            return std::string();
        }
        return it->get<std::string>();
    };
    auto uint = [&](const json& o, const char* k, std::uint64_t max) {
        auto it = o.find(k);
        if (it == o.end() || !it->is_number_unsigned() || it->get<std::uint64_t>() > max) {
            ok = false;
            return std::uint64_t{0};
        }
        return it->get<std::uint64_t>();
    };
    auto boolean = [&](const json& o, const char* k) {
        auto it = o.find(k);
        if (it == o.end() || !it->is_boolean()) {
            ok = false;
            return false;
        }
        return it->get<bool>();
    };
    constexpr auto max_time = static_cast<std::uint64_t>(INT64_MAX);
    entry e;
    e.id = str(j, "id");
    e.sender = str(j, "sender");
    e.received_at = static_cast<std::int64_t>(uint(j, "received_at", max_time));
    e.size = uint(j, "size", UINT64_MAX);
    e.client_ip = str(j, "client_ip");
    e.helo = str(j, "helo");
    e.smtputf8 = boolean(j, "smtputf8");
    e.eight_bit = boolean(j, "eight_bit");
    // Added later within version 1: absent means false.
    if (j.contains("delay_warned"))
        e.delay_warned = boolean(j, "delay_warned");
    if (j.contains("held"))
        e.held = boolean(j, "held");
    if (j.contains("binarymime"))
        e.binary = boolean(j, "binarymime");
    if (j.contains("ret"))
        e.ret = static_cast<std::uint8_t>(uint(j, "ret", 2));
    if (j.contains("envid"))
        e.envid = str(j, "envid");
    auto rs = j.find("recipients");
    if (rs == j.end() || !rs->is_array() || rs->empty())
        return util::errc::corrupt;
    for (const auto& r : *rs) {
        if (!r.is_object())
            return util::errc::corrupt;
        recipient rc;
        rc.address = str(r, "address");
        if (!state_from(str(r, "state"), rc.state))
            return util::errc::corrupt;
        rc.attempts = static_cast<std::uint32_t>(uint(r, "attempts", UINT32_MAX));
        rc.next_attempt = static_cast<std::int64_t>(uint(r, "next_attempt", max_time));
        rc.last_error = str(r, "last_error");
        if (r.contains("notify"))
            rc.notify = static_cast<std::uint8_t>(uint(r, "notify", 15));
        if (r.contains("orcpt"))
            rc.orcpt = str(r, "orcpt");
        e.recipients.push_back(std::move(rc));
    }
    if (!ok)
        return util::errc::corrupt;
    return e;
}

} // namespace postern::queue

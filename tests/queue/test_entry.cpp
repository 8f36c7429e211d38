#include "postern/queue/entry.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "postern/util/error.hpp"

using namespace postern::queue;
using postern::util::errc;
using json = nlohmann::json;

namespace {

std::error_code err(errc e)
{
    return make_error_code(e);
}

// An entry with every field set to a non-default value and one recipient in
// each of the three states.
entry full_entry()
{
    entry e;
    e.id = "0123456789abcdef";
    e.sender = "sender@example.org";
    e.received_at = 1700000000;
    e.size = 4242;
    e.client_ip = "2001:db8::7";
    e.helo = "client.example.org";
    e.smtputf8 = true;
    e.eight_bit = true;
    e.recipients = {
        {"alice@example.test", rcpt_state::pending, 0, 0, "", 0, ""},
        {"bob@example.test", rcpt_state::done, 2, 1700000900, "4.3.0 maildir: disk full", 0, ""},
        {"carol@example.test", rcpt_state::bounced, 1, 1700000300, "5.1.1 user unknown", 0, ""},
    };
    return e;
}

// The encoding of full_entry() with one change applied to its JSON.
template <class Change>
std::string mutated(Change change)
{
    auto j = json::parse(encode_envelope(full_entry()));
    change(j);
    return j.dump();
}

} // namespace

TEST_SUITE("queue") {

TEST_CASE("an envelope decodes to exactly the entry that was encoded")
{
    SUBCASE("every field, recipients in all three states")
    {
        auto e = full_entry();
        auto d = decode_envelope(encode_envelope(e));
        REQUIRE(d);
        CHECK(d->id == e.id);
        CHECK(d->sender == e.sender);
        CHECK(d->received_at == e.received_at);
        CHECK(d->size == e.size);
        CHECK(d->client_ip == e.client_ip);
        CHECK(d->helo == e.helo);
        CHECK(d->smtputf8);
        CHECK(d->eight_bit);
        REQUIRE(d->recipients.size() == 3);
        for (std::size_t i = 0; i < 3; ++i) {
            CAPTURE(i);
            CHECK(d->recipients[i].address == e.recipients[i].address);
            CHECK(d->recipients[i].state == e.recipients[i].state);
            CHECK(d->recipients[i].attempts == e.recipients[i].attempts);
            CHECK(d->recipients[i].next_attempt == e.recipients[i].next_attempt);
            CHECK(d->recipients[i].last_error == e.recipients[i].last_error);
        }
        CHECK(*d == e);
    }
    SUBCASE("false flags, the null sender and zero values")
    {
        entry e;
        e.id = "fedcba9876543210";
        e.recipients = {{"x@example.test", rcpt_state::pending, 0, 0, "", 0, ""}};
        auto d = decode_envelope(encode_envelope(e));
        REQUIRE(d);
        CHECK_FALSE(d->smtputf8);
        CHECK_FALSE(d->eight_bit);
        CHECK(d->sender.empty());
        CHECK(*d == e);
    }
    SUBCASE("UTF-8 addresses (SMTPUTF8)")
    {
        auto e = full_entry();
        e.sender = "用户@例子.测试";
        e.recipients[0].address = "jösé@exämple.test";
        e.recipients[1].address = "ελληνικά@παράδειγμα.δοκιμή";
        auto text = encode_envelope(e);
        CHECK(text.find("jösé@exämple.test") != std::string::npos); // stored as UTF-8, not escaped
        auto d = decode_envelope(text);
        REQUIRE(d);
        CHECK(d->sender == "用户@例子.测试");
        CHECK(d->recipients[0].address == "jösé@exämple.test");
        CHECK(d->recipients[1].address == "ελληνικά@παράδειγμα.δοκιμή");
        CHECK(*d == e);
    }
    SUBCASE("BINARYMIME and the DSN parameters (RFC 3030, RFC 3461)")
    {
        auto e = full_entry();
        e.binary = true;
        e.ret = 2;
        e.envid = "QQ314159";
        e.recipients[0].notify = 1 | 4;
        e.recipients[0].orcpt = "rfc822;Alice@Example.test";
        e.recipients[2].notify = 8;
        auto text = encode_envelope(e);
        auto d = decode_envelope(text);
        REQUIRE(d);
        CHECK(d->binary);
        CHECK(d->ret == 2);
        CHECK(d->envid == "QQ314159");
        CHECK(d->recipients[0].notify == 5);
        CHECK(d->recipients[0].orcpt == "rfc822;Alice@Example.test");
        CHECK(d->recipients[1].notify == 0);
        CHECK(d->recipients[2].notify == 8);
        CHECK(*d == e);
    }
    SUBCASE("a record without the optional fields (as written before them) decodes with their defaults")
    {
        auto j = json::parse(encode_envelope(full_entry()));
        CHECK_FALSE(j.contains("binarymime"));
        CHECK_FALSE(j.contains("ret"));
        CHECK_FALSE(j.contains("envid"));
        CHECK_FALSE(j["recipients"][0].contains("notify"));
        CHECK_FALSE(j["recipients"][0].contains("orcpt"));
        auto d = decode_envelope(j.dump());
        REQUIRE(d);
        CHECK(*d == full_entry());
    }
    SUBCASE("large numbers")
    {
        auto e = full_entry();
        e.size = 4ull << 30;
        e.received_at = 4102444800; // 2100-01-01, past 2^31
        e.recipients[1].attempts = 4000000000u;
        auto d = decode_envelope(encode_envelope(e));
        REQUIRE(d);
        CHECK(*d == e);
    }
}

TEST_CASE("the envelope is written with version 1")
{
    auto j = json::parse(encode_envelope(full_entry()));
    REQUIRE(j.contains("version"));
    CHECK(j["version"] == envelope_version);
    CHECK(envelope_version == 1);
}

TEST_CASE("an envelope of another version is refused as unsupported")
{
    for (int v : {2, 0, -1, 100}) {
        CAPTURE(v);
        auto r = decode_envelope(mutated([v](json& j) { j["version"] = v; }));
        REQUIRE_FALSE(r);
        CHECK(r.error() == err(errc::unsupported_version));
    }
}

TEST_CASE("a version number beyond int range is not mistaken for version 1")
{
    auto r = decode_envelope(mutated([](json& j) { j["version"] = 4294967297ull; }));
    REQUIRE_FALSE(r);
    CHECK(r.error() == err(errc::unsupported_version));
}

TEST_CASE("an envelope missing a field is corrupt")
{
    SUBCASE("a top-level field")
    {
        for (std::string key : {"version", "id", "sender", "received_at", "size", "client_ip", "helo",
                                "smtputf8", "eight_bit", "recipients"}) {
            CAPTURE(key);
            auto r = decode_envelope(mutated([key](json& j) { REQUIRE(j.erase(key) == 1); }));
            REQUIRE_FALSE(r);
            CHECK(r.error() == err(errc::corrupt));
        }
    }
    SUBCASE("a recipient field")
    {
        for (std::string key : {"address", "state", "attempts", "next_attempt", "last_error"}) {
            CAPTURE(key);
            auto r = decode_envelope(mutated([key](json& j) { REQUIRE(j["recipients"][1].erase(key) == 1); }));
            REQUIRE_FALSE(r);
            CHECK(r.error() == err(errc::corrupt));
        }
    }
}

TEST_CASE("an envelope with a field of the wrong type is corrupt")
{
    struct variant {
        std::string pointer;
        json value;
    };
    const std::vector<variant> variants = {
        {"/version", "1"},
        {"/version", 1.5},
        {"/id", 7},
        {"/sender", nullptr},
        {"/received_at", "yesterday"},
        {"/size", "big"},
        {"/size", json::array()},
        {"/client_ip", false},
        {"/helo", json::object()},
        {"/smtputf8", "yes"},
        {"/smtputf8", 1},
        {"/eight_bit", nullptr},
        {"/recipients", "alice@example.test"},
        {"/recipients", 3},
        {"/recipients/0", "alice@example.test"},
        {"/recipients/0/address", 5},
        {"/recipients/0/state", 0},
        {"/recipients/0/attempts", "none"},
        {"/recipients/0/next_attempt", "soon"},
        {"/recipients/0/last_error", json::array()},
    };
    for (const auto& v : variants) {
        CAPTURE(v.pointer);
        CAPTURE(v.value.dump());
        auto r = decode_envelope(mutated([&v](json& j) { j[json::json_pointer(v.pointer)] = v.value; }));
        REQUIRE_FALSE(r);
        CHECK(r.error() == err(errc::corrupt));
    }
}

TEST_CASE("an envelope with an out-of-range or non-integer number is corrupt")
{
    struct variant {
        std::string pointer;
        json value;
    };
    const std::vector<variant> variants = {
        {"/size", -1},
        {"/size", 12.5},
        {"/received_at", 1.5},
        {"/recipients/0/attempts", -1},
        {"/recipients/0/attempts", 2.7},
        {"/recipients/0/attempts", true},
        {"/recipients/0/attempts", 4294967296ull},
        {"/recipients/0/next_attempt", 0.5},
    };
    for (const auto& v : variants) {
        CAPTURE(v.pointer);
        CAPTURE(v.value.dump());
        auto r = decode_envelope(mutated([&v](json& j) { j[json::json_pointer(v.pointer)] = v.value; }));
        CHECK_FALSE(r);
        CHECK(r.error() == err(errc::corrupt));
    }
    SUBCASE("recipients as an object of recipients")
    {
        auto r = decode_envelope(mutated([](json& j) {
            json obj = json::object();
            obj["first"] = j["recipients"][0];
            j["recipients"] = obj;
        }));
        CHECK_FALSE(r);
        CHECK(r.error() == err(errc::corrupt));
    }
}

TEST_CASE("an envelope with a DSN field out of range or of the wrong type is corrupt")
{
    CHECK(decode_envelope(mutated([](json& j) { j["ret"] = 3; })).error() == err(errc::corrupt));
    CHECK(decode_envelope(mutated([](json& j) { j["ret"] = "FULL"; })).error() == err(errc::corrupt));
    CHECK(decode_envelope(mutated([](json& j) { j["envid"] = 7; })).error() == err(errc::corrupt));
    CHECK(decode_envelope(mutated([](json& j) { j["binarymime"] = 1; })).error() == err(errc::corrupt));
    CHECK(decode_envelope(mutated([](json& j) { j["recipients"][0]["notify"] = 16; })).error() ==
          err(errc::corrupt));
    CHECK(decode_envelope(mutated([](json& j) { j["recipients"][0]["orcpt"] = json::array(); })).error() ==
          err(errc::corrupt));
}

TEST_CASE("an envelope with an unknown recipient state is corrupt")
{
    for (std::string state : {"delivered", "PENDING", "", "deferred"}) {
        CAPTURE(state);
        auto r = decode_envelope(mutated([state](json& j) { j["recipients"][2]["state"] = state; }));
        REQUIRE_FALSE(r);
        CHECK(r.error() == err(errc::corrupt));
    }
}

TEST_CASE("an envelope without recipients is corrupt")
{
    auto r = decode_envelope(mutated([](json& j) { j["recipients"] = json::array(); }));
    REQUIRE_FALSE(r);
    CHECK(r.error() == err(errc::corrupt));
}

TEST_CASE("text that is not a JSON object is corrupt")
{
    const std::vector<std::string> texts = {
        "",
        "not json",
        "{\"version\": 1,",
        "[1, 2, 3]",
        "\"version\"",
        "1",
        "null",
        std::string("{\"version\": 1, \"id\": \"\xff\xfe\"}"), // invalid UTF-8
    };
    for (const auto& t : texts) {
        CAPTURE(t);
        auto r = decode_envelope(t);
        REQUIRE_FALSE(r);
        CHECK(r.error() == err(errc::corrupt));
    }
    SUBCASE("a truncated envelope")
    {
        auto text = encode_envelope(full_entry());
        auto r = decode_envelope(std::string_view(text).substr(0, text.size() / 2));
        REQUIRE_FALSE(r);
        CHECK(r.error() == err(errc::corrupt));
    }
}

TEST_CASE("all_final is true only when no recipient is pending")
{
    entry e;
    e.recipients = {{"a@example.test", rcpt_state::done, 0, 0, "", 0, ""},
                    {"b@example.test", rcpt_state::bounced, 0, 0, "", 0, ""}};
    CHECK(e.all_final());
    SUBCASE("one pending recipient among final ones")
    {
        e.recipients.push_back({"c@example.test", rcpt_state::pending, 3, 0, "", 0, ""});
        CHECK_FALSE(e.all_final());
    }
    SUBCASE("only pending recipients")
    {
        for (auto& r : e.recipients)
            r.state = rcpt_state::pending;
        CHECK_FALSE(e.all_final());
    }
    SUBCASE("no recipients at all")
    {
        e.recipients.clear();
        CHECK(e.all_final());
    }
}

}

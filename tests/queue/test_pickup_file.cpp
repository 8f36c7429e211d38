#include "postern/queue/pickup_file.hpp"

#include <ostream>
#include <string>

#include <doctest/doctest.h>

#include "postern/util/error.hpp"

using namespace postern::queue;
using postern::util::errc;

namespace {

pickup_header sample()
{
    pickup_header h;
    h.sender = "alice@h.test";
    h.recipients = {"bob@example.test", "carl@remote.test"};
    h.uid = 1000;
    h.login = "alice";
    h.time = 1795000000;
    h.full_name = "Alice L.";
    return h;
}

std::string with_header(std::string_view json_line, std::string_view message = "Subject: s\r\n\r\nb\r\n")
{
    return std::string(json_line) + "\n" + std::string(message);
}

} // namespace

TEST_SUITE("queue") {

TEST_CASE("a pickup file decodes to what was encoded")
{
    const std::string msg = "Subject: s\r\n\r\nbody\r\n";
    auto bytes = encode_pickup(sample(), msg);
    CHECK(bytes.starts_with("{\"version\":1,"));
    auto f = decode_pickup(bytes);
    REQUIRE(f);
    CHECK(f->header == sample());
    CHECK(f->message == msg);
    SUBCASE("the null sender and an empty message")
    {
        auto h = sample();
        h.sender.clear();
        auto g = decode_pickup(encode_pickup(h, ""));
        REQUIRE(g);
        CHECK(g->header.sender.empty());
        CHECK(g->message.empty());
    }
}

TEST_CASE("a pickup file from another version is refused as such")
{
    auto f = decode_pickup(with_header(R"({"version":2,"sender":"","recipients":["a@b.test"],"uid":0,"login":"root","time":1})"));
    REQUIRE_FALSE(f);
    CHECK(f.error() == errc::unsupported_version);
}

TEST_CASE("malformed pickup files are corrupt: shape, types, addresses, line ends")
{
    const char* headers[] = {
        "",
        "not json",
        "[]",
        R"({"sender":"","recipients":["a@b.test"],"uid":0,"login":"root","time":1})",
        R"({"version":"1","sender":"","recipients":["a@b.test"],"uid":0,"login":"root","time":1})",
        R"({"version":1,"sender":"","recipients":[],"uid":0,"login":"root","time":1})",
        R"({"version":1,"sender":"","recipients":["not an address"],"uid":0,"login":"root","time":1})",
        R"({"version":1,"sender":"bad sender","recipients":["a@b.test"],"uid":0,"login":"root","time":1})",
        R"({"version":1,"sender":"","recipients":["a@b.test"],"uid":-1,"login":"root","time":1})",
        R"({"version":1,"sender":"","recipients":["a@b.test"],"uid":4294967296,"login":"root","time":1})",
        R"({"version":1,"sender":"","recipients":["a@b.test"],"uid":0,"login":"","time":1})",
        R"({"version":1,"sender":"","recipients":["a@b.test"],"uid":0,"login":"root","time":"now"})",
        R"({"version":1,"sender":"","recipients":["a@b.test"],"uid":0,"login":"root","time":1,"extra":1})",
        R"({"version":1,"sender":"","recipients":[7],"uid":0,"login":"root","time":1})",
    };
    for (const char* h : headers) {
        CAPTURE(h);
        auto f = decode_pickup(with_header(h));
        REQUIRE_FALSE(f);
        CHECK(f.error() == errc::corrupt);
    }
    const char* good = R"({"version":1,"sender":"","recipients":["a@b.test"],"uid":0,"login":"root","time":1})";
    CHECK(decode_pickup(with_header(good)));
    SUBCASE("no newline after the header line")
    {
        CHECK_FALSE(decode_pickup(good));
    }
    SUBCASE("bare LF or CR in the message (DESIGN promise 4)")
    {
        CHECK(decode_pickup(with_header(good, "a\nb\r\n")).error() == errc::corrupt);
        CHECK(decode_pickup(with_header(good, "a\rb\r\n")).error() == errc::corrupt);
        CHECK(decode_pickup(with_header(good, "a\r\n\r")).error() == errc::corrupt);
        CHECK(decode_pickup(with_header(good, "\na\r\n")).error() == errc::corrupt);
    }
}

}

#include "postern/log/log.hpp"

#include <cstdint>
#include <cstring>
#include <string>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

using namespace postern;

namespace {

// What the lines written while `emit` runs look like: the log goes to a
// pipe for that time (and back to stderr after).
template <class Emit>
std::string captured(log::format f, Emit emit)
{
    int fds[2];
    REQUIRE(::pipe2(fds, O_NONBLOCK) == 0);
    log::set_fd(fds[1]);
    log::set_format(f);
    emit();
    log::set_format(log::format::text);
    log::set_fd(2);
    ::close(fds[1]);
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
        out.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    return out;
}

} // namespace

TEST_SUITE("log") {

TEST_CASE("a text line is key=value, quoted where a value needs it")
{
    auto out = captured(log::format::text, [] {
        log::info("delivery").kv("id", "0123abcd").kv("detail", "2.0.0 ok \"fine\"").kv("size", std::uint64_t{42});
    });
    CHECK(out.find(" postern[") != std::string::npos);
    CHECK(out.find("severity=info event=delivery id=0123abcd detail=\"2.0.0 ok \\\"fine\\\"\" size=42\n") !=
          std::string::npos);
}

TEST_CASE("a json line is one object with numbers as numbers and every octet escaped into valid JSON")
{
    auto out = captured(log::format::json, [] {
        log::warn("auth")
            .kv("user", "j\xc3\xb6rg")          // UTF-8 stays as it is
            .kv("helo", std::string("a\0b\"\\\x01\xff\xc3", 8)) // NUL, quote, backslash, control, not UTF-8
            .kv("failures", 3)
            .kv("delay", 1.5);
    });
    REQUIRE(!out.empty());
    CHECK(out.back() == '\n');
    CHECK(out.find('\n') == out.size() - 1); // one line
    auto j = nlohmann::json::parse(out); // throws (fails the test) on invalid JSON or UTF-8
    CHECK(j["severity"] == "warn");
    CHECK(j["event"] == "auth");
    CHECK(j["user"] == "j\xc3\xb6rg");
    CHECK(j["helo"] == std::string("a\0b\"\\\x01\xc3\xbf\xc3\x83", 10)); // the stray octets read as U+00FF, U+00C3
    CHECK(j["failures"] == 3);
    CHECK(j["delay"] == 1.5);
    CHECK(j["pid"].is_number_integer());
    CHECK(j["time"].get<std::string>().size() == 24);
}

TEST_CASE("info lines are dropped when not verbose, in both formats")
{
    for (auto f : {log::format::text, log::format::json}) {
        auto out = captured(f, [] {
            log::set_verbose(false);
            log::info("connect").kv("client", "127.0.0.1");
            log::error("commit").kv("error", "disk");
            log::set_verbose(true);
        });
        CHECK(out.find("connect") == std::string::npos);
        CHECK(out.find("commit") != std::string::npos);
    }
}

} // TEST_SUITE

TEST_CASE("syslog priorities are facility mail with the severity mapped")
{
    CHECK(log::syslog_priority(log::severity::info) == (LOG_MAIL | LOG_INFO));
    CHECK(log::syslog_priority(log::severity::warn) == (LOG_MAIL | LOG_WARNING));
    CHECK(log::syslog_priority(log::severity::error) == (LOG_MAIL | LOG_ERR));
    CHECK(log::syslog_priority(log::severity::fatal) == (LOG_MAIL | LOG_CRIT));
    CHECK(log::syslog_priority(log::severity::panic) == (LOG_MAIL | LOG_CRIT));
}

TEST_CASE("with syslog each line is one datagram in syslog(3)'s local format")
{
    char dir[] = "/tmp/postern-log-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string path = std::string(dir) + "/log";
    int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(s >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(s, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(log::set_syslog(path));
    log::warn("syslog_test").kv("id", "0123456789abcdef").kv("n", 3);
    char buf[2048];
    const auto n = ::recv(s, buf, sizeof buf, MSG_DONTWAIT);
    REQUIRE(n > 0);
    const std::string got(buf, static_cast<std::size_t>(n));
    CAPTURE(got);
    const auto prefix = "<" + std::to_string(LOG_MAIL | LOG_WARNING) + ">";
    CHECK(got.rfind(prefix, 0) == 0);
    // "<28>Nov 26 06:50:31 postern[4711]: severity=warn event=…", no newline
    CHECK(got.find(" postern[" + std::to_string(::getpid()) + "]: severity=warn event=syslog_test id=0123456789abcdef n=3") ==
          prefix.size() + 15);
    CHECK(got.back() != '\n');

    SUBCASE("when the socket is gone, lines go to the descriptor")
    {
        ::close(s);
        ::unlink(path.c_str());
        auto out = captured(log::format::text, [] { log::error("syslog_gone").kv("k", "v"); });
        CHECK(out.find("postern: severity=error event=syslog_gone k=v\n") != std::string::npos);
        s = -1;
    }
    log::set_syslog("");
    if (s >= 0)
        ::close(s);
    ::unlink(path.c_str());
    ::rmdir(dir);
}

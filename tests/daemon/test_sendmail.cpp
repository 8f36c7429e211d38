#include "postern/daemon/sendmail.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

using namespace postern::daemon;

namespace {

sendmail_parse parse(std::vector<std::string_view> args)
{
    return parse_sendmail_args(args);
}

} // namespace

TEST_SUITE("daemon") {

TEST_CASE("sendmail arguments: recipients, -t, -i and -oi, -f and -F in both spellings")
{
    auto p = parse({"-t", "-oi", "-f", "me@x.test", "-FAlice L.", "bob@example.test", "carl"});
    REQUIRE(p.error.empty());
    CHECK(p.options.extract);
    CHECK_FALSE(p.options.dot_ends);
    REQUIRE(p.options.sender);
    CHECK(*p.options.sender == "me@x.test");
    CHECK(p.options.full_name == "Alice L.");
    CHECK(p.options.recipients == std::vector<std::string>{"bob@example.test", "carl"});

    auto q = parse({"-fme@x.test", "-F", "Name", "-i", "r@x.test"});
    REQUIRE(q.error.empty());
    CHECK(*q.options.sender == "me@x.test");
    CHECK(q.options.full_name == "Name");
    CHECK_FALSE(q.options.dot_ends);
    CHECK_FALSE(q.options.extract);

    auto d = parse({"r@x.test"});
    CHECK(d.options.dot_ends); // the default: a "." line ends the input
    CHECK_FALSE(d.options.sender);
    CHECK_FALSE(d.options.config);
}

TEST_CASE("sendmail arguments: grouped flags, -r for -f, --config, -- before recipients")
{
    auto p = parse({"-ti", "-r", "<>", "--config", "/etc/p.json", "--", "-odd@x.test"});
    REQUIRE(p.error.empty());
    CHECK(p.options.extract);
    CHECK_FALSE(p.options.dot_ends);
    CHECK(*p.options.sender == "<>");
    CHECK(*p.options.config == "/etc/p.json");
    CHECK(p.options.recipients == std::vector<std::string>{"-odd@x.test"});
    CHECK(*parse({"--config=/c.json"}).options.config == "/c.json");
    auto g = parse({"-tif", "x@y.test"}); // a value flag ends a group; its value follows
    REQUIRE(g.error.empty());
    CHECK(*g.options.sender == "x@y.test");
    CHECK(g.options.recipients.empty());
}

TEST_CASE("sendmail arguments: harmless common flags are accepted and ignored")
{
    for (std::string_view flag : {"-oem", "-oee", "-oep", "-oeq", "-oew", "-odi", "-odb", "-odq", "-om", "-oo",
                                  "-bm", "-v", "-n", "-U", "-G", "-m"}) {
        CAPTURE(flag);
        auto p = parse({flag, "r@x.test"});
        CHECK(p.error.empty());
        CHECK(p.options.recipients == std::vector<std::string>{"r@x.test"});
        CHECK(p.options.dot_ends);
    }
    auto v = parse({"-B", "8BITMIME", "-N", "never", "-R", "hdrs", "-Venvid", "r@x.test"});
    CHECK(v.error.empty());
    CHECK(v.options.recipients == std::vector<std::string>{"r@x.test"});
}

TEST_CASE("sendmail arguments: unknown flags, other modes and missing values are usage errors")
{
    struct bad {
        std::vector<std::string_view> args;
        std::string_view error;
    };
    const bad cases[] = {
        {{"-x", "r@x.test"}, "unknown option '-x'"},
        {{"-tx"}, "unknown option '-x'"},
        {{"-oZ"}, "unknown option '-oZ'"},
        {{"--verbose"}, "unknown option '--verbose'"},
        {{"-f"}, "option '-f' needs a value"},
        {{"-F"}, "option '-F' needs a value"},
        {{"--config"}, "--config needs a file name"},
        {{"-bs"}, "mode '-bs' is not supported"},
        {{"-bp"}, "mode '-bp' is not supported"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.error);
        auto p = parse(c.args);
        CHECK(p.error.starts_with(c.error));
    }
}

}

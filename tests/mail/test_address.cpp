#include "postern/mail/address.hpp"

#include <cstddef>
#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <string_view>
#include <system_error>

#include <doctest/doctest.h>

#include "postern/util/error.hpp"

using namespace postern::mail;
using postern::util::errc;
using namespace std::string_literals;

namespace {

constexpr parse_options ascii{};
constexpr parse_options utf8{true};

postern::util::result<parsed_path> fwd(std::string_view s, const parse_options& o = ascii)
{
    return parse_path(s, path_kind::forward, o);
}

postern::util::result<parsed_path> rev(std::string_view s, const parse_options& o = ascii)
{
    return parse_path(s, path_kind::reverse, o);
}

std::error_code err(errc e)
{
    return make_error_code(e);
}

// A valid domain name of exactly n octets (labels of at most 63 octets).
std::string domain_of(std::size_t n)
{
    std::string d;
    while (n > 63) {
        d += std::string(61, 'a') + ".";
        n -= 62;
    }
    return d + std::string(n, 'b');
}

} // namespace

TEST_SUITE("mail") {

TEST_CASE("a plain forward path yields its local part and domain, case preserved")
{
    auto r = fwd("<John.Doe+tag@Example.TEST>");
    REQUIRE(r);
    CHECK_FALSE(r->value.null);
    CHECK(r->value.source_route.empty());
    CHECK(r->value.addr.local_part == "John.Doe+tag");
    CHECK(r->value.addr.domain == "Example.TEST");
    CHECK(r->rest.empty());
    CHECK(r->value.addr.is_ascii());
    CHECK_FALSE(r->value.addr.is_address_literal());
}

TEST_CASE("every atext character is accepted in a dot-string local part")
{
    auto r = fwd("<a!#$%&'*+-/=?^_`{|}~.z09@x.test>");
    REQUIRE(r);
    CHECK(r->value.addr.local_part == "a!#$%&'*+-/=?^_`{|}~.z09");
}

TEST_CASE("quoted local parts are stored unquoted with every special character kept")
{
    struct row {
        std::string_view path;
        std::string_view local;
    };
    const row rows[] = {
        {R"(<"john doe"@x.test>)", "john doe"},
        {R"(<"user@other.test"@x.test>)", "user@other.test"},
        {R"(<"a\"b"@x.test>)", "a\"b"},
        {R"(<"a\\b"@x.test>)", "a\\b"},
        {R"(<"a\ b"@x.test>)", "a b"},
        {R"(<"(),:;<>[]"@x.test>)", "(),:;<>[]"},
        {R"(<"a..b."@x.test>)", "a..b."},
        {R"(<"plain"@x.test>)", "plain"},
        {R"(<"\~"@x.test>)", "~"},
    };
    for (const auto& [path, local] : rows) {
        const auto& path_case = path; // clang 14: no structured binding in a lambda (CAPTURE)
        CAPTURE(path_case);
        auto r = fwd(path);
        REQUIRE(r);
        CHECK(r->value.addr.local_part == local);
        CHECK(r->value.addr.domain == "x.test");
        CHECK(r->rest.empty());
    }
}

TEST_CASE("address literals are accepted for IPv4, IPv6 and standardized tags")
{
    const std::string_view literals[] = {
        "[192.0.2.1]",
        "[0.0.0.0]",
        "[255.255.255.255]",
        "[010.001.0.9]", // Snum = 1*3DIGIT: leading zeros are allowed
        "[IPv6:2001:db8::1]",
        "[ipv6:2001:DB8::1]",
        "[IPv6:::1]",
        "[IPv6:::]",
        "[IPv6:1:2:3:4:5:6:7:8]",
        "[IPv6:1::8]",
        "[IPv6:1:2:3:4:5:6::]",
        "[IPv6:::3:4:5:6:7:8]",
        "[IPv6:::ffff:192.0.2.1]",
        "[IPv6:::192.0.2.1]",
        "[IPv6:1:2:3:4:5:6:192.0.2.1]",
        "[IPv6:1:2:3:4::192.0.2.1]",
        "[x-tag:anything-printable!]",
    };
    for (auto lit : literals) {
        CAPTURE(lit);
        auto r = fwd("<user@" + std::string(lit) + ">");
        REQUIRE(r);
        CHECK(r->value.addr.domain == lit);
        CHECK(r->value.addr.is_address_literal());
    }
}

TEST_CASE("a source route is kept aside and the mailbox after ':' is the address")
{
    auto r = fwd("<@a.example,@b.example:user@c.example> NOTIFY=NEVER");
    REQUIRE(r);
    CHECK(r->value.source_route == "@a.example,@b.example");
    CHECK(r->value.addr.local_part == "user");
    CHECK(r->value.addr.domain == "c.example");
    CHECK(r->rest == " NOTIFY=NEVER");
    CHECK(r->value.str() == "<user@c.example>");

    SUBCASE("a single hop works as a reverse path too")
    {
        auto s = rev("<@relay.example:bounce@c.example>");
        REQUIRE(s);
        CHECK(s->value.source_route == "@relay.example");
        CHECK(s->value.addr.str() == "bounce@c.example");
    }
    SUBCASE("route hops must be domain names")
    {
        CHECK(fwd("<@[192.0.2.1]:user@c.example>").error() == err(errc::syntax));
        CHECK(fwd("<@a.example,b.example:user@c.example>").error() == err(errc::syntax));
        CHECK(fwd("<@a.example,xb.example:user@c.example>").error() == err(errc::syntax));
        CHECK(fwd("<@a.example,:user@c.example>").error() == err(errc::syntax));
        CHECK(fwd("<@:user@c.example>").error() == err(errc::syntax));
        CHECK(fwd("<@a.example user@c.example>").error() == err(errc::syntax));
        CHECK(fwd("<@a.example:>").error() == err(errc::syntax));
        CHECK(fwd("<@a.example:postmaster>").error() == err(errc::syntax));
    }
}

TEST_CASE("the null path is accepted as a reverse path and refused as a forward path")
{
    auto r = rev("<>");
    REQUIRE(r);
    CHECK(r->value.null);
    CHECK(r->value.addr.empty());
    CHECK(r->value.str() == "<>");
    CHECK(fwd("<>").error() == err(errc::syntax));
    CHECK(fwd("<>", utf8).error() == err(errc::syntax));
}

TEST_CASE("<postmaster> without a domain is accepted only as a forward path")
{
    for (auto p : {"<postmaster>", "<Postmaster>", "<POSTMASTER>"}) {
        CAPTURE(p);
        auto r = fwd(p);
        REQUIRE(r);
        CHECK(r->value.addr.local_part == "postmaster");
        CHECK(r->value.addr.domain.empty());
        CHECK(r->value.addr.str() == "postmaster");
        CHECK(r->value.str() == "<postmaster>");
        CHECK(rev(p).error() == err(errc::syntax));
    }
    CHECK(fwd("<\"postmaster\">").error() == err(errc::syntax));
    CHECK(fwd("<postmistress>").error() == err(errc::syntax));
    CHECK(fwd("<user>").error() == err(errc::syntax));

    auto withdomain = fwd("<Postmaster@x.test>");
    REQUIRE(withdomain);
    CHECK(withdomain->value.addr.local_part == "Postmaster");
    CHECK(withdomain->value.addr.domain == "x.test");
}

TEST_CASE("what follows the closing bracket is returned untouched in rest")
{
    SUBCASE("mail parameters")
    {
        auto r = rev("<a@x.test> SIZE=100 BODY=8BITMIME");
        REQUIRE(r);
        CHECK(r->rest == " SIZE=100 BODY=8BITMIME");
    }
    SUBCASE("after a null path")
    {
        auto r = rev("<> SIZE=0");
        REQUIRE(r);
        CHECK(r->rest == " SIZE=0");
    }
    SUBCASE("a '>' inside a quoted local part does not close the path")
    {
        auto r = fwd(R"(<"a>b\">"@x.test>  ORCPT=rfc822;x)");
        REQUIRE(r);
        CHECK(r->value.addr.local_part == "a>b\">");
        CHECK(r->rest == "  ORCPT=rfc822;x");
    }
    SUBCASE("a second path is not swallowed")
    {
        auto r = fwd("<a@x.test><b@y.test>");
        REQUIRE(r);
        CHECK(r->value.addr.domain == "x.test");
        CHECK(r->rest == "<b@y.test>");
    }
}

TEST_CASE("open-relay tricks parse as local parts and are flagged by has_routing_chars")
{
    SUBCASE("percent hack")
    {
        auto r = fwd("<user%other.example@local.test>");
        REQUIRE(r);
        CHECK(r->value.addr.local_part == "user%other.example");
        CHECK(r->value.addr.domain == "local.test");
        CHECK(has_routing_chars(r->value.addr.local_part));
    }
    SUBCASE("quoted '@'")
    {
        auto r = fwd(R"(<"user@other.example"@local.test>)");
        REQUIRE(r);
        CHECK(r->value.addr.local_part == "user@other.example");
        CHECK(r->value.addr.domain == "local.test");
        CHECK(has_routing_chars(r->value.addr.local_part));
    }
    SUBCASE("UUCP bang path")
    {
        auto r = fwd("<other.example!user@local.test>");
        REQUIRE(r);
        CHECK(r->value.addr.local_part == "other.example!user");
        CHECK(has_routing_chars(r->value.addr.local_part));
    }
    SUBCASE("source route: the relay check sees the real destination")
    {
        auto r = fwd("<@local.test:user@other.example>");
        REQUIRE(r);
        CHECK(r->value.addr.domain == "other.example");
        CHECK_FALSE(has_routing_chars(r->value.addr.local_part));
    }
    CHECK_FALSE(has_routing_chars("john.doe+tag"));
    CHECK_FALSE(has_routing_chars(""));
}

TEST_CASE("malformed paths are syntax errors")
{
    const std::string bad[] = {
        "",
        "a@x.test",               // no brackets
        "a@x.test>",              // no '<'
        "<a@x.test",              // no '>'
        " <a@x.test>",            // leading space before '<'
        "< a@x.test>",            // whitespace inside the brackets
        "<a@x.test >",
        "<a @x.test>",
        "<a@ x.test>",
        "<a\t@x.test>",
        "<@x.test>",              // empty local part
        R"(<""@x.test>)",         // empty quoted local part
        "<a..b@x.test>",          // double dot
        "<.a@x.test>",            // leading dot
        "<a.@x.test>",            // trailing dot
        "<a@x.test.>",            // trailing dot in the domain
        "<a@.x.test>",
        "<a@x..test>",
        "<a@>",
        "<a@x.test@y.test>",
        "<a@x_y.test>",
        "<a@" + std::string(64, 'l') + ".test>", // label of 64 octets
        "<a@-x.test>",            // hyphen at label edges
        "<a@x-.test>",
        "<a@x.test->",
        "<a\\b@x.test>",          // backslash outside a quoted string
        R"(<a"b"@x.test>)",       // quote in the middle of a dot-string
        R"(<"a".b@x.test>)",      // obsolete mixed local part (RFC 5322 obs-local-part)
        R"(<"ab@x.test>)",        // unterminated quote
        R"(<"ab\"@x.test>)",      // the escaped quote does not terminate
        "<a(comment)@x.test>",
        "<a@[192.0.2.1>",         // unterminated literal
        "<a@[192.0.2.1]x>",
        "<a@x.test:25>",
        "<<a@x.test>>",
        "<a@x.test",
        "<a\0b@x.test>"s,          // NUL byte
        "<a@x\0.test>"s,
        "<a\x01" "b@x.test>",     // control characters
        "<a\x7f@x.test>",
        "<a@x.test\r\n>",
        "<\"a\x01\"@x.test>",      // control characters in a quoted string
        "<\"a\tb\"@x.test>",
        "<\"a\x7f\"@x.test>",
        "<\"a\\\x01\"@x.test>",    // quoted-pair is %d92 %d32-126 only
        "<\"a\\\0\"@x.test>"s,
    };
    for (const auto& p : bad) {
        CAPTURE(p);
        CHECK(fwd(p).error() == err(errc::syntax));
        CHECK(fwd(p, utf8).error() == err(errc::syntax));
    }
}

TEST_CASE("bad address literals are syntax errors")
{
    const std::string_view bad[] = {
        "[]",
        "[256.1.1.1]",
        "[1.2.3]",
        "[1.2.3.4.5]",
        "[1..2.3]",
        "[+1.2.3.4]",
        "[1.2.3.0004]",
        "[1.2.3.-4]",
        "[ 1.2.3.4]",
        "[1.2.3.4 ]",
        "[a.b.c.d]",
        "[IPv6:]",
        "[IPv6:2001:db8::g]",
        "[IPv6:1::2::3]",
        "[IPv6:12345::]",
        "[IPv6:1:2:3:4:5:6:7]",
        "[IPv6:1:2:3:4:5:6:7:8:9]",
        "[IPv6:1:2:3:4:5:6:7::]", // "::" stands for at least two groups (RFC 5321 4.1.3)
        "[IPv6:::2:3:4:5:6:7:8]",
        "[IPv6::1]",
        "[IPv6:1:]",
        "[IPv6::::]",
        "[IPv6:192.0.2.1]",
        "[IPv6:1:2:3:4:5:192.0.2.1]",
        "[IPv6:1:2:3:4:5::192.0.2.1]",
        "[IPv6:::256.0.2.1]",
        "[IPv6:2001:db8::1%eth0]",
        "[IPv6 :2001:db8::1]",
        "[x-tag:]",           // General-address-literal needs 1*dcontent
        "[-:a]",              // Standardized-tag = Ldh-str ends with Let-dig
        "[x-tag:a[b]",
        "[x-tag:a\\b]",
        "[x-tag:a b]",
        "[:a]",
    };
    for (auto lit : bad) {
        CAPTURE(lit);
        CHECK(fwd("<user@" + std::string(lit) + ">").error() == err(errc::syntax));
    }
}

TEST_CASE("RFC 5321 4.5.3.1 size limits give too_long")
{
    SUBCASE("local part: 64 octets as written")
    {
        CHECK(fwd("<" + std::string(64, 'u') + "@x.test>"));
        CHECK(fwd("<" + std::string(65, 'u') + "@x.test>").error() == err(errc::too_long));
        CHECK(fwd("<\"" + std::string(62, 'u') + "\"@x.test>"));
        CHECK(fwd("<\"" + std::string(63, 'u') + "\"@x.test>").error() == err(errc::too_long));
        // Multi-octet characters count in octets: 32 × 2 = 64, 33 × 2 = 66.
        std::string ue;
        for (int i = 0; i < 32; ++i)
            ue += "ü";
        CHECK(fwd("<" + ue + "@x.test>", utf8));
        CHECK(fwd("<" + ue + "ü@x.test>", utf8).error() == err(errc::too_long));
    }
    SUBCASE("domain: 255 octets (a path cannot carry one, so parse_address)")
    {
        const auto d255 = domain_of(255);
        REQUIRE(d255.size() == 255);
        auto a = parse_address("u@" + d255);
        REQUIRE(a);
        CHECK(a->domain == d255);
        CHECK(parse_address("u@" + domain_of(256)).error() == err(errc::too_long));
        CHECK(parse_address("u@[x-tag:" + std::string(248, 'z') + "]").error()
              == err(errc::too_long));
    }
    SUBCASE("path: 256 octets including the brackets")
    {
        const auto local = std::string(64, 'u');
        const auto d = domain_of(256 - 2 - 64 - 1);
        const auto p256 = "<" + local + "@" + d + ">";
        REQUIRE(p256.size() == 256);
        const auto line = p256 + " SIZE=1"; // rest points into it
        auto r = fwd(line);
        REQUIRE(r);
        CHECK(r->value.addr.domain == d);
        CHECK(r->rest == " SIZE=1");
        const auto p257 = "<" + local + "@" + d + "a>";
        REQUIRE(p257.size() == 257);
        CHECK(fwd(p257).error() == err(errc::too_long));
        CHECK(fwd("<u@" + domain_of(256) + ">").error() == err(errc::too_long));
        // The source route counts toward the path length too.
        CHECK(fwd("<@" + domain_of(200) + ":u@" + domain_of(60) + ">").error()
              == err(errc::too_long));
    }
}

TEST_CASE("non-ASCII addresses need SMTPUTF8")
{
    struct row {
        std::string_view path;
        std::string_view local;
        std::string_view domain;
    };
    const row rows[] = {
        {"<用户@例子.测试>", "用户", "例子.测试"},
        {"<jörg@exämple.test>", "jörg", "exämple.test"},
        {"<ascii@exämple.test>", "ascii", "exämple.test"},
        {"<jörg@example.test>", "jörg", "example.test"},
        {"<\"jörg müller\"@x.test>", "jörg müller", "x.test"},
        {"<𝄞.ü@x-ä.test>", "𝄞.ü", "x-ä.test"},
    };
    for (const auto& [path, local, domain] : rows) {
        const auto& path_case = path; // clang 14: no structured binding in a lambda (CAPTURE)
        CAPTURE(path_case);
        auto r = fwd(path, utf8);
        REQUIRE(r);
        CHECK(r->value.addr.local_part == local);
        CHECK(r->value.addr.domain == domain);
        CHECK_FALSE(r->value.addr.is_ascii());
        CHECK(fwd(path).error() == err(errc::needs_smtputf8));
        CHECK(rev(path).error() == err(errc::needs_smtputf8));
    }
    SUBCASE("8-bit where RFC 6531 does not extend the grammar is a syntax error")
    {
        for (auto p : {"<a@[IPv6:ä::1]>", "<a@[x-tag:ä]>", "<\"a\\ä\"@x.test>", "<a@-ä.test>"}) {
            CAPTURE(p);
            CHECK(fwd(p, utf8).error() == err(errc::syntax));
            CHECK(fwd(p).error() == err(errc::syntax));
        }
    }
}

TEST_CASE("invalid UTF-8 is a syntax error with or without SMTPUTF8")
{
    const std::string_view bad[] = {
        "<\xc3\x28@x.test>",         // lead octet without continuation
        "<\xc0\xaf@x.test>",         // overlong '/'
        "<\xed\xa0\x80@x.test>",     // surrogate U+D800
        "<\xf4\x90\x80\x80@x.test>", // above U+10FFFF
        "<\x80@x.test>",             // lone continuation
        "<a@x\xc3.test>",            // truncated in the domain
        "<\"\xff\"@x.test>",         // in a quoted string
    };
    for (auto p : bad) {
        CAPTURE(p);
        CHECK(fwd(p, utf8).error() == err(errc::syntax));
        CHECK(fwd(p).error() == err(errc::syntax));
    }
    CHECK(parse_address("\xc0\xaf@x.test").error() == err(errc::syntax));
}

TEST_CASE("is_valid_utf8 accepts well-formed UTF-8 and rejects every ill-formed kind")
{
    for (auto s : {"", "ascii", "é", "€", "用户", "𝄞", "\xed\x9f\xbf", "\xee\x80\x80",
                   "\xf4\x8f\xbf\xbf", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80"}) {
        CAPTURE(s);
        CHECK(is_valid_utf8(s));
    }
    for (auto s : {"\x80", "\xbf", "\xc3", "\xc3\x28", "\xe2\x82", "\xf0\x9d\x84", "\xc0\xaf",
                   "\xc1\xbf", "\xe0\x80\xaf", "\xe0\x9f\xbf", "\xf0\x80\x80\xaf",
                   "\xf0\x8f\xbf\xbf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80",
                   "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80", "\xfe", "\xff",
                   "a\xc3", "\xc3\xa9\xa9"}) {
        CAPTURE(s);
        CHECK_FALSE(is_valid_utf8(s));
    }
    // Truncation is judged by the view's size, not by what lies beyond it.
    CHECK_FALSE(is_valid_utf8(std::string_view("\xc3\xa9", 1)));
    CHECK_FALSE(is_valid_utf8(std::string_view("a\xe2\x82\xac", 3)));
}

TEST_CASE("str() quotes a local part only when it is not a dot-string and round-trips")
{
    struct row {
        std::string_view path;
        std::string_view str;
    };
    const row rows[] = {
        {"<a.b+c@x.test>", "a.b+c@x.test"},
        {R"(<"abc"@x.test>)", "abc@x.test"},
        {R"(<"a\b"@x.test>)", "ab@x.test"},
        {R"(<"a b"@x.test>)", R"("a b"@x.test)"},
        {R"(<"a\"b"@x.test>)", R"("a\"b"@x.test)"},
        {R"(<"a\\b"@x.test>)", R"("a\\b"@x.test)"},
        {R"(<"a..b"@x.test>)", R"("a..b"@x.test)"},
        {R"(<".a"@x.test>)", R"(".a"@x.test)"},
        {R"(<"a."@x.test>)", R"("a."@x.test)"},
        {R"(<"user@other.example"@x.test>)", R"("user@other.example"@x.test)"},
        {R"(<"a,b"@[192.0.2.1]>)", R"("a,b"@[192.0.2.1])"},
        {"<jörg@exämple.test>", "jörg@exämple.test"},
        {R"(<"jörg müller"@x.test>)", R"("jörg müller"@x.test)"},
        {"<@a.test:u@b.test>", "u@b.test"},
    };
    for (const auto& [p, s] : rows) {
        const auto& p_case = p; // clang 14: no structured binding in a lambda (CAPTURE)
        CAPTURE(p_case);
        auto r = fwd(p, utf8);
        REQUIRE(r);
        CHECK(r->value.addr.str() == s);
        CHECK(r->value.str() == "<" + std::string(s) + ">");
        auto again = fwd(r->value.str(), utf8);
        REQUIRE(again);
        CHECK(again->value.addr.local_part == r->value.addr.local_part);
        CHECK(again->value.addr.domain == r->value.addr.domain);
        auto bare = parse_address(r->value.addr.str());
        REQUIRE(bare);
        CHECK(bare->local_part == r->value.addr.local_part);
    }
}

TEST_CASE("parse_address accepts a bare mailbox for configuration and nothing more")
{
    SUBCASE("valid")
    {
        auto a = parse_address("alice@example.test");
        REQUIRE(a);
        CHECK(a->local_part == "alice");
        CHECK(a->domain == "example.test");
        auto q = parse_address(R"("a b"@example.test)");
        REQUIRE(q);
        CHECK(q->local_part == "a b");
        auto u = parse_address("jörg@exämple.test"); // UTF-8 always allowed
        REQUIRE(u);
        CHECK(u->local_part == "jörg");
        auto l = parse_address("x@[IPv6:2001:db8::1]");
        REQUIRE(l);
        CHECK(l->is_address_literal());
    }
    SUBCASE("invalid")
    {
        for (auto s : {"", " alice@example.test", "alice@example.test ", "alice@example.test\n",
                       "<alice@example.test>", "alice", "postmaster", "@a.test:alice@example.test",
                       "alice@", "@example.test", "alice@example.test.", "a..b@example.test"}) {
            CAPTURE(s);
            CHECK(parse_address(s).error() == err(errc::syntax));
        }
    }
}

TEST_CASE("is_ascii and is_address_literal describe the stored address")
{
    CHECK(address{"a", "x.test"}.is_ascii());
    CHECK_FALSE(address{"ä", "x.test"}.is_ascii());
    CHECK_FALSE(address{"a", "ä.test"}.is_ascii());
    CHECK(address{"a", "[192.0.2.1]"}.is_address_literal());
    CHECK_FALSE(address{"a", "x.test"}.is_address_literal());
    CHECK_FALSE(address{"postmaster", ""}.is_address_literal());
    CHECK(address{}.empty());
    CHECK(address{"a\"b\\c", "x.test"}.str() == R"("a\"b\\c"@x.test)");
}

}

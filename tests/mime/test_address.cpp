#include "postern/mime/address.hpp"

#include <vector>

#include <doctest/doctest.h>

using namespace postern;
using mime::address;
using kind = mime::address::kind;
using list = std::vector<address>;

namespace {

address mbox(std::string name, std::string local, std::string host, std::string route = {})
{
    return {kind::mailbox, std::move(name), std::move(route), std::move(local), std::move(host)};
}
address group(std::string name)
{
    return {kind::group_start, std::move(name), {}, {}, {}};
}
address group_end()
{
    return {kind::group_end, {}, {}, {}, {}};
}

} // namespace

TEST_SUITE("mime") {

TEST_CASE("plain addr-specs and angle addresses with display names")
{
    CHECK(mime::parse_address_list("imap@cac.washington.edu") == list{mbox("", "imap", "cac.washington.edu")});
    CHECK(mime::parse_address_list("minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>") ==
          list{mbox("", "minutes", "CNRI.Reston.VA.US"), mbox("John Klensin", "KLENSIN", "MIT.EDU")});
    CHECK(mime::parse_address_list("<a@b.example>") == list{mbox("", "a", "b.example")});
}

TEST_CASE("quoted display names and local parts are unquoted")
{
    CHECK(mime::parse_address_list("\"Doe, John \\\"JD\\\"\" <john.doe@example.com>") ==
          list{mbox("Doe, John \"JD\"", "john.doe", "example.com")});
    CHECK(mime::parse_address_list("\"john q\"@example.com") == list{mbox("", "john q", "example.com")});
}

TEST_CASE("encoded words in display names are kept raw")
{
    CHECK(mime::parse_address_list("=?utf-8?Q?J=C3=B6rg?= <j@x.example>") ==
          list{mbox("=?utf-8?Q?J=C3=B6rg?=", "j", "x.example")});
    CHECK(mime::parse_address_list("=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>") ==
          list{mbox("=?ISO-8859-1?Q?Andr=E9?= Pirard", "PIRARD", "vm1.ulg.ac.be")});
}

TEST_CASE("comments and folding are ignored, obs-phrase dots kept")
{
    // RFC 5322 A.5.
    CHECK(mime::parse_address_list("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>") ==
          list{mbox("Pete", "pete", "silly.test")});
    CHECK(mime::parse_address_list("John Q.\r\n Public <JQP@x.test>") == list{mbox("John Q. Public", "JQP", "x.test")});
    CHECK(mime::parse_address_list("a@b.test (Real Name)") == list{mbox("", "a", "b.test")});
}

TEST_CASE("groups become start and end entries (RFC 3501 7.4.2)")
{
    CHECK(mime::parse_address_list("undisclosed-recipients:;") == list{group("undisclosed-recipients"), group_end()});
    // RFC 5322 A.1.3.
    CHECK(mime::parse_address_list("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, x@y.test") ==
          list{group("A Group"), mbox("Ed Jones", "c", "a.test"), mbox("", "joe", "where.test"),
               mbox("John", "jdoe", "one.test"), group_end(), mbox("", "x", "y.test")});
    SUBCASE("a group without its semicolon ends at the end")
    {
        CHECK(mime::parse_address_list("g: a@b.test") == list{group("g"), mbox("", "a", "b.test"), group_end()});
    }
}

TEST_CASE("an obsolete route becomes the route member (RFC 5322 4.4)")
{
    CHECK(mime::parse_address_list("Joe <@a.test,@b.test:joe@c.test>") ==
          list{mbox("Joe", "joe", "c.test", "@a.test,@b.test")});
}

TEST_CASE("malformed addresses are kept as best they can be")
{
    CHECK(mime::parse_address_list("postmaster") == list{mbox("", "postmaster", "MISSING_DOMAIN")});
    CHECK(mime::parse_address_list("<>") == list{mbox("", "MISSING_MAILBOX", "MISSING_DOMAIN")});
    CHECK(mime::parse_address_list("a@") == list{mbox("", "a", "MISSING_DOMAIN")});
    CHECK(mime::parse_address_list(",, a@b.test ,") == list{mbox("", "a", "b.test")});
    CHECK(mime::parse_address_list("x <a@b.test") == list{mbox("x", "a", "b.test")});
    CHECK(mime::parse_address_list("a@[192.0.2.1]") == list{mbox("", "a", "[192.0.2.1]")});
    CHECK(mime::parse_address_list("j\xc3\xb6rg@b\xc3\xbc" "cher.test") ==
          list{mbox("", "j\xc3\xb6rg", "b\xc3\xbc" "cher.test")});
    CHECK(mime::parse_address_list("").empty());
    CHECK(mime::parse_address_list("   (only a comment)").empty());
    CHECK(mime::parse_address_list(">;:<") == list{mbox("", "MISSING_MAILBOX", "MISSING_DOMAIN")});
}

} // TEST_SUITE

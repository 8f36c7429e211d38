#include "postern/mime/imap.hpp"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "messages.hpp"

#include "postern/util/strings.hpp"

using namespace postern;
using mime::testing::crlf;

namespace {

// RFC 3501 6.4.5 / 7.4.2 sample message.
const std::string rfc3501_header = crlf("Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\n"
                                        "From: Terry Gray <gray@cac.washington.edu>\n"
                                        "Subject: IMAP4rev1 WG mtg summary and minutes\n"
                                        "To: imap@cac.washington.edu\n"
                                        "cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\n"
                                        "Message-Id: <B27397-0100000@cac.washington.edu>\n"
                                        "MIME-Version: 1.0\n"
                                        "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\n"
                                        "\n");

// n lines whose octets (CRLF counted, none after the last) add up to size.
std::string lines_of(std::size_t n, std::size_t size, char c)
{
    const std::size_t per = (size - (n - 1) * 2) / n;
    std::string out;
    for (std::size_t i = 0; i + 1 < n; ++i)
        out += std::string(per, c) + "\r\n";
    out += std::string(size - out.size(), c);
    return out;
}

} // namespace

TEST_SUITE("mime") {

TEST_CASE("IMAP strings are quoted when safe, literals otherwise")
{
    CHECK(mime::imap_string("abc") == "\"abc\"");
    CHECK(mime::imap_string("") == "\"\"");
    CHECK(mime::imap_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(mime::imap_string("a\r\nb") == "{4}\r\na\r\nb");
    CHECK(mime::imap_string("J\xc3\xb6rg") == "{5}\r\nJ\xc3\xb6rg");
    CHECK(mime::imap_string(std::string(1025, 'x')) == "{1025}\r\n" + std::string(1025, 'x'));
    CHECK(mime::imap_string(std::string(1024, 'x')) == "\"" + std::string(1024, 'x') + "\"");
    CHECK(mime::imap_string(std::string("a\0b", 3)) == "{3}\r\na\x80" "b");
    CHECK(mime::imap_nstring("") == "NIL");
    CHECK(mime::imap_nstring("x") == "\"x\"");
}

TEST_CASE("ENVELOPE of the RFC 3501 example message")
{
    const std::string m = rfc3501_header + "body\r\n";
    const auto root = mime::parse(m);
    CHECK(mime::envelope(m, root) ==
          "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" "
          "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
          "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
          "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
          "((NIL NIL \"imap\" \"cac.washington.edu\")) "
          "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) "
          "NIL NIL \"<B27397-0100000@cac.washington.edu>\")");
    CHECK(mime::bodystructure(m, root, false) == "(\"text\" \"plain\" (\"charset\" \"US-ASCII\") NIL NIL \"7bit\" 6 1)");
}

TEST_CASE("ENVELOPE of an empty message is all NIL")
{
    const auto root = mime::parse("");
    CHECK(mime::envelope("", root) == "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
}

TEST_CASE("ENVELOPE keeps raw values, groups and explicit Sender and Reply-To")
{
    const std::string m = crlf("Subject: =?utf-8?B?4oKsIDEwMA==?=\n =?ISO-8859-1?Q?Andr=E9?=\n"
                               "From: =?utf-8?Q?J=C3=B6rg?= <j@x.test>\n"
                               "Sender: s@x.test\n"
                               "Reply-To: \"R \\\"Q\\\"\" <r@x.test>\n"
                               "To: undisclosed-recipients:;\n"
                               "Cc: Team: a@x.test, b@x.test;\n"
                               "Bcc:\n"
                               "In-Reply-To: <p@x.test>\n"
                               "Subject: second subject ignored\n"
                               "\n");
    const auto root = mime::parse(m);
    CHECK(mime::envelope(m, root) ==
          "(NIL \"=?utf-8?B?4oKsIDEwMA==?= =?ISO-8859-1?Q?Andr=E9?=\" "
          "((\"=?utf-8?Q?J=C3=B6rg?=\" NIL \"j\" \"x.test\")) "
          "((NIL NIL \"s\" \"x.test\")) "
          "((\"R \\\"Q\\\"\" NIL \"r\" \"x.test\")) "
          "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
          "((NIL NIL \"Team\" NIL)(NIL NIL \"a\" \"x.test\")(NIL NIL \"b\" \"x.test\")(NIL NIL NIL NIL)) "
          "NIL \"<p@x.test>\" NIL)");
}

TEST_CASE("8-bit header octets go out as literals")
{
    const std::string m = "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\nFrom: j\xc3\xb6rg@x.test\r\n\r\n";
    const auto root = mime::parse(m);
    CHECK(mime::envelope(m, root) == "(NIL {7}\r\nGr\xc3\xbc\xc3\x9f" "e "
                                     "((NIL NIL {5}\r\nj\xc3\xb6rg \"x.test\")) ((NIL NIL {5}\r\nj\xc3\xb6rg \"x.test\")) "
                                     "((NIL NIL {5}\r\nj\xc3\xb6rg \"x.test\")) NIL NIL NIL NIL NIL)");
}

TEST_CASE("BODY of the RFC 3501 7.4.2 example")
{
    // RFC 3501 7.4.2 BODYSTRUCTURE example, sent in its non-extensible form.
    const std::string m = crlf("From: a@b.test\nMIME-Version: 1.0\n"
                               "Content-Type: MULTIPART/MIXED; BOUNDARY=\"x\"\n\n"
                               "--x\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\n\n") +
                          lines_of(23, 1152, 'a') +
                          crlf("\n--x\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\n"
                               "Content-ID: <960723163407.20117h@cac.washington.edu>\n"
                               "Content-Description: Compiler diff\n"
                               "Content-Transfer-Encoding: BASE64\n\n") +
                          lines_of(73, 4554, 'A') + crlf("\n--x--\n");
    const auto root = mime::parse(m);
    const std::string expected =
        R"((("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED"))";
    // Atoms and strings compare case-insensitively in IMAP; postern sends lower case.
    CHECK(util::to_lower(mime::bodystructure(m, root, false)) == util::to_lower(expected));
}

TEST_CASE("BODYSTRUCTURE and BODY match Dovecot's for its test message")
{
    const std::string& m = mime::testing::dovecot_message;
    const auto root = mime::parse(m);
    // src/lib-imap/test-imap-bodystructure.c, testmsg_bodystructure and
    // testmsg_body, with the outer parentheses the FETCH response adds.
    CHECK(mime::bodystructure(m, root, true) ==
          R"((("text" "x-myown" ("charset" "us-ascii" "foo" "quoted\"string") "<foo@example.com>" "hellodescription" "7bit" 7 1 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("inline" ("foo" "bar")) ("en" "fi" "se") "http://example.com/test.txt")("message" "rfc822" NIL NIL NIL "7bit" 412 ("Sun, 12 Aug 2012 12:34:56 +0300" "submsg" ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub-to1" "domain.org")(NIL NIL "sub-to2" "domain.org")) NIL NIL NIL NIL) (("text" "html" ("charset" "us-ascii") NIL NIL "8bit" 20 1 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1 NIL NIL NIL NIL) "alternative" ("boundary" "sub1") NIL NIL NIL) 21 NIL NIL NIL NIL) "mixed" ("boundary" "foo bar") NIL NIL NIL))");
    CHECK(mime::bodystructure(m, root, false) ==
          R"((("text" "x-myown" ("charset" "us-ascii" "foo" "quoted\"string") "<foo@example.com>" "hellodescription" "7bit" 7 1)("message" "rfc822" NIL NIL NIL "7bit" 412 ("Sun, 12 Aug 2012 12:34:56 +0300" "submsg" ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub-to1" "domain.org")(NIL NIL "sub-to2" "domain.org")) NIL NIL NIL NIL) (("text" "html" ("charset" "us-ascii") NIL NIL "8bit" 20 1)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1) "alternative") 21) "mixed"))");
}

TEST_CASE("a multipart without parts is written with one empty text/plain part, as Dovecot does")
{
    const std::string m = crlf("Content-Type: multipart/mixed; boundary=zz\n\nno parts\n");
    const auto root = mime::parse(m);
    CHECK(mime::bodystructure(m, root, false) ==
          R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed"))");
    CHECK(mime::bodystructure(m, root, true) ==
          R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" ("boundary" "zz") NIL NIL NIL))");
}

TEST_CASE("a multipart without boundary parameter is written as text/plain")
{
    const std::string m = crlf("Content-Type: multipart/mixed\n\n--b\n\none\n");
    const auto root = mime::parse(m);
    CHECK(mime::bodystructure(m, root, false) == R"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 3))");
}

TEST_CASE("non-text single parts have no line count, RFC 2231 values go out decoded")
{
    const std::string m = crlf("Content-Type: application/octet-stream\n"
                               "Content-Disposition: attachment;\n filename*=utf-8''%E2%82%AC.bin\n"
                               "Content-Language: de\n"
                               "\nxyz\n");
    const auto root = mime::parse(m);
    CHECK(mime::bodystructure(m, root, true) ==
          "(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\" 5 NIL (\"attachment\" (\"filename\" {7}\r\n"
          "\xe2\x82\xac.bin)) (\"de\") NIL)");
}

TEST_CASE("an LF-only message reports its octets as stored")
{
    const std::string m = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\ntwo\n--b--\n";
    const auto root = mime::parse(m);
    CHECK(mime::bodystructure(m, root, false) ==
          R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 2) "mixed"))");
}

TEST_CASE("ENVELOPE of an encapsulated message comes from its own header")
{
    const std::string& m = mime::testing::nested_message;
    const auto root = mime::parse(m);
    CHECK(mime::envelope(m, root.children.at(2).children.at(0)) ==
          R"((NIL "inner message" ((NIL NIL "carol" "example.com")) ((NIL NIL "carol" "example.com")) ((NIL NIL "carol" "example.com")) NIL NIL NIL NIL NIL))");
    CHECK(mime::envelope(m, root) ==
          R"((NIL "nested" (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) ((NIL NIL "bob" "example.net")) NIL NIL NIL "<n1@example.org>"))");
}

TEST_CASE("BODYSTRUCTURE of the nested message")
{
    const std::string& m = mime::testing::nested_message;
    const auto root = mime::parse(m);
    CHECK(mime::bodystructure(m, root, false) ==
          R"(((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 60 2)("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 17 1) "alternative")("application" "pdf" ("name" "r.pdf") NIL NIL "base64" 12)("message" "rfc822" NIL NIL NIL "7bit" 205 (NIL "inner message" ((NIL NIL "carol" "example.com")) ((NIL NIL "carol" "example.com")) ((NIL NIL "carol" "example.com")) NIL NIL NIL NIL NIL) (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 1)("image" "gif" NIL NIL NIL "base64" 8) "mixed") 13) "mixed"))");
}

} // TEST_SUITE

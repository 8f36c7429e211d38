#include "postern/imapd/fetch.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "../mime/messages.hpp"
#include "wire.hpp"

#include "postern/mime/imap.hpp"
#include "postern/mime/part.hpp"

using namespace postern;
using imap::fetch_attr;
using imapd::testing::fetch_items;
using imapd::testing::info;
using mime::testing::crlf;

namespace {

// RFC 9051 7.5.2 / RFC 3501 example time: 17-Jul-1996 02:44:25 -0700.
constexpr std::int64_t july_17_1996 = 837596665;

const std::string simple = crlf("From: alice@example.org\n"
                                "Subject: hi\n"
                                "\n"
                                "hello\n");

mailbox::message_info simple_info()
{
    auto m = info(42, "S", {"$Forwarded"});
    m.size = simple.size();
    m.internal_date = july_17_1996;
    return m;
}

// The response for items asked of message text (seq 1, simple_info's data
// but the size of text).
std::string fetch(std::string_view text, std::string_view items, imapd::fetch_options o = {})
{
    auto m = simple_info();
    m.size = text.size();
    const auto list = fetch_items(items);
    return imapd::fetch_response(1, m, text, list, o);
}

// One data item's value: the response "* 1 FETCH (<name> <value>)\r\n" cut
// down to "<name> <value>".
std::string item(std::string_view text, std::string_view items)
{
    const auto r = fetch(text, items);
    const std::string_view head = "* 1 FETCH (";
    REQUIRE(r.starts_with(head));
    REQUIRE(r.ends_with(")\r\n"));
    return r.substr(head.size(), r.size() - head.size() - 3);
}

// A multipart/mixed whose parts carry each transfer encoding BINARY undoes.
const std::string encoded = crlf("Subject: encodings\n"
                                 "Content-Type: multipart/mixed; boundary=b\n"
                                 "\n"
                                 "--b\n"
                                 "Content-Type: application/octet-stream\n"
                                 "Content-Transfer-Encoding: base64\n"
                                 "\n"
                                 "AGE=\n"
                                 "--b\n"
                                 "Content-Type: text/plain; charset=utf-8\n"
                                 "Content-Transfer-Encoding: Quoted-Printable\n"
                                 "\n"
                                 "caf=C3=A9 =\n"
                                 "soft\n"
                                 "--b\n"
                                 "Content-Type: application/x-thing\n"
                                 "Content-Transfer-Encoding: x-uuencode\n"
                                 "\n"
                                 "begin 644 x\n"
                                 "--b\n"
                                 "Content-Type: text/plain\n"
                                 "Content-Transfer-Encoding: base64\n"
                                 "\n"
                                 "aGVs\n"
                                 "bG8=\n"
                                 "--b--\n");

} // namespace

TEST_SUITE("imapd") {

TEST_CASE("FLAGS lists the system flags in order, then keywords, then \\Recent")
{
    CHECK(imapd::flag_list(info(1)) == "()");
    CHECK(imapd::flag_list(info(1, "DFRST")) == "(\\Draft \\Flagged \\Answered \\Seen \\Deleted)");
    CHECK(imapd::flag_list(info(1, "ST", {"$Forwarded", "Junk"}, true)) ==
          "(\\Seen \\Deleted $Forwarded Junk \\Recent)");
    CHECK(imapd::flag_list(info(1, "", {}, true)) == "(\\Recent)");
    SUBCASE("Maildir letters that are no IMAP flag are left out")
    {
        CHECK(imapd::flag_list(info(1, "PSa")) == "(\\Seen)");
    }
}

TEST_CASE("INTERNALDATE is a quoted UTC date-time with a two-digit day")
{
    CHECK(imapd::internal_date(0) == "\"01-Jan-1970 00:00:00 +0000\"");
    CHECK(imapd::internal_date(july_17_1996) == "\"17-Jul-1996 09:44:25 +0000\"");
    CHECK(imapd::internal_date(1709251199) == "\"29-Feb-2024 23:59:59 +0000\"");
    SUBCASE("times a 4-digit year cannot say are clamped")
    {
        CHECK(imapd::internal_date(-1) == "\"01-Jan-1970 00:00:00 +0000\"");
        CHECK(imapd::internal_date(253402300799) == "\"31-Dec-9999 23:59:59 +0000\"");
        CHECK(imapd::internal_date(INT64_MAX) == "\"31-Dec-9999 23:59:59 +0000\"");
        CHECK(imapd::internal_date(INT64_MIN) == "\"01-Jan-1970 00:00:00 +0000\"");
    }
}

TEST_CASE("FETCH answers the items in the order asked")
{
    CHECK(fetch(simple, "(FLAGS UID INTERNALDATE RFC822.SIZE)") ==
          "* 1 FETCH (FLAGS (\\Seen $Forwarded) UID 42 INTERNALDATE \"17-Jul-1996 09:44:25 +0000\" "
          "RFC822.SIZE 47)\r\n");
    CHECK(fetch(simple, "(RFC822.SIZE FLAGS)") == "* 1 FETCH (RFC822.SIZE 47 FLAGS (\\Seen $Forwarded))\r\n");
    SUBCASE("the sequence number is the one given")
    {
        const auto items = fetch_items("UID");
        CHECK(imapd::fetch_response(4711, simple_info(), "", items) == "* 4711 FETCH (UID 42)\r\n");
    }
    SUBCASE("RFC822.SIZE is the size the store knows, not the text's")
    {
        const auto items = fetch_items("RFC822.SIZE");
        CHECK(imapd::fetch_response(1, simple_info(), "", items) == "* 1 FETCH (RFC822.SIZE 47)\r\n");
    }
    SUBCASE("the FAST, ALL and FULL macros")
    {
        const std::string fast = "FLAGS (\\Seen $Forwarded) INTERNALDATE \"17-Jul-1996 09:44:25 +0000\" RFC822.SIZE 47";
        const auto root = mime::parse(simple);
        CHECK(item(simple, "FAST") == fast);
        CHECK(item(simple, "ALL") == fast + " ENVELOPE " + mime::envelope(simple, root));
        CHECK(item(simple, "FULL") == fast + " ENVELOPE " + mime::envelope(simple, root) + " BODY " +
                                          mime::bodystructure(simple, root, false));
    }
}

TEST_CASE("UID FETCH puts UID first unless the client asked for it")
{
    const imapd::fetch_options uid{.add_uid = true};
    CHECK(fetch(simple, "(FLAGS)", uid) == "* 1 FETCH (UID 42 FLAGS (\\Seen $Forwarded))\r\n");
    CHECK(fetch(simple, "(FLAGS UID)", uid) == "* 1 FETCH (FLAGS (\\Seen $Forwarded) UID 42)\r\n");
    CHECK(fetch(simple, "(UID)", uid) == "* 1 FETCH (UID 42)\r\n");
}

TEST_CASE("FLAGS is added at the end when \\Seen was just set and not asked for")
{
    const imapd::fetch_options flags{.add_flags = true};
    CHECK(fetch(simple, "BODY[TEXT]", flags) == "* 1 FETCH (BODY[TEXT] {7}\r\nhello\r\n FLAGS (\\Seen $Forwarded))\r\n");
    CHECK(fetch(simple, "(FLAGS BODY[TEXT])", flags) ==
          "* 1 FETCH (FLAGS (\\Seen $Forwarded) BODY[TEXT] {7}\r\nhello\r\n)\r\n");
    SUBCASE("with UID as well")
    {
        const imapd::fetch_options both{.add_uid = true, .add_flags = true};
        CHECK(fetch(simple, "RFC822.SIZE", both) == "* 1 FETCH (UID 42 RFC822.SIZE 47 FLAGS (\\Seen $Forwarded))\r\n");
    }
}

TEST_CASE("MODSEQ is not answered (no CONDSTORE)")
{
    CHECK(fetch(simple, "(FLAGS MODSEQ)") == "* 1 FETCH (FLAGS (\\Seen $Forwarded))\r\n");
    SUBCASE("alone, the response still names the message by UID")
    {
        CHECK(fetch(simple, "(MODSEQ)") == "* 1 FETCH (UID 42)\r\n");
    }
}

TEST_CASE("BODY[section] sends the octets as a literal, or quoted when they allow it")
{
    CHECK(item(simple, "BODY[]") == "BODY[] {47}\r\n" + simple);
    CHECK(item(simple, "BODY[TEXT]") == "BODY[TEXT] {7}\r\nhello\r\n");
    CHECK(item(simple, "BODY[HEADER]") == "BODY[HEADER] {40}\r\n" + simple.substr(0, 40));
    CHECK(item(simple, "BODY.PEEK[HEADER.FIELDS (subject)]") == "BODY[HEADER.FIELDS (subject)] {15}\r\nSubject: hi\r\n\r\n");
    CHECK(item(simple, "BODY[1]") == "BODY[1] {7}\r\nhello\r\n");
    SUBCASE("a section that does not exist is the empty string")
    {
        CHECK(item(simple, "BODY[2]") == "BODY[2] \"\"");
        CHECK(item(simple, "BODY[1.1]") == "BODY[1.1] \"\"");
        CHECK(item(simple, "BODY[1.TEXT]") == "BODY[1.TEXT] \"\"");
    }
    SUBCASE("8-bit octets go out as a literal even without a line end")
    {
        const auto text = crlf("Subject: x\n\ncaf\xc3\xa9 au lait\n");
        CHECK(item(text, "BODY[TEXT]<0.5>") == "BODY[TEXT]<0> {5}\r\ncaf\xc3\xa9");
        CHECK(item(text, "BODY[TEXT]<6.2>") == "BODY[TEXT]<6> \"au\"");
    }
    SUBCASE("an empty message")
    {
        CHECK(item("", "BODY[]") == "BODY[] \"\"");
        CHECK(item("", "BODY[TEXT]") == "BODY[TEXT] \"\"");
    }
}

TEST_CASE("A partial BODY[section]<origin.count> is cut from the section and named with its origin")
{
    struct sample {
        std::string_view items;
        std::string expected;
    };
    const sample samples[] = {
        {"BODY[TEXT]<0.5>", "BODY[TEXT]<0> \"hello\""},
        {"BODY[TEXT]<1.3>", "BODY[TEXT]<1> \"ell\""},
        {"BODY[TEXT]<2.100>", "BODY[TEXT]<2> {5}\r\nllo\r\n"},    // count past the end: the rest
        {"BODY[TEXT]<6.1>", "BODY[TEXT]<6> {1}\r\n\n"},            // the last octet
        {"BODY[TEXT]<7.1>", "BODY[TEXT]<7> \"\""},                 // origin at the end
        {"BODY[TEXT]<100.10>", "BODY[TEXT]<100> \"\""},            // origin past the end
        {"BODY[]<0.4>", "BODY[]<0> \"From\""},
        {"BODY.PEEK[HEADER]<6.5>", "BODY[HEADER]<6> \"alice\""},
        {"BODY[2]<0.10>", "BODY[2]<0> \"\""},                      // no such part
        {"BODY[]<9223372036854775807.1>", "BODY[]<9223372036854775807> \"\""},
    };
    for (const auto& s : samples) {
        CAPTURE(s.items);
        CHECK(item(simple, s.items) == s.expected);
    }
}

TEST_CASE("RFC822, RFC822.HEADER and RFC822.TEXT are BODY[], BODY.PEEK[HEADER] and BODY[TEXT] under their own names")
{
    CHECK(item(simple, "RFC822") == "RFC822 {47}\r\n" + simple);
    CHECK(item(simple, "RFC822.HEADER") == "RFC822.HEADER {40}\r\n" + simple.substr(0, 40));
    CHECK(item(simple, "RFC822.TEXT") == "RFC822.TEXT {7}\r\nhello\r\n");
    SUBCASE("all three in one response")
    {
        CHECK(fetch(simple, "(RFC822.HEADER RFC822.TEXT RFC822)") ==
              "* 1 FETCH (RFC822.HEADER {40}\r\n" + simple.substr(0, 40) + " RFC822.TEXT {7}\r\nhello\r\n RFC822 {47}\r\n" +
                  simple + ")\r\n");
    }
}

TEST_CASE("ENVELOPE, BODY and BODYSTRUCTURE come from the mime module")
{
    for (const std::string* m : {&simple, &mime::testing::dovecot_message, &mime::testing::nested_message}) {
        CAPTURE(*m);
        const auto root = mime::parse(*m);
        CHECK(item(*m, "ENVELOPE") == "ENVELOPE " + mime::envelope(*m, root));
        CHECK(item(*m, "BODY") == "BODY " + mime::bodystructure(*m, root, false));
        CHECK(item(*m, "BODYSTRUCTURE") == "BODYSTRUCTURE " + mime::bodystructure(*m, root, true));
    }
    CHECK(item(simple, "BODY") == "BODY (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1)");
    CHECK(item(simple, "ENVELOPE") == "ENVELOPE (NIL \"hi\" ((NIL NIL \"alice\" \"example.org\")) "
                                      "((NIL NIL \"alice\" \"example.org\")) ((NIL NIL \"alice\" \"example.org\")) "
                                      "NIL NIL NIL NIL NIL)");
}

TEST_CASE("BODY[section] numbers the parts of nested multiparts and encapsulated messages")
{
    const auto& m = mime::testing::nested_message;
    struct sample {
        std::string_view items;
        std::string expected;
    };
    const sample samples[] = {
        {"BODY[1.1]", "BODY[1.1] {60}\r\nHello Bob.\r\n--outer is not a boundary here: the line goes on"},
        {"BODY[1.2]", "BODY[1.2] \"<p>Hello Bob.</p>\""},
        {"BODY[1.2.MIME]", "BODY[1.2.MIME] {87}\r\nContent-Type: text/html; charset=utf-8\r\n"
                           "Content-Transfer-Encoding: quoted-printable\r\n\r\n"},
        {"BODY[2]", "BODY[2] \"JVBERi0xLjQK\""},
        {"BODY[3.HEADER]", "BODY[3.HEADER] {98}\r\nFrom: carol@example.com\r\nSubject: inner message\r\n"
                           "Content-Type: multipart/mixed; boundary=\"fwd\"\r\n\r\n"},
        {"BODY[3.HEADER.FIELDS (SUBJECT)]", "BODY[3.HEADER.FIELDS (SUBJECT)] {26}\r\nSubject: inner message\r\n\r\n"},
        {"BODY[3.1]", "BODY[3.1] \"inner text\""},
        {"BODY[3.2]", "BODY[3.2] \"R0lGODlh\""},
        {"BODY[3.2.MIME]", "BODY[3.2.MIME] {62}\r\nContent-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n\r\n"},
        {"BODY[4]", "BODY[4] \"\""},
        {"BODY[1.3]", "BODY[1.3] \"\""},
        {"BODY[2.1]", "BODY[2.1] \"\""},
        {"BODY[2.HEADER]", "BODY[2.HEADER] \"\""}, // HEADER only applies to message/rfc822 parts
    };
    for (const auto& s : samples) {
        CAPTURE(s.items);
        CHECK(item(m, s.items) == s.expected);
    }
    SUBCASE("the encapsulated message whole, and its text")
    {
        const auto root = mime::parse(m);
        const auto* p = mime::find_part(root, std::vector<std::uint32_t>{3});
        REQUIRE(p);
        const auto inner = std::string(mime::slice(m, p->body));
        CHECK(item(m, "BODY[3]") == "BODY[3] {" + std::to_string(inner.size()) + "}\r\n" + inner);
        CHECK(item(m, "BODY[3.TEXT]<0.5>") == "BODY[3.TEXT]<0> \"--fwd\"");
    }
}

TEST_CASE("message/rfc822 parts: the Dovecot sample's forwarded message")
{
    const auto& m = mime::testing::dovecot_message;
    CHECK(item(m, "BODY[2.HEADER.FIELDS (Subject Date)]") ==
          "BODY[2.HEADER.FIELDS (Subject Date)] {58}\r\nDate: Sun, 12 Aug 2012 12:34:56 +0300\r\nSubject: submsg\r\n\r\n");
    CHECK(item(m, "BODY[2.1]") == "BODY[2.1] {20}\r\n<p>Hello world</p>\r\n");
    CHECK(item(m, "BODY[2.2]") == "BODY[2.2] {21}\r\nHello another world\r\n");
    CHECK(item(m, "BODY[2.2.MIME]") == "BODY[2.2.MIME] {65}\r\nContent-Type: text/plain\r\n"
                                       "Content-Transfer-Encoding: ?invalid\r\n\r\n");
    CHECK(item(m, "BODY[1]") == "BODY[1] {7}\r\nhello\r\n");
}

TEST_CASE("BINARY sends the part with its transfer encoding undone")
{
    SUBCASE("base64 with a NUL goes out as literal8")
    {
        CHECK(item(encoded, "BINARY[1]") == std::string("BINARY[1] ~{2}\r\n\0a", 18));
        CHECK(item(encoded, "BINARY.SIZE[1]") == "BINARY.SIZE[1] 2");
    }
    SUBCASE("quoted-printable, soft line break included")
    {
        CHECK(item(encoded, "BINARY[2]") == "BINARY[2] {10}\r\ncaf\xc3\xa9 soft");
        CHECK(item(encoded, "BINARY.SIZE[2]") == "BINARY.SIZE[2] 10");
    }
    SUBCASE("base64 over several lines, without NUL: a plain literal")
    {
        CHECK(item(encoded, "BINARY.PEEK[4]") == "BINARY[4] {5}\r\nhello");
    }
    SUBCASE("an unknown encoding: the octets as stored")
    {
        CHECK(item(encoded, "BINARY[3]") == "BINARY[3] {11}\r\nbegin 644 x");
        CHECK(item(encoded, "BINARY.SIZE[3]") == "BINARY.SIZE[3] 11");
    }
    SUBCASE("a part that does not exist is empty")
    {
        CHECK(item(encoded, "BINARY[5]") == "BINARY[5] {0}\r\n");
        CHECK(item(encoded, "BINARY.SIZE[5]") == "BINARY.SIZE[5] 0");
    }
    SUBCASE("no part number: the whole message as stored")
    {
        CHECK(item(simple, "BINARY[]") == "BINARY[] {47}\r\n" + simple);
        CHECK(item(simple, "BINARY.SIZE[]") == "BINARY.SIZE[] 47");
    }
    SUBCASE("nested parts and an encapsulated message's parts")
    {
        const auto& m = mime::testing::nested_message;
        CHECK(item(m, "BINARY[2]") == "BINARY[2] {9}\r\n%PDF-1.4\n");
        CHECK(item(m, "BINARY[3.2]") == "BINARY[3.2] {6}\r\nGIF89a");
        CHECK(item(m, "BINARY[1.2]") == "BINARY[1.2] {17}\r\n<p>Hello Bob.</p>");
    }
    SUBCASE("a partial applies to the decoded octets")
    {
        CHECK(item(encoded, "BINARY[2]<1.4>") == "BINARY[2]<1> {4}\r\naf\xc3\xa9");
        CHECK(item(encoded, "BINARY[1]<1.10>") == "BINARY[1]<1> {1}\r\na");
        CHECK(item(encoded, "BINARY[1]<2.10>") == "BINARY[1]<2> {0}\r\n");
    }
}

TEST_CASE("An unknown transfer encoding under BINARY is reported for NO [UNKNOWN-CTE]")
{
    struct sample {
        std::string_view items;
        bool unknown;
    };
    const sample samples[] = {
        {"BINARY[3]", true},      {"BINARY.PEEK[3]<0.5>", true},
        {"BINARY.SIZE[3]", true}, {"(BINARY[1] BINARY[3])", true},
        {"BINARY[1]", false},     {"BINARY[2]", false},
        {"BINARY[4]", false},     {"BINARY[]", false},
        {"BINARY[9]", false}, // no such part: empty, not unknown
        {"BODY[3]", false},   // BODY sends the octets as stored
        {"(FLAGS RFC822)", false},
    };
    for (const auto& s : samples) {
        CAPTURE(s.items);
        CHECK(imapd::fetch_unknown_cte(encoded, fetch_items(s.items)) == s.unknown);
    }
}

TEST_CASE("Which items need the message text")
{
    struct sample {
        std::string_view items;
        bool needs;
    };
    const sample samples[] = {
        {"FLAGS", false},         {"UID", false},
        {"INTERNALDATE", false},  {"RFC822.SIZE", false},
        {"MODSEQ", false},        {"FAST", false},
        {"(FLAGS UID)", false},   {"ENVELOPE", true},
        {"RFC822", true},         {"RFC822.HEADER", true},
        {"RFC822.TEXT", true},    {"BODY", true},
        {"BODYSTRUCTURE", true},  {"BODY.PEEK[]", true},
        {"BINARY[1]", true},      {"BINARY.SIZE[1]", true},
        {"ALL", true},            {"(FLAGS BODY[1])", true},
    };
    for (const auto& s : samples) {
        CAPTURE(s.items);
        CHECK(imapd::fetch_needs_text(fetch_items(s.items)) == s.needs);
    }
    CHECK_FALSE(imapd::fetch_needs_text({}));
}

TEST_CASE("Which items set \\Seen")
{
    struct sample {
        std::string_view items;
        bool sets;
    };
    const sample samples[] = {
        {"BODY[]", true},          {"BODY.PEEK[]", false},
        {"BODY[TEXT]<0.10>", true}, {"BINARY[1]", true},
        {"BINARY.PEEK[1]", false}, {"BINARY.SIZE[1]", false},
        {"RFC822", true},          {"RFC822.TEXT", true},
        {"RFC822.HEADER", false},  {"BODY", false},
        {"BODYSTRUCTURE", false},  {"ENVELOPE", false},
        {"FULL", false},           {"(FLAGS UID RFC822.SIZE INTERNALDATE MODSEQ)", false},
        {"(BODY.PEEK[1] BODY[2])", true},
    };
    for (const auto& s : samples) {
        CAPTURE(s.items);
        CHECK(imapd::fetch_sets_seen(fetch_items(s.items)) == s.sets);
    }
}

} // TEST_SUITE

#include "postern/imapd/search.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "../mime/messages.hpp"
#include "wire.hpp"

using namespace postern;
using imapd::testing::info;
using imapd::testing::search_args;
using mime::testing::crlf;

namespace {

// 17-Jul-1996 23:59:59 UTC: the last second of that day.
constexpr std::int64_t july_17_1996_late = 837647999;

const std::string plain = crlf("From: Alice Example <alice@example.org>\n"
                               "To: bob@example.net\n"
                               "To: Carol <carol@example.com>\n"
                               "Cc: dave@example.com\n"
                               "Bcc: eve@example.com\n"
                               "Subject: Quarterly report\n"
                               "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\n"
                               "X-Spam: yes\n"
                               "X-Empty:\n"
                               "\n"
                               "The numbers are in.\n"
                               "See you Monday.\n");

// The program of "a SEARCH <keys>" evaluated on one message.
bool match(std::string_view keys, const mailbox::message_info& m, std::string_view text = plain, std::size_t seq = 1,
           imapd::search_context ctx = {.max_seq = 10, .max_uid = 100})
{
    const auto args = search_args(keys);
    return imapd::search_matches(args.program, {.seq = seq, .info = &m, .text = text}, ctx);
}

// An IMAP literal holding s: 8-bit search strings cannot be atoms.
std::string lit(std::string_view s)
{
    return "{" + std::to_string(s.size()) + "}\r\n" + std::string(s);
}

// A message with only text (flags and size do not matter).
bool match_text(std::string_view keys, std::string_view text)
{
    const auto m = info(1);
    return match(keys, m, text);
}

// A single-part message whose body is encoded.
std::string body_message(std::string_view content_type, std::string_view encoding, std::string_view body)
{
    return crlf("Subject: x\nContent-Type: " + std::string(content_type) + "\nContent-Transfer-Encoding: " +
                std::string(encoding) + "\n\n") +
           std::string(body);
}

} // namespace

TEST_SUITE("imapd") {

TEST_CASE("Flag keys test the message's flags")
{
    struct sample {
        std::string_view key;
        char letter;
    };
    const sample samples[] = {
        {"ANSWERED", 'R'}, {"DELETED", 'T'}, {"DRAFT", 'D'}, {"FLAGGED", 'F'}, {"SEEN", 'S'},
    };
    for (const auto& s : samples) {
        CAPTURE(s.key);
        const auto with = info(1, std::string(1, s.letter));
        const auto without = info(1, "DFRST" + std::string());
        const auto none = info(1);
        CHECK(match(s.key, with));
        CHECK_FALSE(match(s.key, none));
        CHECK_FALSE(match("UN" + std::string(s.key), with));
        CHECK(match("UN" + std::string(s.key), none));
        CHECK(match(s.key, without));
    }
}

TEST_CASE("KEYWORD and UNKEYWORD match keywords case-insensitively")
{
    const auto m = info(1, "S", {"$Forwarded", "Work"});
    CHECK(match("KEYWORD $Forwarded", m));
    CHECK(match("KEYWORD $FORWARDED", m));
    CHECK(match("KEYWORD work", m));
    CHECK_FALSE(match("KEYWORD $Junk", m));
    CHECK_FALSE(match("KEYWORD Wor", m)); // whole keywords, no substrings
    CHECK(match("UNKEYWORD $Junk", m));
    CHECK_FALSE(match("UNKEYWORD WORK", m));
    CHECK(match("UNKEYWORD $Forwarded", info(1)));
}

TEST_CASE("RECENT, NEW and OLD follow the view's \\Recent")
{
    const auto recent_unseen = info(1, "", {}, true);
    const auto recent_seen = info(1, "S", {}, true);
    const auto old_unseen = info(1);
    CHECK(match("RECENT", recent_unseen));
    CHECK(match("RECENT", recent_seen));
    CHECK_FALSE(match("RECENT", old_unseen));
    CHECK(match("NEW", recent_unseen));
    CHECK_FALSE(match("NEW", recent_seen));
    CHECK_FALSE(match("NEW", old_unseen));
    CHECK(match("OLD", old_unseen));
    CHECK_FALSE(match("OLD", recent_unseen));
}

TEST_CASE("LARGER and SMALLER compare the size strictly")
{
    auto m = info(1);
    m.size = 1000;
    CHECK(match("LARGER 999", m));
    CHECK_FALSE(match("LARGER 1000", m));
    CHECK(match("SMALLER 1001", m));
    CHECK_FALSE(match("SMALLER 1000", m));
    CHECK(match("SMALLER 1001 LARGER 999", m));
}

TEST_CASE("BEFORE, ON and SINCE use the internal date's UTC day")
{
    auto m = info(1);
    m.internal_date = july_17_1996_late;
    CHECK(match("ON 17-Jul-1996", m));
    CHECK_FALSE(match("ON 18-Jul-1996", m));
    CHECK(match("SINCE 17-Jul-1996", m));
    CHECK(match("SINCE 1-Jan-1990", m));
    CHECK_FALSE(match("SINCE 18-Jul-1996", m));
    CHECK(match("BEFORE 18-Jul-1996", m));
    CHECK_FALSE(match("BEFORE 17-Jul-1996", m));
    CHECK(match("BEFORE \"1-Aug-1996\"", m));
    SUBCASE("one second later is the next day")
    {
        m.internal_date += 1;
        CHECK(match("ON 18-Jul-1996", m));
        CHECK(match("SINCE 18-Jul-1996", m));
    }
    SUBCASE("year boundaries compare by year first")
    {
        CHECK(match("BEFORE 1-Jan-1997", m));
        CHECK_FALSE(match("BEFORE 31-Dec-1995", m));
    }
}

TEST_CASE("SENTON, SENTBEFORE and SENTSINCE read the Date: field's day as written")
{
    struct sample {
        std::string_view date;
        std::string_view on; // "" when the date must not parse
    };
    const sample samples[] = {
        {"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)", "17-Jul-1996"},
        {"17 Jul 1996 02:23:25 -0700", "17-Jul-1996"},          // no day of week
        {"Wed 17 Jul 1996 02:23:25 +0000", "17-Jul-1996"},      // no comma
        {"wed, 17 JUL 1996 02:23 +0000", "17-Jul-1996"},        // any case, no seconds
        {"Wed, 7 Jul 1996 02:23:25 GMT", "7-Jul-1996"},         // obsolete zones (RFC 5322 4.3)
        {"Wed, 07 Jul 1996 02:23:25 EST", "7-Jul-1996"},
        {"Wed, 17 Jul 1996 02:23:25 Z", "17-Jul-1996"},
        {"Wed, 17 Jul 1996 02:23:25", "17-Jul-1996"},           // no zone at all
        {"Wed, 17 Jul 96 02:23:25 +0000", "17-Jul-1996"},       // 2-digit years: 50-99 → 19xx
        {"Sun, 1 Jan 05 00:00:00 +0000", "1-Jan-2005"},         // 00-49 → 20xx
        {"1 Jan 49 00:00 +0000", "1-Jan-2049"},
        {"1 Jan 50 00:00 +0000", "1-Jan-1950"},
        {"1 Jan 105 00:00 +0000", "1-Jan-2005"},                // 3-digit years: +1900
        {"(sent) Wed, 17 (day) Jul 1996 02:23:25 +0000", "17-Jul-1996"},
        {"17 July 1996 02:23:25 +0000", "17-Jul-1996"},
        {"17-Jul-1996 02:23:25 +0000", "17-Jul-1996"},
        {"  Wed,17 Jul 1996 02:23:25 +0000", "17-Jul-1996"},
        {"Wed, 17 Jul 1996 23:30:00 -1200", "17-Jul-1996"},     // its own zone is ignored
        {"", ""},
        {"tomorrow", ""},
        {"Wed, 32 Jul 1996 02:23:25 +0000", ""},
        {"Wed, 0 Jul 1996 02:23:25 +0000", ""},
        {"Wed, 17 Foo 1996 02:23:25 +0000", ""},
        {"Wed, 17 Jul", ""},
        {"Wed, 17 Jul 1 02:23:25 +0000", ""},
        {"Wed, 17 Jul 19966 02:23:25 +0000", ""},
        {"1996-07-17T02:23:25Z", ""},
    };
    const auto m = info(1);
    for (const auto& s : samples) {
        CAPTURE(s.date);
        const auto text = crlf("Subject: x\nDate: " + std::string(s.date) + "\n\nbody\n");
        if (s.on.empty()) {
            CHECK_FALSE(match("OR OR SENTON 17-Jul-1996 SENTBEFORE 1-Jan-3000 SENTSINCE 1-Jan-1000", m, text));
            CHECK(match("NOT SENTSINCE 1-Jan-1000", m, text));
        } else {
            CHECK(match("SENTON " + std::string(s.on), m, text));
            CHECK(match("SENTSINCE " + std::string(s.on), m, text));
            CHECK_FALSE(match("SENTBEFORE " + std::string(s.on), m, text));
            CHECK(match("SENTBEFORE 1-Jan-3000 SENTSINCE 1-Jan-1000", m, text));
        }
    }
    SUBCASE("day boundaries")
    {
        CHECK(match("SENTBEFORE 18-Jul-1996", m));
        CHECK(match("SENTSINCE 16-Jul-1996", m));
        CHECK_FALSE(match("SENTSINCE 18-Jul-1996", m));
        CHECK_FALSE(match("SENTON 16-Jul-1996", m));
    }
    SUBCASE("a message without Date: never matches")
    {
        const auto text = crlf("Subject: x\n\nbody\n");
        CHECK_FALSE(match("SENTBEFORE 1-Jan-3000", m, text));
        CHECK_FALSE(match("SENTSINCE 1-Jan-1000", m, text));
        CHECK_FALSE(match("SENTON 17-Jul-1996", m, text));
    }
    SUBCASE("the first Date: field counts")
    {
        const auto text = crlf("Date: 1 Jan 2000 00:00 +0000\nDate: 2 Jan 2000 00:00 +0000\n\nbody\n");
        CHECK(match("SENTON 1-Jan-2000", m, text));
        CHECK_FALSE(match("SENTON 2-Jan-2000", m, text));
    }
}

TEST_CASE("Address and subject keys are case-insensitive substrings of any field of the name")
{
    const auto m = info(1);
    CHECK(match("FROM alice", m));
    CHECK(match("FROM \"ALICE EXAMPLE\"", m));
    CHECK(match("FROM example.org", m));
    CHECK_FALSE(match("FROM bob", m));
    CHECK(match("TO bob@example.net", m));
    CHECK(match("TO carol", m)); // the second To: field
    CHECK_FALSE(match("TO dave", m));
    CHECK(match("CC dave", m));
    CHECK(match("BCC eve", m));
    CHECK_FALSE(match("CC eve", m));
    CHECK(match("SUBJECT quarterly", m));
    CHECK(match("SUBJECT \"RLY REP\"", m));
    CHECK_FALSE(match("SUBJECT numbers", m)); // that is in the body
    SUBCASE("an empty string matches when the field is there")
    {
        CHECK(match("SUBJECT \"\"", m));
        CHECK_FALSE(match("SUBJECT \"\"", m, crlf("From: a@b\n\nx\n")));
    }
    SUBCASE("folded values match across the fold")
    {
        CHECK(match_text("SUBJECT \"long subject\"", crlf("Subject: a long\n subject line\n\nx\n")));
    }
}

TEST_CASE("Header keys match after RFC 2047 decoding")
{
    const auto utf8_q = crlf("Subject: =?utf-8?q?caf=C3=A9?=\n\nx\n");
    CHECK(match_text("SUBJECT " + lit("caf\xc3\xa9"), utf8_q));
    CHECK(match_text("SUBJECT CAF", utf8_q));
    CHECK_FALSE(match_text("SUBJECT C3", utf8_q));
    SUBCASE("B encoding, latin-1, split words")
    {
        const auto text = crlf("Subject: =?ISO-8859-1?B?Q2Fm6Q==?= und =?iso-8859-1?q?Cr=E8me?=\n"
                               " =?utf-8?q?br=C3=BB?= =?utf-8?q?l=C3=A9e?=\n"
                               "From: =?utf-8?q?Andr=C3=A9?= <andre@example.org>\n\nx\n");
        CHECK(match_text("SUBJECT " + lit("Caf\xc3\xa9"), text));
        CHECK(match_text("SUBJECT " + lit("und cr\xc3\xa8me"), text));
        CHECK(match_text("SUBJECT " + lit("br\xc3\xbbl\xc3\xa9" "e"), text)); // RFC 2047 6.2: the space between joins
        CHECK(match_text("FROM " + lit("Andr\xc3\xa9"), text));
        CHECK(match_text("HEADER From " + lit("andr\xc3\xa9 <andre"), text));
    }
    SUBCASE("the search string may come as a literal (CHARSET UTF-8)")
    {
        CHECK(match_text("CHARSET UTF-8 SUBJECT {5}\r\ncaf\xc3\xa9", utf8_q));
    }
}

TEST_CASE("HEADER matches the named field; an empty value tests its presence")
{
    const auto m = info(1);
    CHECK(match("HEADER X-Spam yes", m));
    CHECK(match("HEADER x-spam YES", m));
    CHECK_FALSE(match("HEADER X-Spam no", m));
    CHECK(match("HEADER X-Spam \"\"", m));
    CHECK(match("HEADER X-Empty \"\"", m));
    CHECK_FALSE(match("HEADER X-Missing \"\"", m));
    CHECK(match("HEADER Subject report", m));
    CHECK(match("HEADER Date 1996", m));
}

TEST_CASE("BODY searches the decoded text parts; TEXT the header too")
{
    const auto m = info(1);
    CHECK(match("BODY numbers", m));
    CHECK(match("BODY \"see YOU\"", m));
    CHECK_FALSE(match("BODY quarterly", m));
    CHECK(match("TEXT quarterly", m));
    CHECK(match("TEXT numbers", m));
    CHECK(match("TEXT x-spam", m)); // field names are header text too
    CHECK_FALSE(match("TEXT nowhere", m));
    SUBCASE("base64")
    {
        const auto text =
            body_message("text/plain", "base64", "VGhlIHNlY3JldCB3b3JkIGlz\r\nIHN3b3JkZmlzaC4NCg==\r\n");
        CHECK(match_text("BODY swordfish", text));
        CHECK(match_text("BODY \"SECRET WORD\"", text));
        CHECK_FALSE(match_text("BODY VGhl", text));
        CHECK(match_text("TEXT swordfish", text));
    }
    SUBCASE("quoted-printable, soft line breaks included")
    {
        const auto text = body_message("text/plain; charset=utf-8", "quoted-printable", "caf=C3=A9 au l=\r\nait\r\n");
        CHECK(match_text("BODY " + lit("caf\xc3\xa9"), text));
        CHECK(match_text("BODY \"au lait\"", text));
        CHECK_FALSE(match_text("BODY C3", text));
    }
    SUBCASE("a latin-1 body is converted to UTF-8")
    {
        const auto text = body_message("text/plain; charset=iso-8859-1", "8bit", "caf\xe9\r\n");
        CHECK(match_text("BODY " + lit("caf\xc3\xa9"), text));
        const auto qp = body_message("text/plain; charset=ISO-8859-1", "quoted-printable", "caf=E9\r\n");
        CHECK(match_text("BODY " + lit("caf\xc3\xa9"), qp));
    }
    SUBCASE("an unknown charset leaves the octets")
    {
        const auto text = body_message("text/plain; charset=x-unknown", "7bit", "plain words\r\n");
        CHECK(match_text("BODY words", text));
    }
    SUBCASE("an unknown transfer encoding leaves the octets")
    {
        const auto text = body_message("text/plain", "x-uuencode", "begin 644 x\r\n");
        CHECK(match_text("BODY \"begin 644\"", text));
    }
    SUBCASE("multipart: every text part, down into encapsulated messages; not attachments")
    {
        const auto& n = mime::testing::nested_message;
        CHECK(match_text("BODY \"hello bob.\"", n));
        CHECK(match_text("BODY <p>", n)); // text/html is text too
        CHECK(match_text("BODY \"inner text\"", n));
        CHECK_FALSE(match_text("BODY \"%PDF\"", n)); // application/pdf, even decoded
        CHECK_FALSE(match_text("BODY JVBER", n));
        CHECK_FALSE(match_text("BODY GIF89a", n));
        CHECK_FALSE(match_text("BODY preamble", n)); // no part's text
        CHECK_FALSE(match_text("BODY \"inner message\"", n)); // an encapsulated header is no body
        CHECK(match_text("TEXT \"inner message\"", n));     // but TEXT sees it
        CHECK(match_text("TEXT carol@example.com", n));
        CHECK(match_text("TEXT nested", n));
        CHECK_FALSE(match_text("SUBJECT \"inner message\"", n)); // header keys: the top-level header only
    }
    SUBCASE("a message without a body")
    {
        CHECK_FALSE(match_text("BODY x", crlf("Subject: x\n")));
        CHECK(match_text("BODY \"\"", crlf("Subject: x\n")));
        CHECK(match_text("TEXT subject", crlf("Subject: x\n")));
    }
}

TEST_CASE("Sequence and UID sets resolve \"*\" against the view")
{
    const imapd::search_context ctx{.max_seq = 5, .max_uid = 50};
    const auto m = info(30);
    struct sample {
        std::string_view keys;
        std::size_t seq;
        bool expected;
    };
    const sample samples[] = {
        {"3", 3, true},        {"3", 4, false},        {"1:*", 5, true},   {"*", 5, true},
        {"*", 4, false},       {"2,4:5", 4, true},     {"6:*", 5, true},   // "6:*" is 5:6 (RFC 9051 9)
        {"UID 30", 1, true},   {"UID 31:*", 1, false}, {"UID *", 1, false}, {"UID 1:*", 1, true},
        {"UID 60:*", 1, false}, {"UID 29,30", 1, true},
    };
    for (const auto& s : samples) {
        CAPTURE(s.keys);
        CAPTURE(s.seq);
        CHECK(match(s.keys, m, plain, s.seq, ctx) == s.expected);
    }
    SUBCASE("a UID range past the largest UID includes it")
    {
        const auto last = info(50);
        CHECK(match("UID 60:*", last, plain, 5, ctx));
        CHECK(match("UID *", last, plain, 5, ctx));
    }
    SUBCASE("\"*\" on an empty view matches nothing")
    {
        const imapd::search_context empty{};
        CHECK_FALSE(match("*", m, plain, 1, empty));
        CHECK_FALSE(match("UID *", m, plain, 1, empty));
        CHECK(imapd::search_response("a", search_args("*"), false, {}) == "* SEARCH\r\n");
        CHECK(imapd::search_response("a", search_args("RETURN (COUNT MIN) *"), false, {}) ==
              "* ESEARCH (TAG \"a\") COUNT 0\r\n");
    }
}

TEST_CASE("\"$\" is the saved result, as UIDs, for sequence and UID keys")
{
    const std::vector<std::uint32_t> saved{3, 7, 30};
    const imapd::search_context ctx{.max_seq = 5, .max_uid = 50, .saved = &saved};
    CHECK(match("$", info(30), plain, 1, ctx));
    CHECK(match("UID $", info(7), plain, 5, ctx));
    CHECK_FALSE(match("$", info(4), plain, 3, ctx)); // sequence number 3 is not UID 3
    CHECK_FALSE(match("UID $", info(31), plain, 3, ctx));
    CHECK(match("NOT $", info(4), plain, 3, ctx));
    SUBCASE("nothing saved: \"$\" is empty")
    {
        const imapd::search_context none{.max_seq = 5, .max_uid = 50};
        CHECK_FALSE(match("$", info(30), plain, 1, none));
        CHECK_FALSE(match("UID $", info(30), plain, 1, none));
        const std::vector<std::uint32_t> empty;
        const imapd::search_context cleared{.max_seq = 5, .max_uid = 50, .saved = &empty};
        CHECK_FALSE(match("UID $", info(30), plain, 1, cleared));
    }
}

TEST_CASE("OR, NOT and parenthesised lists nest")
{
    const auto seen = info(1, "S");
    const auto flagged = info(1, "F");
    const auto deleted_seen = info(1, "ST");
    const auto none = info(1);
    struct sample {
        std::string_view keys;
        bool seen, flagged, deleted_seen, none;
    };
    const sample samples[] = {
        {"OR SEEN FLAGGED", true, true, true, false},
        {"NOT SEEN", false, true, false, true},
        {"NOT NOT SEEN", true, false, true, false},
        {"(SEEN DELETED)", false, false, true, false},
        {"SEEN NOT DELETED", true, false, false, false},
        {"OR (SEEN DELETED) FLAGGED", false, true, true, false},
        {"NOT OR SEEN FLAGGED", false, false, false, true},
        {"OR NOT SEEN DELETED", false, true, true, true},
        {"OR OR DELETED FLAGGED NOT (SEEN)", false, true, true, true},
        {"(OR SEEN FLAGGED) (NOT DELETED)", true, true, false, false},
        {"OR (SEEN FROM alice) (FLAGGED FROM nobody)", true, false, true, false},
        {"ALL", true, true, true, true},
        {"NOT ALL", false, false, false, false},
    };
    for (const auto& s : samples) {
        CAPTURE(s.keys);
        CHECK(match(s.keys, seen) == s.seen);
        CHECK(match(s.keys, flagged) == s.flagged);
        CHECK(match(s.keys, deleted_seen) == s.deleted_seen);
        CHECK(match(s.keys, none) == s.none);
    }
}

TEST_CASE("MODSEQ never matches (no CONDSTORE)")
{
    CHECK_FALSE(match("MODSEQ 1", info(1)));
    CHECK(match("NOT MODSEQ 1", info(1)));
}

TEST_CASE("Which keys need the message text")
{
    struct sample {
        std::string_view keys;
        bool needs;
    };
    const sample samples[] = {
        {"ALL", false},          {"SEEN UNSEEN ANSWERED UNANSWERED DELETED UNDELETED", false},
        {"DRAFT UNDRAFT FLAGGED UNFLAGGED", false}, {"KEYWORD a UNKEYWORD b", false},
        {"NEW OLD RECENT", false}, {"LARGER 1 SMALLER 2", false},
        {"BEFORE 1-Jan-2000 ON 1-Jan-2000 SINCE 1-Jan-2000", false},
        {"UID 1:* 1:5 $", false}, {"MODSEQ 5", false},
        {"OR SEEN (NOT DELETED)", false},
        {"BCC x", true},   {"CC x", true},   {"FROM x", true}, {"TO x", true},
        {"SUBJECT x", true}, {"HEADER a b", true}, {"BODY x", true}, {"TEXT x", true},
        {"SENTBEFORE 1-Jan-2000", true}, {"SENTON 1-Jan-2000", true}, {"SENTSINCE 1-Jan-2000", true},
        {"OR SEEN (NOT FROM x)", true}, {"NOT NOT (SEEN BODY x)", true},
    };
    for (const auto& s : samples) {
        CAPTURE(s.keys);
        CHECK(imapd::search_needs_text(search_args(s.keys).program) == s.needs);
    }
}

TEST_CASE("CHARSET: none, UTF-8 and US-ASCII are supported")
{
    for (const std::string_view c : {"", "UTF-8", "utf-8", "US-ASCII", "us-ascii"}) {
        CAPTURE(c);
        CHECK(imapd::search_charset_supported(c));
    }
    for (const std::string_view c : {"ISO-8859-1", "UTF8", "utf-16", "x"}) {
        CAPTURE(c);
        CHECK_FALSE(imapd::search_charset_supported(c));
    }
}

TEST_CASE("SEARCH without RETURN answers \"* SEARCH\" with the numbers")
{
    const std::vector<std::uint32_t> found{2, 5, 7};
    CHECK(imapd::search_response("A1", search_args("ALL"), false, found) == "* SEARCH 2 5 7\r\n");
    CHECK(imapd::search_response("A1", search_args("ALL"), true, found) == "* SEARCH 2 5 7\r\n");
    CHECK(imapd::search_response("A1", search_args("ALL"), false, {}) == "* SEARCH\r\n");
}

TEST_CASE("ESEARCH answers the RETURN options in MIN MAX COUNT ALL order")
{
    const std::vector<std::uint32_t> found{2, 5, 6, 7};
    struct sample {
        std::string_view keys;
        bool uid;
        std::string expected;
    };
    const sample samples[] = {
        {"RETURN (MIN COUNT) FLAGGED", false, "* ESEARCH (TAG \"A282\") MIN 2 COUNT 4\r\n"},
        {"RETURN (MIN MAX COUNT ALL) FLAGGED", true, "* ESEARCH (TAG \"A282\") UID MIN 2 MAX 7 COUNT 4 ALL 2,5:7\r\n"},
        {"RETURN (ALL COUNT MAX MIN) FLAGGED", false, "* ESEARCH (TAG \"A282\") MIN 2 MAX 7 COUNT 4 ALL 2,5:7\r\n"},
        {"RETURN () FLAGGED", false, "* ESEARCH (TAG \"A282\") ALL 2,5:7\r\n"},
        {"RETURN (ALL) FLAGGED", true, "* ESEARCH (TAG \"A282\") UID ALL 2,5:7\r\n"},
        {"RETURN (MAX) FLAGGED", false, "* ESEARCH (TAG \"A282\") MAX 7\r\n"},
        {"RETURN (SAVE MIN) FLAGGED", false, "* ESEARCH (TAG \"A282\") MIN 2\r\n"},
        {"RETURN (SAVE) FLAGGED", false, ""},
    };
    for (const auto& s : samples) {
        CAPTURE(s.keys);
        CHECK(imapd::search_response("A282", search_args(s.keys), s.uid, found) == s.expected);
    }
    SUBCASE("the RFC 4731 3.1 example")
    {
        const std::vector<std::uint32_t> uids{2, 10, 11};
        CHECK(imapd::search_response("A283", search_args("RETURN () FLAGGED"), true, uids) ==
              "* ESEARCH (TAG \"A283\") UID ALL 2,10:11\r\n");
    }
    SUBCASE("nothing matched: COUNT 0 stays, MIN, MAX and ALL go")
    {
        CHECK(imapd::search_response("t", search_args("RETURN (MIN MAX COUNT ALL) SEEN"), true, {}) ==
              "* ESEARCH (TAG \"t\") UID COUNT 0\r\n");
        CHECK(imapd::search_response("t", search_args("RETURN (MIN) SEEN"), false, {}) == "* ESEARCH (TAG \"t\")\r\n");
        CHECK(imapd::search_response("t", search_args("RETURN () SEEN"), false, {}) == "* ESEARCH (TAG \"t\")\r\n");
    }
}

TEST_CASE("SAVE keeps what RFC 5182 2.4 says")
{
    const std::vector<std::uint32_t> uids{2, 5, 6, 7};
    using v = std::vector<std::uint32_t>;
    CHECK(imapd::saved_result(search_args("RETURN (SAVE) ALL"), uids) == v{2, 5, 6, 7});
    CHECK(imapd::saved_result(search_args("RETURN (SAVE MIN) ALL"), uids) == v{2});
    CHECK(imapd::saved_result(search_args("RETURN (MAX SAVE) ALL"), uids) == v{7});
    CHECK(imapd::saved_result(search_args("RETURN (SAVE MIN MAX) ALL"), uids) == v{2, 7});
    CHECK(imapd::saved_result(search_args("RETURN (SAVE MIN COUNT) ALL"), uids) == v{2, 5, 6, 7});
    CHECK(imapd::saved_result(search_args("RETURN (SAVE MAX ALL) ALL"), uids) == v{2, 5, 6, 7});
    CHECK(imapd::saved_result(search_args("RETURN (SAVE MIN MAX) ALL"), v{4}) == v{4});
    CHECK(imapd::saved_result(search_args("RETURN (SAVE MIN) ALL"), v{}) == v{});
    CHECK(imapd::saved_result(search_args("RETURN (MIN) ALL"), uids) == v{});
    CHECK(imapd::saved_result(search_args("ALL"), uids) == v{});
}

TEST_CASE("compact_set joins runs into ranges")
{
    using v = std::vector<std::uint32_t>;
    struct sample {
        v numbers;
        std::string_view set;
    };
    const sample samples[] = {
        {{}, ""},
        {{4}, "4"},
        {{2, 5, 6, 7}, "2,5:7"},
        {{1, 2}, "1:2"},
        {{1, 3, 5}, "1,3,5"},
        {{1, 2, 3, 10, 11, 20}, "1:3,10:11,20"},
        {{5, 5, 6}, "5:6"}, // duplicates fold
        {{4294967294U, 4294967295U}, "4294967294:4294967295"},
    };
    for (const auto& s : samples) {
        CAPTURE(s.set);
        CHECK(imapd::compact_set(s.numbers) == s.set);
    }
}

TEST_CASE("A message without info or text matches only what needs neither")
{
    const imapd::search_context ctx{.max_seq = 1, .max_uid = 1};
    const auto program = search_args("UNSEEN").program;
    CHECK(imapd::search_matches(program, {.seq = 1, .info = nullptr, .text = {}}, ctx));
    CHECK_FALSE(imapd::search_matches(search_args("SUBJECT x").program, {.seq = 1, .info = nullptr, .text = {}}, ctx));
}

} // TEST_SUITE

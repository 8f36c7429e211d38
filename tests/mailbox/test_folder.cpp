#include "postern/mailbox/folder.hpp"

#include <ostream>
#include <string>

#include <doctest/doctest.h>

#include "postern/util/error.hpp"

using namespace postern;

TEST_SUITE("mailbox")
{
    TEST_CASE("folder names map to Maildir++ directories, INBOX to the root")
    {
        CHECK(*mailbox::folder_dir("INBOX") == "");
        CHECK(*mailbox::folder_dir("inbox") == "");
        CHECK(*mailbox::folder_dir("Sent") == ".Sent");
        CHECK(*mailbox::folder_dir("Archive.2024") == ".Archive.2024");
        CHECK(*mailbox::folder_dir("inbox.x") == ".INBOX.x");
        CHECK(*mailbox::folder_dir("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e") == ".&ZeVnLIqe-"); // 日本語
        CHECK(*mailbox::folder_dir("a&b") == ".a&-b");
        CHECK(*mailbox::canonical_folder_name("Inbox.Sub") == "INBOX.Sub");
        CHECK(*mailbox::canonical_folder_name("Inboxes") == "Inboxes");
    }

    TEST_CASE("invalid folder names are refused")
    {
        for (const std::string bad : {"", ".a", "a.", "a..b", "..", ".", "a/b", "a\tb", "a*", "a%b", "a\x7f",
                                      "\xff", "caf\xc3", "\xc2\x85", "\xc0\xae", "\xed\xa0\x80"}) {
            CAPTURE(bad);
            CHECK_FALSE(mailbox::canonical_folder_name(bad));
            CHECK_FALSE(mailbox::folder_dir(bad));
        }
        CHECK(mailbox::folder_dir(std::string(300, 'a')).error() == util::errc::too_long);
        // 120 three-octet characters: a short name, but too long encoded.
        std::string wide;
        for (int i = 0; i < 120; ++i)
            wide += "\xe6\x97\xa5";
        CHECK(mailbox::folder_dir(wide).error() == util::errc::too_long);
        std::string deep = "a";
        for (std::size_t i = 1; i < mailbox::max_depth; ++i)
            deep += ".a";
        CHECK(mailbox::folder_dir(deep));
        CHECK(mailbox::folder_dir(deep + ".a").error() == util::errc::limit);
        CHECK(mailbox::folder_dir("postern-lock").error() == util::errc::refused);
    }

    TEST_CASE("modified UTF-7 round-trips RFC 3501's example")
    {
        const std::string wire = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        const std::string utf8 = "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e";
        CHECK(*mailbox::mutf7_decode(wire) == utf8);
        CHECK(*mailbox::mutf7_encode(utf8) == wire);
        SUBCASE("the ampersand and plain ASCII stand for themselves")
        {
            CHECK(*mailbox::mutf7_encode("Tom & Jerry") == "Tom &- Jerry");
            CHECK(*mailbox::mutf7_decode("Tom &- Jerry") == "Tom & Jerry");
            CHECK(*mailbox::mutf7_encode("") == "");
        }
        SUBCASE("characters beyond the BMP go as surrogate pairs")
        {
            const std::string emoji = "x\xf0\x9f\x98\x80y"; // U+1F600
            auto enc = mailbox::mutf7_encode(emoji);
            REQUIRE(enc);
            CHECK(*enc == "x&2D3eAA-y");
            CHECK(*mailbox::mutf7_decode(*enc) == emoji);
        }
        SUBCASE("one to three octets of padding")
        {
            for (const std::string s : {"\xc3\xa9", "\xc3\xa9\xc3\xa9", "\xc3\xa9\xc3\xa9\xc3\xa9"}) {
                CAPTURE(s);
                auto enc = mailbox::mutf7_encode(s);
                REQUIRE(enc);
                CHECK(*mailbox::mutf7_decode(*enc) == s);
            }
        }
    }

    TEST_CASE("malformed modified UTF-7 is refused")
    {
        for (const std::string bad : {"&", "&U,BTFw", "&AGE-", "&2D0-", "a\x7f", "a\x80", "&U,BTF-", "&Jj!-",
                                      "tab\there", "&3gA-"}) {
            CAPTURE(bad);
            CHECK(mailbox::mutf7_decode(bad).error() == util::errc::syntax);
        }
        CHECK(mailbox::mutf7_encode("\xff").error() == util::errc::syntax);
    }

    TEST_CASE("directory entries are folders only as postern would write them")
    {
        CHECK(*mailbox::folder_name_of_dir(".Sent") == "Sent");
        CHECK(*mailbox::folder_name_of_dir(".&ZeVnLIqe-") == "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
        for (const std::string no : {".", "..", "cur", "Sent", ".postern-lock", ".INBOX", ".inbox", ".&AGE-",
                                     ".a..b", ".a.", ".&"}) {
            CAPTURE(no);
            CHECK_FALSE(mailbox::folder_name_of_dir(no));
        }
    }

    TEST_CASE("LIST patterns: * crosses the separator, % does not")
    {
        struct row {
            const char* pattern;
            const char* name;
            bool match;
        };
        const row rows[] = {
            {"*", "a.b", true},      {"%", "a.b", false},        {"%", "a", true},
            {"a.%", "a.b", true},    {"a.%", "a.b.c", false},    {"*.%", "a.b.c", true},
            {"a*", "abc.d", true},   {"a%", "abc.d", false},     {"%.b", "a.b", true},
            {"x", "y", false},       {"", "", true},             {"", "a", false},
            {"inbox", "INBOX", true}, {"Inbox.%", "INBOX.x", true}, {"INBOX*", "INBOX.x.y", true},
            {"in%", "INBOX", false}, {"S*t", "Sent", true},      {"%%t", "Sen.t", false},
        };
        for (const auto& r : rows) {
            CAPTURE(r.pattern);
            CAPTURE(r.name);
            CHECK(mailbox::pattern_matches(r.pattern, r.name) == r.match);
        }
    }

    TEST_CASE("the special-use folders carry their RFC 6154 attributes")
    {
        CHECK(mailbox::special_use_of("Sent") == mailbox::special_use::sent);
        CHECK(mailbox::special_use_of("Junk") == mailbox::special_use::junk);
        CHECK(mailbox::special_use_of("sent") == mailbox::special_use::none);
        CHECK(mailbox::special_use_attribute(mailbox::special_use::drafts) == "\\Drafts");
        CHECK(mailbox::special_use_attribute(mailbox::special_use::trash) == "\\Trash");
        CHECK(mailbox::special_use_attribute(mailbox::special_use::none).empty());
        CHECK(mailbox::special_use_name(mailbox::special_use::trash) == "Trash");
    }
}

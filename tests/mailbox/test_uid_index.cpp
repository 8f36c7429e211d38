#include "postern/mailbox/uid_index.hpp"

#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <string>

#include <doctest/doctest.h>

#include "../temp_dir.hpp"

#include "postern/util/atomic_write.hpp"
#include "postern/util/error.hpp"

using namespace postern;

namespace {

mailbox::uid_index sample()
{
    mailbox::uid_index x;
    x.uidvalidity = 1764165000;
    x.uidnext = 9;
    x.entries.push_back({3, "1764165100.Qabc.mx1", {}, 120});
    x.entries.push_back({7, "1764165200.M1P2Q3.mx1", {"$Forwarded", "work"}, std::nullopt});
    return x;
}

} // namespace

TEST_SUITE("mailbox")
{
    TEST_CASE("an index survives encoding and decoding")
    {
        const auto text = mailbox::encode_index(sample());
        CHECK(text ==
              "postern-uidlist 2\nuidvalidity 1764165000\nuidnext 9\n"
              "3 1764165100.Qabc.mx1 120\n7 1764165200.M1P2Q3.mx1 - $Forwarded work\n");
        auto back = mailbox::decode_index(text);
        REQUIRE(back);
        CHECK(back->uidvalidity == 1764165000);
        CHECK(back->uidnext == 9);
        REQUIRE(back->entries.size() == 2);
        CHECK(back->entries[1].uid == 7);
        CHECK(back->entries[1].unique == "1764165200.M1P2Q3.mx1");
        CHECK(back->entries[1].keywords == std::vector<std::string>{"$Forwarded", "work"});
        CHECK(back->entries[0].size == 120);
        CHECK_FALSE(back->entries[1].size);
    }

    TEST_CASE("a version 1 index (no size field) still loads, its sizes unknown")
    {
        auto old = mailbox::decode_index("postern-uidlist 1\nuidvalidity 1764165000\nuidnext 9\n"
                                         "3 1764165100.Qabc.mx1\n7 1764165200.M1P2Q3.mx1 $Forwarded 120\n");
        REQUIRE(old);
        CHECK(old->uidvalidity == 1764165000);
        REQUIRE(old->entries.size() == 2);
        CHECK(old->entries[0].keywords.empty());
        CHECK_FALSE(old->entries[0].size);
        // In version 1 every field after the name is a keyword, digits too.
        CHECK(old->entries[1].keywords == std::vector<std::string>{"$Forwarded", "120"});
        CHECK_FALSE(old->entries[1].size);
        CHECK(mailbox::encode_index(*old).starts_with("postern-uidlist 2\n"));
    }

    TEST_CASE("a damaged index decodes as corrupt")
    {
        const std::string head = "postern-uidlist 2\nuidvalidity 5\nuidnext 9\n";
        for (const std::string& bad : std::vector<std::string>{
                 std::string(),
                 head + "3 a 1\n3 b 1\n",               // not ascending
                 head + "4 a 1\n3 b 1\n",               // not ascending
                 head + "9 a 1\n",                      // not below uidnext
                 head + "0 a 1\n",                      // uid 0
                 head + "3 a 1\n4 a 1\n",               // one name, two uids
                 head + "3 a 1 (x\n",                   // keyword not an atom
                 head + "3 a 1 \\Seen\n",               // a system flag is no keyword
                 head + "3\n",                          // no name
                 head + "3 a\n",                        // no size
                 head + "3 a $Junk\n",                  // a keyword where the size goes
                 head + "3 a -1\n",                     // not a size
                 head + "3 a 99999999999999999999999\n", // too big
                 head + "3 a:2,S 1\n",                  // an info part is no unique name
                 head + "3 a 1",                        // torn: no line end
                 head + "3 a 1 " + std::string(5000, 'k') + "\n", // line too long
                 std::string("postern-uidlist 1\nuidvalidity 5\nuidnext 9\n3 a (x\n"),
                 std::string("postern-uidlist 2\nuidvalidity 0\nuidnext 9\n"),
                 std::string("postern-uidlist 2\nuidnext 9\nuidvalidity 5\n"),
                 std::string("garbage\n"),
             }) {
            CAPTURE(bad);
            CHECK(mailbox::decode_index(bad).error() == util::errc::corrupt);
        }
        std::string many = head + "3 a 1";
        for (std::size_t i = 0; i <= mailbox::max_keywords; ++i)
            many += " k" + std::to_string(i);
        CHECK(mailbox::decode_index(many + "\n").error() == util::errc::corrupt);
        CHECK(mailbox::decode_index("postern-uidlist 3\nuidvalidity 5\nuidnext 9\n").error() ==
              util::errc::unsupported_version);
    }

    TEST_CASE("read_index tells a loaded, a missing and a corrupt index apart")
    {
        testing::temp_dir tmp;
        auto r = mailbox::read_index(tmp.str());
        REQUIRE(r);
        CHECK(r->state == mailbox::index_state::missing);

        REQUIRE(mailbox::write_index(tmp.str(), sample()));
        r = mailbox::read_index(tmp.str());
        REQUIRE(r);
        CHECK(r->state == mailbox::index_state::loaded);
        CHECK(r->index.entries.size() == 2);

        SUBCASE("a corrupt one keeps its old UIDVALIDITY when legible")
        {
            REQUIRE(util::atomic_write(tmp.str(), mailbox::index_file,
                                       "postern-uidlist 1\nuidvalidity 1764165000\nuidnext x\n"));
            r = mailbox::read_index(tmp.str());
            REQUIRE(r);
            CHECK(r->state == mailbox::index_state::corrupt);
            CHECK(r->old_uidvalidity == 1764165000);
            CHECK(r->index.entries.empty());
        }
        SUBCASE("binary junk is corrupt too")
        {
            REQUIRE(util::atomic_write(tmp.str(), mailbox::index_file, std::string("\0\1\2", 3)));
            r = mailbox::read_index(tmp.str());
            REQUIRE(r);
            CHECK(r->state == mailbox::index_state::corrupt);
            CHECK(r->old_uidvalidity == 0);
        }
    }

    TEST_CASE("UIDVALIDITY values follow the clock but never repeat or go back")
    {
        testing::temp_dir tmp;
        CHECK(*mailbox::allocate_uidvalidity(tmp.str(), 1000) == 1000);
        CHECK(*mailbox::allocate_uidvalidity(tmp.str(), 1000) == 1001); // same second
        CHECK(*mailbox::allocate_uidvalidity(tmp.str(), 900) == 1002);  // clock stepped back
        CHECK(*mailbox::allocate_uidvalidity(tmp.str(), 5000) == 5000);
        CHECK(*mailbox::allocate_uidvalidity(tmp.str(), 5000, 9000) == 9001); // above an old one
        CHECK(std::filesystem::exists(tmp.str(std::string(mailbox::uidvalidity_file))));
    }

    TEST_CASE("unique names and keywords the index can hold")
    {
        CHECK(mailbox::valid_unique("1764165100.Qabc.mx1"));
        CHECK(mailbox::valid_unique("1764165100.M1P2Q3.host\\057x"));
        for (const std::string& bad : std::vector<std::string>{"", ".hidden", "a b", "a:2,S", "a/b", "a\nb", std::string(256, 'a')}) {
            CAPTURE(bad);
            CHECK_FALSE(mailbox::valid_unique(bad));
        }
        CHECK(mailbox::valid_keyword("$Forwarded"));
        CHECK(mailbox::valid_keyword("NonJunk"));
        for (const std::string& bad : std::vector<std::string>{"", "\\Seen", "a b", "a]", "a(", "a{", "a%", "a*", "a\"", "caf\xc3\xa9",
                                      std::string(65, 'k')}) {
            CAPTURE(bad);
            CHECK_FALSE(mailbox::valid_keyword(bad));
        }
    }
}

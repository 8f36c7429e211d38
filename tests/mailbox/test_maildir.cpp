#include "postern/mailbox/maildir.hpp"

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <sys/stat.h>
#include <utime.h>

#include <doctest/doctest.h>

#include "../temp_dir.hpp"

#include "postern/util/error.hpp"

namespace fs = std::filesystem;
using namespace postern;

namespace {

// A Maildir with tmp/new/cur.
struct maildir_fixture {
    testing::temp_dir tmp;
    std::string dir = tmp.str("Maildir");
    maildir_fixture()
    {
        for (const char* sub : {"tmp", "new", "cur"})
            fs::create_directories(dir + "/" + sub);
    }
    // Writes <dir>/<file> with mtime `when`.
    void put(const std::string& file, const std::string& bytes, long when)
    {
        const std::string path = dir + "/" + file;
        std::ofstream(path, std::ios::binary) << bytes;
        utimbuf t{when, when};
        REQUIRE(::utime(path.c_str(), &t) == 0);
    }
};

} // namespace

TEST_SUITE("mailbox")
{
    TEST_CASE("a snapshot lists new/ and cur/ by delivery time, then name")
    {
        maildir_fixture m;
        m.put("new/1700000300.Qbbbb.host", "Subject: c\r\n\r\nc\r\n", 1700000300);
        m.put("cur/1700000100.Qaaaa.host:2,S", "Subject: a\r\n\r\na\r\n", 1700000100);
        m.put("new/1700000200.Qzzzz.host", "Subject: b2\r\n\r\nb\r\n", 1700000200);
        m.put("new/1700000200.Qyyyy.host", "Subject: b1\r\n\r\nb\r\n", 1700000200);
        m.put("new/.hidden", "x", 1);
        m.put("tmp/1700000000.Qtmp.host", "not yet delivered", 1);
        fs::create_directories(m.dir + "/cur/subdir");
        auto s = mailbox::snapshot(m.dir);
        REQUIRE(s);
        REQUIRE(s->size() == 4);
        CHECK((*s)[0].unique == "1700000100.Qaaaa.host");
        CHECK((*s)[0].flags == "S");
        CHECK((*s)[0].file == "cur/1700000100.Qaaaa.host:2,S");
        CHECK((*s)[1].unique == "1700000200.Qyyyy.host");
        CHECK((*s)[2].unique == "1700000200.Qzzzz.host");
        CHECK((*s)[3].unique == "1700000300.Qbbbb.host");
        CHECK((*s)[3].flags.empty());
        CHECK((*s)[3].size == std::string("Subject: c\r\n\r\nc\r\n").size());
        CHECK((*s)[3].uid == (*s)[3].unique);
    }

    TEST_CASE("a missing Maildir is an error value")
    {
        testing::temp_dir tmp;
        CHECK_FALSE(mailbox::snapshot(tmp.str("nope")));
    }

    TEST_CASE("unique-ids are printable and at most 70 characters")
    {
        CHECK(mailbox::pop3_uid("1700000000.Qabc.host") == "1700000000.Qabc.host");
        SUBCASE("too long")
        {
            const std::string u = mailbox::pop3_uid(std::string(71, 'a'));
            CHECK(u.size() == 32);
            CHECK(u == mailbox::pop3_uid(std::string(71, 'a'))); // stable
            CHECK(u != mailbox::pop3_uid(std::string(72, 'a')));
        }
        SUBCASE("not printable")
        {
            CHECK(mailbox::pop3_uid("a b").size() == 32);
            CHECK(mailbox::pop3_uid("caf\xc3\xa9").size() == 32);
            CHECK(mailbox::pop3_uid("").size() == 32);
        }
    }

    TEST_CASE("read gives the message as stored, read_top the header and n body lines")
    {
        maildir_fixture m;
        const std::string msg = "From: a\r\nSubject: s\r\n\r\nline1\r\nline2\r\nline3\r\n";
        m.put("new/1.Q1.h", msg, 1);
        auto s = mailbox::snapshot(m.dir);
        REQUIRE(s);
        REQUIRE(s->size() == 1);
        auto& e = (*s)[0];
        CHECK(*mailbox::read(m.dir, e) == msg);
        CHECK(*mailbox::read_top(m.dir, e, 0) == "From: a\r\nSubject: s\r\n\r\n");
        CHECK(*mailbox::read_top(m.dir, e, 2) == "From: a\r\nSubject: s\r\n\r\nline1\r\nline2\r\n");
        CHECK(*mailbox::read_top(m.dir, e, 99) == msg);
        SUBCASE("a message without a body is all header")
        {
            m.put("new/2.Q2.h", "From: a\r\n", 2);
            auto s2 = mailbox::snapshot(m.dir);
            REQUIRE(s2);
            CHECK(*mailbox::read_top(m.dir, (*s2)[1], 5) == "From: a\r\n");
        }
    }

    TEST_CASE("mark_seen renames into cur/ with S, keeping the flags sorted")
    {
        maildir_fixture m;
        m.put("new/1.Q1.h", "x\r\n", 1);
        m.put("cur/2.Q2.h:2,FT", "y\r\n", 2);
        auto s = mailbox::snapshot(m.dir);
        REQUIRE(s);
        REQUIRE(mailbox::mark_seen(m.dir, (*s)[0]));
        CHECK((*s)[0].file == "cur/1.Q1.h:2,S");
        CHECK(fs::exists(m.dir + "/cur/1.Q1.h:2,S"));
        CHECK_FALSE(fs::exists(m.dir + "/new/1.Q1.h"));
        REQUIRE(mailbox::mark_seen(m.dir, (*s)[1]));
        CHECK((*s)[1].file == "cur/2.Q2.h:2,FST");
        CHECK(fs::exists(m.dir + "/cur/2.Q2.h:2,FST"));
        // Already seen: nothing to do.
        CHECK(mailbox::mark_seen(m.dir, (*s)[1]));
        // The unique name, and so the UIDL, does not change.
        auto again = mailbox::snapshot(m.dir);
        REQUIRE(again);
        CHECK((*again)[0].uid == "1.Q1.h");
        CHECK((*again)[1].uid == "2.Q2.h");
    }

    TEST_CASE("remove unlinks the message")
    {
        maildir_fixture m;
        m.put("new/1.Q1.h", "x\r\n", 1);
        auto s = mailbox::snapshot(m.dir);
        REQUIRE(s);
        CHECK(mailbox::remove(m.dir, (*s)[0]));
        CHECK(testing::files_under(m.dir) == 0);
    }

    TEST_CASE("a message moved or removed by another process is an error value")
    {
        maildir_fixture m;
        m.put("new/1.Q1.h", "x\r\n", 1);
        auto s = mailbox::snapshot(m.dir);
        REQUIRE(s);
        auto e = (*s)[0];
        fs::remove(m.dir + "/new/1.Q1.h");
        CHECK(mailbox::read(m.dir, e).error() == util::errc::not_found);
        CHECK(mailbox::read_top(m.dir, e, 1).error() == util::errc::not_found);
        CHECK(mailbox::mark_seen(m.dir, e).error() == util::errc::not_found);
        CHECK(mailbox::remove(m.dir, e).error() == util::errc::not_found);
    }

    TEST_CASE("POP3 sizes, RETR and TOP of a message written with bare LF count and send CRLF")
    {
        maildir_fixture m;
        const std::string lf = "From: a\nSubject: s\n\nline1\nline2\r\nline3\n";
        const std::string crlf = "From: a\r\nSubject: s\r\n\r\nline1\r\nline2\r\nline3\r\n";
        m.put("new/1700000001.M2P2.procmail", lf, 1);
        auto s = mailbox::snapshot(m.dir);
        REQUIRE(s);
        REQUIRE(s->size() == 1);
        auto& e = (*s)[0];
        CHECK(e.file_size == lf.size());
        CHECK(e.size == crlf.size()); // RFC 1939 11: LIST counts the octets RETR sends
        CHECK(*mailbox::read(m.dir, e) == crlf);
        CHECK(*mailbox::read_top(m.dir, e, 0) == "From: a\r\nSubject: s\r\n\r\n");
        CHECK(*mailbox::read_top(m.dir, e, 1) == "From: a\r\nSubject: s\r\n\r\nline1\r\n");
        CHECK(*mailbox::read_top(m.dir, e, 99) == crlf);
        SUBCASE("listing() opens no file: its size is the file's")
        {
            auto l = mailbox::listing(m.dir);
            REQUIRE(l);
            CHECK((*l)[0].size == lf.size());
        }
        SUBCASE("a file gone between listing and counting is left out")
        {
            auto l = mailbox::listing(m.dir);
            REQUIRE(l);
            fs::remove(m.dir + "/new/1700000001.M2P2.procmail");
            CHECK(mailbox::rfc5322_size(m.dir, (*l)[0]).error() == util::errc::not_found);
        }
    }

    TEST_CASE("a size a name vouches for is taken without reading the file")
    {
        // Dovecot: ",W=<size with CRLF line ends>", as it is.
        CHECK(mailbox::size_from_name("1700000001.M1P1.h,S=10,W=12", 10) == 12);
        CHECK(mailbox::size_from_name("1700000001.M1P1.h,W=12,S=10", 10) == 12);
        CHECK(mailbox::size_from_name("1700000001.M1P1.h,W=", 10) == std::nullopt);
        CHECK(mailbox::size_from_name("1700000001.M1P1.h,W=1x", 10) == std::nullopt);
        CHECK(mailbox::size_from_name("1700000001.M1P1.h,S=10", 10) == std::nullopt);
        // postern's delivery ("<time>.Q<16 hex>.<host>") writes CRLF only.
        CHECK(mailbox::size_from_name("1700000001.Q0123456789abcdef.mx1", 10) == 10);
        CHECK(mailbox::size_from_name("1700000001.Q0123456789abcdef.", 10) == std::nullopt);
        CHECK(mailbox::size_from_name("1700000001.Q0123456789ABCDEF.mx1", 10) == std::nullopt);
        CHECK(mailbox::size_from_name("1700000001.Qabc.mx1", 10) == std::nullopt);
        CHECK(mailbox::size_from_name("x.Q0123456789abcdef.mx1", 10) == std::nullopt);
        CHECK(mailbox::size_from_name("1700000001.M1P2Q3.mx1", 10) == std::nullopt); // an IMAP APPEND
        maildir_fixture m;
        m.put("new/1700000001.M1P1.h,S=2,W=3", "a\n", 1);
        auto s = mailbox::snapshot(m.dir);
        REQUIRE(s);
        CHECK((*s)[0].size == 3);
    }
}

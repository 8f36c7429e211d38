#include "postern/imapd/executor.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <utime.h>

#include <doctest/doctest.h>

#include "../temp_dir.hpp"

#include "postern/imap/command.hpp"
#include "postern/imap/reader.hpp"
#include "postern/mailbox/uid_index.hpp"
#include "postern/util/atomic_write.hpp"
#include "postern/util/clock.hpp"

namespace fs = std::filesystem;
using namespace postern;

namespace {

constexpr std::int64_t t0 = 1764165000; // the clock, and INBOX's UIDVALIDITY

// Frames and parses one command as a client sends it, its final CRLF
// added (literals included: the reader's continuation requests are
// skipped, the octets already fed).
imap::command parse(std::string text)
{
    text += "\r\n";
    imap::reader r;
    r.feed(text);
    auto ev = r.next();
    while (ev == imap::read_event::continuation)
        ev = r.next();
    REQUIRE(ev == imap::read_event::command);
    auto p = imap::parse_command(r.take_command());
    INFO(p.error.str());
    REQUIRE(p);
    return std::move(*p.command);
}

// The message local delivery writes for a unique name.
std::string delivered(const std::string& unique)
{
    return "Subject: " + unique + "\r\n\r\nbody\r\n";
}

std::string literal(const std::string& bytes)
{
    return "{" + std::to_string(bytes.size()) + "}\r\n" + bytes;
}

std::vector<std::string> files_in(const std::string& dir)
{
    std::vector<std::string> out;
    if (!fs::exists(dir))
        return out;
    for (const auto& e : fs::directory_iterator(dir))
        out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

// A user's Maildir, an executor over it, and a second store for what other
// sessions, POP3 and delivery do behind the executor's back.
struct fixture {
    testing::temp_dir tmp;
    std::string root = tmp.str("alice");
    util::manual_clock clock{util::from_unix_seconds(t0)};
    imapd::executor ex{mailbox::store{root, clock, {"mx.test", 1000}}};
    mailbox::store other{root, clock, {"mx.test", 1000}};

    // Writes <root>/<file> with mtime `when`.
    void put(const std::string& file, const std::string& bytes, std::int64_t when)
    {
        const std::string path = root + "/" + file;
        fs::create_directories(fs::path(path).parent_path());
        std::ofstream(path, std::ios::binary) << bytes;
        utimbuf t{when, when};
        REQUIRE(::utime(path.c_str(), &t) == 0);
    }
    // Local delivery into INBOX's new/.
    void deliver(const std::string& unique, std::int64_t when) { put("new/" + unique, delivered(unique), when); }
    // Three messages: 1 new (recent, unseen), 2 seen in cur/, 3 new.
    void three()
    {
        deliver("100.Qa.mx", 100);
        put("cur/200.Qb.mx:2,S", delivered("200.Qb.mx"), 200);
        deliver("300.Qc.mx", 300);
    }

    imap::outcome run(std::string line) { return ex.run(parse(std::move(line))); }
    std::string text(std::string line) { return run(std::move(line)).text; }
    void select(const std::string& line = "s SELECT INBOX")
    {
        auto o = run(line);
        INFO(o.text);
        REQUIRE(o.text.find(" OK [READ-") != std::string::npos);
        REQUIRE(o.selected);
    }
    std::uint32_t uidvalidity(const std::string& folder)
    {
        auto st = other.status(folder);
        REQUIRE(st);
        return st->uidvalidity;
    }
};

const std::string select_flags = "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n";
const std::string select_permanent =
    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n";

} // namespace

TEST_SUITE("imapd")
{
    // ---- RFC 9051 6.3.2 SELECT / 6.3.3 EXAMINE / RFC 5161 ENABLE ----------

    TEST_CASE("SELECT reports the folder's flags, counts, UIDVALIDITY and UIDNEXT (RFC 9051 6.3.2)")
    {
        fixture f;
        f.three();
        SUBCASE("SELECT is read-write, IMAP4rev1 gets RECENT and UNSEEN")
        {
            auto o = f.run("a SELECT INBOX");
            CHECK(o.text == select_flags + select_permanent +
                                "* 3 EXISTS\r\n"
                                "* 2 RECENT\r\n"
                                "* OK [UNSEEN 1] First unseen\r\n"
                                "* OK [UIDVALIDITY 1764165000] UIDs valid\r\n"
                                "* OK [UIDNEXT 4] Predicted next UID\r\n"
                                "a OK [READ-WRITE] SELECT completed\r\n");
            CHECK(o.selected);
            CHECK_FALSE(o.close);
            CHECK(f.ex.selected());
            CHECK(f.ex.selected_path() == f.root);
        }
        SUBCASE("EXAMINE is read-only with no permanent flags (RFC 9051 6.3.3)")
        {
            auto o = f.run("a EXAMINE inbox");
            CHECK(o.text == select_flags +
                                "* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n"
                                "* 3 EXISTS\r\n"
                                "* 2 RECENT\r\n"
                                "* OK [UNSEEN 1] First unseen\r\n"
                                "* OK [UIDVALIDITY 1764165000] UIDs valid\r\n"
                                "* OK [UIDNEXT 4] Predicted next UID\r\n"
                                "a OK [READ-ONLY] EXAMINE completed\r\n");
            CHECK(o.selected);
        }
        SUBCASE("keywords in use are listed in FLAGS and PERMANENTFLAGS")
        {
            f.select();
            REQUIRE(f.text("k STORE 2 +FLAGS.SILENT ($Work $Forwarded)") == "k OK STORE completed\r\n");
            auto o = f.run("a SELECT INBOX");
            CHECK(o.text.starts_with("* OK [CLOSED] Previous mailbox closed\r\n"
                                     "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $Work)\r\n"
                                     "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft "
                                     "$Forwarded $Work \\*)] Flags permitted\r\n"));
        }
        SUBCASE("an empty folder has no UNSEEN and UIDNEXT 1")
        {
            REQUIRE(f.text("c CREATE Work") == "c OK CREATE completed\r\n");
            auto o = f.run("a SELECT Work");
            CHECK(o.text == select_flags + select_permanent + "* 0 EXISTS\r\n* 0 RECENT\r\n" +
                                "* OK [UIDVALIDITY " + std::to_string(f.uidvalidity("Work")) +
                                "] UIDs valid\r\n"
                                "* OK [UIDNEXT 1] Predicted next UID\r\n"
                                "a OK [READ-WRITE] SELECT completed\r\n");
        }
    }

    TEST_CASE("SELECT of a missing folder is NO [NONEXISTENT] and leaves nothing selected (RFC 9051 6.3.2)")
    {
        fixture f;
        f.three();
        SUBCASE("from the authenticated state")
        {
            auto o = f.run("a SELECT Nope");
            CHECK(o.text == "a NO [NONEXISTENT] Mailbox does not exist\r\n");
            CHECK_FALSE(o.selected);
        }
        SUBCASE("while another folder is selected: it is closed first (RFC 9051 7.1 CLOSED)")
        {
            f.select();
            auto o = f.run("a SELECT Nope");
            CHECK(o.text == "* OK [CLOSED] Previous mailbox closed\r\n"
                            "a NO [NONEXISTENT] Mailbox does not exist\r\n");
            CHECK_FALSE(o.selected);
            CHECK_FALSE(f.ex.selected());
            CHECK(f.ex.selected_path().empty());
        }
        SUBCASE("an invalid modified UTF-7 name")
        {
            auto o = f.run("a SELECT \"&Jjo\"");
            CHECK(o.text == "a NO [CANNOT] Invalid mailbox name\r\n");
            CHECK_FALSE(o.selected);
        }
    }

    TEST_CASE("re-SELECT while selected starts with * OK [CLOSED] (RFC 9051 7.1)")
    {
        fixture f;
        f.three();
        f.select("a EXAMINE INBOX");
        auto o = f.run("b SELECT INBOX");
        CHECK(o.text.starts_with("* OK [CLOSED] Previous mailbox closed\r\n" + select_flags + select_permanent));
        CHECK(o.text.ends_with("b OK [READ-WRITE] SELECT completed\r\n"));
        CHECK(o.selected);
        // Read-write now: STORE works.
        CHECK(f.text("c STORE 1 +FLAGS.SILENT (\\Flagged)") == "c OK STORE completed\r\n");
    }

    TEST_CASE("after ENABLE IMAP4rev2, SELECT sends no RECENT and a LIST line (RFC 9051 6.3.2, RFC 5161)")
    {
        fixture f;
        f.three();
        CHECK(f.text("e ENABLE IMAP4rev2") == "* ENABLED IMAP4rev2\r\ne OK ENABLE completed\r\n");
        CHECK(f.text("e2 ENABLE IMAP4rev2 CONDSTORE") == "* ENABLED\r\ne2 OK ENABLE completed\r\n");
        auto o = f.run("a SELECT inbox");
        CHECK(o.text == select_flags + select_permanent +
                            "* 3 EXISTS\r\n"
                            "* OK [UIDVALIDITY 1764165000] UIDs valid\r\n"
                            "* OK [UIDNEXT 4] Predicted next UID\r\n"
                            "* LIST () \".\" \"INBOX\"\r\n"
                            "a OK [READ-WRITE] SELECT completed\r\n");
        // Changes are reported without RECENT too.
        f.deliver("400.Qd.mx", 400);
        CHECK(f.text("n NOOP") == "* 4 EXISTS\r\nn OK NOOP completed\r\n");
    }

    TEST_CASE("ENABLE lists only what it turned on (RFC 5161 3.1)")
    {
        fixture f;
        CHECK(f.text("e ENABLE UTF8=ACCEPT IMAP4rev2") ==
              "* ENABLED UTF8=ACCEPT IMAP4rev2\r\ne OK ENABLE completed\r\n");
        CHECK(f.text("e ENABLE utf8=accept") == "* ENABLED\r\ne OK ENABLE completed\r\n");
    }

    // ---- RFC 9051 7 / 5.2: changes made by others -------------------------

    TEST_CASE("changes behind the view's back are reported at NOOP (RFC 9051 5.2, 7.4.1, 7.5.1, 7.5.2)")
    {
        fixture f;
        f.three();
        f.select();
        CHECK(f.text("n NOOP") == "n OK NOOP completed\r\n");

        SUBCASE("a delivery into new/ is EXISTS (and RECENT for IMAP4rev1)")
        {
            f.deliver("400.Qd.mx", 400);
            CHECK(f.text("n NOOP") == "* 4 EXISTS\r\n* 3 RECENT\r\nn OK NOOP completed\r\n");
            CHECK(f.text("n NOOP") == "n OK NOOP completed\r\n");
            CHECK(f.text("f UID FETCH 4 FLAGS") == "* 4 FETCH (UID 4 FLAGS (\\Recent))\r\nf OK FETCH completed\r\n");
        }
        SUBCASE("a removed file is EXPUNGE")
        {
            fs::remove(f.root + "/cur/200.Qb.mx:2,S");
            // RFC 9051 7.4.1: the EXPUNGE lowers the count by itself; no EXISTS follows.
        CHECK(f.text("n NOOP") == "* 2 EXPUNGE\r\nn OK NOOP completed\r\n");
            CHECK(f.text("f FETCH 2 UID") == "* 2 FETCH (UID 3)\r\nf OK FETCH completed\r\n");
        }
        SUBCASE("a file renamed with new flag letters is FETCH FLAGS with the UID")
        {
            fs::rename(f.root + "/new/300.Qc.mx", f.root + "/cur/300.Qc.mx:2,FS");
            CHECK(f.text("n NOOP") == "* 3 FETCH (FLAGS (\\Flagged \\Seen \\Recent) UID 3)\r\nn OK NOOP completed\r\n");
        }
        SUBCASE("a keyword set by another session is FETCH FLAGS too")
        {
            auto v = f.other.open("INBOX");
            REQUIRE(v);
            const std::uint32_t one[] = {1};
            const std::string_view kw[] = {"$Important"};
            REQUIRE(f.other.store_flags(*v, one, mailbox::flag_change::add, *mailbox::parse_flags(kw)));
            CHECK(f.text("n NOOP") == "* 1 FETCH (FLAGS ($Important \\Recent) UID 1)\r\nn OK NOOP completed\r\n");
        }
        SUBCASE("CHECK is a NOOP")
        {
            f.deliver("400.Qd.mx", 400);
            CHECK(f.text("c CHECK") == "* 4 EXISTS\r\n* 3 RECENT\r\nc OK CHECK completed\r\n");
        }
        SUBCASE("all three at once, EXPUNGE first, then FETCH, then EXISTS")
        {
            fs::remove(f.root + "/new/100.Qa.mx");
            fs::rename(f.root + "/new/300.Qc.mx", f.root + "/cur/300.Qc.mx:2,T");
            f.deliver("400.Qd.mx", 400);
            CHECK(f.text("n NOOP") == "* 1 EXPUNGE\r\n"
                                      "* 2 FETCH (FLAGS (\\Deleted \\Recent) UID 3)\r\n"
                                      "* 3 EXISTS\r\n"
                                      "* 2 RECENT\r\n"
                                      "n OK NOOP completed\r\n");
        }
        SUBCASE("IDLE's poll() reports the same, once")
        {
            f.deliver("400.Qd.mx", 400);
            bool close = true;
            CHECK(f.ex.poll(close) == "* 4 EXISTS\r\n* 3 RECENT\r\n");
            CHECK_FALSE(close);
            CHECK(f.ex.poll(close).empty());
            CHECK_FALSE(close);
        }
    }

    TEST_CASE("FETCH, STORE and SEARCH with sequence numbers never send EXPUNGE; UID FETCH and NOOP do (RFC 9051 7.5.1)")
    {
        fixture f;
        f.three();
        f.select();
        fs::remove(f.root + "/cur/200.Qb.mx:2,S");
        f.deliver("400.Qd.mx", 400);

        CHECK(f.text("a FETCH 1:3 FLAGS") == "* 1 FETCH (FLAGS (\\Recent))\r\n"
                                             "* 2 FETCH (FLAGS (\\Seen))\r\n"
                                             "* 3 FETCH (FLAGS (\\Recent))\r\n"
                                             "a OK FETCH completed\r\n");
        CHECK(f.text("b STORE 1 +FLAGS (\\Flagged)") == "* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n"
                                                       "b OK STORE completed\r\n");
        CHECK(f.text("c SEARCH ALL") == "* SEARCH 1 2 3\r\nc OK SEARCH completed\r\n");
        CHECK(f.text("d STORE 2 +FLAGS.SILENT (\\Answered)") == "d OK STORE completed\r\n");

        SUBCASE("UID FETCH reports after its own responses")
        {
            CHECK(f.text("e UID FETCH 1 FLAGS") == "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))\r\n"
                                                   "* 2 EXPUNGE\r\n"
                                                   "* 3 EXISTS\r\n"
                                                   "* 3 RECENT\r\n"
                                                   "e OK FETCH completed\r\n");
        }
        SUBCASE("NOOP reports")
        {
            CHECK(f.text("e NOOP") == "* 2 EXPUNGE\r\n* 3 EXISTS\r\n* 3 RECENT\r\ne OK NOOP completed\r\n");
        }
        SUBCASE("UID SEARCH and UID STORE report too")
        {
            CHECK(f.text("e UID SEARCH ALL") == "* SEARCH 1 2 3\r\n* 2 EXPUNGE\r\n* 3 EXISTS\r\n* 3 RECENT\r\n"
                                                "e OK SEARCH completed\r\n");
        }
        CHECK(f.text("z NOOP") == "z OK NOOP completed\r\n");
    }

    // ---- RFC 9051 6.4.5 FETCH ---------------------------------------------

    TEST_CASE("FETCH BODY[] sets \\Seen, BODY.PEEK[] and EXAMINE do not (RFC 9051 6.4.5)")
    {
        fixture f;
        f.three();
        const std::string a = delivered("100.Qa.mx");

        SUBCASE("BODY[] renames the file to :2,S and adds FLAGS")
        {
            f.select();
            CHECK(f.text("a FETCH 1 BODY[]") ==
                  "* 1 FETCH (BODY[] " + literal(a) + " FLAGS (\\Seen \\Recent))\r\na OK FETCH completed\r\n");
            CHECK(fs::exists(f.root + "/cur/100.Qa.mx:2,S"));
            CHECK_FALSE(fs::exists(f.root + "/new/100.Qa.mx"));
            // Already seen: no FLAGS this time.
            CHECK(f.text("b FETCH 1 BODY[]") == "* 1 FETCH (BODY[] " + literal(a) + ")\r\nb OK FETCH completed\r\n");
            // Another view learns it as a flag change, not as a new message.
            CHECK(f.text("n NOOP") == "n OK NOOP completed\r\n");
        }
        SUBCASE("asked for FLAGS, they are not repeated; UID FETCH puts UID first")
        {
            f.select();
            CHECK(f.text("a UID FETCH 3 (FLAGS BODY[HEADER])") ==
                  "* 3 FETCH (UID 3 FLAGS (\\Seen \\Recent) BODY[HEADER] {22}\r\nSubject: 300.Qc.mx\r\n\r\n)\r\n"
                  "a OK FETCH completed\r\n");
        }
        SUBCASE("BODY.PEEK[] leaves the file alone")
        {
            f.select();
            CHECK(f.text("a FETCH 1 BODY.PEEK[]") == "* 1 FETCH (BODY[] " + literal(a) + ")\r\na OK FETCH completed\r\n");
            CHECK(fs::exists(f.root + "/new/100.Qa.mx"));
            CHECK(f.text("b FETCH 1 FLAGS") == "* 1 FETCH (FLAGS (\\Recent))\r\nb OK FETCH completed\r\n");
        }
        SUBCASE("in an EXAMINEd folder nothing is ever set")
        {
            f.select("s EXAMINE INBOX");
            for (const std::string cmd : {"a FETCH 1 BODY[]", "a FETCH 1 RFC822", "a FETCH 1 BODY[TEXT]"}) {
                CAPTURE(cmd);
                CHECK(f.text(cmd).find("FLAGS") == std::string::npos);
            }
            CHECK(f.text("a FETCH 1 BODY[]") == "* 1 FETCH (BODY[] " + literal(a) + ")\r\na OK FETCH completed\r\n");
            CHECK(files_in(f.root + "/new") == std::vector<std::string>{"100.Qa.mx", "300.Qc.mx"});
        }
    }

    TEST_CASE("a message with bare LF line ends is fetched as CRLF: RFC822.SIZE, BODYSTRUCTURE and BODY[1] agree (RFC 9051 2.3.4)")
    {
        fixture f;
        // As procmail or maildrop write it: LF line ends.
        const std::string lf = "Subject: lf\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
                               "--b\nContent-Type: text/plain\n\none\ntwo\nsix\n--b\n"
                               "Content-Type: text/plain\n\nseven\n--b--\n";
        std::string crlf;
        for (char c : lf)
            crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
        f.put("new/1700000001.M2P2.procmail", lf, 100);
        f.select("s EXAMINE INBOX");
        const std::string part1 = "one\r\ntwo\r\nsix"; // the line end before a delimiter is the delimiter's
        CHECK(f.text("a FETCH 1 (RFC822.SIZE BODY[1] BODY[])") ==
              "* 1 FETCH (RFC822.SIZE " + std::to_string(crlf.size()) + " BODY[1] " + literal(part1) + " BODY[] " +
                  literal(crlf) + ")\r\na OK FETCH completed\r\n");
        // RFC 9051 7.5.2 body-fld-octets: each part's size as BODY[n] sends it (13, not 11).
        CHECK(f.text("b FETCH 1 BODYSTRUCTURE") ==
              "* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" " +
                  std::to_string(part1.size()) +
                  " 3 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 1 NIL NIL NIL "
                  "NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL))\r\nb OK FETCH completed\r\n");
        CHECK(f.text("c SEARCH LARGER " + std::to_string(lf.size())) == "* SEARCH 1\r\nc OK SEARCH completed\r\n");
    }

    TEST_CASE("FETCH BINARY[] sets \\Seen like BODY[] (RFC 3516 4.2)")
    {
        fixture f;
        f.three();
        f.select();
        CHECK(f.text("a FETCH 3 BINARY[1]") == "* 3 FETCH (BINARY[1] {6}\r\nbody\r\n FLAGS (\\Seen \\Recent))\r\n"
                                               "a OK FETCH completed\r\n");
        CHECK(fs::exists(f.root + "/cur/300.Qc.mx:2,S"));
    }

    TEST_CASE("CONDSTORE parameters are refused: it is not offered (RFC 7162)")
    {
        fixture f;
        f.three();
        CHECK(f.text("a SELECT INBOX (CONDSTORE)") == "a BAD [CLIENTBUG] SELECT parameters are not supported\r\n");
        f.select();
        CHECK(f.text("b FETCH 1 (FLAGS) (CHANGEDSINCE 1)") == "b BAD [CLIENTBUG] MODSEQ needs CONDSTORE\r\n");
        CHECK(f.text("c FETCH 1 (FLAGS MODSEQ)") == "c BAD [CLIENTBUG] MODSEQ needs CONDSTORE\r\n");
        CHECK(f.text("d STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)") ==
              "d BAD [CLIENTBUG] UNCHANGEDSINCE needs CONDSTORE\r\n");
        CHECK(f.text("e STATUS INBOX (HIGHESTMODSEQ)") == "e BAD [CLIENTBUG] HIGHESTMODSEQ needs CONDSTORE\r\n");
        CHECK(fs::exists(f.root + "/new/100.Qa.mx"));
    }

    TEST_CASE("FETCH of a sequence number past the end is BAD (RFC 9051 9 seq-number)")
    {
        fixture f;
        f.three();
        f.select();
        for (const std::string cmd : {"a FETCH 4 FLAGS", "a FETCH 2:4 FLAGS", "a FETCH 5:* FLAGS"}) {
            CAPTURE(cmd);
            CHECK(f.text(cmd) == "a BAD [CLIENTBUG] Invalid message sequence number\r\n");
        }
        // UIDs past the end are ignored (RFC 9051 6.4.9).
        CHECK(f.text("b UID FETCH 4:9 FLAGS") == "b OK FETCH completed\r\n");
        CHECK(f.text("c FETCH 3:* UID") == "* 3 FETCH (UID 3)\r\nc OK FETCH completed\r\n");
        SUBCASE("\"*\" in an empty folder is past the end too")
        {
            REQUIRE(f.text("c CREATE Work").ends_with("OK CREATE completed\r\n"));
            f.select("s SELECT Work");
            CHECK(f.text("d FETCH 1:* FLAGS") == "d BAD [CLIENTBUG] Invalid message sequence number\r\n");
            CHECK(f.text("e UID FETCH 1:* FLAGS") == "e OK FETCH completed\r\n");
        }
    }

    TEST_CASE("FETCH of a message whose file vanished is NO [EXPUNGEISSUED], the others answered (RFC 5530 3)")
    {
        fixture f;
        f.three();
        f.select();
        fs::remove(f.root + "/cur/200.Qb.mx:2,S");
        CHECK(f.text("a FETCH 1:3 BODY.PEEK[]") ==
              "* 1 FETCH (BODY[] " + literal(delivered("100.Qa.mx")) + ")\r\n"
              "* 3 FETCH (BODY[] " + literal(delivered("300.Qc.mx")) + ")\r\n"
              "a NO [EXPUNGEISSUED] Some messages were expunged meanwhile\r\n");
        // The next command that may says so.
        CHECK(f.text("b NOOP") == "* 2 EXPUNGE\r\nb OK NOOP completed\r\n");
    }

    TEST_CASE("a large FETCH answer comes in pieces, the tagged OK only at the end")
    {
        fixture f;
        // Three messages of 600 KB: more than piece_size together.
        std::vector<std::string> bodies;
        for (int i = 1; i <= 3; ++i) {
            std::string msg = "Subject: big " + std::to_string(i) + "\r\n\r\n";
            const std::string line(78, static_cast<char>('a' + i));
            while (msg.size() < 600 * 1024)
                msg += line + "\r\n";
            const std::string unique = std::to_string(i) + "00.Qbig" + std::to_string(i) + ".mx";
            f.put("cur/" + unique + ":2,S", msg, i * 100);
            bodies.push_back(std::move(msg));
        }
        REQUIRE(3 * bodies[0].size() > imapd::piece_size);
        f.select();
        std::string expected;
        for (std::size_t i = 0; i < bodies.size(); ++i)
            expected += "* " + std::to_string(i + 1) + " FETCH (BODY[] " + literal(bodies[i]) + ")\r\n";
        expected += "a OK FETCH completed\r\n";

        auto o = f.run("a FETCH 1:* BODY[]");
        std::string all = o.text;
        int pieces = 1;
        CHECK(f.ex.more());
        CHECK(o.selected);
        CHECK(o.text.find("a OK") == std::string::npos);
        CHECK(o.text.size() < 2 * imapd::piece_size);
        while (f.ex.more()) {
            o = f.ex.resume();
            CAPTURE(pieces);
            CHECK(o.selected);
            CHECK_FALSE(o.close);
            if (f.ex.more())
                CHECK(o.text.find("a OK") == std::string::npos);
            all += o.text;
            ++pieces;
            REQUIRE(pieces < 10);
        }
        CHECK(pieces >= 2);
        CHECK(o.text.ends_with("a OK FETCH completed\r\n"));
        CHECK(all.size() == expected.size());
        CHECK(all == expected);
        // Nothing left to resume.
        CHECK(f.ex.resume().text.empty());

        SUBCASE("another command abandons the rest of the answer")
        {
            (void)f.run("b FETCH 1:3 BODY.PEEK[]");
            REQUIRE(f.ex.more());
            CHECK(f.text("c NOOP") == "c OK NOOP completed\r\n");
            CHECK_FALSE(f.ex.more());
        }
    }

    // ---- RFC 9051 6.4.6 STORE ---------------------------------------------

    TEST_CASE("STORE sets, adds and removes flags and keywords and answers with FETCH FLAGS (RFC 9051 6.4.6)")
    {
        fixture f;
        f.three();
        f.select();
        struct step {
            const char* command;
            const char* answer;
            const char* file; // message 1's file afterwards
        };
        const step steps[] = {
            {"a STORE 1 +FLAGS (\\Seen \\Flagged)", "* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))\r\n",
             "cur/100.Qa.mx:2,FS"},
            {"a STORE 1 -FLAGS (\\Flagged)", "* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n", "cur/100.Qa.mx:2,S"},
            {"a STORE 1 FLAGS (\\Answered $Work)", "* 1 FETCH (FLAGS (\\Answered $Work \\Recent))\r\n",
             "cur/100.Qa.mx:2,R"},
            {"a STORE 1 +FLAGS.SILENT (\\Draft)", "", "cur/100.Qa.mx:2,DR"},
            {"a STORE 1 -FLAGS ($work)", "* 1 FETCH (FLAGS (\\Draft \\Answered \\Recent))\r\n", "cur/100.Qa.mx:2,DR"},
            {"a STORE 1 FLAGS.SILENT ()", "", "cur/100.Qa.mx:2,"},
            {"a STORE 1:2 +FLAGS (\\Deleted)",
             "* 1 FETCH (FLAGS (\\Deleted \\Recent))\r\n* 2 FETCH (FLAGS (\\Seen \\Deleted))\r\n",
             "cur/100.Qa.mx:2,T"},
        };
        for (const auto& s : steps) {
            const std::string command = s.command;
            CAPTURE(command);
            CHECK(f.text(s.command) == std::string(s.answer) + "a OK STORE completed\r\n");
            CHECK(fs::exists(f.root + "/" + s.file));
        }
        // The keyword survives in the index for another session.
        REQUIRE(f.text("k STORE 3 +FLAGS.SILENT ($Label1)") == "k OK STORE completed\r\n");
        auto v = f.other.open("INBOX");
        REQUIRE(v);
        CHECK(v->find(3)->keywords == std::vector<std::string>{"$Label1"});
    }

    TEST_CASE("UID STORE answers with the UID (RFC 9051 6.4.9)")
    {
        fixture f;
        f.three();
        f.select();
        CHECK(f.text("a UID STORE 2:3,9 +FLAGS (\\Flagged)") ==
              "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Seen))\r\n"
              "* 3 FETCH (UID 3 FLAGS (\\Flagged \\Recent))\r\n"
              "a OK STORE completed\r\n");
        CHECK(f.text("b UID STORE 2 -FLAGS.SILENT (\\Flagged)") == "b OK STORE completed\r\n");
        CHECK(fs::exists(f.root + "/cur/200.Qb.mx:2,S"));
        // The view's own changes are not reported back to it.
        CHECK(f.text("n NOOP") == "n OK NOOP completed\r\n");
    }

    TEST_CASE("STORE is refused read-only (NO) and for \\Recent or past the end (BAD)")
    {
        fixture f;
        f.three();
        SUBCASE("EXAMINE: NO")
        {
            f.select("s EXAMINE INBOX");
            CHECK(f.text("a STORE 1 +FLAGS (\\Seen)") == "a NO [CANNOT] The mailbox is read-only\r\n");
            CHECK(fs::exists(f.root + "/new/100.Qa.mx"));
        }
        SUBCASE("read-write")
        {
            f.select();
            for (const std::string flag : {"\\Recent", "\\Important"}) {
                CAPTURE(flag);
                CHECK(f.text(std::string("a STORE 1 +FLAGS (") + flag + ")") ==
                      "a BAD [CLIENTBUG] Invalid flag in STORE\r\n");
            }
            CHECK(f.text("a STORE 4 +FLAGS (\\Seen)") == "a BAD [CLIENTBUG] Invalid message sequence number\r\n");
            CHECK(files_in(f.root + "/new") == std::vector<std::string>{"100.Qa.mx", "300.Qc.mx"});
        }
    }

    // ---- RFC 9051 6.4.7 COPY, RFC 6851 MOVE, RFC 4315 UIDPLUS --------------

    TEST_CASE("COPY answers [COPYUID v src dst] and keeps the source (RFC 9051 6.4.7, RFC 4315 3)")
    {
        fixture f;
        f.three();
        REQUIRE(f.text("c CREATE Archive") == "c OK CREATE completed\r\n");
        f.select();
        const auto v = std::to_string(f.uidvalidity("Archive"));
        CHECK(f.text("a COPY 1,3 Archive") == "a OK [COPYUID " + v + " 1,3 1:2] COPY completed\r\n");
        CHECK(f.text("b UID COPY 2:9 Archive") == "b OK [COPYUID " + v + " 2:3 3:4] COPY completed\r\n");
        CHECK(f.text("c UID COPY 9 Archive") == "c OK COPY completed\r\n"); // nothing copied: no COPYUID
        CHECK(files_in(f.root + "/.Archive/cur").size() == 4);
        CHECK(files_in(f.root + "/new") == std::vector<std::string>{"100.Qa.mx", "300.Qc.mx"});
        CHECK(f.text("n NOOP") == "n OK NOOP completed\r\n");

        SUBCASE("into the selected folder: EXISTS before the tagged OK")
        {
            const auto o = f.text("d COPY 2 INBOX");
            CHECK(o.starts_with("* 4 EXISTS\r\n"));
            CHECK(o.ends_with("d OK [COPYUID 1764165000 2 4] COPY completed\r\n"));
        }
        SUBCASE("allowed in an EXAMINEd folder")
        {
            f.select("s EXAMINE INBOX");
            CHECK(f.text("d COPY 1 Archive") == "d OK [COPYUID " + v + " 1 5] COPY completed\r\n");
        }
        SUBCASE("past the end is BAD")
        {
            CHECK(f.text("d COPY 4 Archive") == "d BAD [CLIENTBUG] Invalid message sequence number\r\n");
        }
    }

    TEST_CASE("MOVE sends COPYUID untagged, then EXPUNGE, and moves the files (RFC 6851 3.3, 4.3)")
    {
        fixture f;
        f.three();
        REQUIRE(f.text("c CREATE Archive") == "c OK CREATE completed\r\n");
        f.select();
        const auto v = std::to_string(f.uidvalidity("Archive"));
        CHECK(f.text("a MOVE 1:2 Archive") == "* OK [COPYUID " + v + " 1:2 1:2] Moved\r\n"
                                              "* 2 EXPUNGE\r\n"
                                              "* 1 EXPUNGE\r\n"
                                              "a OK MOVE completed\r\n");
        CHECK(files_in(f.root + "/new") == std::vector<std::string>{"300.Qc.mx"});
        CHECK(files_in(f.root + "/cur").empty());
        const auto moved = files_in(f.root + "/.Archive/cur");
        REQUIRE(moved.size() == 2);
        CHECK(std::count_if(moved.begin(), moved.end(), [](const std::string& n) { return n.ends_with(":2,S"); }) ==
              1);
        CHECK(f.text("n NOOP") == "n OK NOOP completed\r\n"); // already told
        CHECK(f.text("b UID MOVE 3 Trash") == "* OK [COPYUID " + std::to_string(f.uidvalidity("Trash")) +
                                                  " 3 1] Moved\r\n* 1 EXPUNGE\r\nb OK MOVE completed\r\n");
        CHECK(f.text("c FETCH 1:* FLAGS") == "c BAD [CLIENTBUG] Invalid message sequence number\r\n");

        SUBCASE("read-only: NO")
        {
            f.select("s EXAMINE Archive");
            CHECK(f.text("e MOVE 1 INBOX") == "e NO [CANNOT] The mailbox is read-only\r\n");
        }
    }

    TEST_CASE("MOVE into the selected folder itself expunges and re-adds under a new UID (RFC 6851 3.3)")
    {
        fixture f;
        f.three();
        f.select();
        const auto o = f.text("a MOVE 1 INBOX");
        CHECK(o.starts_with("* OK [COPYUID 1764165000 1 4] Moved\r\n* 1 EXPUNGE\r\n* 3 EXISTS\r\n"));
        CHECK(o.ends_with("a OK MOVE completed\r\n"));
        CHECK(f.text("b FETCH 1:* UID") == "* 1 FETCH (UID 2)\r\n* 2 FETCH (UID 3)\r\n* 3 FETCH (UID 4)\r\n"
                                           "b OK FETCH completed\r\n");
    }

    TEST_CASE("COPY and MOVE to a missing folder are NO [TRYCREATE] (RFC 9051 6.4.7)")
    {
        fixture f;
        f.three();
        f.select();
        CHECK(f.text("a COPY 1 Nope") == "a NO [TRYCREATE] Mailbox does not exist\r\n");
        CHECK(f.text("b MOVE 1 Nope") == "b NO [TRYCREATE] Mailbox does not exist\r\n");
        CHECK(f.text("c UID MOVE 1 Nope") == "c NO [TRYCREATE] Mailbox does not exist\r\n");
        CHECK_FALSE(fs::exists(f.root + "/.Nope"));
        CHECK(files_in(f.root + "/new") == std::vector<std::string>{"100.Qa.mx", "300.Qc.mx"});
    }

    // ---- RFC 9051 6.3.12 APPEND --------------------------------------------

    TEST_CASE("APPEND answers [APPENDUID v u] and keeps flags and the internal date (RFC 9051 6.3.12, RFC 4315)")
    {
        fixture f;
        REQUIRE(f.text("c CREATE Archive") == "c OK CREATE completed\r\n");
        const std::string msg = "Subject: appended\r\n\r\nhello\r\n";
        const auto v = std::to_string(f.uidvalidity("Archive"));
        CHECK(f.text("a APPEND Archive (\\Seen $Work) \"17-Jul-1996 02:44:25 -0700\" " + literal(msg)) ==
              "a OK [APPENDUID " + v + " 1] APPEND completed\r\n");
        const auto files = files_in(f.root + "/.Archive/cur");
        REQUIRE(files.size() == 1);
        CHECK(files[0].ends_with(".mx.test:2,S"));
        struct stat st {};
        REQUIRE(::stat((f.root + "/.Archive/cur/" + files[0]).c_str(), &st) == 0);
        CHECK(st.st_mtime == 837596665); // 1996-07-17 09:44:25 UTC

        f.select("s SELECT Archive");
        CHECK(f.text("b FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])") ==
              "* 1 FETCH (FLAGS (\\Seen $Work) INTERNALDATE \"17-Jul-1996 09:44:25 +0000\" RFC822.SIZE " +
                  std::to_string(msg.size()) + " BODY[] " + literal(msg) + ")\r\nb OK FETCH completed\r\n");

        SUBCASE("without flags or date: none, and now")
        {
            const auto o = f.text("d APPEND Archive " + literal(msg));
            CHECK(o.starts_with("* 2 EXISTS\r\n"));
            CHECK(o.ends_with("d OK [APPENDUID " + v + " 2] APPEND completed\r\n"));
            CHECK(f.text("e FETCH 2 (FLAGS INTERNALDATE)") ==
                  "* 2 FETCH (FLAGS () INTERNALDATE \"26-Nov-2025 13:50:00 +0000\")\r\ne OK FETCH completed\r\n");
        }
        SUBCASE("the date's zone is applied; the epoch itself is a date like any other")
        {
            struct when {
                const char* date;
                const char* internal; // as FETCH INTERNALDATE gives it back (UTC)
            };
            const when dates[] = {
                {"\"01-Feb-2024 23:30:00 +0100\"", "\"01-Feb-2024 22:30:00 +0000\""},
                {"\" 1-Jan-1970 00:00:01 +0000\"", "\"01-Jan-1970 00:00:01 +0000\""},
                {"\" 1-Jan-1970 00:00:00 +0000\"", "\"01-Jan-1970 00:00:00 +0000\""},
            };
            std::uint32_t uid = 1;
            for (const auto& d : dates) {
                const std::string date = d.date;
                CAPTURE(date);
                ++uid;
                const auto o = f.text("d APPEND Archive " + std::string(d.date) + " " + literal(msg));
                CHECK(o.ends_with("d OK [APPENDUID " + v + " " + std::to_string(uid) + "] APPEND completed\r\n"));
                CHECK(f.text("e UID FETCH " + std::to_string(uid) + " INTERNALDATE") ==
                      "* " + std::to_string(uid) + " FETCH (UID " + std::to_string(uid) + " INTERNALDATE " +
                          d.internal + ")\r\ne OK FETCH completed\r\n");
            }
        }
        SUBCASE("an invalid flag is BAD")
        {
            CHECK(f.text("d APPEND Archive (\\Recent) " + literal(msg)) ==
                  "d BAD [CLIENTBUG] Invalid flag in APPEND\r\n");
        }
    }

    TEST_CASE("APPEND to a missing folder is NO [TRYCREATE]; to a special-use one creates it")
    {
        fixture f;
        const std::string msg = "Subject: x\r\n\r\nx\r\n";
        CHECK(f.text("a APPEND Nope " + literal(msg)) == "a NO [TRYCREATE] Mailbox does not exist\r\n");
        CHECK_FALSE(fs::exists(f.root + "/.Nope"));
        auto o = f.text("b APPEND Sent (\\Seen) " + literal(msg));
        CHECK(o == "b OK [APPENDUID " + std::to_string(f.uidvalidity("Sent")) + " 1] APPEND completed\r\n");
        CHECK(files_in(f.root + "/.Sent/cur").size() == 1);
    }

    TEST_CASE("APPEND into the selected folder is reported as EXISTS before the tagged OK")
    {
        fixture f;
        f.three();
        f.select();
        const std::string msg = "Subject: x\r\n\r\nx\r\n";
        const auto o = f.text("a APPEND INBOX (\\Flagged) " + literal(msg));
        CHECK(o.starts_with("* 4 EXISTS\r\n"));
        CHECK(o.ends_with("a OK [APPENDUID 1764165000 4] APPEND completed\r\n"));
        CHECK(f.text("b FETCH 4 (UID FLAGS)").starts_with("* 4 FETCH (UID 4 FLAGS (\\Flagged"));
        CHECK(f.text("n NOOP") == "n OK NOOP completed\r\n");
    }

    // ---- RFC 9051 6.3.4-6.3.8 CREATE DELETE RENAME SUBSCRIBE -------------

    TEST_CASE("CREATE makes a folder; an existing one is [ALREADYEXISTS]; a trailing separator is dropped (RFC 9051 6.3.4)")
    {
        fixture f;
        CHECK(f.text("a CREATE Work") == "a OK CREATE completed\r\n");
        CHECK(fs::is_directory(f.root + "/.Work/cur"));
        for (const std::string cmd : {"b CREATE Work", "b CREATE INBOX", "b CREATE inbox", "b CREATE Work."}) {
            CAPTURE(cmd);
            CHECK(f.text(cmd) == "b NO [ALREADYEXISTS] Mailbox already exists\r\n");
        }
        CHECK(f.text("c CREATE Trip.") == "c OK CREATE completed\r\n");
        CHECK(fs::is_directory(f.root + "/.Trip/cur"));
        CHECK(f.text("d CREATE A.B.C") == "d OK CREATE completed\r\n");
        CHECK(fs::is_directory(f.root + "/.A.B/cur")); // superiors too
        CHECK(f.text("e CREATE \"a..b\"") == "e NO [CANNOT] Invalid mailbox name\r\n");
        CHECK(f.text("e CREATE \".\"") == "e NO [CANNOT] Invalid mailbox name\r\n");
        CHECK(f.text("f CREATE Work2 (USE (\\Sent))") == "f NO [CANNOT] Special-use attributes cannot be set\r\n");
        CHECK_FALSE(fs::exists(f.root + "/.Work2"));
    }

    TEST_CASE("DELETE refuses a missing folder, INBOX and the selected folder (RFC 9051 6.3.5)")
    {
        fixture f;
        f.three();
        REQUIRE(f.text("c CREATE Work") == "c OK CREATE completed\r\n");
        CHECK(f.text("a DELETE Nope") == "a NO [NONEXISTENT] Mailbox does not exist\r\n");
        CHECK(f.text("b DELETE INBOX") == "b NO [CANNOT] INBOX cannot be deleted\r\n");
        f.select("s SELECT Work");
        CHECK(f.text("c DELETE Work") == "c NO [INUSE] The mailbox is selected; close it first\r\n");
        CHECK(fs::exists(f.root + "/.Work"));
        REQUIRE(f.text("u UNSELECT") == "u OK UNSELECT completed\r\n");
        CHECK(f.text("d DELETE Work") == "d OK DELETE completed\r\n");
        CHECK_FALSE(fs::exists(f.root + "/.Work"));
        CHECK(f.text("e DELETE Work") == "e NO [NONEXISTENT] Mailbox does not exist\r\n");
        CHECK(files_in(f.root + "/new").size() == 2); // INBOX untouched
    }

    TEST_CASE("RENAME moves a folder with its inferiors, not the selected one (RFC 9051 6.3.6)")
    {
        fixture f;
        REQUIRE(f.text("c CREATE Work.2024") == "c OK CREATE completed\r\n");
        REQUIRE(f.text("c CREATE Play") == "c OK CREATE completed\r\n");
        CHECK(f.text("a RENAME Work Jobs") == "a OK RENAME completed\r\n");
        CHECK(fs::is_directory(f.root + "/.Jobs.2024/cur"));
        CHECK_FALSE(fs::exists(f.root + "/.Work"));
        CHECK(f.text("b RENAME Nope X") == "b NO [NONEXISTENT] Mailbox does not exist\r\n");
        CHECK(f.text("c RENAME Jobs Play") == "c NO [ALREADYEXISTS] Mailbox already exists\r\n");
        f.select("s SELECT Jobs.2024");
        CHECK(f.text("d RENAME Jobs.2024 Old") == "d NO [INUSE] The mailbox is selected; close it first\r\n");
        SUBCASE("nor one whose superior is renamed (its directory would move under the view)")
        {
            CHECK(f.text("e RENAME Jobs Work") == "e NO [INUSE] The mailbox is selected; close it first\r\n");
            CHECK(fs::is_directory(f.root + "/.Jobs.2024/cur"));
            CHECK(f.ex.selected_path() == f.root + "/.Jobs.2024");
        }
    }

    TEST_CASE("SUBSCRIBE and UNSUBSCRIBE change what LSUB lists (RFC 9051 6.3.7, 6.3.8; RFC 3501 6.3.9)")
    {
        fixture f;
        REQUIRE(f.text("c CREATE Work") == "c OK CREATE completed\r\n");
        CHECK(f.text("l LSUB \"\" \"*\"") == "l OK LSUB completed\r\n");
        CHECK(f.text("a SUBSCRIBE Work") == "a OK SUBSCRIBE completed\r\n");
        CHECK(f.text("a SUBSCRIBE Work") == "a OK SUBSCRIBE completed\r\n"); // idempotent
        CHECK(f.text("b SUBSCRIBE Gone.Away") == "b OK SUBSCRIBE completed\r\n");
        CHECK(f.text("l LSUB \"\" \"*\"") == "* LSUB (\\Noselect) \".\" \"Gone.Away\"\r\n"
                                             "* LSUB () \".\" \"Work\"\r\n"
                                             "l OK LSUB completed\r\n");
        CHECK(f.text("m LIST (SUBSCRIBED) \"\" \"*\"") ==
              "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \".\" \"Gone.Away\"\r\n"
              "* LIST (\\HasNoChildren \\Subscribed) \".\" \"Work\"\r\n"
              "m OK LIST completed\r\n");
        CHECK(f.text("c UNSUBSCRIBE Work") == "c OK UNSUBSCRIBE completed\r\n");
        CHECK(f.text("l LSUB \"\" \"*\"") == "* LSUB (\\Noselect) \".\" \"Gone.Away\"\r\nl OK LSUB completed\r\n");
        CHECK(f.text("d SUBSCRIBE \"a..b\"") == "d NO [CANNOT] Invalid mailbox name\r\n");
    }

    TEST_CASE("LSUB with % shows the unsubscribed parent of a subscribed child as \\Noselect (RFC 3501 6.3.9)")
    {
        fixture f;
        REQUIRE(f.text("c CREATE Work.2024") == "c OK CREATE completed\r\n");
        REQUIRE(f.text("a SUBSCRIBE Work.2024") == "a OK SUBSCRIBE completed\r\n");
        // "A "%" wildcard to LSUB must return foo, not foo/bar, in the LSUB
        // response, and it MUST be flagged with the \Noselect attribute."
        CHECK(f.text("l LSUB \"\" \"%\"") == "* LSUB (\\Noselect) \".\" \"Work\"\r\nl OK LSUB completed\r\n");
        CHECK(f.text("m LSUB \"\" \"Work.%\"") == "* LSUB () \".\" \"Work.2024\"\r\nm OK LSUB completed\r\n");
    }

    // ---- RFC 9051 6.3.9 LIST, RFC 5258, RFC 6154, RFC 5819 ----------------

    TEST_CASE("LIST \"\" \"\" gives the hierarchy separator (RFC 9051 6.3.9)")
    {
        fixture f;
        CHECK(f.text("a LIST \"\" \"\"") == "* LIST (\\Noselect) \".\" \"\"\r\na OK LIST completed\r\n");
    }

    TEST_CASE("LIST shows INBOX first, special-use attributes and children (RFC 9051 6.3.9, RFC 6154)")
    {
        fixture f;
        f.three();
        REQUIRE(f.text("c CREATE Work.2024") == "c OK CREATE completed\r\n");
        const std::string all = "* LIST (\\HasNoChildren) \".\" \"INBOX\"\r\n"
                                "* LIST (\\HasNoChildren \\Drafts) \".\" \"Drafts\"\r\n"
                                "* LIST (\\HasNoChildren \\Junk) \".\" \"Junk\"\r\n"
                                "* LIST (\\HasNoChildren \\Sent) \".\" \"Sent\"\r\n"
                                "* LIST (\\HasNoChildren \\Trash) \".\" \"Trash\"\r\n"
                                "* LIST (\\HasChildren) \".\" \"Work\"\r\n"
                                "* LIST (\\HasNoChildren) \".\" \"Work.2024\"\r\n";
        CHECK(f.text("a LIST \"\" \"*\"") == all + "a OK LIST completed\r\n");
        CHECK(f.text("a LIST \"\" \"*\" RETURN (SPECIAL-USE)") == all + "a OK LIST completed\r\n");
        CHECK(f.text("b LIST (SPECIAL-USE) \"\" \"*\"") == "* LIST (\\HasNoChildren \\Drafts) \".\" \"Drafts\"\r\n"
                                                          "* LIST (\\HasNoChildren \\Junk) \".\" \"Junk\"\r\n"
                                                          "* LIST (\\HasNoChildren \\Sent) \".\" \"Sent\"\r\n"
                                                          "* LIST (\\HasNoChildren \\Trash) \".\" \"Trash\"\r\n"
                                                          "b OK LIST completed\r\n");
        CHECK(f.text("c LIST \"Work.\" \"%\"") == "* LIST (\\HasNoChildren) \".\" \"Work.2024\"\r\nc OK LIST completed\r\n");
        CHECK(f.text("d LIST \"\" inbox") == "* LIST (\\HasNoChildren) \".\" \"INBOX\"\r\nd OK LIST completed\r\n");
        CHECK(f.text("e LIST \"\" (Work Sent Work)") == "* LIST (\\HasChildren) \".\" \"Work\"\r\n"
                                                        "* LIST (\\HasNoChildren \\Sent) \".\" \"Sent\"\r\n"
                                                        "e OK LIST completed\r\n");
        CHECK(f.text("f LIST \"\" \"*\" RETURN (STATUS (HIGHESTMODSEQ))") ==
              "f BAD [CLIENTBUG] HIGHESTMODSEQ needs CONDSTORE\r\n");
    }

    TEST_CASE("INBOX with an inferior is \\HasChildren (RFC 9051 7.3.1)")
    {
        fixture f;
        REQUIRE(f.text("c CREATE INBOX.Sub") == "c OK CREATE completed\r\n");
        CHECK(f.text("a LIST \"\" \"INBOX*\"") == "* LIST (\\HasChildren) \".\" \"INBOX\"\r\n"
                                                 "* LIST (\\HasNoChildren) \".\" \"INBOX.Sub\"\r\n"
                                                 "a OK LIST completed\r\n");
    }

    TEST_CASE("LIST RETURN (STATUS ...) adds a STATUS line per folder (RFC 5819)")
    {
        fixture f;
        f.three();
        CHECK(f.text("a LIST \"\" \"%\" RETURN (STATUS (MESSAGES UNSEEN))") ==
              "* LIST (\\HasNoChildren) \".\" \"INBOX\"\r\n"
              "* STATUS \"INBOX\" (MESSAGES 3 UNSEEN 2)\r\n"
              "* LIST (\\HasNoChildren \\Drafts) \".\" \"Drafts\"\r\n"
              "* STATUS \"Drafts\" (MESSAGES 0 UNSEEN 0)\r\n"
              "* LIST (\\HasNoChildren \\Junk) \".\" \"Junk\"\r\n"
              "* STATUS \"Junk\" (MESSAGES 0 UNSEEN 0)\r\n"
              "* LIST (\\HasNoChildren \\Sent) \".\" \"Sent\"\r\n"
              "* STATUS \"Sent\" (MESSAGES 0 UNSEEN 0)\r\n"
              "* LIST (\\HasNoChildren \\Trash) \".\" \"Trash\"\r\n"
              "* STATUS \"Trash\" (MESSAGES 0 UNSEEN 0)\r\n"
              "a OK LIST completed\r\n");
    }

    TEST_CASE("LIST \"\" \"%\" shows the top level, a missing parent as \\Noselect (RFC 9051 6.3.9, RFC 5258 3)")
    {
        fixture f;
        REQUIRE(f.text("c CREATE A.B") == "c OK CREATE completed\r\n");
        REQUIRE(f.text("c CREATE Work.2024") == "c OK CREATE completed\r\n");
        REQUIRE(f.text("d DELETE A") == "d OK DELETE completed\r\n"); // A.B stays (Maildir++)
        const std::string specials = "* LIST (\\HasNoChildren \\Drafts) \".\" \"Drafts\"\r\n"
                                     "* LIST (\\HasNoChildren \\Junk) \".\" \"Junk\"\r\n"
                                     "* LIST (\\HasNoChildren \\Sent) \".\" \"Sent\"\r\n"
                                     "* LIST (\\HasNoChildren \\Trash) \".\" \"Trash\"\r\n";
        CHECK(f.text("a LIST \"\" \"%\"") == "* LIST (\\HasNoChildren) \".\" \"INBOX\"\r\n"
                                              "* LIST (\\Noselect \\HasChildren) \".\" \"A\"\r\n" +
                                                 specials +
                                                 "* LIST (\\HasChildren) \".\" \"Work\"\r\n"
                                                 "a OK LIST completed\r\n");
        CHECK(f.text("b LIST () \"\" \"A\"") == "* LIST (\\NonExistent \\HasChildren) \".\" \"A\"\r\n"
                                                "b OK LIST completed\r\n");
        CHECK(f.text("c LIST \"\" \"A.%\"") == "* LIST (\\HasNoChildren) \".\" \"A.B\"\r\nc OK LIST completed\r\n");
    }

    TEST_CASE("a non-ASCII folder name is modified UTF-7 on the wire, UTF-8 after ENABLE UTF8=ACCEPT (RFC 3501 5.1.3, RFC 6855 3)")
    {
        fixture f;
        const std::string utf8 = "Entw\xc3\xbc"
                                 "rfe";
        CHECK(f.text("a CREATE Entw&APw-rfe") == "a OK CREATE completed\r\n");
        CHECK(fs::is_directory(f.root + "/.Entw&APw-rfe/cur")); // as Courier and Dovecot write it
        CHECK(f.text("b LIST \"\" Entw*") == "* LIST (\\HasNoChildren) \".\" \"Entw&APw-rfe\"\r\nb OK LIST completed\r\n");
        CHECK(f.text("c STATUS Entw&APw-rfe (MESSAGES)") ==
              "* STATUS \"Entw&APw-rfe\" (MESSAGES 0)\r\nc OK STATUS completed\r\n");
        CHECK(f.text("d SELECT Entw&APw-rfe").ends_with("d OK [READ-WRITE] SELECT completed\r\n"));
        REQUIRE(f.text("u UNSELECT") == "u OK UNSELECT completed\r\n");

        REQUIRE(f.text("e ENABLE UTF8=ACCEPT") == "* ENABLED UTF8=ACCEPT\r\ne OK ENABLE completed\r\n");
        CHECK(f.text("f LIST \"\" Entw*") == "* LIST (\\HasNoChildren) \".\" \"" + utf8 + "\"\r\nf OK LIST completed\r\n");
        CHECK(f.text("g STATUS \"" + utf8 + "\" (MESSAGES)") ==
              "* STATUS \"" + utf8 + "\" (MESSAGES 0)\r\ng OK STATUS completed\r\n");
        CHECK(f.text("h ENABLE IMAP4rev2") == "* ENABLED IMAP4rev2\r\nh OK ENABLE completed\r\n");
        CHECK(f.text("i SELECT \"" + utf8 + "\"").find("* LIST () \".\" \"" + utf8 + "\"\r\n") != std::string::npos);
    }

    // ---- RFC 9051 6.3.11 STATUS --------------------------------------------

    TEST_CASE("STATUS reports the items asked for, in order (RFC 9051 6.3.11, RFC 8438)")
    {
        fixture f;
        f.three();
        f.put("cur/400.Qd.mx:2,ST", "12345", 400);
        const auto size = 3 * delivered("100.Qa.mx").size() + 5;
        CHECK(f.text("a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE DELETED RECENT)") ==
              "* STATUS \"INBOX\" (MESSAGES 4 UIDNEXT 5 UIDVALIDITY 1764165000 UNSEEN 2 SIZE " + std::to_string(size) +
                  " DELETED 1 RECENT 2)\r\na OK STATUS completed\r\n");
        CHECK(f.text("b STATUS inbox (UNSEEN MESSAGES)") == "* STATUS \"INBOX\" (UNSEEN 2 MESSAGES 4)\r\nb OK STATUS completed\r\n");
        CHECK(f.text("c STATUS Nope (MESSAGES)") == "c NO [NONEXISTENT] Mailbox does not exist\r\n");
        CHECK(f.text("d STATUS Trash (MESSAGES UIDNEXT)") == "* STATUS \"Trash\" (MESSAGES 0 UIDNEXT 1)\r\nd OK STATUS completed\r\n");
        SUBCASE("while selected, a change of the selected folder is reported too")
        {
            f.select();
            f.deliver("500.Qe.mx", 500);
            CHECK(f.text("e STATUS Trash (MESSAGES)") ==
                  "* STATUS \"Trash\" (MESSAGES 0)\r\n* 5 EXISTS\r\n* 3 RECENT\r\ne OK STATUS completed\r\n");
        }
    }

    // ---- RFC 9051 6.4.4 SEARCH, RFC 4731 ESEARCH, RFC 5182 SEARCHRES -------

    TEST_CASE("SEARCH answers * SEARCH with sequence numbers or UIDs (RFC 9051 6.4.4, RFC 3501 7.2.5)")
    {
        fixture f;
        f.three();
        f.select();
        REQUIRE(f.text("x UID STORE 1 +FLAGS (\\Deleted)").ends_with("x OK STORE completed\r\n"));
        REQUIRE(f.text("x EXPUNGE") == "* 1 EXPUNGE\r\nx OK EXPUNGE completed\r\n");
        CHECK(f.text("a SEARCH UNSEEN") == "* SEARCH 2\r\na OK SEARCH completed\r\n");
        CHECK(f.text("b UID SEARCH UNSEEN") == "* SEARCH 3\r\nb OK SEARCH completed\r\n");
        CHECK(f.text("c SEARCH SUBJECT 200.qb") == "* SEARCH 1\r\nc OK SEARCH completed\r\n");
        CHECK(f.text("d SEARCH DELETED") == "* SEARCH\r\nd OK SEARCH completed\r\n");
        CHECK(f.text("e SEARCH CHARSET UTF-8 BODY body") == "* SEARCH 1 2\r\ne OK SEARCH completed\r\n");
    }

    TEST_CASE("SEARCH RETURN answers with ESEARCH (RFC 4731 3.1)")
    {
        fixture f;
        f.three();
        f.select();
        CHECK(f.text("a SEARCH RETURN (MIN MAX COUNT) ALL") ==
              "* ESEARCH (TAG \"a\") MIN 1 MAX 3 COUNT 3\r\na OK SEARCH completed\r\n");
        CHECK(f.text("b UID SEARCH RETURN () UNSEEN") == "* ESEARCH (TAG \"b\") UID ALL 1,3\r\nb OK SEARCH completed\r\n");
        CHECK(f.text("c SEARCH RETURN (COUNT) DELETED") == "* ESEARCH (TAG \"c\") COUNT 0\r\nc OK SEARCH completed\r\n");
    }

    TEST_CASE("SEARCH RETURN (SAVE) keeps the result as $ (RFC 5182)")
    {
        fixture f;
        f.three();
        f.select();
        CHECK(f.text("a FETCH $ FLAGS") == "a OK FETCH completed\r\n"); // nothing saved yet: empty
        CHECK(f.text("b SEARCH RETURN (SAVE) UNSEEN") == "b OK SEARCH completed\r\n");
        CHECK(f.text("c FETCH $ FLAGS") == "* 1 FETCH (FLAGS (\\Recent))\r\n"
                                           "* 3 FETCH (FLAGS (\\Recent))\r\n"
                                           "c OK FETCH completed\r\n");
        CHECK(f.text("d UID STORE $ +FLAGS.SILENT (\\Flagged)") == "d OK STORE completed\r\n");
        CHECK(f.text("e SEARCH FLAGGED") == "* SEARCH 1 3\r\ne OK SEARCH completed\r\n");
        CHECK(f.text("f SEARCH $ SEEN") == "* SEARCH\r\nf OK SEARCH completed\r\n");
        SUBCASE("a message in $ that is expunged drops out of it")
        {
            REQUIRE(f.text("g STORE 1 +FLAGS.SILENT (\\Deleted)") == "g OK STORE completed\r\n");
            REQUIRE(f.text("h EXPUNGE") == "* 1 EXPUNGE\r\nh OK EXPUNGE completed\r\n");
            CHECK(f.text("i FETCH $ UID") == "* 2 FETCH (UID 3)\r\ni OK FETCH completed\r\n");
        }
        SUBCASE("SELECT forgets it")
        {
            f.select();
            CHECK(f.text("i FETCH $ UID") == "i OK FETCH completed\r\n");
        }
        SUBCASE("with MIN alone only the minimum is saved (RFC 5182 2.4)")
        {
            CHECK(f.text("g SEARCH RETURN (MIN SAVE) UNSEEN") == "* ESEARCH (TAG \"g\") MIN 1\r\ng OK SEARCH completed\r\n");
            CHECK(f.text("h FETCH $ UID") == "* 1 FETCH (UID 1)\r\nh OK FETCH completed\r\n");
        }
    }

    TEST_CASE("after ENABLE IMAP4rev2 SEARCH answers with ESEARCH (RFC 9051 6.4.4)")
    {
        fixture f;
        f.three();
        REQUIRE(f.text("e ENABLE IMAP4rev2").starts_with("* ENABLED IMAP4rev2\r\n"));
        f.select();
        CHECK(f.text("a SEARCH UNSEEN") == "* ESEARCH (TAG \"a\") ALL 1,3\r\na OK SEARCH completed\r\n");
        CHECK(f.text("b UID SEARCH ALL") == "* ESEARCH (TAG \"b\") UID ALL 1:3\r\nb OK SEARCH completed\r\n");
        CHECK(f.text("c SEARCH DELETED") == "* ESEARCH (TAG \"c\")\r\nc OK SEARCH completed\r\n");
    }

    TEST_CASE("SEARCH CHARSET KOI8-R is NO [BADCHARSET] (RFC 9051 6.4.4, 7.1)")
    {
        fixture f;
        f.three();
        f.select();
        for (const std::string cmd : {"a SEARCH CHARSET KOI8-R TEXT x", "a UID SEARCH CHARSET KOI8-R ALL"}) {
            CAPTURE(cmd);
            CHECK(f.text(cmd) == "a NO [BADCHARSET (UTF-8 US-ASCII)] Charset not supported\r\n");
        }
    }

    // ---- RFC 9051 6.4.3 EXPUNGE, RFC 4315 UID EXPUNGE, 6.4.1 CLOSE ---------

    TEST_CASE("EXPUNGE removes only \\Deleted messages, in descending order (RFC 9051 6.4.3, 7.5.1)")
    {
        fixture f;
        f.put("cur/1.Q1.mx:2,T", "1\r\n", 1);
        f.put("cur/2.Q2.mx:2,S", "2\r\n", 2);
        f.put("cur/3.Q3.mx:2,ST", "3\r\n", 3);
        f.put("cur/4.Q4.mx:2,", "4\r\n", 4);
        f.select();
        SUBCASE("EXPUNGE")
        {
            // Each number is valid when it is sent: 3 before 1.
            CHECK(f.text("a EXPUNGE") == "* 3 EXPUNGE\r\n* 1 EXPUNGE\r\na OK EXPUNGE completed\r\n");
            CHECK(files_in(f.root + "/cur") == std::vector<std::string>{"2.Q2.mx:2,S", "4.Q4.mx:2,"});
            CHECK(f.text("b FETCH 1:* UID") == "* 1 FETCH (UID 2)\r\n* 2 FETCH (UID 4)\r\nb OK FETCH completed\r\n");
            CHECK(f.text("c EXPUNGE") == "c OK EXPUNGE completed\r\n");
        }
        SUBCASE("UID EXPUNGE only the set (RFC 4315 2.1)")
        {
            CHECK(f.text("a UID EXPUNGE 2:3") == "* 3 EXPUNGE\r\na OK EXPUNGE completed\r\n");
            CHECK(files_in(f.root + "/cur") == std::vector<std::string>{"1.Q1.mx:2,T", "2.Q2.mx:2,S", "4.Q4.mx:2,"});
            CHECK(f.text("b UID EXPUNGE 9") == "b OK EXPUNGE completed\r\n");
        }
        SUBCASE("a message expunged elsewhere meanwhile is reported once")
        {
            fs::remove(f.root + "/cur/1.Q1.mx:2,T");
            fs::remove(f.root + "/cur/4.Q4.mx:2,");
            CHECK(f.text("a EXPUNGE") == "* 4 EXPUNGE\r\n* 3 EXPUNGE\r\n* 1 EXPUNGE\r\na OK EXPUNGE completed\r\n");
            CHECK(f.text("b FETCH 1:* UID") == "* 1 FETCH (UID 2)\r\nb OK FETCH completed\r\n");
        }
    }

    TEST_CASE("CLOSE expunges silently, UNSELECT does not (RFC 9051 6.4.1, 6.4.2)")
    {
        fixture f;
        f.put("cur/1.Q1.mx:2,T", "1\r\n", 1);
        f.put("cur/2.Q2.mx:2,S", "2\r\n", 2);
        SUBCASE("CLOSE")
        {
            f.select();
            auto o = f.run("a CLOSE");
            CHECK(o.text == "a OK CLOSE completed\r\n");
            CHECK_FALSE(o.selected);
            CHECK_FALSE(f.ex.selected());
            CHECK(files_in(f.root + "/cur") == std::vector<std::string>{"2.Q2.mx:2,S"});
        }
        SUBCASE("UNSELECT")
        {
            f.select();
            auto o = f.run("a UNSELECT");
            CHECK(o.text == "a OK UNSELECT completed\r\n");
            CHECK_FALSE(o.selected);
            CHECK(files_in(f.root + "/cur").size() == 2);
        }
        SUBCASE("CLOSE after EXAMINE")
        {
            f.select("s EXAMINE INBOX");
            CHECK(f.text("a CLOSE") == "a OK CLOSE completed\r\n");
            CHECK(files_in(f.root + "/cur").size() == 2);
        }
    }

    TEST_CASE("EXPUNGE in an EXAMINEd folder is NO (RFC 9051 6.3.3)")
    {
        fixture f;
        f.put("cur/1.Q1.mx:2,T", "1\r\n", 1);
        f.select("s EXAMINE INBOX");
        CHECK(f.text("a EXPUNGE") == "a NO [CANNOT] The mailbox is read-only\r\n");
        CHECK(f.text("b UID EXPUNGE 1") == "b NO [CANNOT] The mailbox is read-only\r\n");
        CHECK(files_in(f.root + "/cur") == std::vector<std::string>{"1.Q1.mx:2,T"});
    }

    // ---- RFC 9051 2.3.1.1 UIDVALIDITY --------------------------------------

    TEST_CASE("a changed UIDVALIDITY under a selected view ends the session with * BYE (RFC 9051 2.3.1.1)")
    {
        fixture f;
        f.three();
        const std::string bye = "* BYE [UNAVAILABLE] The mailbox was re-created; please reconnect\r\n";
        SUBCASE("the index replaced by garbage (rebuilt with a new UIDVALIDITY)")
        {
            f.select();
            REQUIRE(util::atomic_write(f.root, mailbox::index_file, "garbage\n"));
            auto o = f.run("n NOOP");
            CHECK(o.text == bye);
            CHECK(o.close);
            CHECK_FALSE(o.selected);
            CHECK_FALSE(f.ex.selected());
            CHECK(f.uidvalidity("INBOX") > t0);
        }
        SUBCASE("the folder deleted and re-created")
        {
            REQUIRE(f.text("c CREATE Work") == "c OK CREATE completed\r\n");
            f.select("s SELECT Work");
            REQUIRE(f.other.remove("Work"));
            REQUIRE(f.other.create("Work"));
            auto o = f.run("u UID FETCH 1:* FLAGS");
            CHECK(o.text == bye);
            CHECK(o.close);
        }
        SUBCASE("found by IDLE's poll()")
        {
            f.select();
            REQUIRE(util::atomic_write(f.root, mailbox::index_file, "postern-uidlist 1\nuidvalidity 5\nbroken\n"));
            bool close = false;
            CHECK(f.ex.poll(close) == bye);
            CHECK(close);
            CHECK_FALSE(f.ex.selected());
        }
    }
}

#include "postern/mailbox/store.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <utime.h>

#include <doctest/doctest.h>

#include "../temp_dir.hpp"

#include "postern/mailbox/lock.hpp"
#include "postern/mailbox/maildir.hpp"
#include "postern/mailbox/uid_index.hpp"
#include "postern/util/atomic_write.hpp"
#include "postern/util/error.hpp"

namespace fs = std::filesystem;
using namespace postern;

namespace {

constexpr std::int64_t t0 = 1764165000;

// A user's Maildir root with a store over it and a clock the test moves.
struct store_fixture {
    testing::temp_dir tmp;
    std::string root = tmp.str("alice");
    util::manual_clock clock{util::from_unix_seconds(t0)};
    mailbox::store store{root, clock, {"mx.test", 1000}};

    // Writes <root>/<file> with mtime `when` (a delivery behind the store's back).
    void put(const std::string& file, const std::string& bytes, std::int64_t when)
    {
        const std::string path = root + "/" + file;
        fs::create_directories(fs::path(path).parent_path());
        std::ofstream(path, std::ios::binary) << bytes;
        utimbuf t{when, when};
        REQUIRE(::utime(path.c_str(), &t) == 0);
    }
    void deliver(const std::string& folder_dir, const std::string& unique, std::int64_t when)
    {
        put(folder_dir + "new/" + unique, "Subject: " + unique + "\r\n\r\nbody\r\n", when);
    }
    mailbox::folder_view open(const std::string& name)
    {
        auto v = store.open(name);
        REQUIRE(v);
        return std::move(*v);
    }
};

std::vector<std::uint32_t> uids_of(const mailbox::folder_view& v)
{
    std::vector<std::uint32_t> out;
    for (const auto& m : v.messages())
        out.push_back(m.uid);
    return out;
}

std::vector<std::string> names_of(const std::vector<mailbox::folder_entry>& list)
{
    std::vector<std::string> out;
    for (const auto& e : list)
        out.push_back(e.name);
    return out;
}

const mailbox::folder_entry* entry(const std::vector<mailbox::folder_entry>& list, const std::string& name)
{
    auto it = std::find_if(list.begin(), list.end(), [&](const auto& e) { return e.name == name; });
    return it == list.end() ? nullptr : &*it;
}

mailbox::flag_set flags(std::initializer_list<std::string_view> names)
{
    std::vector<std::string_view> v(names);
    auto f = mailbox::parse_flags(v);
    REQUIRE(f);
    return *f;
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

} // namespace

TEST_SUITE("mailbox")
{
    TEST_CASE("opening INBOX creates the Maildir and its index")
    {
        store_fixture f;
        auto v = f.open("inbox");
        CHECK(v.name() == "INBOX");
        CHECK(v.path() == f.root);
        CHECK(v.uidvalidity() == t0);
        CHECK(v.uidnext() == 1);
        CHECK(v.messages().empty());
        for (const char* sub : {"tmp", "new", "cur"})
            CHECK(fs::is_directory(f.root + "/" + sub));
        CHECK(fs::exists(f.root + "/postern-uidlist"));
        CHECK(f.store.open("Nope").error() == util::errc::not_found);
    }

    TEST_CASE("messages get ascending UIDs in delivery order, stable across sessions")
    {
        store_fixture f;
        f.deliver("", "300.Qc.mx", 300);
        f.deliver("", "100.Qa.mx", 100);
        f.put("cur/200.Qb.mx:2,S", "x\r\n", 200);
        auto v = f.open("INBOX");
        REQUIRE(v.messages().size() == 3);
        CHECK(uids_of(v) == std::vector<std::uint32_t>{1, 2, 3});
        CHECK(v.messages()[0].unique == "100.Qa.mx");
        CHECK(v.messages()[0].recent);
        CHECK(v.messages()[1].unique == "200.Qb.mx");
        CHECK(v.messages()[1].flags == "S");
        CHECK_FALSE(v.messages()[1].recent);
        CHECK(v.messages()[1].internal_date == 200);
        CHECK(v.messages()[2].unique == "300.Qc.mx");
        CHECK(v.seq_of(2) == 2);
        CHECK(v.seq_of(9) == 0);
        CHECK(v.uidnext() == 4);

        // Another store object, as after a restart.
        util::manual_clock later{util::from_unix_seconds(t0 + 999)};
        mailbox::store again(f.root, later);
        auto w = again.open("INBOX");
        REQUIRE(w);
        CHECK(w->uidvalidity() == v.uidvalidity());
        CHECK(uids_of(*w) == uids_of(v));
        CHECK(w->messages()[2].unique == "300.Qc.mx");
    }

    TEST_CASE("a POP3 RETR marking a message seen keeps its UID")
    {
        store_fixture f;
        f.deliver("", "100.Qa.mx", 100);
        f.deliver("", "200.Qb.mx", 200);
        auto v = f.open("INBOX");
        auto snap = mailbox::snapshot(f.root);
        REQUIRE(snap);
        REQUIRE(mailbox::mark_seen(f.root, (*snap)[1]));
        auto c = f.store.sync(v);
        REQUIRE(c);
        CHECK(c->expunged.empty());
        CHECK(c->added == 0);
        CHECK(c->flags_changed == std::vector<std::uint32_t>{2});
        CHECK(v.find(2)->flags == "S");
        CHECK(v.find(2)->file == "cur/200.Qb.mx:2,S");
        auto w = f.open("INBOX");
        CHECK(uids_of(w) == std::vector<std::uint32_t>{1, 2});
        CHECK(w.find(2)->unique == "200.Qb.mx");
    }

    TEST_CASE("new deliveries get ascending UIDs on sync")
    {
        store_fixture f;
        f.deliver("", "100.Qa.mx", 100);
        auto v = f.open("INBOX");
        f.deliver("", "50.Qold.mx", 50); // an old mtime still sorts after what is indexed
        f.deliver("", "400.Qd.mx", 400);
        auto c = f.store.sync(v);
        REQUIRE(c);
        CHECK(c->added == 2);
        CHECK(uids_of(v) == std::vector<std::uint32_t>{1, 2, 3});
        CHECK(v.messages()[1].unique == "50.Qold.mx");
        CHECK(v.messages()[2].unique == "400.Qd.mx");
        CHECK(v.uidnext() == 4);
        auto again = f.store.sync(v);
        REQUIRE(again);
        CHECK(again->added == 0);
        CHECK(again->flags_changed.empty());
    }

    TEST_CASE("setting and clearing flags renames the file")
    {
        store_fixture f;
        f.deliver("", "100.Qa.mx", 100);
        f.put("cur/200.Qb.mx:2,P", "x\r\n", 200);
        auto v = f.open("INBOX");
        const std::uint32_t one[] = {1};
        const std::uint32_t both[] = {1, 2};

        auto ch = f.store.store_flags(v, one, mailbox::flag_change::add, flags({"\\Seen", "\\Flagged"}));
        REQUIRE(ch);
        CHECK(*ch == std::vector<std::uint32_t>{1});
        CHECK(files_in(f.root + "/new").empty()); // left new/ for cur/
        CHECK(fs::exists(f.root + "/cur/100.Qa.mx:2,FS"));
        CHECK(v.find(1)->flags == "FS");

        ch = f.store.store_flags(v, one, mailbox::flag_change::remove, flags({"\\Seen"}));
        REQUIRE(ch);
        CHECK(fs::exists(f.root + "/cur/100.Qa.mx:2,F"));

        SUBCASE("replacing keeps the letters IMAP has no name for")
        {
            ch = f.store.store_flags(v, both, mailbox::flag_change::replace, flags({"\\Answered", "\\Draft"}));
            REQUIRE(ch);
            CHECK(*ch == std::vector<std::uint32_t>{1, 2});
            CHECK(fs::exists(f.root + "/cur/100.Qa.mx:2,DR"));
            CHECK(fs::exists(f.root + "/cur/200.Qb.mx:2,DPR"));
            CHECK(mailbox::flag_names(v.find(2)->flags, v.find(2)->keywords) ==
                  std::vector<std::string>{"\\Draft", "\\Answered"});
        }
        SUBCASE("an unchanged flag is no change")
        {
            ch = f.store.store_flags(v, one, mailbox::flag_change::add, flags({"\\Flagged"}));
            REQUIRE(ch);
            CHECK(ch->empty());
        }
        SUBCASE("keywords live in the index and survive re-opening")
        {
            ch = f.store.store_flags(v, both, mailbox::flag_change::add, flags({"$Forwarded", "work"}));
            REQUIRE(ch);
            CHECK(ch->size() == 2);
            CHECK(fs::exists(f.root + "/cur/200.Qb.mx:2,P")); // no rename for keywords
            auto w = f.open("INBOX");
            CHECK(w.find(2)->keywords == std::vector<std::string>{"$Forwarded", "work"});
            ch = f.store.store_flags(v, one, mailbox::flag_change::remove, flags({"WORK"}));
            REQUIRE(ch);
            auto x = f.open("INBOX");
            CHECK(x.find(1)->keywords == std::vector<std::string>{"$Forwarded"});
            CHECK(mailbox::flag_names(x.find(1)->flags, x.find(1)->keywords) ==
                  std::vector<std::string>{"\\Flagged", "$Forwarded"});
        }
    }

    TEST_CASE("IMAP flags map to Maildir letters and keywords")
    {
        auto s = flags({"\\seen", "\\DELETED", "$Forwarded", "$forwarded", "\\Draft"});
        CHECK(s.letters == "DST");
        CHECK(s.keywords == std::vector<std::string>{"$Forwarded"});
        for (std::string_view bad : {"\\Recent", "\\Unknown", "a]b", "\\"}) {
            CAPTURE(bad);
            const std::string_view one[] = {bad};
            CHECK(mailbox::parse_flags(one).error() == util::errc::syntax);
        }
        std::vector<std::string> many;
        for (std::size_t i = 0; i <= mailbox::max_keywords; ++i)
            many.push_back("k" + std::to_string(i));
        const std::vector<std::string_view> views(many.begin(), many.end());
        CHECK(mailbox::parse_flags(views).error() == util::errc::limit);
    }

    TEST_CASE("expunge removes only \\Deleted messages, UID EXPUNGE only the given ones")
    {
        store_fixture f;
        f.put("cur/1.Q1.mx:2,T", "1\r\n", 1);
        f.put("cur/2.Q2.mx:2,ST", "2\r\n", 2);
        f.put("cur/3.Q3.mx:2,S", "3\r\n", 3);
        f.put("cur/4.Q4.mx:2,T", "4\r\n", 4);
        auto v = f.open("INBOX");
        const std::uint32_t two[] = {2, 3};
        auto gone = f.store.expunge(v, two);
        REQUIRE(gone);
        REQUIRE(gone->size() == 1);
        CHECK((*gone)[0].uid == 2);
        CHECK((*gone)[0].seq == 2);
        CHECK(uids_of(v) == std::vector<std::uint32_t>{1, 3, 4});
        gone = f.store.expunge(v);
        REQUIRE(gone);
        REQUIRE(gone->size() == 2);
        CHECK((*gone)[0].uid == 4); // descending: each number valid as sent
        CHECK((*gone)[0].seq == 3);
        CHECK((*gone)[1].uid == 1);
        CHECK((*gone)[1].seq == 1);
        CHECK(uids_of(v) == std::vector<std::uint32_t>{3});
        CHECK(files_in(f.root + "/cur") == std::vector<std::string>{"3.Q3.mx:2,S"});
        auto w = f.open("INBOX");
        CHECK(uids_of(w) == std::vector<std::uint32_t>{3});
        CHECK(w.uidnext() == 5); // never reused
    }

    TEST_CASE("append writes into cur/ with flags and the internal date, and returns the UID")
    {
        store_fixture f;
        f.deliver("", "100.Qa.mx", 100);
        auto v = f.open("INBOX");
        const std::string msg = "Subject: appended\r\n\r\nhi\r\n";
        auto a = f.store.append("INBOX", msg, flags({"\\Seen", "$Junk"}), 1700000000);
        REQUIRE(a);
        CHECK(a->uidvalidity == v.uidvalidity());
        CHECK(a->uid == 2);
        CHECK(files_in(f.root + "/tmp").empty());
        auto c = f.store.sync(v);
        REQUIRE(c);
        CHECK(c->added == 1);
        const auto* m = v.find(2);
        REQUIRE(m);
        CHECK(m->flags == "S");
        CHECK(m->keywords == std::vector<std::string>{"$Junk"});
        CHECK(m->internal_date == 1700000000);
        CHECK(m->size == msg.size());
        CHECK(m->file.starts_with("cur/" + std::to_string(t0) + ".M"));
        CHECK(m->file.ends_with(".mx.test:2,S"));
        CHECK(*f.store.read(v, 2) == msg);

        SUBCASE("a special-use folder is created on the first append")
        {
            auto s = f.store.append("Sent", msg, {});
            REQUIRE(s);
            CHECK(s->uid == 1);
            CHECK(fs::exists(f.root + "/.Sent/maildirfolder"));
            auto sent = f.open("Sent");
            REQUIRE(sent.messages().size() == 1);
            CHECK(sent.messages()[0].internal_date == t0); // 0: now
            CHECK(sent.messages()[0].flags.empty());
        }
        SUBCASE("any other missing folder is not created")
        {
            CHECK(f.store.append("Nope", msg, {}).error() == util::errc::not_found);
            CHECK_FALSE(fs::exists(f.root + "/.Nope"));
        }
    }

    TEST_CASE("copy and move give new UIDs and (source, target) pairs")
    {
        store_fixture f;
        f.deliver("", "100.Qa.mx", 100);
        f.put("cur/200.Qb.mx:2,FS", "b\r\n", 200);
        f.deliver("", "300.Qc.mx", 300);
        auto v = f.open("INBOX");
        const std::uint32_t three[] = {3};
        REQUIRE(f.store.store_flags(v, three, mailbox::flag_change::add, flags({"$Label1"})));
        REQUIRE(f.store.create("Archive"));

        const std::uint32_t some[] = {1, 3, 42};
        auto c = f.store.copy(v, some, "Archive");
        REQUIRE(c);
        auto arch = f.open("Archive");
        CHECK(c->uidvalidity == arch.uidvalidity());
        CHECK(c->uids == std::vector<std::pair<std::uint32_t, std::uint32_t>>{{1, 1}, {3, 2}});
        CHECK(c->expunged.empty());
        REQUIRE(arch.messages().size() == 2);
        CHECK(arch.messages()[0].internal_date == 100); // kept
        CHECK(arch.messages()[1].keywords == std::vector<std::string>{"$Label1"});
        CHECK(arch.messages()[0].unique != "100.Qa.mx"); // a name of its own
        CHECK(uids_of(v) == std::vector<std::uint32_t>{1, 2, 3});
        CHECK(mailbox::snapshot(f.root)->size() == 3);

        const std::uint32_t two[] = {2};
        auto m = f.store.move(v, two, "Archive");
        REQUIRE(m);
        CHECK(m->uids == std::vector<std::pair<std::uint32_t, std::uint32_t>>{{2, 3}});
        REQUIRE(m->expunged.size() == 1);
        CHECK(m->expunged[0].uid == 2);
        CHECK(m->expunged[0].seq == 2);
        CHECK(uids_of(v) == std::vector<std::uint32_t>{1, 3});
        CHECK(mailbox::snapshot(f.root)->size() == 2);
        auto c2 = f.store.sync(arch);
        REQUIRE(c2);
        CHECK(c2->added == 1);
        CHECK(arch.find(3)->flags == "FS");
        auto again = f.store.sync(v);
        REQUIRE(again);
        CHECK(again->expunged.empty()); // the move already told this view
        CHECK(uids_of(f.open("INBOX")) == std::vector<std::uint32_t>{1, 3});

        SUBCASE("to a folder that does not exist")
        {
            CHECK(f.store.copy(v, some, "Nope").error() == util::errc::not_found);
        }
        SUBCASE("into the Trash, created on the way")
        {
            auto t = f.store.move(v, some, "Trash");
            REQUIRE(t);
            CHECK(t->uids.size() == 2);
            CHECK(v.messages().empty());
        }
    }

    TEST_CASE("folders are created, deleted and renamed with their hierarchy")
    {
        store_fixture f;
        REQUIRE(f.store.create("A.B.C"));
        for (const char* d : {".A", ".A.B", ".A.B.C"}) {
            CAPTURE(d);
            CHECK(fs::is_directory(f.root + "/" + d + "/cur"));
            CHECK(fs::exists(f.root + "/" + d + "/maildirfolder"));
        }
        CHECK(f.store.create("A.B").error() == util::errc::exists);
        CHECK(f.store.create("inbox").error() == util::errc::exists);
        CHECK(f.store.create("a..b").error() == util::errc::syntax);
        f.deliver(".A.B/", "100.Qa.mx", 100);
        const auto uid_validity = f.open("A.B").uidvalidity();

        REQUIRE(f.store.rename("A", "X"));
        CHECK(files_in(f.root) ==
              std::vector<std::string>{".X", ".X.B", ".X.B.C", "cur", "new", "postern-uidvalidity",
                                       "postern-uidvalidity.lock", "tmp"});
        auto xb = f.open("X.B");
        CHECK(xb.messages().size() == 1);
        CHECK(xb.uidvalidity() == uid_validity); // the index moved with it
        CHECK(f.store.rename("X.B", "X").error() == util::errc::exists);
        CHECK(f.store.rename("Nope", "Y").error() == util::errc::not_found);
        CHECK(f.store.rename("X", "INBOX").error() == util::errc::exists);
        // The special-use folders exist before they do on disk (LIST shows
        // them): neither CREATE nor RENAME may make one of its own.
        CHECK_FALSE(fs::exists(f.root + "/.Sent"));
        CHECK(f.store.create("Sent").error() == util::errc::exists);
        CHECK(f.store.rename("X.B.C", "Trash").error() == util::errc::exists);
        REQUIRE(f.store.create("Sent.2026")); // below one: an ordinary folder
        CHECK(fs::is_directory(f.root + "/.Sent.2026/cur"));

        REQUIRE(f.store.remove("X.B"));
        CHECK_FALSE(fs::exists(f.root + "/.X.B"));
        CHECK(fs::exists(f.root + "/.X.B.C")); // inferiors stay (Maildir++)
        CHECK(f.store.remove("X.B").error() == util::errc::not_found);
        CHECK(f.store.remove("INBOX").error() == util::errc::refused);
        auto list = f.store.list("X.%");
        REQUIRE(list);
        REQUIRE(entry(*list, "X.B"));
        CHECK(entry(*list, "X.B")->nonexistent);
        CHECK(entry(*list, "X.B")->has_children);
    }

    TEST_CASE("a deleted and re-created folder gets a new UIDVALIDITY")
    {
        store_fixture f;
        REQUIRE(f.store.create("Work"));
        const auto first = f.open("Work").uidvalidity();
        REQUIRE(f.store.remove("Work"));
        REQUIRE(f.store.create("Work"));
        CHECK(f.open("Work").uidvalidity() > first); // the same second on the clock
    }

    TEST_CASE("folder count is bounded")
    {
        store_fixture f;
        mailbox::store small(f.root, f.clock, {"mx.test", 3});
        REQUIRE(small.create("a"));
        REQUIRE(small.create("b"));
        CHECK(small.create("c.d").error() == util::errc::limit);
        REQUIRE(small.create("c"));
        CHECK(small.create("e").error() == util::errc::limit);
    }

    TEST_CASE("renaming INBOX moves its messages and leaves it empty")
    {
        store_fixture f;
        f.deliver("", "100.Qa.mx", 100);
        f.put("cur/200.Qb.mx:2,S", "b\r\n", 200);
        auto v = f.open("INBOX");
        const std::uint32_t one[] = {1};
        REQUIRE(f.store.store_flags(v, one, mailbox::flag_change::add, flags({"$Important"})));
        f.clock.advance(std::chrono::seconds(10));
        REQUIRE(f.store.rename("INBOX", "Old"));
        auto old = f.open("Old");
        CHECK(uids_of(old) == std::vector<std::uint32_t>{1, 2});
        CHECK(old.find(1)->keywords == std::vector<std::string>{"$Important"});
        CHECK(old.find(2)->flags == "S");
        CHECK(old.uidvalidity() > v.uidvalidity());
        auto inbox = f.open("INBOX");
        CHECK(inbox.messages().empty());
        CHECK(inbox.uidvalidity() == v.uidvalidity());
        auto c = f.store.sync(v);
        REQUIRE(c);
        CHECK(c->expunged.size() == 2);
        f.deliver("", "300.Qc.mx", 300);
        REQUIRE(f.store.sync(v));
        CHECK(uids_of(v) == std::vector<std::uint32_t>{3}); // UIDs never reused
        CHECK(f.store.rename("INBOX", "Old").error() == util::errc::exists);
    }

    TEST_CASE("LIST shows INBOX, the special-use folders and Maildir folders, never files")
    {
        store_fixture f;
        REQUIRE(f.store.create("Work.2024"));
        REQUIRE(f.store.create("\xe6\x97\xa5\xe6\x9c\xac"));
        fs::create_directories(f.root + "/.NotAMaildir");
        fs::create_directories(f.root + "/.Bare.Only/cur"); // its parent never existed
        auto pop3_lock = mailbox::lock::acquire(f.root);   // leaves a file ".postern-lock"
        REQUIRE(pop3_lock);
        REQUIRE(fs::exists(f.root + "/.postern-lock"));
        REQUIRE(util::atomic_write(f.root, "subscriptions", "Work\n"));

        auto all = f.store.list("*");
        REQUIRE(all);
        CHECK(names_of(*all) == std::vector<std::string>{"INBOX", "Bare.Only", "Drafts", "Junk", "Sent", "Trash",
                                                         "Work", "Work.2024", "\xe6\x97\xa5\xe6\x9c\xac"});
        CHECK(entry(*all, "Sent")->use == mailbox::special_use::sent);
        CHECK(entry(*all, "Trash")->use == mailbox::special_use::trash);
        CHECK_FALSE(fs::exists(f.root + "/.Sent")); // listed before it exists
        CHECK(entry(*all, "Work")->has_children);
        CHECK(entry(*all, "Work")->subscribed);
        CHECK_FALSE(entry(*all, "Work.2024")->has_children);
        CHECK_FALSE(entry(*all, "INBOX")->nonexistent);

        auto top = f.store.list("%");
        REQUIRE(top);
        CHECK(names_of(*top) ==
              std::vector<std::string>{"INBOX", "Bare", "Drafts", "Junk", "Sent", "Trash", "Work",
                                       "\xe6\x97\xa5\xe6\x9c\xac"});
        CHECK(entry(*top, "Bare")->nonexistent);
        CHECK(entry(*top, "Bare")->has_children);

        auto work = f.store.list("Work.*");
        REQUIRE(work);
        CHECK(names_of(*work) == std::vector<std::string>{"Work.2024"});
        auto inbox = f.store.list("inbox");
        REQUIRE(inbox);
        CHECK(names_of(*inbox) == std::vector<std::string>{"INBOX"});
    }

    TEST_CASE("subscriptions persist, in modified UTF-7, and LIST (SUBSCRIBED) shows them")
    {
        store_fixture f;
        REQUIRE(f.store.create("Work"));
        REQUIRE(f.store.subscribe("Work"));
        REQUIRE(f.store.subscribe("Work")); // idempotent
        REQUIRE(f.store.subscribe("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"));
        REQUIRE(f.store.subscribe("Gone.Away")); // need not exist (RFC 9051 6.3.7)
        CHECK(f.store.subscribe("a..b").error() == util::errc::syntax);
        CHECK(*util::read_file(f.root + "/subscriptions") == "Work\n&ZeVnLIqe-\nGone.Away\n");
        mailbox::store again(f.root, f.clock);
        CHECK(*again.subscriptions() ==
              std::vector<std::string>{"Work", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "Gone.Away"});

        auto subs = f.store.list("*", true);
        REQUIRE(subs);
        CHECK(names_of(*subs) ==
              std::vector<std::string>{"Gone.Away", "Work", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"});
        CHECK(entry(*subs, "Gone.Away")->nonexistent);
        CHECK_FALSE(entry(*subs, "Work")->nonexistent);
        CHECK(entry(*subs, "Work")->subscribed);

        REQUIRE(f.store.unsubscribe("Work"));
        REQUIRE(f.store.unsubscribe("Work"));
        CHECK(*f.store.subscriptions() == std::vector<std::string>{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "Gone.Away"});
        SUBCASE("a damaged line is skipped")
        {
            REQUIRE(util::atomic_write(f.root, "subscriptions", "Work\n&AGE-\n\n..\nSent\n"));
            CHECK(*f.store.subscriptions() == std::vector<std::string>{"Work", "Sent"});
        }
    }

    TEST_CASE("STATUS counts messages, unseen, recent and size, and knows UIDNEXT")
    {
        store_fixture f;
        f.deliver("", "100.Qa.mx", 100);
        f.put("cur/200.Qb.mx:2,S", "12345", 200);
        f.put("cur/300.Qc.mx:2,F", "123", 300);
        auto s = f.store.status("INBOX");
        REQUIRE(s);
        CHECK(s->messages == 3);
        CHECK(s->recent == 1);
        CHECK(s->unseen == 2);
        CHECK(s->uidnext == 4);
        CHECK(s->uidvalidity == t0);
        CHECK(s->size == std::string("Subject: 100.Qa.mx\r\n\r\nbody\r\n").size() + 8);
        auto junk = f.store.status("Junk");
        REQUIRE(junk);
        CHECK(junk->messages == 0);
        CHECK(junk->uidnext == 1);
        CHECK(f.store.status("Nope").error() == util::errc::not_found);
    }

    TEST_CASE("two views of one folder see each other's changes through sync")
    {
        store_fixture f;
        f.deliver("", "100.Qa.mx", 100);
        f.deliver("", "200.Qb.mx", 200);
        f.deliver("", "300.Qc.mx", 300);
        auto a = f.open("INBOX");
        auto b = f.open("INBOX");
        const std::uint32_t one[] = {1};
        const std::uint32_t two[] = {2};
        REQUIRE(f.store.store_flags(a, one, mailbox::flag_change::add, flags({"\\Seen", "$X"})));
        REQUIRE(f.store.store_flags(a, two, mailbox::flag_change::add, flags({"\\Deleted"})));
        REQUIRE(f.store.expunge(a));
        REQUIRE(f.store.append("INBOX", "new\r\n", {}));

        auto c = f.store.sync(b);
        REQUIRE(c);
        REQUIRE(c->expunged.size() == 1);
        CHECK(c->expunged[0].uid == 2);
        CHECK(c->expunged[0].seq == 2);
        CHECK(c->flags_changed == std::vector<std::uint32_t>{1});
        CHECK(b.find(1)->flags == "S");
        CHECK(b.find(1)->keywords == std::vector<std::string>{"$X"});
        CHECK(c->added == 1);
        CHECK(uids_of(b) == std::vector<std::uint32_t>{1, 3, 4});
        CHECK(b.messages()[1].recent); // still what b first saw in new/

        // b changes flags on a message a's view still has under its old name.
        const std::uint32_t three[] = {3};
        REQUIRE(f.store.store_flags(b, three, mailbox::flag_change::add, flags({"\\Flagged"})));
        REQUIRE(f.store.store_flags(a, three, mailbox::flag_change::add, flags({"\\Seen"})));
        CHECK(a.find(3)->flags == "FS"); // on top of b's change, not over it
        CHECK(*f.store.read(b, 3) == "Subject: 300.Qc.mx\r\n\r\nbody\r\n"); // b's file name is stale
        auto cb = f.store.sync(b);
        REQUIRE(cb);
        CHECK(cb->flags_changed == std::vector<std::uint32_t>{3});
        CHECK(b.find(3)->file == "cur/300.Qc.mx:2,FS");
    }

    TEST_CASE("a corrupt index gets a new, greater UIDVALIDITY and fresh UIDs")
    {
        store_fixture f;
        f.deliver("", "100.Qa.mx", 100);
        auto v = f.open("INBOX");
        CHECK_FALSE(v.index_rebuilt());
        REQUIRE(util::atomic_write(f.root, mailbox::index_file, "postern-uidlist 1\nuidvalidity 1764165000\nbroken\n"));
        auto w = f.open("INBOX");
        CHECK(w.index_rebuilt());
        CHECK(w.uidvalidity() > v.uidvalidity());
        CHECK(uids_of(w) == std::vector<std::uint32_t>{1});
        auto c = f.store.sync(v); // a session that had it open must end
        REQUIRE(c);
        CHECK(c->uidvalidity_changed);
        CHECK(v.uidvalidity() == w.uidvalidity());
        auto again = f.open("INBOX");
        CHECK_FALSE(again.index_rebuilt());
    }

    TEST_CASE("malformed file names are skipped, never fatal")
    {
        store_fixture f;
        f.deliver("", "100.Qa.mx", 100);
        f.put("new/bad name", "x", 150);
        f.put("cur/" + std::string(250, 'n') + ":2,S", "x", 160);
        f.put("new/.hidden", "x", 170);
        fs::create_directories(f.root + "/cur/subdir");
        auto v = f.open("INBOX");
        REQUIRE(v.messages().size() == 2); // the long name fits NAME_MAX and the index
        CHECK(v.messages()[0].unique == "100.Qa.mx");
    }

    TEST_CASE("a folder deleted under an open view makes sync fail")
    {
        store_fixture f;
        REQUIRE(f.store.create("Work"));
        auto v = f.open("Work");
        REQUIRE(f.store.remove("Work"));
        CHECK_FALSE(f.store.sync(v));
    }

    TEST_CASE("concurrent appends, deliveries, POP3 renames and syncs keep one UID per message")
    {
        store_fixture f;
        REQUIRE(f.store.open("INBOX"));
        constexpr int appenders = 3, per_appender = 10, deliveries = 20;
        std::mutex mu;
        std::map<std::uint32_t, std::string> unique_of; // every (uid, unique) any view saw
        std::map<std::string, std::uint32_t> uid_of;
        std::vector<std::string> problems;
        auto record = [&](const mailbox::folder_view& v) {
            const std::lock_guard<std::mutex> g(mu);
            std::uint32_t last = 0;
            for (const auto& m : v.messages()) {
                if (m.uid <= last)
                    problems.push_back("not ascending at uid " + std::to_string(m.uid));
                last = m.uid;
                auto [u, fresh_u] = unique_of.emplace(m.uid, m.unique);
                auto [n, fresh_n] = uid_of.emplace(m.unique, m.uid);
                if (u->second != m.unique || n->second != m.uid)
                    problems.push_back("uid " + std::to_string(m.uid) + " / " + m.unique + " changed");
            }
        };
        std::vector<std::thread> threads;
        std::vector<std::uint32_t> appended[appenders];
        for (int t = 0; t < appenders; ++t)
            threads.emplace_back([&, t] {
                mailbox::store s(f.root, f.clock, {"mx.test", 1000});
                for (int i = 0; i < per_appender; ++i)
                    if (auto a = s.append("INBOX", "appended\r\n", {}))
                        appended[t].push_back(a->uid);
            });
        threads.emplace_back([&] { // local delivery: tmp/ then new/, no lock
            for (int i = 0; i < deliveries; ++i) {
                const std::string name = std::to_string(1000 + i) + ".Qd" + std::to_string(i) + ".mx";
                std::ofstream(f.root + "/tmp/" + name) << "delivered\r\n";
                fs::rename(f.root + "/tmp/" + name, f.root + "/new/" + name);
            }
        });
        threads.emplace_back([&] { // POP3: RETR renames new/ → cur/ without the index lock
            for (int round = 0; round < 15; ++round) {
                auto snap = mailbox::snapshot(f.root);
                if (!snap)
                    continue;
                for (auto& m : *snap)
                    if (m.flags.empty())
                        (void)mailbox::mark_seen(f.root, m);
            }
        });
        for (int t = 0; t < 2; ++t)
            threads.emplace_back([&, t] { // IMAP sessions: sync, and flag changes by renames in cur/
                mailbox::store s(f.root, f.clock, {"mx.test", 1000});
                auto v = s.open("INBOX");
                if (!v)
                    return;
                for (int round = 0; round < 15; ++round) {
                    if (!s.sync(*v))
                        continue;
                    record(*v);
                    std::vector<std::uint32_t> uids;
                    for (const auto& m : v->messages())
                        uids.push_back(m.uid);
                    const std::string_view flag = t == 0 ? "\\Flagged" : "\\Answered";
                    const std::string_view one[] = {flag};
                    (void)s.store_flags(*v, uids, round % 2 ? mailbox::flag_change::add : mailbox::flag_change::remove,
                                        *mailbox::parse_flags(one));
                }
            });
        for (auto& th : threads)
            th.join();
        CHECK(problems.empty());
        for (const auto& p : problems)
            MESSAGE(p);
        auto v = f.open("INBOX");
        record(v);
        CHECK(problems.empty());
        CHECK(v.messages().size() == appenders * per_appender + deliveries);
        std::vector<std::uint32_t> all;
        for (const auto& a : appended) {
            CHECK(a.size() == per_appender);
            all.insert(all.end(), a.begin(), a.end());
        }
        std::sort(all.begin(), all.end());
        CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
        for (auto uid : all)
            CHECK(v.find(uid) != nullptr);
        CHECK(v.uidnext() == v.messages().back().uid + 1); // no UID burnt on a message seen twice
    }

    TEST_CASE("a message written with bare LF by another tool is sized and read in CRLF form")
    {
        store_fixture f;
        // procmail/maildrop: LF line ends; a CRLF and a lone CR stay as they are.
        const std::string lf = "Subject: lf\n\none\r\ntwo\rthree\n\nfour\n";
        const std::string crlf = "Subject: lf\r\n\r\none\r\ntwo\rthree\r\n\r\nfour\r\n";
        f.put("new/1700000001.M2P2.procmail", lf, 100);
        f.deliver("", "1700000002.Q0123456789abcdef.mx", 200);
        auto v = f.open("INBOX");
        REQUIRE(v.messages().size() == 2);
        CHECK(v.find(1)->size == crlf.size());
        auto bytes = f.store.read(v, 1);
        REQUIRE(bytes);
        CHECK(*bytes == crlf);
        const std::string delivered = "Subject: 1700000002.Q0123456789abcdef.mx\r\n\r\nbody\r\n";
        CHECK(v.find(2)->size == delivered.size());
        CHECK(*f.store.read(v, 2) == delivered);
        auto s = f.store.status("INBOX");
        REQUIRE(s);
        CHECK(s->size == crlf.size() + delivered.size());

        SUBCASE("the size is found once and kept in the index, never recounted")
        {
            auto index = mailbox::read_index(f.root);
            REQUIRE(index);
            REQUIRE(index->index.entries.size() == 2);
            CHECK(index->index.entries[0].size == crlf.size());
            // Maildir files are never rewritten; were this one, the index would still rule.
            f.put("new/1700000001.M2P2.procmail", lf + "more\n", 100);
            mailbox::store again(f.root, f.clock);
            auto w = again.open("INBOX");
            REQUIRE(w);
            CHECK(w->find(1)->size == crlf.size());
        }
        SUBCASE("a flag change (a rename into cur/) keeps the size")
        {
            const std::vector<std::uint32_t> one{1};
            REQUIRE(f.store.store_flags(v, one, mailbox::flag_change::add, flags({"\\Seen"})));
            auto w = f.open("INBOX");
            CHECK(w.find(1)->file == "cur/1700000001.M2P2.procmail:2,S");
            CHECK(w.find(1)->size == crlf.size());
            CHECK(*f.store.read(w, 1) == crlf);
        }
    }

    TEST_CASE("a Dovecot name's W= size is taken as it is, without reading the file")
    {
        store_fixture f;
        // Dovecot: "<unique>,S=<file size>,W=<size with CRLF line ends>".
        f.put("cur/1700000001.M1P1.dovecot,S=12,W=14:2,S", "Subject: x\n\n", 100);
        f.put("new/1700000002.M1P1.dovecot,W=99", "y\n", 200); // W= believed even when it is wrong
        auto v = f.open("INBOX");
        REQUIRE(v.messages().size() == 2);
        CHECK(v.find(1)->unique == "1700000001.M1P1.dovecot,S=12,W=14");
        CHECK(v.find(1)->size == 14);
        CHECK(v.find(2)->size == 99);
        CHECK(*f.store.read(v, 1) == "Subject: x\r\n\r\n");
    }

    TEST_CASE("a version 1 index still loads: UIDs, UIDVALIDITY and keywords kept, sizes filled in")
    {
        store_fixture f;
        f.put("new/1700000001.M2P2.procmail", "a\nb\n", 100);
        f.put("cur/1700000002.Q0123456789abcdef.mx:2,S", "c\r\n", 200);
        REQUIRE(util::atomic_write(f.root, mailbox::index_file,
                                   "postern-uidlist 1\nuidvalidity 1700000000\nuidnext 10\n"
                                   "5 1700000001.M2P2.procmail $Junk\n"
                                   "7 1700000002.Q0123456789abcdef.mx\n"));
        auto v = f.open("INBOX");
        CHECK_FALSE(v.index_rebuilt());
        CHECK(v.uidvalidity() == 1700000000);
        CHECK(v.uidnext() == 10);
        CHECK(uids_of(v) == std::vector<std::uint32_t>{5, 7});
        CHECK(v.find(5)->keywords == std::vector<std::string>{"$Junk"});
        CHECK(v.find(5)->size == 6);
        CHECK(v.find(7)->size == 3);
        auto text = util::read_file(f.root + "/" + std::string(mailbox::index_file));
        REQUIRE(text);
        CHECK(*text == "postern-uidlist 2\nuidvalidity 1700000000\nuidnext 10\n"
                       "5 1700000001.M2P2.procmail 6 $Junk\n"
                       "7 1700000002.Q0123456789abcdef.mx 3\n");
    }

    TEST_CASE("APPEND and COPY of text with bare LF count its CRLF form")
    {
        store_fixture f;
        auto a = f.store.append("INBOX", "Subject: a\n\nbody\n", {});
        REQUIRE(a);
        auto v = f.open("INBOX");
        const std::string crlf = "Subject: a\r\n\r\nbody\r\n";
        CHECK(v.find(a->uid)->size == crlf.size());
        CHECK(*f.store.read(v, a->uid) == crlf);
        const std::vector<std::uint32_t> one{a->uid};
        auto c = f.store.copy(v, one, "Trash");
        REQUIRE(c);
        REQUIRE(c->uids.size() == 1);
        auto t = f.open("Trash");
        CHECK(t.find(c->uids[0].second)->size == crlf.size());
        CHECK(*f.store.read(t, c->uids[0].second) == crlf);
    }
}

#include "postern/queue/fs_store.hpp"

#include <filesystem>
#include <fstream>
#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <doctest/doctest.h>

#include "../temp_dir.hpp"

#include "postern/util/atomic_write.hpp"
#include "postern/util/error.hpp"
#include "postern/util/id.hpp"
#include "postern/util/strings.hpp"

using namespace postern::queue;
using postern::util::errc;
namespace fs = std::filesystem;

namespace {

using postern::testing::temp_dir;

std::error_code store_err(errc e)
{
    return make_error_code(e);
}

new_message make_message(std::string id, std::vector<std::string> parts)
{
    new_message m;
    m.meta.id = std::move(id);
    m.meta.sender = "sender@example.org";
    m.meta.received_at = 1700000000;
    m.meta.client_ip = "192.0.2.7";
    m.meta.helo = "client.example.org";
    m.meta.recipients = {{"alice@example.test", rcpt_state::pending, 0, 0, "", 0, ""},
                         {"bob@example.test", rcpt_state::pending, 0, 0, "", 0, ""}};
    for (const auto& p : parts)
        m.meta.size += p.size();
    m.parts = std::move(parts);
    return m;
}

std::string joined(const std::vector<std::string>& parts)
{
    std::string out;
    for (const auto& p : parts)
        out += p;
    return out;
}

std::size_t count_entries(const fs::path& dir)
{
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir))
        ++n;
    return n;
}

void write_text(const fs::path& p, std::string_view text)
{
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << text;
    REQUIRE(f.good());
}

std::string entry_path(const temp_dir& d, std::string_view id)
{
    return d.str("queue/" + std::string(id.substr(14)) + "/" + std::string(id));
}

// Commits one message and requires success.
void commit_one(fs_store& s, new_message m)
{
    std::vector<new_message> batch;
    batch.push_back(std::move(m));
    auto r = s.commit(batch);
    REQUIRE(r.size() == 1);
    REQUIRE(r[0]);
}

} // namespace

TEST_SUITE("queue") {

TEST_CASE("fs_store open() creates incoming/, queue/00..ff and corrupt/")
{
    temp_dir d;
    fs_store s(d.str("spool"));
    s.open();
    CHECK(s.dir() == d.str("spool"));
    CHECK(fs::is_directory(d.str("spool/incoming")));
    CHECK(fs::is_directory(d.str("spool/corrupt")));
    for (unsigned i = 0; i < 256; ++i) {
        auto bucket = postern::util::hex(i, 2);
        CAPTURE(bucket);
        CHECK(fs::is_directory(d.str("spool/queue/" + bucket)));
    }
    CHECK(count_entries(d.str("spool/queue")) == 256);
    auto ids = s.list();
    REQUIRE(ids);
    CHECK(ids->empty());
    SUBCASE("and opening an existing spool again keeps it usable")
    {
        fs_store again(d.str("spool"));
        again.open();
        CHECK(count_entries(d.str("spool/queue")) == 256);
    }
}

TEST_CASE("fs_store gives back exactly the committed envelope and the concatenated parts")
{
    temp_dir d;
    fs_store s(d.str());
    s.open();
    std::vector<new_message> batch;
    batch.push_back(make_message("0000000000000a01", {"Subject: one\r\n", "\r\n", "body one\r\n"}));
    batch.push_back(make_message("0000000000000b02", {"Subject: two\r\n\r\n", std::string(100000, 'x'), "\r\n"}));
    batch.push_back(make_message("0000000000000cff", {""}));
    batch[2].meta.sender = "";
    batch[2].meta.smtputf8 = true;
    const std::vector<entry> metas = {batch[0].meta, batch[1].meta, batch[2].meta};
    const std::vector<std::string> bodies = {joined(batch[0].parts), joined(batch[1].parts), ""};

    auto results = s.commit(batch);
    REQUIRE(results.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CAPTURE(i);
        CHECK(results[i]);
    }
    auto ids = s.list();
    REQUIRE(ids);
    CHECK(*ids == std::vector<std::string>{"0000000000000a01", "0000000000000b02", "0000000000000cff"});
    for (std::size_t i = 0; i < 3; ++i) {
        CAPTURE(i);
        auto e = s.load(metas[i].id);
        REQUIRE(e);
        CHECK(*e == metas[i]);
        auto m = s.read_message(metas[i].id);
        REQUIRE(m);
        CHECK(*m == bodies[i]);
        // Stored as one file in the bucket named by the last two digits: the
        // envelope on the first line, then the message.
        auto file = postern::util::read_file(entry_path(d, metas[i].id));
        REQUIRE(file);
        CHECK(*file == encode_envelope(metas[i]) + "\n" + bodies[i]);
    }
    CHECK(count_entries(d.str("incoming")) == 0); // nothing left half-way
}

TEST_CASE("fs_store open() purges what was left in incoming/ (it never got its 250)")
{
    temp_dir d;
    {
        fs_store s(d.str());
        s.open();
    }
    fs::create_directories(d.str("incoming/0000000000000a01"));
    write_text(d.str("incoming/0000000000000a01/message"), "half a message");
    fs::create_directories(d.str("incoming/0000000000000a02"));
    write_text(d.str("incoming/stray-file"), "x");
    write_text(d.str("incoming/0000000000000a03"), "{\"version\":1}\nhalf a message");

    fs_store s(d.str());
    s.open();
    CHECK(count_entries(d.str("incoming")) == 0);
    auto ids = s.list();
    REQUIRE(ids);
    CHECK(ids->empty());
    SUBCASE("and the purged id can be committed afresh")
    {
        commit_one(s, make_message("0000000000000a01", {"whole message\r\n"}));
        auto m = s.read_message("0000000000000a01");
        REQUIRE(m);
        CHECK(*m == "whole message\r\n");
    }
}

TEST_CASE("fs_store open() purges an update's temp file and the envelope of a removed entry (a crash between steps)")
{
    temp_dir d;
    const std::string kept = "00000000000000e1";
    const std::string gone = "00000000000000e2";
    auto m = make_message(kept, {"Subject: x\r\n\r\nbody\r\n"});
    entry changed = m.meta;
    {
        fs_store s(d.str());
        s.open();
        commit_one(s, m);
        changed.recipients[0].state = rcpt_state::done;
        REQUIRE(s.update(changed));
    }
    const auto bucket_e1 = fs::path(entry_path(d, kept)).parent_path();
    const auto bucket_e2 = fs::path(entry_path(d, gone)).parent_path();
    // update() killed before its rename; remove() killed after the entry went.
    write_text((bucket_e1 / ".tmp.0123456789abcdef").string(), "{\"version\":1,\"id\":\"half");
    write_text((bucket_e1 / ".tmp.fedcba9876543210").string(), "");
    write_text((bucket_e2 / (gone + ".env")).string(), encode_envelope(changed));

    fs_store s(d.str());
    s.open();
    CHECK_FALSE(fs::exists(bucket_e1 / ".tmp.0123456789abcdef"));
    CHECK_FALSE(fs::exists(bucket_e1 / ".tmp.fedcba9876543210"));
    CHECK_FALSE(fs::exists(bucket_e2 / (gone + ".env")));
    // The whole entry and its own later envelope stay.
    auto ids = s.list();
    REQUIRE(ids);
    CHECK(*ids == std::vector<std::string>{kept});
    auto e = s.load(kept);
    REQUIRE(e);
    CHECK(*e == changed);
}

TEST_CASE("fs_store remove() takes the entry before its later envelope")
{
    // A crash after the first step must not bring back the first line's
    // all-pending recipients; an orphan envelope is purged by open().
    temp_dir d;
    const std::string id = "00000000000000e3";
    auto m = make_message(id, {"x\r\n"});
    fs_store s(d.str());
    s.open();
    commit_one(s, m);
    entry changed = m.meta;
    changed.recipients[0].state = rcpt_state::done;
    REQUIRE(s.update(changed));
    REQUIRE(s.remove(id));
    CHECK_FALSE(fs::exists(entry_path(d, id)));
    CHECK_FALSE(fs::exists(entry_path(d, id) + ".env"));
    auto ids = s.list();
    REQUIRE(ids);
    CHECK(ids->empty());
}

TEST_CASE("fs_store update() is seen by a later load(), also after a restart")
{
    temp_dir d;
    const std::string id = "00000000000000c3";
    auto m = make_message(id, {"Subject: x\r\n\r\nbody\r\n"});
    entry changed = m.meta;
    {
        fs_store s(d.str());
        s.open();
        commit_one(s, m);
        changed.recipients[0].state = rcpt_state::done;
        changed.recipients[1].attempts = 1;
        changed.recipients[1].next_attempt = 1700000300;
        changed.recipients[1].last_error = "4.4.0 no remote delivery agent configured";
        changed.recipients.push_back({"carol@remote.test", rcpt_state::pending, 0, 0, "", 0, ""});
        REQUIRE(s.update(changed));
        auto e = s.load(id);
        REQUIRE(e);
        CHECK(*e == changed);
    }
    fs_store restarted(d.str());
    restarted.open();
    auto ids = restarted.list();
    REQUIRE(ids);
    CHECK(*ids == std::vector<std::string>{id});
    auto e = restarted.load(id);
    REQUIRE(e);
    CHECK(*e == changed);
    auto body = restarted.read_message(id);
    REQUIRE(body);
    CHECK(*body == "Subject: x\r\n\r\nbody\r\n"); // update() leaves the message alone
    // The bucket holds the entry and its later envelope, no temp file of atomic_write().
    CHECK(count_entries(fs::path(entry_path(d, id)).parent_path().string()) == 2);
}

TEST_CASE("fs_store update() of an entry that is not queued fails")
{
    temp_dir d;
    fs_store s(d.str());
    s.open();
    auto m = make_message("00000000000000d4", {"x"});
    CHECK_FALSE(s.update(m.meta));
    auto ids = s.list();
    REQUIRE(ids);
    CHECK(ids->empty());
}

TEST_CASE("fs_store remove() takes an entry out of list() and load()")
{
    temp_dir d;
    fs_store s(d.str());
    s.open();
    commit_one(s, make_message("0000000000000001", {"one"}));
    commit_one(s, make_message("0000000000000002", {"two"}));
    REQUIRE(s.remove("0000000000000001"));
    auto ids = s.list();
    REQUIRE(ids);
    CHECK(*ids == std::vector<std::string>{"0000000000000002"});
    auto e = s.load("0000000000000001");
    REQUIRE_FALSE(e);
    CHECK(e.error() == std::errc::no_such_file_or_directory);
    CHECK_FALSE(fs::exists(entry_path(d, "0000000000000001")));
    SUBCASE("removing it again is not an error")
    {
        CHECK(s.remove("0000000000000001"));
    }
    SUBCASE("the other entry is untouched")
    {
        auto m = s.read_message("0000000000000002");
        REQUIRE(m);
        CHECK(*m == "two");
    }
}

TEST_CASE("fs_store load() of an id never committed reports no such file")
{
    temp_dir d;
    fs_store s(d.str());
    s.open();
    auto e = s.load("00000000000000ee");
    REQUIRE_FALSE(e);
    CHECK(e.error() == std::errc::no_such_file_or_directory);
    auto m = s.read_message("00000000000000ee");
    REQUIRE_FALSE(m);
    CHECK(m.error() == std::errc::no_such_file_or_directory);
}

TEST_CASE("fs_store load() quarantines a damaged envelope into corrupt/")
{
    temp_dir d;
    fs_store s(d.str());
    s.open();
    const std::string id = "00000000000000a7";
    commit_one(s, make_message(id, {"the message"}));
    commit_one(s, make_message("00000000000000a8", {"healthy"}));

    std::string damage;
    SUBCASE("not JSON") { damage = "{\"version\": 1, \"id\": "; }
    SUBCASE("an empty file") { damage = ""; }
    SUBCASE("valid JSON naming another id")
    {
        auto other = make_message("00000000000000b9", {"x"});
        damage = encode_envelope(other.meta);
    }
    SUBCASE("a recipient in an unknown state")
    {
        auto m = make_message(id, {"x"});
        damage = encode_envelope(m.meta);
        auto at = damage.find("\"pending\"");
        REQUIRE(at != std::string::npos);
        damage.replace(at, 9, "\"sent\"");
    }
    CAPTURE(damage);
    // Damage the entry's own envelope line, as a bad disk block would.
    REQUIRE(postern::util::atomic_write(fs::path(entry_path(d, id)).parent_path().string(), id,
                                        damage + "\nthe message"));

    auto e = s.load(id);
    REQUIRE_FALSE(e);
    CHECK(e.error() == store_err(errc::corrupt));
    CHECK(fs::is_regular_file(d.str("corrupt/" + id))); // kept for a human to look at
    CHECK_FALSE(fs::exists(entry_path(d, id)));
    auto ids = s.list();
    REQUIRE(ids);
    CHECK(*ids == std::vector<std::string>{"00000000000000a8"});
    auto healthy = s.load("00000000000000a8");
    CHECK(healthy);
}

TEST_CASE("fs_store refuses ids that are not 16 lower-case hex digits")
{
    temp_dir d;
    fs::create_directories(d.str("spool"));
    fs_store s(d.str("spool"));
    s.open();
    for (std::string id : {"../../etc", "../../../../tmp/pwned0000", "0123456789ABCDEF", "0123456789abcde",
                           "0123456789abcdef0", "", "0123456789abcdeg", "../queue/00/0000", "/etc/passwd00000"}) {
        CAPTURE(id);
        CHECK(s.load(id).error() == store_err(errc::syntax));
        CHECK(s.read_message(id).error() == store_err(errc::syntax));
        CHECK(s.remove(id).error() == store_err(errc::syntax));
        entry e;
        e.id = id;
        e.recipients = {{"alice@example.test", rcpt_state::pending, 0, 0, "", 0, ""}};
        CHECK(s.update(e).error() == store_err(errc::syntax));
        std::vector<new_message> batch{make_message(id, {"x"})};
        auto r = s.commit(batch);
        REQUIRE(r.size() == 1);
        CHECK(r[0].error() == store_err(errc::syntax));
    }
    CHECK(count_entries(d.str("spool/incoming")) == 0);
    CHECK(count_entries(d.path) == 1); // nothing written beside the spool
    auto ids = s.list();
    REQUIRE(ids);
    CHECK(ids->empty());
}

TEST_CASE("fs_store refuses a second commit of an id with errc::exists and keeps the first")
{
    temp_dir d;
    fs_store s(d.str());
    s.open();
    const std::string id = "00000000000000f0";
    auto first = make_message(id, {"first message"});
    first.meta.helo = "first.example.org";

    SUBCASE("in a later batch")
    {
        commit_one(s, first);
        auto second = make_message(id, {"second message, longer"});
        second.meta.helo = "second.example.org";
        std::vector<new_message> batch{second, make_message("00000000000000f1", {"other"})};
        auto r = s.commit(batch);
        REQUIRE(r.size() == 2);
        CHECK(r[0].error() == store_err(errc::exists));
        CHECK(r[1]); // the rest of the batch is not affected
    }
    SUBCASE("twice in one batch")
    {
        auto second = make_message(id, {"second message, longer"});
        second.meta.helo = "second.example.org";
        std::vector<new_message> batch{first, second};
        auto r = s.commit(batch);
        REQUIRE(r.size() == 2);
        CHECK(r[0]);
        CHECK(r[1].error() == store_err(errc::exists));
    }
    auto e = s.load(id);
    REQUIRE(e);
    CHECK(*e == first.meta);
    auto m = s.read_message(id);
    REQUIRE(m);
    CHECK(*m == "first message");
    CHECK(count_entries(d.str("incoming")) == 0);
}

}

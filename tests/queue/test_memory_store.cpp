#include "postern/queue/memory_store.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <system_error>
#include <vector>

#include <doctest/doctest.h>

#include "postern/util/error.hpp"

using namespace postern::queue;
using postern::util::errc;

namespace {

new_message message_of(std::string id, std::vector<std::string> parts)
{
    new_message m;
    m.meta.id = std::move(id);
    m.meta.sender = "sender@example.org";
    m.meta.received_at = 1700000000;
    m.meta.recipients = {{"alice@example.test", rcpt_state::pending, 0, 0, "", 0, ""}};
    m.parts = std::move(parts);
    return m;
}

} // namespace

TEST_SUITE("queue") {

TEST_CASE("memory_store gives back the committed envelope and the concatenated parts")
{
    memory_store s;
    std::vector<new_message> batch{message_of("0000000000000002", {"Subject: b\r\n", "\r\n", "two\r\n"}),
                                   message_of("0000000000000001", {"one"})};
    auto r = s.commit(batch);
    REQUIRE(r.size() == 2);
    CHECK(r[0]);
    CHECK(r[1]);
    CHECK(s.commits() == 1); // one batch, one commit
    auto ids = s.list();
    REQUIRE(ids);
    CHECK(*ids == std::vector<std::string>{"0000000000000001", "0000000000000002"});
    auto e = s.load("0000000000000002");
    REQUIRE(e);
    CHECK(*e == batch[0].meta);
    auto m = s.read_message("0000000000000002");
    REQUIRE(m);
    CHECK(*m == "Subject: b\r\n\r\ntwo\r\n");
}

TEST_CASE("memory_store update() is seen by load() and remove() takes the entry out")
{
    memory_store s;
    std::vector<new_message> batch{message_of("0000000000000001", {"one"}), message_of("0000000000000002", {"two"})};
    REQUIRE(s.commit(batch)[0]);
    auto e = batch[0].meta;
    e.recipients[0].state = rcpt_state::done;
    e.recipients.push_back({"bob@remote.test", rcpt_state::pending, 1, 1700000300, "4.4.0 later", 0, ""});
    REQUIRE(s.update(e));
    auto loaded = s.load("0000000000000001");
    REQUIRE(loaded);
    CHECK(*loaded == e);

    REQUIRE(s.remove("0000000000000001"));
    auto ids = s.list();
    REQUIRE(ids);
    CHECK(*ids == std::vector<std::string>{"0000000000000002"});
    auto gone = s.load("0000000000000001");
    REQUIRE_FALSE(gone);
    CHECK(gone.error() == std::errc::no_such_file_or_directory);
    CHECK(s.read_message("0000000000000001").error() == std::errc::no_such_file_or_directory);
    CHECK(s.remove("0000000000000001")); // removing twice is not an error
    CHECK(s.update(e).error() == std::errc::no_such_file_or_directory); // nothing to update
}

TEST_CASE("memory_store refuses a second commit of an id with errc::exists and keeps the first")
{
    memory_store s;
    std::vector<new_message> first{message_of("00000000000000f0", {"first"})};
    REQUIRE(s.commit(first)[0]);
    std::vector<new_message> again{message_of("00000000000000f0", {"second"}), message_of("00000000000000f1", {"x"})};
    again[0].meta.sender = "other@example.org";
    auto r = s.commit(again);
    REQUIRE(r.size() == 2);
    CHECK(r[0].error() == make_error_code(errc::exists));
    CHECK(r[1]);
    auto e = s.load("00000000000000f0");
    REQUIRE(e);
    CHECK(e->sender == "sender@example.org");
    CHECK(*s.read_message("00000000000000f0") == "first");
    CHECK(s.commits() == 2);
}

}

#include "postern/server/pickup_service.hpp"

#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "../temp_dir.hpp"
#include "postern/config/config.hpp"
#include "postern/queue/memory_store.hpp"
#include "postern/queue/pickup_file.hpp"
#include "postern/route/table.hpp"
#include "postern/util/atomic_write.hpp"

using namespace postern;

namespace {

// A spool in a temp dir, a memory store behind a real group committer, and
// the service scanning by hand (no thread). Files are owned by whoever runs
// the test: its login name is the submitter.
struct fixture {
    testing::temp_dir dir;
    config::settings cfg;
    queue::memory_store store;
    queue::group_committer committer{store};
    util::manual_clock clock{util::from_unix_seconds(1795000000)};

    fixture()
    {
        cfg = config::parse(R"({"hostname": "h.test", "local_domains": ["example.test"]})", "test");
        cfg.spool_dir = dir.str("spool");
        REQUIRE(server::pickup_service::make_directory(cfg.spool_dir, true));
    }
    ~fixture() { committer.stop(); }

    std::string pickup() const { return server::pickup_service::directory(cfg.spool_dir); }

    queue::pickup_header header() const
    {
        queue::pickup_header h;
        h.uid = ::getuid();
        h.login = "root";
        h.sender = "root@h.test";
        h.recipients = {"alice@example.test"};
        h.time = 1795000000;
        h.full_name = "Root";
        return h;
    }

    void drop(const std::string& name, const std::string& bytes) const
    {
        REQUIRE(util::atomic_write(pickup(), name, bytes));
    }

    std::size_t corrupt() const
    {
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(pickup() + "/corrupt"))
            ++n;
        return n;
    }
};

} // namespace

TEST_SUITE("server") {

TEST_CASE("pickup directory: 3733, with a private corrupt/ inside; names are time-ordered and checked")
{
    fixture f;
    struct stat st {};
    REQUIRE(::stat(f.pickup().c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 03733);
    REQUIRE(::stat((f.pickup() + "/corrupt").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    auto name = server::pickup_service::file_name(util::from_unix_seconds(1795000000));
    CHECK(server::pickup_service::is_file_name(name));
    CHECK_FALSE(server::pickup_service::is_file_name("0123456789abcdef"));
    CHECK_FALSE(server::pickup_service::is_file_name("../../etc/passwd.0123456789abcdef"));
    SUBCASE("without create, a missing directory is reported")
    {
        CHECK(server::pickup_service::make_directory(f.dir.str("nothing"), false).error() ==
              std::errc::no_such_file_or_directory);
    }
}

TEST_CASE("a pickup file of root's becomes a queued message with Received, From, Date, Message-ID; the file goes")
{
    if (::geteuid() != 0)
        return; // the submitter is the file's owner: these expectations are root's
    fixture f;
    route::table routes(f.cfg);
    server::pickup_service svc(f.cfg, routes, f.committer, f.clock);
    const auto name = server::pickup_service::file_name(f.clock.now());
    f.drop(name, queue::encode_pickup(f.header(), "Subject: s\r\n\r\nbody\r\n"));
    f.drop(".tmp.0123456789abcdef", "half written"); // a writer still at work: left alone
    CHECK(svc.scan() == 1);
    CHECK_FALSE(std::filesystem::exists(f.pickup() + "/" + name));
    CHECK(std::filesystem::exists(f.pickup() + "/.tmp.0123456789abcdef"));
    auto ids = f.store.list();
    REQUIRE(ids);
    REQUIRE(ids->size() == 1);
    auto full = f.store.load_full(ids->front());
    REQUIRE(full);
    CHECK(full->meta.sender == "root@h.test");
    REQUIRE(full->meta.recipients.size() == 1);
    CHECK(full->meta.recipients[0].address == "alice@example.test");
    CHECK(full->meta.client_ip == "local");
    const auto& m = full->message;
    CHECK(m.starts_with("Received: from local user root (uid 0)\r\n\tby h.test (postern) with local id " +
                        full->meta.id + "\r\n\tfor <alice@example.test>; "));
    CHECK(m.find("\r\nFrom: \"Root\" <root@h.test>\r\nDate: ") != std::string::npos);
    CHECK(m.find("\r\nMessage-ID: <" + full->meta.id + "@h.test>\r\nSubject: s\r\n\r\nbody\r\n") != std::string::npos);
    CHECK(svc.scan() == 0);
}

TEST_CASE("pickup files that fail a check are moved to corrupt/, never queued")
{
    if (::geteuid() != 0)
        return;
    fixture f;
    route::table routes(f.cfg);
    server::pickup_service svc(f.cfg, routes, f.committer, f.clock);
    auto h = f.header();
    SUBCASE("garbage") { f.drop("0000000000000001.0000000000000001", "garbage"); }
    SUBCASE("an unexpected name") { f.drop("notes.txt", "x"); }
    SUBCASE("the uid of someone else")
    {
        h.uid = 1234;
        f.drop("0000000000000001.0000000000000001", queue::encode_pickup(h, ""));
    }
    SUBCASE("the login of someone else")
    {
        h.login = "daemon";
        f.drop("0000000000000001.0000000000000001", queue::encode_pickup(h, ""));
    }
    SUBCASE("a sender set by an untrusted user")
    {
        f.cfg.sendmail.trusted_users = {};
        h.sender = "boss@example.test";
        f.drop("0000000000000001.0000000000000001", queue::encode_pickup(h, ""));
    }
    SUBCASE("too large")
    {
        f.cfg.lim.message_size = 10;
        f.drop("0000000000000001.0000000000000001", queue::encode_pickup(h, "Subject: too large\r\n"));
    }
    SUBCASE("a hard link")
    {
        f.drop("0000000000000001.0000000000000001", queue::encode_pickup(h, ""));
        REQUIRE(::link((f.pickup() + "/0000000000000001.0000000000000001").c_str(),
                       f.dir.str("second-link").c_str()) == 0);
    }
    CHECK(svc.scan() == 0);
    CHECK(f.corrupt() == 1);
    auto ids = f.store.list();
    REQUIRE(ids);
    CHECK(ids->empty());
}

}

TEST_SUITE("server") {

TEST_CASE("the -f policy: one's own address always, any sender only for sendmail.trusted_users")
{
    auto cfg = config::parse(R"({"hostname": "h.test", "sendmail": {"trusted_users": ["list"]}})", "test");
    using server::pickup_service;
    CHECK(pickup_service::own_address(cfg, "alice") == "alice@h.test");
    CHECK(pickup_service::may_use_sender(cfg, "alice", "alice@h.test"));
    CHECK(pickup_service::may_use_sender(cfg, "alice", "Alice@H.TEST"));
    CHECK_FALSE(pickup_service::may_use_sender(cfg, "alice", "bob@h.test"));
    CHECK_FALSE(pickup_service::may_use_sender(cfg, "alice", "")); // <> is another sender too
    CHECK(pickup_service::may_use_sender(cfg, "list", "bounces@example.test"));
    CHECK(pickup_service::may_use_sender(cfg, "list", ""));
    CHECK_FALSE(pickup_service::may_use_sender(cfg, "root", "x@example.test")); // root is trusted by default only
    CHECK(pickup_service::login_name(0) == "root");
}

}

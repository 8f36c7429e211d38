#include "postern/server/control_server.hpp"

#include <chrono>
#include <filesystem>
#include <future>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/executor_work_guard.hpp>
#include <doctest/doctest.h>

#include "postern/util/id.hpp"

using namespace postern;
namespace fs = std::filesystem;

namespace {

// Short: a Unix socket path has room for 107 octets.
struct temp_dir {
    fs::path path = fs::path("/tmp") / ("pq-" + util::make_session_id());
    temp_dir() { fs::create_directories(path); }
    ~temp_dir() { fs::remove_all(path); }
    std::string str() const { return path.string(); }
};

// An io_context running on its own thread, as in the daemon; the server's
// start() runs before the thread, its stop() on it.
struct io_thread {
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::optional<std::thread> thread;
    void run() { thread.emplace([this] { io.run(); }); }
    ~io_thread()
    {
        work.reset();
        io.stop();
        if (thread)
            thread->join();
    }
};

void stop_on_io(io_thread& t, server::control_server& s)
{
    std::promise<void> done;
    asio::post(t.io, [&] {
        s.stop();
        done.set_value();
    });
    done.get_future().wait();
}

mode_t mode_of(const std::string& path)
{
    struct stat sb {};
    REQUIRE(::lstat(path.c_str(), &sb) == 0);
    return sb.st_mode;
}

constexpr std::chrono::seconds timeout{10};

// Echoes the request back, answering from another thread (as the runner does).
void echo_from_thread(std::string request, server::control_server::reply_fn reply)
{
    std::thread([r = std::move(request), rp = std::move(reply)] { rp("echo:" + r); }).detach();
}

} // namespace

TEST_SUITE("server") {

TEST_CASE("a request line gets the handler's reply, answered from another thread")
{
    temp_dir d;
    io_thread t;
    server::control_server s(t.io, d.str(), echo_from_thread);
    s.start();
    t.run();
    CHECK(s.path() == d.str() + "/control.sock");
    CHECK(S_ISSOCK(mode_of(s.path())));
    CHECK((mode_of(s.path()) & 0777) == 0600);
    // The spool is passable (0711) for pickup/; the socket is owner-only.
    CHECK((mode_of(d.str()) & 0777) == 0711);
    for (int i = 0; i < 3; ++i) {
        CAPTURE(i);
        auto r = server::control_request(s.path(), R"({"cmd":"list"})", timeout);
        REQUIRE(r);
        CHECK(*r == R"(echo:{"cmd":"list"})");
    }
    stop_on_io(t, s);
    CHECK(!fs::exists(s.path())); // removed at stop
}

TEST_CASE("the client tells a missing server from a stale socket")
{
    temp_dir d;
    const auto path = server::control_server::socket_path(d.str());
    auto r = server::control_request(path, "{}", timeout);
    REQUIRE(!r);
    CHECK(r.error() == std::errc::no_such_file_or_directory);

    // A socket file nobody listens on, as a crash leaves it.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    path.copy(sa.sun_path, path.size());
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
    ::close(fd);
    r = server::control_request(path, "{}", timeout);
    REQUIRE(!r);
    CHECK(r.error() == std::errc::connection_refused);

    SUBCASE("start() replaces the stale socket")
    {
        io_thread t;
        server::control_server s(t.io, d.str(), echo_from_thread);
        s.start();
        t.run();
        r = server::control_request(path, "x", timeout);
        REQUIRE(r);
        CHECK(*r == "echo:x");
        stop_on_io(t, s);
    }
}

TEST_CASE("a second server does not take over a live control socket")
{
    temp_dir d;
    io_thread t;
    server::control_server s(t.io, d.str(), echo_from_thread);
    s.start();
    t.run();
    {
        asio::io_context io2;
        server::control_server other(io2, d.str(), echo_from_thread);
        CHECK_THROWS_AS(other.start(), std::system_error);
    } // its destructor must not remove the live socket
    auto r = server::control_request(s.path(), "still", timeout);
    REQUIRE(r);
    CHECK(*r == "echo:still");
    stop_on_io(t, s);
}

TEST_CASE("a request over the limit is closed without a reply")
{
    temp_dir d;
    io_thread t;
    bool called = false;
    server::control_server s(t.io, d.str(), [&called](std::string, server::control_server::reply_fn reply) {
        called = true;
        reply("no");
    });
    s.start();
    t.run();
    auto r = server::control_request(s.path(), std::string(server::control_server::max_request + 10, 'a'), timeout);
    REQUIRE(!r);
    CHECK((r.error() == std::errc::connection_reset || r.error() == std::errc::broken_pipe));
    stop_on_io(t, s);
    CHECK(!called);
}

TEST_CASE("a client that sends no request line is dropped at the read deadline")
{
    temp_dir d;
    io_thread t;
    server::control_server s(t.io, d.str(), echo_from_thread, std::chrono::seconds(1));
    s.start();
    t.run();
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    s.path().copy(sa.sun_path, s.path().size());
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::send(fd, "{\"cmd\"", 6, MSG_NOSIGNAL) == 6); // no newline
    timeval tv{5, 0}; // bound: the test fails rather than hangs
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c = 0;
    const auto started = std::chrono::steady_clock::now();
    CHECK(::recv(fd, &c, 1, 0) == 0); // EOF, no reply
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(4));
    ::close(fd);
    stop_on_io(t, s);
}

} // TEST_SUITE

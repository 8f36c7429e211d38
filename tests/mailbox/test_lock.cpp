#include "postern/mailbox/lock.hpp"

#include <atomic>
#include <thread>
#include <utility>

#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "../temp_dir.hpp"

#include "postern/util/error.hpp"

using namespace postern;

TEST_SUITE("mailbox")
{
    TEST_CASE("one lock per Maildir at a time")
    {
        testing::temp_dir tmp;
        auto a = mailbox::lock::acquire(tmp.str());
        REQUIRE(a);
        CHECK(a->held());
        auto b = mailbox::lock::acquire(tmp.str());
        CHECK(b.error() == util::errc::refused);
        SUBCASE("released on release()")
        {
            a->release();
            CHECK(mailbox::lock::acquire(tmp.str()));
        }
        SUBCASE("released when the lock object goes")
        {
            {
                mailbox::lock moved = std::move(*a);
                CHECK_FALSE(a->held());
                CHECK_FALSE(mailbox::lock::acquire(tmp.str()));
            }
            CHECK(mailbox::lock::acquire(tmp.str()));
        }
    }

    TEST_CASE("a lock dies with the process that held it")
    {
        testing::temp_dir tmp;
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            auto l = mailbox::lock::acquire(tmp.str());
            ::_exit(l ? 0 : 1); // exits holding it: no destructor runs
        }
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
        CHECK(mailbox::lock::acquire(tmp.str()));
    }

    TEST_CASE("wait() takes the same lock, blocking until the holder lets go")
    {
        testing::temp_dir tmp;
        auto a = mailbox::lock::wait(tmp.str(".postern-lock"));
        REQUIRE(a);
        CHECK(mailbox::lock::acquire(tmp.str()).error() == util::errc::refused);
        std::atomic<bool> got{false};
        std::thread waiter([&] { got = mailbox::lock::wait(tmp.str(".postern-lock")).has_value(); });
        a->release(); // the waiter gets it now, or finds it free
        waiter.join();
        CHECK(got.load());
        CHECK_FALSE(mailbox::lock::wait(tmp.str("missing/x.lock")));
    }

    TEST_CASE("a Maildir that does not exist cannot be locked")
    {
        testing::temp_dir tmp;
        CHECK_FALSE(mailbox::lock::acquire(tmp.str("missing")));
    }
}

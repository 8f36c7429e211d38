#include "postern/queue/group_committer.hpp"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <ostream> // doctest prints std::error_code through it
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "postern/queue/memory_store.hpp"
#include "postern/util/error.hpp"
#include "postern/util/strings.hpp"

using namespace postern::queue;
using postern::util::errc;
using namespace std::chrono_literals;

namespace {

constexpr auto wait_limit = 5s;

new_message message_of(unsigned n)
{
    new_message m;
    m.meta.id = postern::util::hex(n, 16);
    m.meta.sender = "sender@example.org";
    m.meta.recipients = {{"alice@example.test", rcpt_state::pending, 0, 0, "", 0, ""}};
    m.parts = {"Subject: " + std::to_string(n) + "\r\n", "\r\nbody\r\n"};
    return m;
}

// A store whose first commit() blocks until open() — while it is held,
// later submits pile up in the committer, which makes group commit
// deterministic. Every batch size is recorded.
class gated_store final : public store {
public:
    std::vector<postern::util::result<void>> commit(std::span<new_message> batch) override
    {
        {
            std::unique_lock lk(mu_);
            sizes_.push_back(batch.size());
            if (!entered_) {
                entered_ = true;
                cv_.notify_all();
                cv_.wait(lk, [this] { return open_; });
            }
        }
        return inner_.commit(batch);
    }
    postern::util::result<std::vector<std::string>> list() override { return inner_.list(); }
    postern::util::result<entry> load(std::string_view id) override { return inner_.load(id); }
    postern::util::result<std::string> read_message(std::string_view id) override { return inner_.read_message(id); }
    postern::util::result<postern::queue::loaded_entry> load_full(std::string_view id) override { return inner_.load_full(id); }
    postern::util::result<void> update(const entry& e) override { return inner_.update(e); }
    postern::util::result<void> remove(std::string_view id) override { return inner_.remove(id); }

    bool wait_entered()
    {
        std::unique_lock lk(mu_);
        return cv_.wait_for(lk, wait_limit, [this] { return entered_; });
    }
    void open()
    {
        std::lock_guard lk(mu_);
        open_ = true;
        cv_.notify_all();
    }
    std::vector<std::size_t> sizes()
    {
        std::lock_guard lk(mu_);
        return sizes_;
    }

    memory_store inner_;

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool entered_ = false;
    bool open_ = false;
    std::vector<std::size_t> sizes_;
};

// Opens the gate when a test leaves early, so the committer can be joined.
struct gate_guard {
    gated_store& s;
    ~gate_guard() { s.open(); }
};

// What the committer reported: callback results per id and the hook's ids.
class outcomes {
public:
    group_committer::callback callback_for(std::string id)
    {
        return [this, id](postern::util::result<void> r) {
            std::lock_guard lk(mu_);
            results_.emplace(id, r.error());
            cv_.notify_all();
        };
    }
    group_committer::batch_hook hook()
    {
        return [this](std::vector<std::string> ids) {
            std::lock_guard lk(mu_);
            for (auto& id : ids)
                hooked_.push_back(std::move(id));
            cv_.notify_all();
        };
    }
    // Waits (bounded) until n callbacks and `hooked` hook ids have arrived.
    bool wait_for(std::size_t n, std::size_t hooked)
    {
        std::unique_lock lk(mu_);
        return cv_.wait_for(lk, wait_limit, [&] { return results_.size() >= n && hooked_.size() >= hooked; });
    }
    std::multimap<std::string, std::error_code> results()
    {
        std::lock_guard lk(mu_);
        return results_;
    }
    std::vector<std::string> hooked()
    {
        std::lock_guard lk(mu_);
        return hooked_;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::multimap<std::string, std::error_code> results_;
    std::vector<std::string> hooked_;
};

} // namespace

TEST_SUITE("queue") {

TEST_CASE("concurrent submits are committed in shared batches and every submitter hears success")
{
    constexpr unsigned threads = 4;
    constexpr unsigned per_thread = 10;
    constexpr unsigned total = 1 + threads * per_thread;
    gated_store s;
    outcomes out;
    group_committer gc(s, out.hook());
    gate_guard guard{s};

    gc.submit(message_of(0), out.callback_for(postern::util::hex(0, 16)));
    REQUIRE(s.wait_entered()); // the first batch is now held inside commit()
    std::vector<std::thread> submitters;
    for (unsigned t = 0; t < threads; ++t)
        submitters.emplace_back([&gc, &out, t] {
            for (unsigned i = 0; i < per_thread; ++i) {
                unsigned n = 1 + t * per_thread + i;
                gc.submit(message_of(n), out.callback_for(postern::util::hex(n, 16)));
            }
        });
    for (auto& th : submitters)
        th.join();
    s.open();
    REQUIRE(out.wait_for(total, total));
    gc.stop();

    auto results = out.results();
    CHECK(results.size() == total); // one callback per submit, no more
    for (const auto& [id, ec] : results) {
        const auto& id_case = id; // clang 14: no structured binding in a lambda (CAPTURE)
        CAPTURE(id_case);
        CHECK_FALSE(ec);
    }
    auto ids = s.inner_.list();
    REQUIRE(ids);
    REQUIRE(ids->size() == total);
    for (unsigned n = 0; n < total; ++n) {
        CAPTURE(n);
        auto id = postern::util::hex(n, 16);
        auto m = s.inner_.read_message(id);
        REQUIRE(m);
        CHECK(*m == "Subject: " + std::to_string(n) + "\r\n\r\nbody\r\n");
    }
    std::map<std::string, int> seen;
    for (const auto& id : out.hooked())
        ++seen[id];
    CHECK(seen.size() == total);
    for (const auto& [id, count] : seen) {
        const auto& id_case = id; // clang 14: no structured binding in a lambda (CAPTURE)
        CAPTURE(id_case);
        CHECK(count == 1);
    }
    // The first message alone, then everything that piled up behind it.
    CHECK(gc.batches() < total);
    CHECK(gc.batches() == 2);
    CHECK(s.sizes() == std::vector<std::size_t>{1, total - 1});
}

TEST_CASE("group_committer never puts more than max_batch messages in one commit")
{
    gated_store s;
    outcomes out;
    group_committer gc(s, out.hook(), 4);
    gate_guard guard{s};
    gc.submit(message_of(0), out.callback_for(postern::util::hex(0, 16)));
    REQUIRE(s.wait_entered());
    for (unsigned n = 1; n <= 10; ++n)
        gc.submit(message_of(n), out.callback_for(postern::util::hex(n, 16)));
    s.open();
    REQUIRE(out.wait_for(11, 11));
    gc.stop();
    CHECK(s.sizes() == std::vector<std::size_t>{1, 4, 4, 2});
    CHECK(gc.batches() == 4);
}

TEST_CASE("group_committer stop() commits what is pending before it returns")
{
    gated_store s;
    outcomes out;
    std::set<std::string> expected;
    {
        group_committer gc(s, out.hook());
        gate_guard guard{s};
        gc.submit(message_of(0), out.callback_for(postern::util::hex(0, 16)));
        expected.insert(postern::util::hex(0, 16));
        REQUIRE(s.wait_entered());
        for (unsigned n = 1; n <= 5; ++n) {
            gc.submit(message_of(n), out.callback_for(postern::util::hex(n, 16)));
            expected.insert(postern::util::hex(n, 16));
        }
        // stop() on another thread; it cannot finish while commit() is held.
        std::thread stopper([&gc] { gc.stop(); });
        // Wait until stop() has taken effect: a probe submit is then refused.
        // Probes accepted before that are ordinary pending messages.
        bool refused = false;
        const auto deadline = std::chrono::steady_clock::now() + wait_limit;
        for (unsigned n = 100; !refused && std::chrono::steady_clock::now() < deadline; ++n) {
            auto id = postern::util::hex(n, 16);
            gc.submit(message_of(n), out.callback_for(id));
            // The committer is held in commit(), so an answer already here
            // can only be the synchronous refusal.
            auto answered = out.results();
            if (auto it = answered.find(id); it != answered.end()) {
                refused = true;
                CHECK(it->second == make_error_code(errc::shutting_down));
            } else {
                expected.insert(id);
            }
            std::this_thread::yield();
        }
        s.open(); // pending messages may now be committed
        stopper.join();
        REQUIRE(refused);
        // stop() has returned: every accepted message has its answer already.
        auto results = out.results();
        for (const auto& id : expected) {
            const auto& id_case = id; // clang 14: no structured binding in a lambda (CAPTURE)
        CAPTURE(id_case);
            auto it = results.find(id);
            REQUIRE(it != results.end());
            CHECK_FALSE(it->second);
            CHECK(s.inner_.load(id));
        }
    }
    auto ids = s.inner_.list();
    REQUIRE(ids);
    CHECK(ids->size() == expected.size());
}

TEST_CASE("group_committer refuses a submit after stop() with errc::shutting_down")
{
    memory_store s;
    outcomes out;
    group_committer gc(s, out.hook());
    gc.stop();
    bool called = false;
    std::error_code got;
    gc.submit(message_of(7), [&](postern::util::result<void> r) {
        called = true;
        got = r.error();
    });
    CHECK(called); // answered at once, on the caller's thread
    CHECK(got == make_error_code(errc::shutting_down));
    auto ids = s.list();
    REQUIRE(ids);
    CHECK(ids->empty());
    CHECK(out.hooked().empty());
    gc.stop(); // a second stop() is harmless
}

TEST_CASE("a message the store refuses is reported to its submitter and not to the batch hook")
{
    memory_store s;
    std::vector<new_message> existing{message_of(1)};
    REQUIRE(s.commit(existing)[0]);
    outcomes out;
    group_committer gc(s, out.hook());
    gc.submit(message_of(1), out.callback_for(postern::util::hex(1, 16)));
    gc.submit(message_of(2), out.callback_for(postern::util::hex(2, 16)));
    REQUIRE(out.wait_for(2, 1));
    gc.stop();
    auto results = out.results();
    REQUIRE(results.count(postern::util::hex(1, 16)) == 1);
    CHECK(results.find(postern::util::hex(1, 16))->second == make_error_code(errc::exists));
    CHECK_FALSE(results.find(postern::util::hex(2, 16))->second);
    CHECK(out.hooked() == std::vector<std::string>{postern::util::hex(2, 16)});
}

}

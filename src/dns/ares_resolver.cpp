#include "postern/dns/ares_resolver.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>
#include <variant>

#include <poll.h>
#include <sys/time.h>

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <ares.h>

#include "postern/log/log.hpp"
#include "postern/metrics/metrics.hpp"
#include "postern/util/strings.hpp"

namespace postern::dns {

namespace {

using steady = std::chrono::steady_clock;

constexpr int class_in = 1;
enum class qtype : std::uint16_t { a = 1, mx = 15, txt = 16, aaaa = 28 };
constexpr std::uint16_t type_soa = 6;

// What c-ares handed to the query callback: its status and a copy of the
// packet (valid only during the callback, so it is copied; at most 64 KiB).
struct raw_reply {
    int status = ARES_ENOTINITIALIZED;
    std::vector<unsigned char> packet;
};

// The completion of one lookup (one or more queries), type-erased so the
// C callback can finish it. complete() posts: the caller always resumes from
// the loop, never from inside ares_process_fd or ares_query.
struct completion {
    virtual ~completion() = default;
    virtual void complete(std::vector<raw_reply> replies) = 0;
};

template <class Handler>
struct completion_for final : completion {
    completion_for(Handler h, asio::any_io_executor fallback)
        : handler_(std::move(h)), fallback_(std::move(fallback)) {}
    void complete(std::vector<raw_reply> replies) override
    {
        auto ex = asio::get_associated_executor(handler_, fallback_);
        asio::post(ex, [h = std::move(handler_), r = std::move(replies)]() mutable {
            std::move(h)(std::move(r));
        });
    }
    Handler handler_;
    asio::any_io_executor fallback_;
};

struct query_group;
struct query_slot {
    query_group* group;
    std::size_t index;
};
// Owned by c-ares' callbacks while queries run; the last callback deletes it.
struct query_group {
    std::vector<raw_reply> replies;
    std::vector<query_slot> slots; // never resized after the queries start
    std::size_t remaining = 0;
    std::unique_ptr<completion> done;
};

void on_reply(void* arg, int st, int /*timeouts*/, unsigned char* abuf, int alen)
{
    auto* slot = static_cast<query_slot*>(arg);
    query_group* g = slot->group;
    raw_reply& r = g->replies[slot->index];
    r.status = st;
    // No such name or no such record is an answer; a failure is no answer.
    metrics::dns_lookup(st != ARES_SUCCESS && st != ARES_ENOTFOUND && st != ARES_ENODATA && st != ARES_EDESTRUCTION);
    if (abuf != nullptr && alen > 0)
        r.packet.assign(abuf, abuf + alen);
    if (--g->remaining == 0) {
        std::unique_ptr<query_group> owned(g);
        owned->done->complete(std::move(owned->replies));
    }
}

// One c-ares socket watched by the loop.
struct watch {
    watch(const asio::any_io_executor& ex, int f) : sd(ex), fd(f) {}
    asio::posix::stream_descriptor sd;
    int fd;
    bool want_read = false;
    bool want_write = false;
    bool read_pending = false;
    bool write_pending = false;
    bool closed = false;
};

// Readiness right now (the loop's epoll is edge-triggered, and c-ares reads a
// TCP answer in two calls — length, then body — so data may be left behind
// without a new edge: look before waiting again).
bool ready_now(int fd, bool write) noexcept
{
    pollfd p{};
    p.fd = fd;
    p.events = write ? POLLOUT : POLLIN;
    return ::poll(&p, 1, 0) > 0 && (p.revents & (p.events | POLLERR | POLLHUP)) != 0;
}

void library_init()
{
    static std::once_flag once;
    std::call_once(once, [] {
        if (int rc = ares_library_init(ARES_LIB_INIT_ALL); rc != ARES_SUCCESS)
            throw std::runtime_error(std::string("c-ares: ") + ares_strerror(rc));
    });
}

std::string normalize(std::string_view name)
{
    if (!name.empty() && name.back() == '.')
        name.remove_suffix(1);
    return util::to_lower(name);
}

} // namespace

namespace detail {

struct ares_state : std::enable_shared_from_this<ares_state> {
    using cached_answer = std::variant<mx_answer, address_answer, txt_answer>;
    struct cache_entry {
        cached_answer answer;
        util::time_point expires;
    };

    ares_state(asio::any_io_executor e, const util::clock& c) : ex(std::move(e)), clock(c), timer(ex) {}

    asio::any_io_executor ex;
    const util::clock& clock;
    ares_channel channel = nullptr;
    asio::steady_timer timer;
    std::map<int, std::shared_ptr<watch>> watches;
    std::map<std::pair<std::uint16_t, std::string>, cache_entry> cache;

    void start(const std::string& name, const std::vector<qtype>& types, std::unique_ptr<completion> done);
    void on_sock_state(int fd, bool readable, bool writable);
    void arm(const std::shared_ptr<watch>& w);
    void on_ready(const std::shared_ptr<watch>& w, bool write, std::error_code ec);
    void rearm_timer();
    void shutdown() noexcept;

    template <class Answer>
    std::optional<Answer> cached(qtype t, const std::string& name);
    void store(qtype t, const std::string& name, cached_answer a, std::chrono::seconds ttl);
};

void ares_state::start(const std::string& name, const std::vector<qtype>& types,
                       std::unique_ptr<completion> done)
{
    auto* g = new query_group;
    g->replies.resize(types.size());
    g->remaining = types.size();
    g->done = std::move(done);
    for (std::size_t i = 0; i < types.size(); ++i)
        g->slots.push_back({g, i});
    if (channel == nullptr) {
        for (auto& s : g->slots)
            on_reply(&s, ARES_EDESTRUCTION, 0, nullptr, 0); // the last call frees g
        return;
    }
    // c-ares may answer synchronously (e.g. a bad name); only the callback for
    // the last query can free g, and g is not touched after starting it.
    for (std::size_t i = 0; i < types.size(); ++i)
        ares_query(channel, name.c_str(), class_in, static_cast<int>(types[i]), on_reply, &g->slots[i]);
    rearm_timer();
}

void ares_state::on_sock_state(int fd, bool readable, bool writable)
{
    if (!readable && !writable) {
        // c-ares is about to close fd: forget it, never close it ourselves.
        if (auto it = watches.find(fd); it != watches.end()) {
            it->second->closed = true;
            it->second->sd.release(); // pending waits end with operation_aborted
            watches.erase(it);
        }
        return;
    }
    auto& w = watches[fd];
    if (!w) {
        w = std::make_shared<watch>(ex, fd);
        std::error_code ec;
        w->sd.assign(fd, ec);
        if (ec) {
            // Without a watch the query still ends, by c-ares' own timeout.
            log::warn("dns_socket").kv("fd", fd).kv("error", ec.message());
            w->closed = true;
            watches.erase(fd);
            return;
        }
    }
    w->want_read = readable;
    w->want_write = writable;
    arm(w);
}

void ares_state::arm(const std::shared_ptr<watch>& w)
{
    if (w->closed)
        return;
    auto self = shared_from_this();
    if (w->want_read && !w->read_pending) {
        w->read_pending = true;
        w->sd.async_wait(asio::posix::stream_descriptor::wait_read,
                         [self, w](std::error_code ec) { self->on_ready(w, false, ec); });
    }
    if (w->want_write && !w->write_pending) {
        w->write_pending = true;
        w->sd.async_wait(asio::posix::stream_descriptor::wait_write,
                         [self, w](std::error_code ec) { self->on_ready(w, true, ec); });
    }
}

void ares_state::on_ready(const std::shared_ptr<watch>& w, bool write, std::error_code ec)
{
    (write ? w->write_pending : w->read_pending) = false;
    if (ec || w->closed || channel == nullptr)
        return;
    constexpr int max_rounds = 64;
    for (int round = 0;; ++round) {
        if (write ? !w->want_write : !w->want_read)
            break;
        ares_process_fd(channel, write ? ARES_SOCKET_BAD : w->fd, write ? w->fd : ARES_SOCKET_BAD);
        if (w->closed || channel == nullptr)
            break;
        if (!ready_now(w->fd, write))
            break;
        if (round == max_rounds) {
            // Still ready after many rounds: let other work run, then go on.
            (write ? w->write_pending : w->read_pending) = true;
            asio::post(ex, [self = shared_from_this(), w, write] { self->on_ready(w, write, {}); });
            break;
        }
    }
    if (!w->closed && channel != nullptr)
        arm(w);
    rearm_timer();
}

void ares_state::rearm_timer()
{
    if (channel == nullptr)
        return;
    timeval tv{};
    timeval* next = ares_timeout(channel, nullptr, &tv);
    if (next == nullptr) {
        timer.cancel(); // no query waits
        return;
    }
    // +1 ms: never wake a hair before c-ares considers the deadline passed.
    auto in = std::chrono::seconds(next->tv_sec) + std::chrono::microseconds(next->tv_usec) +
              std::chrono::milliseconds(1);
    timer.expires_after(in); // cancels the previous wait
    timer.async_wait([self = shared_from_this()](std::error_code ec) {
        if (ec || self->channel == nullptr)
            return;
        ares_process_fd(self->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD); // timeouts only
        self->rearm_timer();
    });
}

void ares_state::shutdown() noexcept
{
    if (channel != nullptr) {
        ares_channel ch = channel;
        ares_destroy(ch); // queries end with ARES_EDESTRUCTION; sockets are reported closed
        channel = nullptr;
    }
    for (auto& [fd, w] : watches) {
        w->closed = true;
        w->sd.release();
    }
    watches.clear();
    timer.cancel();
}

template <class Answer>
std::optional<Answer> ares_state::cached(qtype t, const std::string& name)
{
    auto it = cache.find({static_cast<std::uint16_t>(t), name});
    if (it == cache.end())
        return std::nullopt;
    if (clock.now() >= it->second.expires) {
        cache.erase(it);
        return std::nullopt;
    }
    if (const auto* a = std::get_if<Answer>(&it->second.answer))
        return *a;
    return std::nullopt;
}

void ares_state::store(qtype t, const std::string& name, cached_answer a, std::chrono::seconds ttl)
{
    if (ttl <= std::chrono::seconds::zero())
        return;
    const auto now = clock.now();
    if (cache.size() >= ares_resolver::max_cache_entries) {
        std::erase_if(cache, [now](const auto& kv) { return now >= kv.second.expires; });
        if (cache.size() >= ares_resolver::max_cache_entries)
            cache.clear(); // bounded, and simple: a cold cache only costs lookups
    }
    cache[{static_cast<std::uint16_t>(t), name}] = cache_entry{std::move(a), now + ttl};
}

} // namespace detail

namespace {

using detail::ares_state;

void sock_state_cb(void* data, ares_socket_t fd, int readable, int writable)
{
    static_cast<ares_state*>(data)->on_sock_state(fd, readable != 0, writable != 0);
}

template <class Token>
auto async_lookup(std::shared_ptr<ares_state> st, std::string name, std::vector<qtype> types, Token&& token)
{
    return asio::async_initiate<Token, void(std::vector<raw_reply>)>(
        [](auto handler, std::shared_ptr<ares_state> s, std::string n, std::vector<qtype> t) {
            using handler_type = std::decay_t<decltype(handler)>;
            auto done = std::make_unique<completion_for<handler_type>>(std::move(handler), s->ex);
            s->start(n, t, std::move(done));
        },
        token, std::move(st), std::move(name), std::move(types));
}

// ---- reading what c-ares' parsers do not give us: TTLs of MX/TXT, SOA ----

std::uint32_t get32(const std::vector<unsigned char>& p, std::size_t off)
{
    return (std::uint32_t{p[off]} << 24) | (std::uint32_t{p[off + 1]} << 16) |
           (std::uint32_t{p[off + 2]} << 8) | std::uint32_t{p[off + 3]};
}

std::uint16_t get16(const std::vector<unsigned char>& p, std::size_t off)
{
    return static_cast<std::uint16_t>((p[off] << 8) | p[off + 1]);
}

// Offset just past the (possibly compressed) name at off, or nullopt.
std::optional<std::size_t> skip_name(const std::vector<unsigned char>& p, std::size_t off)
{
    for (int labels = 0; labels < 128; ++labels) {
        if (off >= p.size())
            return std::nullopt;
        const unsigned len = p[off];
        if (len == 0)
            return off + 1;
        if ((len & 0xC0) == 0xC0)
            return off + 2 <= p.size() ? std::optional<std::size_t>(off + 2) : std::nullopt;
        if ((len & 0xC0) != 0)
            return std::nullopt;
        off += 1 + len;
    }
    return std::nullopt;
}

// A TTL with the top bit set counts as zero (RFC 2181 8).
std::uint32_t sane_ttl(std::uint32_t t) { return (t & 0x80000000u) != 0 ? 0 : t; }

struct ttl_scan {
    std::optional<std::uint32_t> answer_min;   // over every answer RR (CNAMEs included)
    std::optional<std::uint32_t> negative_ttl; // min(SOA TTL, SOA MINIMUM), RFC 2308 5
};

ttl_scan scan_ttls(const std::vector<unsigned char>& p)
{
    ttl_scan s;
    if (p.size() < 12)
        return s;
    const unsigned qd = get16(p, 4), an = get16(p, 6), ns = get16(p, 8);
    std::size_t off = 12;
    for (unsigned i = 0; i < qd; ++i) {
        auto end = skip_name(p, off);
        if (!end || *end + 4 > p.size())
            return s;
        off = *end + 4;
    }
    for (unsigned i = 0; i < an + ns; ++i) {
        auto end = skip_name(p, off);
        if (!end || *end + 10 > p.size())
            return s;
        const std::uint16_t type = get16(p, *end);
        const std::uint32_t ttl = sane_ttl(get32(p, *end + 4));
        const std::size_t rdlen = get16(p, *end + 8);
        const std::size_t rdata = *end + 10;
        if (rdata + rdlen > p.size())
            return s;
        if (i < an) {
            s.answer_min = std::min(s.answer_min.value_or(ttl), ttl);
        } else if (type == type_soa) {
            auto mname = skip_name(p, rdata);
            auto rname = mname ? skip_name(p, *mname) : std::nullopt;
            if (rname && *rname + 20 <= rdata + rdlen)
                s.negative_ttl = std::min(ttl, sane_ttl(get32(p, *rname + 16)));
        }
        off = rdata + rdlen;
    }
    return s;
}

struct verdict {
    status st;
    std::string error;
};

verdict classify(int ares_status)
{
    switch (ares_status) {
    case ARES_SUCCESS:
        return {status::ok, {}};
    case ARES_ENODATA:
        return {status::nodata, "no records of this type"};
    case ARES_ENOTFOUND:
        return {status::nxdomain, "no such domain"};
    case ARES_EBADNAME:
        return {status::nxdomain, "invalid domain name"};
    default: // SERVFAIL, REFUSED, timeout, connection refused, bad reply, ...
        return {status::temporary, ares_strerror(ares_status)};
    }
}

// How long an answer may be cached.
std::chrono::seconds cache_ttl(status st, const ttl_scan& s, std::optional<std::uint32_t> answer_min)
{
    using std::chrono::seconds;
    switch (st) {
    case status::ok:
        return std::min(seconds(answer_min.value_or(0)), ares_resolver::max_ttl);
    case status::nxdomain:
    case status::nodata:
        // Without an SOA the answer is not cached (RFC 2308 5).
        return std::min(seconds(s.negative_ttl.value_or(0)), ares_resolver::negative_ttl);
    case status::temporary:
        return seconds::zero();
    }
    return seconds::zero();
}

int packet_size(const raw_reply& r)
{
    return static_cast<int>(r.packet.size()); // at most 65535: fits
}

template <class Answer>
Answer from_verdict(const verdict& v)
{
    Answer a;
    a.st = v.st;
    a.error = v.error;
    return a;
}

std::pair<mx_answer, std::chrono::seconds> parse_mx(const raw_reply& r)
{
    auto a = from_verdict<mx_answer>(classify(r.status));
    if (a.st == status::ok) {
        ares_mx_reply* head = nullptr;
        if (int rc = ares_parse_mx_reply(r.packet.data(), packet_size(r), &head); rc != ARES_SUCCESS) {
            a = from_verdict<mx_answer>(classify(rc));
        } else {
            for (auto* m = head; m != nullptr && a.records.size() < ares_resolver::max_records; m = m->next)
                a.records.push_back({m->priority, normalize(m->host)});
            ares_free_data(head);
            if (a.records.empty())
                a = from_verdict<mx_answer>(classify(ARES_ENODATA));
        }
    }
    const auto s = scan_ttls(r.packet);
    return {a, cache_ttl(a.st, s, s.answer_min)};
}

std::pair<txt_answer, std::chrono::seconds> parse_txt(const raw_reply& r)
{
    auto a = from_verdict<txt_answer>(classify(r.status));
    if (a.st == status::ok) {
        ares_txt_ext* head = nullptr;
        if (int rc = ares_parse_txt_reply_ext(r.packet.data(), packet_size(r), &head); rc != ARES_SUCCESS) {
            a = from_verdict<txt_answer>(classify(rc));
        } else {
            for (auto* t = head; t != nullptr; t = t->next) {
                std::string chunk(t->txt, t->txt + t->length);
                if (t->record_start != 0 || a.records.empty()) {
                    if (a.records.size() == ares_resolver::max_records)
                        break;
                    a.records.push_back(std::move(chunk));
                } else {
                    a.records.back() += chunk; // RFC 7208 3.3: strings concatenate
                }
            }
            ares_free_data(head);
            if (a.records.empty())
                a = from_verdict<txt_answer>(classify(ARES_ENODATA));
        }
    }
    const auto s = scan_ttls(r.packet);
    return {a, cache_ttl(a.st, s, s.answer_min)};
}

// One of the two halves of an address lookup.
struct address_half {
    verdict v;
    std::vector<asio::ip::address> addresses;
    std::optional<std::uint32_t> min_ttl;
    ttl_scan scan;
};

address_half parse_a(const raw_reply& r)
{
    address_half h{classify(r.status), {}, std::nullopt, scan_ttls(r.packet)};
    if (h.v.st != status::ok)
        return h;
    std::array<ares_addrttl, ares_resolver::max_records> ttls{};
    int n = static_cast<int>(ttls.size());
    if (int rc = ares_parse_a_reply(r.packet.data(), packet_size(r), nullptr, ttls.data(), &n); rc != ARES_SUCCESS) {
        h.v = classify(rc);
        return h;
    }
    for (int i = 0; i < n; ++i) {
        asio::ip::address_v4::bytes_type b;
        std::memcpy(b.data(), &ttls[static_cast<std::size_t>(i)].ipaddr, b.size());
        h.addresses.emplace_back(asio::ip::address_v4(b));
        auto t = static_cast<std::uint32_t>(std::max(0, ttls[static_cast<std::size_t>(i)].ttl));
        h.min_ttl = std::min(h.min_ttl.value_or(t), t);
    }
    if (h.addresses.empty())
        h.v = classify(ARES_ENODATA);
    return h;
}

address_half parse_aaaa(const raw_reply& r)
{
    address_half h{classify(r.status), {}, std::nullopt, scan_ttls(r.packet)};
    if (h.v.st != status::ok)
        return h;
    std::array<ares_addr6ttl, ares_resolver::max_records> ttls{};
    int n = static_cast<int>(ttls.size());
    if (int rc = ares_parse_aaaa_reply(r.packet.data(), packet_size(r), nullptr, ttls.data(), &n); rc != ARES_SUCCESS) {
        h.v = classify(rc);
        return h;
    }
    for (int i = 0; i < n; ++i) {
        asio::ip::address_v6::bytes_type b;
        std::memcpy(b.data(), &ttls[static_cast<std::size_t>(i)].ip6addr, b.size());
        h.addresses.emplace_back(asio::ip::address_v6(b));
        auto t = static_cast<std::uint32_t>(std::max(0, ttls[static_cast<std::size_t>(i)].ttl));
        h.min_ttl = std::min(h.min_ttl.value_or(t), t);
    }
    if (h.addresses.empty())
        h.v = classify(ARES_ENODATA);
    return h;
}

// A and AAAA as one answer: any address is ok; else NXDOMAIN (the name is
// gone whatever the type), else a temporary failure, else nodata.
std::pair<address_answer, std::chrono::seconds> combine(const address_half& v6, const address_half& v4)
{
    address_answer a;
    for (const auto* h : {&v6, &v4})
        for (const auto& addr : h->addresses)
            if (a.addresses.size() < ares_resolver::max_records)
                a.addresses.push_back(addr);
    auto any = [&](status s) { return v6.v.st == s || v4.v.st == s; };
    const address_half* why = nullptr;
    if (!a.addresses.empty())
        a.st = status::ok;
    else if (any(status::nxdomain))
        a.st = status::nxdomain;
    else if (any(status::temporary))
        a.st = status::temporary;
    else
        a.st = status::nodata;
    if (a.st != status::ok) {
        why = v6.v.st == a.st ? &v6 : &v4;
        a.error = why->v.error;
    }

    using std::chrono::seconds;
    seconds ttl = seconds::zero();
    if (any(status::temporary)) {
        ttl = seconds::zero(); // half an answer is not cached
    } else if (a.st == status::ok) {
        std::optional<std::uint32_t> m;
        for (const auto* h : {&v6, &v4}) {
            if (h->min_ttl)
                m = std::min(m.value_or(*h->min_ttl), *h->min_ttl);
            else if (h->v.st != status::ok) // the empty half's negative TTL bounds the whole
                m = std::min(m.value_or(h->scan.negative_ttl.value_or(0)), h->scan.negative_ttl.value_or(0));
        }
        ttl = cache_ttl(status::ok, {}, m);
    } else {
        ttl = std::min(cache_ttl(a.st, v6.scan, std::nullopt), cache_ttl(a.st, v4.scan, std::nullopt));
    }
    return {std::move(a), ttl};
}

bool plausible_name(const std::string& n)
{
    return !n.empty() && n.size() <= 253;
}

template <class Answer>
Answer invalid_name()
{
    return from_verdict<Answer>(classify(ARES_EBADNAME));
}

// g++ 12 cannot keep a braced-init-list (its backing array) in a coroutine
// frame ("array used as initializer"): build the type lists out of line.
std::vector<qtype> one_type(qtype t)
{
    return std::vector<qtype>(1, t);
}

std::vector<qtype> both_families()
{
    return {qtype::aaaa, qtype::a};
}

// The lookups. Named coroutines holding the state by shared_ptr: after the
// co_await they touch only st, which outlives a destroyed resolver.
asio::awaitable<mx_answer> lookup_mx(std::shared_ptr<ares_state> st, std::string domain)
{
    const std::string name = normalize(domain);
    if (!plausible_name(name))
        co_return invalid_name<mx_answer>();
    if (auto hit = st->cached<mx_answer>(qtype::mx, name))
        co_return std::move(*hit);
    auto replies = co_await async_lookup(st, name, one_type(qtype::mx), asio::use_awaitable);
    auto parsed = parse_mx(replies.at(0));
    st->store(qtype::mx, name, parsed.first, parsed.second);
    co_return std::move(parsed.first);
}

asio::awaitable<txt_answer> lookup_txt(std::shared_ptr<ares_state> st, std::string name_in)
{
    const std::string name = normalize(name_in);
    if (!plausible_name(name))
        co_return invalid_name<txt_answer>();
    if (auto hit = st->cached<txt_answer>(qtype::txt, name))
        co_return std::move(*hit);
    auto replies = co_await async_lookup(st, name, one_type(qtype::txt), asio::use_awaitable);
    auto parsed = parse_txt(replies.at(0));
    st->store(qtype::txt, name, parsed.first, parsed.second);
    co_return std::move(parsed.first);
}

asio::awaitable<address_answer> lookup_addresses(std::shared_ptr<ares_state> st, std::string host)
{
    const std::string name = normalize(host);
    if (!plausible_name(name))
        co_return invalid_name<address_answer>();
    // Cached under the A type: the pair is one answer.
    if (auto hit = st->cached<address_answer>(qtype::a, name))
        co_return std::move(*hit);
    auto replies = co_await async_lookup(st, name, both_families(), asio::use_awaitable);
    auto parsed = combine(parse_aaaa(replies.at(0)), parse_a(replies.at(1)));
    st->store(qtype::a, name, parsed.first, parsed.second);
    co_return std::move(parsed.first);
}

} // namespace

ares_resolver::ares_resolver(const asio::any_io_executor& ex, const std::vector<std::string>& servers,
                             std::chrono::milliseconds timeout, int tries, const util::clock& clock)
    : st_(std::make_shared<detail::ares_state>(ex, clock))
{
    library_init();
    ares_options opts{};
    opts.flags = ARES_FLAG_EDNS | ARES_FLAG_NOSEARCH; // 1280-octet UDP answers before TCP
    opts.timeout = static_cast<int>(std::max<std::chrono::milliseconds::rep>(1, timeout.count()));
    opts.tries = std::max(1, tries);
    opts.sock_state_cb = sock_state_cb;
    opts.sock_state_cb_data = st_.get();
    const int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
    ares_channel ch = nullptr;
    if (int rc = ares_init_options(&ch, &opts, mask); rc != ARES_SUCCESS)
        throw std::runtime_error(std::string("dns: c-ares init failed: ") + ares_strerror(rc));
    st_->channel = ch;
    if (!servers.empty()) {
        std::string csv;
        for (const auto& s : servers)
            csv += (csv.empty() ? "" : ",") + s;
        if (int rc = ares_set_servers_ports_csv(ch, csv.c_str()); rc != ARES_SUCCESS) {
            st_->shutdown();
            throw std::runtime_error("dns: bad server list \"" + csv + "\": " + ares_strerror(rc));
        }
    }
}

ares_resolver::~ares_resolver()
{
    st_->shutdown();
}

asio::awaitable<mx_answer> ares_resolver::mx(std::string domain)
{
    return lookup_mx(st_, std::move(domain));
}

asio::awaitable<address_answer> ares_resolver::addresses(std::string host)
{
    return lookup_addresses(st_, std::move(host));
}

asio::awaitable<txt_answer> ares_resolver::txt(std::string name)
{
    return lookup_txt(st_, std::move(name));
}

std::size_t ares_resolver::cache_size() const noexcept
{
    return st_->cache.size();
}

void ares_resolver::clear_cache() noexcept
{
    st_->cache.clear();
}

} // namespace postern::dns

#include "postern/server/pickup_service.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <filesystem>
#include <future>
#include <system_error>
#include <vector>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "postern/log/log.hpp"
#include "postern/mail/address.hpp"
#include "postern/mail/header.hpp"
#include "postern/mail/submission.hpp"
#include "postern/queue/pickup_file.hpp"
#include "postern/smtp/received.hpp"
#include "postern/util/atomic_write.hpp"
#include "postern/util/error.hpp"
#include "postern/util/id.hpp"
#include "postern/util/strings.hpp"

namespace postern::server {

namespace {

// Setgid (files take the directory's group: the server's), sticky (only a
// file's owner removes it), writable by all, listable by the owner only.
constexpr mode_t pickup_mode = 03733;
constexpr mode_t private_mode = 0700;
// The header line of a pickup file comes on top of the message.
constexpr std::uint64_t header_allowance = 65536;
// A ".tmp." file older than this is a `postern sendmail` that died mid-write.
constexpr std::chrono::hours stale_temp_age{24};

std::error_code last_error()
{
    return {errno, std::system_category()};
}

// mkdir, then chmod: the mode must not depend on the umask. With owner
// (root making it for a server that runs as another user), the new
// directory is chown-ed to it first.
util::result<void> make_dir(const std::string& path, mode_t mode, const struct stat* owner = nullptr)
{
    bool made = ::mkdir(path.c_str(), mode) == 0;
    if (!made && errno != EEXIST)
        return last_error();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
        return last_error();
    if (!S_ISDIR(st.st_mode))
        return std::make_error_code(std::errc::not_a_directory);
    if (made && owner != nullptr && (st.st_uid != owner->st_uid || st.st_gid != owner->st_gid)) {
        if (::chown(path.c_str(), owner->st_uid, owner->st_gid) != 0)
            return last_error();
        st.st_mode = 0; // chown may clear the set-id bits: chmod below
    }
    if ((st.st_mode & 07777) != mode && ::chmod(path.c_str(), mode) != 0)
        return last_error();
    return {};
}

bool has_8bit(std::string_view s)
{
    return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

// The whole file from an open descriptor, at most limit octets (more is an error).
util::result<std::string> read_bounded(int fd, std::uint64_t limit)
{
    std::string out;
    std::array<char, 65536> buf{};
    for (;;) {
        const auto n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return last_error();
        if (n == 0)
            return out;
        out.append(buf.data(), static_cast<std::size_t>(n));
        if (out.size() > limit)
            return util::make_error_code(util::errc::too_long);
    }
}

} // namespace

pickup_service::pickup_service(const config::settings& cfg, const route::table& routes,
                               queue::group_committer& committer, const util::clock& clock,
                               std::chrono::milliseconds interval)
    : cfg_(&cfg), routes_(&routes), committer_(committer), clock_(clock), interval_(interval),
      dir_(directory(cfg.spool_dir))
{
}

pickup_service::pickup_service(const live::current& live, queue::group_committer& committer,
                               const util::clock& clock, std::chrono::milliseconds interval)
    : live_(&live), gen_(live.get()), cfg_(&gen_->cfg), routes_(&gen_->routes), committer_(committer), clock_(clock),
      interval_(interval), dir_(directory(cfg_->spool_dir))
{
}

pickup_service::~pickup_service()
{
    stop();
}

std::string pickup_service::directory(const std::string& spool_dir)
{
    if (!spool_dir.empty() && spool_dir.back() == '/')
        return spool_dir + "pickup";
    return spool_dir + "/pickup";
}

util::result<void> pickup_service::make_directory(const std::string& spool_dir, bool create)
{
    const auto dir = directory(spool_dir);
    struct stat st {};
    if (::lstat(dir.c_str(), &st) == 0)
        return S_ISDIR(st.st_mode) ? util::result<void>() : util::result<void>(std::make_error_code(std::errc::not_a_directory));
    if (errno != ENOENT || !create)
        return last_error();
    // A spool made here gets the mode the server gives it (control_server):
    // others may pass through to pickup/, not list it.
    std::error_code ec;
    const bool made_spool = std::filesystem::create_directories(spool_dir, ec);
    if (ec)
        return ec;
    if (made_spool && ::chmod(spool_dir.c_str(), 0711) != 0)
        return last_error();
    // pickup/ belongs to whoever owns the spool (the server's user), also
    // when a root `postern sendmail` makes it before the server ever ran.
    struct stat spool {};
    if (::stat(spool_dir.c_str(), &spool) != 0)
        return last_error();
    if (auto r = make_dir(dir, pickup_mode, &spool); !r)
        return r;
    return make_dir(dir + "/corrupt", private_mode, &spool);
}

std::string pickup_service::file_name(util::time_point now)
{
    return util::make_queue_id(now) + "." + util::make_session_id();
}

bool pickup_service::is_file_name(std::string_view name) noexcept
{
    return name.size() == 33 && name[16] == '.' && util::is_queue_id(name.substr(0, 16)) &&
           util::is_queue_id(name.substr(17));
}

std::string pickup_service::login_name(unsigned uid)
{
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::array<char, 16384> buf{};
    if (::getpwuid_r(static_cast<uid_t>(uid), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr ||
        pw.pw_name == nullptr)
        return {};
    return pw.pw_name;
}

std::string pickup_service::own_address(const config::settings& cfg, std::string_view login)
{
    return mail::address{std::string(login), cfg.hostname}.str();
}

bool pickup_service::may_use_sender(const config::settings& cfg, std::string_view login, std::string_view sender)
{
    if (util::iequals(sender, own_address(cfg, login)))
        return true;
    const auto& trusted = cfg.sendmail.trusted_users;
    return std::find(trusted.begin(), trusted.end(), login) != trusted.end();
}

void pickup_service::report_left(const std::string& name, std::string_view what, const std::string& error)
{
    if (reported_.insert(name).second)
        log::error("pickup").kv("file", name).kv("result", what).kv("error", error)
            .kv("note", "left in place, retried every pass, logged once");
}

void pickup_service::start()
{
    if (auto r = make_directory(cfg_->spool_dir, true); !r)
        throw std::system_error(r.error(), "pickup directory " + dir_);
    // An existing directory gets its modes back (an operator's chmod -R).
    if (auto r = make_dir(dir_, pickup_mode); !r)
        throw std::system_error(r.error(), "pickup directory " + dir_);
    if (auto r = make_dir(dir_ + "/corrupt", private_mode); !r)
        throw std::system_error(r.error(), "pickup directory " + dir_ + "/corrupt");
    thread_ = std::thread([this] { run(); });
}

void pickup_service::stop()
{
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

void pickup_service::run()
{
    for (;;) {
        scan();
        std::unique_lock lock(mu_);
        if (cv_.wait_for(lock, interval_, [this] { return stopping_; }))
            return;
    }
}

std::size_t pickup_service::scan()
{
    std::vector<std::string> names;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec))
        names.push_back(it->path().filename().string());
    if (ec) {
        log::error("pickup").kv("dir", dir_).kv("error", ec.message());
        return 0;
    }
    std::sort(names.begin(), names.end());
    std::size_t queued = 0;
    for (const auto& name : names) {
        {
            std::lock_guard lock(mu_);
            if (stopping_)
                break;
        }
        if (name == "corrupt")
            continue;
        if (name.starts_with(".tmp.")) {
            // Left by a writer that died before its rename: never a message.
            struct stat st {};
            const auto path = dir_ + "/" + name;
            if (::lstat(path.c_str(), &st) == 0 &&
                clock_.now() - std::chrono::system_clock::from_time_t(st.st_mtime) > stale_temp_age &&
                ::unlink(path.c_str()) == 0)
                log::info("pickup").kv("file", name).kv("result", "removed").kv("reason", "stale temporary file");
            continue;
        }
        if (take(name) == outcome::queued)
            ++queued;
    }
    return queued;
}

pickup_service::outcome pickup_service::quarantine(const std::string& name, std::string_view reason)
{
    auto target = dir_ + "/corrupt/" + name;
    if (::access(target.c_str(), F_OK) == 0)
        target += "." + util::make_session_id();
    util::durable_batch batch;
    batch.rename(dir_ + "/" + name, target);
    auto r = batch.commit();
    std::error_code ec = !r ? r.error() : (*r)[0];
    if (ec) {
        report_left(name, "quarantine_failed", std::string(reason) + ": " + ec.message());
        return outcome::left;
    }
    reported_.erase(name);
    log::warn("pickup").kv("file", name).kv("result", "quarantined").kv("reason", reason)
        .kv("moved_to", target);
    return outcome::quarantined;
}

pickup_service::outcome pickup_service::take(const std::string& name)
{
    if (live_ != nullptr) { // this file's configuration
        gen_ = live_->get();
        cfg_ = &gen_->cfg;
        routes_ = &gen_->routes;
    }
    if (!is_file_name(name))
        return quarantine(name, "unexpected file name");
    const auto path = dir_ + "/" + name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        if (err == ENOENT)
            return outcome::gone;
        if (err == ELOOP)
            return quarantine(name, "symbolic link");
        report_left(name, "unreadable", std::system_category().message(err));
        return outcome::left;
    }
    struct stat st {};
    const bool stat_ok = ::fstat(fd, &st) == 0;
    const auto limit = cfg_->lim.message_size + header_allowance;
    util::result<std::string> bytes = util::make_error_code(util::errc::io);
    if (stat_ok && S_ISREG(st.st_mode) && st.st_nlink == 1 && static_cast<std::uint64_t>(st.st_size) <= limit)
        bytes = read_bounded(fd, limit);
    ::close(fd);
    if (!stat_ok || !S_ISREG(st.st_mode))
        return quarantine(name, "not a regular file");
    if (st.st_nlink != 1)
        return quarantine(name, "more than one link (a hard link to another file)");
    if (!bytes) {
        if (bytes.error() == util::errc::too_long || static_cast<std::uint64_t>(st.st_size) > limit)
            return quarantine(name, "larger than limits.message_size");
        report_left(name, "unreadable", bytes.error().message());
        return outcome::left;
    }
    auto decoded = queue::decode_pickup(*bytes);
    if (!decoded)
        return quarantine(name, decoded.error() == util::errc::unsupported_version ? "unsupported version"
                                                                                   : "malformed");
    auto& file = *decoded;
    const auto& h = file.header;
    // The owner is the submitter; the file's words must agree with it.
    if (h.uid != st.st_uid)
        return quarantine(name, "uid " + std::to_string(h.uid) + " in the file, owner uid " +
                                    std::to_string(st.st_uid));
    const auto login = login_name(st.st_uid);
    if (login.empty())
        return quarantine(name, "owner uid " + std::to_string(st.st_uid) + " has no login name");
    if (h.login != login)
        return quarantine(name, "login name in the file is not the owner's (" + login + ")");
    if (!may_use_sender(*cfg_, login, h.sender))
        return quarantine(name, "sender <" + h.sender + "> set by " + login +
                                    ", who is not in sendmail.trusted_users");
    if (file.message.size() > cfg_->lim.message_size)
        return quarantine(name, "larger than limits.message_size");

    const auto now = clock_.now();
    queue::new_message m;
    m.meta.id = util::make_queue_id(now);
    m.meta.sender = h.sender;
    m.meta.received_at = util::unix_seconds(now);
    m.meta.client_ip = "local";
    m.meta.helo = login;
    m.meta.eight_bit = has_8bit(file.message);
    m.meta.smtputf8 = has_8bit(h.sender);
    for (const auto& r : h.recipients) {
        auto a = mail::parse_address(r); // decode_pickup checked it
        if (!a)
            return quarantine(name, "malformed");
        queue::recipient qr;
        qr.address = routes_->canonical(*a).str();
        m.meta.smtputf8 = m.meta.smtputf8 || has_8bit(qr.address);
        m.meta.recipients.push_back(std::move(qr));
    }
    const auto from_addr = *mail::parse_address(h.sender.empty() ? own_address(*cfg_, login) : h.sender);
    const auto for_rcpt = m.meta.recipients.size() == 1 ? m.meta.recipients[0].address : std::string();
    const auto date = util::rfc5322_date(now);
    m.parts.push_back(smtp::local_received_header(
        {.login = login, .uid = static_cast<std::uint32_t>(st.st_uid), .by = cfg_->hostname, .id = m.meta.id,
         .for_rcpt = for_rcpt, .date = date}));
    // RFC 6409 8.1–8.3, as for submission clients (smtp_server): the
    // submission time is the Date.
    auto added = mail::missing_header_fields(
        file.message, {.from = mail::from_field(h.full_name, from_addr),
                       .date = util::rfc5322_date(util::from_unix_seconds(h.time)),
                       .message_id = "<" + m.meta.id + "@" + cfg_->hostname + ">"});
    if (!added.empty())
        m.parts.push_back(std::move(added));
    m.parts.push_back(std::move(file.message));
    m.meta.size = 0;
    for (const auto& part : m.parts)
        m.meta.size += part.size();
    const auto id = m.meta.id;
    const auto size = m.meta.size;
    const auto nrcpt = m.meta.recipients.size();

    std::promise<util::result<void>> done;
    auto result = done.get_future();
    committer_.submit(std::move(m), [&done](util::result<void> r) { done.set_value(r); });
    if (auto r = result.get(); !r) {
        // Stays in pickup/ for the next pass.
        report_left(name, "commit_failed", r.error().message());
        return outcome::left;
    }
    // Durable in the queue: now the pickup file may go. A crash right here
    // queues it again at the next start (a duplicate, never a loss).
    if (::unlink(path.c_str()) != 0)
        log::error("pickup").kv("file", name).kv("id", id).kv("result", "unlink_failed")
            .kv("error", last_error().message());
    else if (auto r = util::fsync_dir(dir_); !r)
        log::warn("pickup").kv("file", name).kv("id", id).kv("fsync", r.error().message());
    reported_.erase(name);
    log::info("pickup").kv("id", id).kv("file", name).kv("from", "<" + h.sender + ">").kv("uid", st.st_uid)
        .kv("login", login).kv("size", size).kv("nrcpt", nrcpt).kv("result", "queued");
    return outcome::queued;
}

} // namespace postern::server

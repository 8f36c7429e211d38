// delivery/maildir.hpp — Maildir delivery, many messages per sync.
// Protocol (DESIGN promise 2, Maildir spec): write tmp/<name>, make it
// durable, rename into new/<name> (never over an existing file), make the
// rename durable. One util::durable_batch carries a whole batch of
// deliveries, so a batch costs two syncfs() calls, not two per message.
// Names derive from the queue id (maildir_name), so a delivery retried after
// a crash finds its file already there (errc::exists: count it delivered).
// Thread: blocking; the delivery thread only.
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "postern/util/atomic_write.hpp"
#include "postern/util/result.hpp"

namespace postern::delivery {

// "<received_at>.Q<id>.<host>" with '/' and ':' in host escaped as \057 and
// \072 (the Maildir spec's rule for host names).
std::string maildir_name(std::int64_t received_at, std::string_view queue_id, std::string_view host);

class maildir_batch {
public:
    maildir_batch() = default;
    // known_dirs: Maildirs already known to exist, shared across batches so
    // a steady stream of deliveries makes no mkdir calls.
    explicit maildir_batch(std::set<std::string>& known_dirs) : known_dirs_(&known_dirs) {}

    // Stages one delivery of parts into the Maildir at dir (created with
    // tmp/new/cur when missing). With check_existing, a file of that name
    // already in new/ or cur/ (with any ":2," flags) counts as delivered.
    // Returns the item's index for commit()'s results.
    util::result<std::size_t> add(const std::string& dir, const std::string& name,
                                  std::span<const std::string_view> parts, bool check_existing);
    // Makes the batch durable; one result per add()ed item (already
    // delivered items report success).
    std::vector<util::result<void>> commit();

private:
    util::result<void> ensure(const std::string& dir);

    util::durable_batch batch_;
    std::set<std::string> own_dirs_;
    std::set<std::string>* known_dirs_ = &own_dirs_;
    struct item {
        bool already = false;
        std::size_t rename = 0;
        std::string tmp;
        std::error_code error;
    };
    std::vector<item> items_;
};

} // namespace postern::delivery

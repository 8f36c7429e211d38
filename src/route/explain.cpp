#include "postern/route/explain.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include "postern/mail/extension.hpp"
#include "postern/util/error.hpp"
#include "postern/util/strings.hpp"

namespace postern::route {

namespace {

std::string quoted(std::string_view s)
{
    return "\"" + std::string(s) + "\"";
}

std::string join(const std::vector<std::string>& items, std::string_view sep)
{
    std::string out;
    for (const auto& i : items)
        out += (out.empty() ? "" : std::string(sep)) + i;
    return out;
}

// The RCPT replies of smtp::server_session for each verdict, as a client
// would read them.
constexpr std::string_view reply_accepted = "250 2.1.5";
constexpr std::string_view reply_unknown = "550 5.1.1 user unknown";
constexpr std::string_view reply_relay = "554 5.7.1 relay access denied";

class explainer {
public:
    explainer(const config::settings& s, const table& t, const std::map<std::string, mx_route>& resolved)
        : s_(s), t_(t), resolved_(resolved)
    {
    }

    explanation run(const mail::address& raw)
    {
        const auto a = t_.canonical(raw);
        say(0, "address: " + raw.str());
        if (raw.domain.empty())
            say(0, "canonical: " + a.str() + " (a bare \"postmaster\" is the primary domain's, RFC 5321 4.1.1.3)");
        describe_domain(a);
        walk(a, 0);
        finals(a);
        return std::move(out_);
    }

private:
    void say(int depth, std::string text) { out_.steps.push_back({depth, std::move(text)}); }

    void describe_domain(const mail::address& a)
    {
        if (a.is_address_literal()) {
            say(0, "domain " + a.domain + ": an address literal (never a local domain)");
            return;
        }
        const auto d = util::to_lower(a.domain);
        if (!t_.is_local_domain(d))
            say(0, "domain " + d + ": not a local domain (remote)");
        else if (t_.has_users(d))
            say(0, "domain " + d + ": local, with users (names that are no user or alias are refused)");
        else
            say(0, "domain " + d + ": local, without users (catch-all: every safe local part is a mailbox)");
    }

    // "alice+tag@d: no user or alias of that name; recipient_delimiter "+"
    // strips the extension "tag":"
    std::string stripped(const match& m) const
    {
        return m.address.str() + ": no user or alias of that name; recipient_delimiter " +
               quoted(t_.recipient_delimiter()) + " strips the extension " + quoted(m.extension) +
               " (delimiter '" + m.delimiter + "')";
    }

    // An alias target that reaches no one bounces at delivery (the local
    // agent appends it as a bounced recipient); the others get the mail.
    static std::string dropped(int depth)
    {
        return depth > 0 ? ", bounced at delivery (5.1.1) while the other targets get the mail" : "";
    }

    void walk(const mail::address& a, int depth)
    {
        if (depth > table::max_depth) {
            say(depth, a.str() + ": deeper than " + std::to_string(table::max_depth) +
                           " aliases: expansion stops (delivery would bounce it, 5.4.6)");
            return;
        }
        const auto m = t_.lookup(a);
        const auto name = m.address.str();
        const auto domain = util::to_lower(m.address.domain);
        if (m.stripped)
            say(depth, stripped(m));
        switch (m.how) {
        case match_kind::remote:
            say(depth, name + (m.address.is_address_literal() ? ": an address literal: remote, never relayed"
                                                              : ": remote (domain " + domain + ")"));
            return;
        case match_kind::routing_trick:
            say(depth, name + ": '%', '!' or '@' in the local part at a local domain: a routing trick, "
                              "refused and never relayed (DESIGN promise 5)");
            return;
        case match_kind::alias: {
            const auto& targets = t_.alias_targets(m);
            if (path_.count(m.key)) {
                say(depth, m.key + ": alias loop: " + m.key + " again, cut here "
                                   "(configuration load refuses loops; delivery cuts them too)");
                return;
            }
            say(depth, m.key + ": alias of " + join(targets, ", ") +
                           (m.stripped ? " (the extension is not passed on)" : ""));
            path_.insert(m.key);
            for (const auto& target : targets) {
                auto ta = mail::parse_address(target);
                if (!ta) {
                    say(depth + 1, target + ": not an address, skipped");
                    continue;
                }
                if (util::to_lower(ta->local_part) + "@" + util::to_lower(ta->domain) == m.key) {
                    say(depth + 1, target + ": the alias names itself: also its own mailbox");
                    continue;
                }
                walk(*ta, depth + 1);
            }
            path_.erase(m.key);
            return;
        }
        case match_kind::user:
            say(depth, m.key + ": user, mailbox " + t_.mailbox_of(m).mailbox);
            return;
        case match_kind::postmaster:
            say(depth, m.key + ": postmaster, present at every local domain (RFC 5321 4.5.1)");
            return;
        case match_kind::catch_all:
            say(depth, name + ": catch-all domain " + domain + ", mailbox " + t_.mailbox_of(m).mailbox);
            return;
        case match_kind::unsafe_name:
            say(depth, name + ": the local part is no safe mailbox name ('/', leading '.', control "
                              "characters): unknown user" + dropped(depth));
            return;
        case match_kind::none: {
            std::string also;
            if (auto split = mail::split_extension(m.address.local_part, t_.recipient_delimiter()))
                also = " (nor " + util::to_lower(split->base) + "@" + domain + " without the extension)";
            say(depth, name + ": no user or alias of that name" + also + ": unknown user" + dropped(depth));
            return;
        }
        }
    }

    // delivery.lmtp (RFC 2033) takes the local domains in delivery.domains
    // (all of them when the file names none); the others are Maildirs.
    std::string local_delivery(const target& tg) const
    {
        const auto& d = s_.delivery;
        if (!d.lmtp.empty() && std::find(d.domains.begin(), d.domains.end(), tg.domain) != d.domains.end())
            return "LMTP " + d.lmtp + " (delivery.lmtp), RCPT TO:<" + tg.mailbox + "@" + tg.domain + ">";
        return "Maildir " + s_.mail_root + "/" + tg.domain + "/" + tg.mailbox + " (Delivered-To: " + tg.address +
               ")";
    }

    void remote_delivery(const target& tg)
    {
        auto a = mail::parse_address(tg.address);
        const auto domain = a ? util::to_lower(a->domain) : std::string();
        if (!s_.relay.smarthost.empty()) {
            say(1, tg.address + ": SMTP via the smarthost " + s_.relay.smarthost + " (relay.smarthost)");
            return;
        }
        if (!a || a->is_address_literal()) {
            say(1, tg.address + ": an address literal, no MX lookup");
            return;
        }
        if (std::find(out_.remote_domains.begin(), out_.remote_domains.end(), domain) == out_.remote_domains.end())
            out_.remote_domains.push_back(domain);
        const auto port = s_.remote.port == 25 ? std::string() : " port " + std::to_string(s_.remote.port);
        auto it = resolved_.find(domain);
        if (it == resolved_.end()) {
            say(1, tg.address + ": SMTP to the MX hosts of " + domain + port + " (not looked up)");
            return;
        }
        const auto& r = it->second;
        if (!r.ok) {
            say(1, tg.address + ": SMTP to the MX hosts of " + domain + ": none now: " + r.error);
            return;
        }
        say(1, tg.address + ": SMTP to the MX hosts of " + domain + port +
                   (r.implicit ? " (no MX records: the domain itself, RFC 5321 5.1)" : "") + ", in order:");
        for (const auto& h : r.hosts)
            say(2, "MX " + std::to_string(h.preference) + " " + h.host + ": " +
                       (h.error.empty() ? join(h.addresses, ", ") : "address lookup failed: " + h.error));
    }

    void finals(const mail::address& a)
    {
        auto targets = t_.expand(a);
        const auto k = t_.classify(a);
        if (!targets) {
            say(0, targets.error() == util::errc::limit
                       ? "final targets: none (alias expansion deeper than " + std::to_string(table::max_depth) + ")"
                       : std::string("final targets: none"));
        } else {
            say(0, "final targets:");
            for (const auto& tg : *targets) {
                if (tg.local)
                    say(1, tg.address + ": " + local_delivery(tg));
                else
                    remote_delivery(tg);
            }
        }
        switch (k) {
        case kind::local:
        case kind::alias:
            out_.v = verdict::accepted;
            say(0, "result: accepted (RCPT " + std::string(reply_accepted) + ")");
            return;
        case kind::remote:
            if (a.is_address_literal()) {
                out_.v = verdict::refused;
                say(0, "result: refused: an address literal is never relayed (RCPT " + std::string(reply_relay) + ")");
                return;
            }
            out_.v = verdict::relay_only;
            say(0, "result: relayed for authenticated clients and relay_networks (" +
                       (s_.relay_networks.empty() ? std::string("none") : join(s_.relay_networks, ", ")) +
                       "): RCPT " + std::string(reply_accepted) + "; others get " + std::string(reply_relay));
            return;
        case kind::unknown_user:
            out_.v = verdict::refused;
            say(0, "result: refused: unknown user (RCPT " + std::string(reply_unknown) + ")");
            return;
        case kind::routing_trick:
            out_.v = verdict::refused;
            say(0, "result: refused: routing trick (RCPT " + std::string(reply_relay) + ")");
            return;
        }
    }

    const config::settings& s_;
    const table& t_;
    const std::map<std::string, mx_route>& resolved_;
    explanation out_;
    std::set<std::string> path_; // aliases being expanded
};

} // namespace

explanation explain(const config::settings& s, const table& t, const mail::address& a,
                    const std::map<std::string, mx_route>& resolved)
{
    return explainer(s, t, resolved).run(a);
}

std::string render(const explanation& e)
{
    std::string out;
    for (const auto& st : e.steps)
        out += std::string(static_cast<std::size_t>(st.depth) * 2, ' ') + st.text + "\n";
    return out;
}

} // namespace postern::route

// config/config.cpp — JSON text → validated config::settings, and back.
// Every object in the file is read through one table of its known keys
// (key_spec): the same table rejects unknown keys, reads present keys, fills
// absent ones and writes the effective configuration for to_json(), so a key
// cannot be readable and yet missing from check-config's output.
// Every error names the file, the key path and what was expected; the
// daemon exits 2 on it before binding any port (DESIGN promise 6).
#include "postern/config/config.hpp"

#include <algorithm>
#include <cctype>
#include <array>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "postern/auth/password.hpp"
#include "postern/mail/address.hpp"
#include "postern/mail/extension.hpp"
#include "postern/util/strings.hpp"

namespace postern::config {
namespace {

using json = nlohmann::json;
// Output keeps the table order, so check-config reads like the example file.
using ordered_json = nlohmann::ordered_json;

// A config file is a few kilobytes; a bound keeps a wrong path (a log, a
// device) from being slurped into memory.
constexpr std::size_t max_file_size = 64 * 1024 * 1024;

// "got ..." shows what was there, shortened so one bad value cannot flood
// the error line.
constexpr std::size_t max_rendering = 60;

std::string render(const json& value)
{
    std::string s = value.dump();
    if (s.size() <= max_rendering)
        return s;
    std::size_t cut = max_rendering - 3;
    // Never cut a UTF-8 sequence in half.
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80)
        --cut;
    s.resize(cut);
    return s + "...";
}

std::string json_string(std::string_view s)
{
    return json(s).dump();
}

template <class Range>
std::string join(const Range& items)
{
    std::string out;
    for (const auto& item : items) {
        if (!out.empty())
            out += ", ";
        out += item;
    }
    return out;
}

// Where a value sits in the file: the source and a key path such as
// listeners[0].mode or aliases["postmaster@example.test"].
class locus {
public:
    locus(const std::string& source, std::string path) : source_(&source), path_(std::move(path)) {}

    // Plain keys join with a dot; keys that are not identifiers (alias
    // addresses) are quoted in brackets so the path stays unambiguous.
    locus member(std::string_view key) const
    {
        bool plain = !key.empty();
        for (char c : key)
            plain = plain && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
        if (!plain)
            return {*source_, path_ + "[" + json_string(key) + "]"};
        return {*source_, path_.empty() ? std::string(key) : path_ + "." + std::string(key)};
    }

    locus element(std::size_t index) const
    {
        return {*source_, path_ + "[" + std::to_string(index) + "]"};
    }

    [[noreturn]] void fail(std::string_view expected, const json& got) const
    {
        fail_text(expected, render(got));
    }

    [[noreturn]] void fail_text(std::string_view expected, std::string_view got) const
    {
        throw error(*source_ + ": " + (path_.empty() ? std::string("top level") : path_) + ": expected " +
            std::string(expected) + ", got " + std::string(got));
    }

private:
    const std::string* source_;
    std::string path_;
};

// ---- value kinds: one reader per kind, shared by every key of that kind ----

const std::string& read_string(const json& value, const locus& at, std::string_view expected)
{
    if (!value.is_string())
        at.fail(expected, value);
    return value.get_ref<const std::string&>();
}

const json::array_t& read_array(const json& value, const locus& at, std::string_view expected)
{
    if (!value.is_array())
        at.fail(expected, value);
    return value.get_ref<const json::array_t&>();
}

// LDH labels (RFC 1035 2.3.1, RFC 1123 2.1) of 1–63 octets, at most 255
// octets in all (RFC 5321 4.5.3.1.2). No trailing dot: SMTP never writes one.
bool is_domain_name(std::string_view s)
{
    if (s.empty() || s.size() > 255)
        return false;
    for (auto label : util::split(s, '.')) {
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        for (char c : label) {
            bool ldh = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
            if (!ldh)
                return false;
        }
    }
    return true;
}

constexpr std::string_view domain_expected = "a domain name";

std::string read_domain(const json& value, const locus& at)
{
    const auto& s = read_string(value, at, domain_expected);
    if (!is_domain_name(s))
        at.fail(domain_expected, value);
    return s;
}

constexpr std::string_view path_expected = "a non-empty path";

std::string read_path(const json& value, const locus& at)
{
    const auto& s = read_string(value, at, path_expected);
    // A NUL (JSON allows \u0000) would silently truncate the path at open().
    if (s.empty() || s.find('\0') != std::string::npos)
        at.fail(path_expected, value);
    return s;
}

constexpr std::string_view address_expected = "an address (local@domain)";

// The address with its domain lower-cased, which is how every table compares
// and stores domains (Maildir paths use the lower-case domain).
mail::address read_address(const json& value, const locus& at)
{
    const auto& s = read_string(value, at, address_expected);
    auto parsed = mail::parse_address(s);
    if (!parsed)
        at.fail(address_expected, value);
    mail::address a = std::move(parsed).value();
    a.domain = util::to_lower(a.domain);
    return a;
}

std::uint64_t read_integer(const json& value, const locus& at, std::uint64_t min, std::uint64_t max)
{
    // A negative number is an integer but not a positive one: it gets the
    // range message. Floats (even 100.0) and strings are the wrong type.
    if (value.is_number_integer() && !value.is_number_unsigned())
        at.fail("an integer from " + std::to_string(min) + " to " + std::to_string(max), value);
    // Integers past 2^64-1 arrive as floats; they are too big, not mistyped.
    if (value.is_number_float() && value.get<double>() >= 18446744073709551616.0)
        at.fail("an integer from " + std::to_string(min) + " to " + std::to_string(max), value);
    if (!value.is_number_unsigned())
        at.fail(min == 0 ? "a non-negative integer" : "a positive integer", value);
    auto n = value.get<std::uint64_t>();
    if (n < min || n > max)
        at.fail("an integer from " + std::to_string(min) + " to " + std::to_string(max), value);
    return n;
}

template <class E>
struct choice {
    std::string_view name;
    E value;
};

template <class E, std::size_t N>
E read_choice(const json& value, const locus& at, const std::array<choice<E>, N>& choices)
{
    std::string expected = "one of ";
    for (std::size_t i = 0; i < N; ++i)
        expected += (i == 0 ? "" : ", ") + json_string(choices[i].name);
    if (value.is_string())
        for (const auto& c : choices)
            if (c.name == value.get_ref<const std::string&>())
                return c.value;
    at.fail(expected, value);
}

template <class E, std::size_t N>
std::string_view choice_name(E value, const std::array<choice<E>, N>& choices)
{
    for (const auto& c : choices)
        if (c.value == value)
            return c.name;
    throw std::logic_error("config: enum value missing from its choice table");
}

constexpr std::array<choice<listener_mode>, 4> listener_modes{{{"smtp", listener_mode::smtp},
    {"submission", listener_mode::submission}, {"pop3", listener_mode::pop3}, {"imap", listener_mode::imap}}};
constexpr std::array<choice<listener_tls>, 3> listener_tls_modes{{{"starttls", listener_tls::starttls},
    {"implicit", listener_tls::implicit}, {"none", listener_tls::none}}};
constexpr std::array<choice<log_level>, 2> log_levels{{{"info", log_level::info}, {"warn", log_level::warn}}};
constexpr std::array<choice<tls_policy>, 4> tls_policies{{{"none", tls_policy::none}, {"may", tls_policy::may},
    {"encrypt", tls_policy::encrypt}, {"verify", tls_policy::verify}}};
constexpr std::array<choice<smarthost_tls>, 2> smarthost_tls_modes{{{"starttls", smarthost_tls::starttls},
    {"implicit", smarthost_tls::implicit}}};

// Adds key to seen, or fails: every list in the file refuses repeats, since a
// repeat is at best redundant and at worst a typo for another entry.
void insert_unique(std::set<std::string>& seen, std::string key, const locus& at, std::string_view expected,
    const json& got)
{
    if (!seen.insert(std::move(key)).second)
        at.fail(expected, got);
}

// How a key appeared in the file, for an error found by comparing keys once
// their object is read: its value, or `absent` when it was not written.
std::string written_or(const json& object, std::string_view key, std::string absent)
{
    auto it = object.find(std::string(key));
    return it != object.end() ? render(*it) : std::move(absent);
}

// ---- objects: a table of known keys per object kind ----

template <class T>
struct key_spec {
    std::string_view name;
    void (*read)(const json& value, const locus& at, T& out);
    ordered_json (*write)(const T& in);
    // Called when the key is absent (to fail, or to derive a default from
    // keys read before it); nullptr keeps the default already in out.
    void (*absent)(const locus& at, T& out);
};

template <class T, std::size_t N>
std::string key_names(const std::array<key_spec<T>, N>& keys)
{
    std::array<std::string_view, N> names;
    for (std::size_t i = 0; i < N; ++i)
        names[i] = keys[i].name;
    return join(names);
}

// Reads the keys in table order, not file order, so a key may depend on one
// listed before it (users on local_domains, local_domains on hostname).
template <class T, std::size_t N>
void read_object(const json& value, const locus& at, const std::array<key_spec<T>, N>& keys, T& out)
{
    if (!value.is_object())
        at.fail("an object (keys: " + key_names(keys) + ")", value);
    for (const auto& [name, member] : value.items()) {
        bool known = false;
        for (const auto& k : keys)
            known = known || k.name == name;
        if (!known)
            at.member(name).fail_text("one of the known keys (" + key_names(keys) + ")", "unknown key " + json_string(name));
    }
    for (const auto& k : keys) {
        auto it = value.find(std::string(k.name));
        if (it != value.end())
            k.read(*it, at.member(k.name), out);
        else if (k.absent != nullptr)
            k.absent(at.member(k.name), out);
    }
}

template <class T, std::size_t N>
ordered_json write_object(const T& in, const std::array<key_spec<T>, N>& keys)
{
    ordered_json out = ordered_json::object();
    for (const auto& k : keys)
        out[std::string(k.name)] = k.write(in);
    return out;
}

// ---- listeners ----

constexpr std::string_view listener_address_expected =
    "IP:PORT with an IP literal (IPv6 in brackets, as \"[::1]:25\") and a port from 1 to 65535";

enum class host_rule { ip_literal, ip_or_domain };
enum class port_rule { required, optional };

struct endpoint {
    std::string host;                  // canonical IP text ("0::1" → "::1"), or a domain name as written
    std::optional<std::uint16_t> port; // absent only under port_rule::optional
};

// "IPv4:port", "[IPv6]:port" and, when the rules allow, "name:port", "IPv4"
// or "[IPv6]". IPv6 needs its brackets: in "::1:25" the port is a guess.
std::optional<endpoint> parse_endpoint(std::string_view spec, host_rule hosts, port_rule ports)
{
    // inet_pton stops at a NUL (JSON allows \u0000): "127.0.0.1\0junk" is no address.
    if (spec.find('\0') != std::string_view::npos)
        return std::nullopt;
    std::string_view host = spec;
    std::optional<std::string_view> port;
    int family = AF_INET;
    if (!spec.empty() && spec.front() == '[') {
        auto close = spec.find(']');
        if (close == std::string_view::npos)
            return std::nullopt;
        host = spec.substr(1, close - 1);
        auto rest = spec.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':')
                return std::nullopt;
            port = rest.substr(1);
        }
        family = AF_INET6;
    } else if (auto colon = spec.rfind(':'); colon != std::string_view::npos) {
        host = spec.substr(0, colon);
        port = spec.substr(colon + 1);
    }
    endpoint e;
    if (port) {
        auto number = util::parse_uint(*port);
        if (!number || *number == 0 || *number > 65535)
            return std::nullopt;
        e.port = static_cast<std::uint16_t>(*number);
    } else if (ports == port_rule::required) {
        return std::nullopt;
    }
    const std::string host_z(host); // inet_pton wants a NUL-terminated string
    in6_addr binary{};
    if (::inet_pton(family, host_z.c_str(), &binary) == 1) {
        // Canonical text ("0::1" → "::1") so duplicates compare equal.
        std::array<char, INET6_ADDRSTRLEN> text{};
        if (::inet_ntop(family, &binary, text.data(), text.size()) == nullptr)
            return std::nullopt;
        e.host = text.data();
        return e;
    }
    // A name whose last label is all digits ("192.0.2.300") is a mistyped
    // address, not a host name (RFC 3696 2: top-level domains are not numeric).
    const auto last_label = host.substr(host.rfind('.') + 1);
    const bool numeric =
        std::all_of(last_label.begin(), last_label.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (hosts == host_rule::ip_or_domain && family == AF_INET && is_domain_name(host) && !numeric) {
        e.host = std::string(host);
        return e;
    }
    return std::nullopt;
}

// Host names are refused: the listener must bind before DNS is up, and a
// name with several addresses is ambiguous.
std::optional<listener> parse_listener_address(std::string_view spec)
{
    auto parsed = parse_endpoint(spec, host_rule::ip_literal, port_rule::required);
    if (!parsed)
        return std::nullopt;
    listener l;
    l.spec = std::string(spec);
    l.host = std::move(parsed->host);
    l.port = *parsed->port;
    return l;
}

void read_listener_address(const json& value, const locus& at, listener& out)
{
    auto parsed = parse_listener_address(read_string(value, at, listener_address_expected));
    if (!parsed)
        at.fail(listener_address_expected, value);
    parsed->mode = out.mode;
    out = std::move(*parsed);
}

ordered_json write_listener_address(const listener& in)
{
    return in.spec;
}

void require_listener_address(const locus& at, listener&)
{
    at.fail_text(listener_address_expected, "nothing");
}

void read_listener_mode(const json& value, const locus& at, listener& out)
{
    out.mode = read_choice(value, at, listener_modes);
}

ordered_json write_listener_mode(const listener& in)
{
    return choice_name(in.mode, listener_modes);
}

void read_listener_tls(const json& value, const locus& at, listener& out)
{
    out.tls = read_choice(value, at, listener_tls_modes);
}

ordered_json write_listener_tls(const listener& in)
{
    return choice_name(in.tls, listener_tls_modes);
}

constexpr std::array<key_spec<listener>, 3> listener_keys{{
    {"address", &read_listener_address, &write_listener_address, &require_listener_address},
    {"mode", &read_listener_mode, &write_listener_mode, nullptr}, // default: smtp
    {"tls", &read_listener_tls, &write_listener_tls, nullptr},    // default: starttls
}};

// ---- users ----

void read_user_address(const json& value, const locus& at, user& out)
{
    out.address = read_address(value, at).str();
}

ordered_json write_user_address(const user& in)
{
    return in.address;
}

void require_user_address(const locus& at, user&)
{
    at.fail_text(address_expected, "nothing");
}

constexpr std::string_view password_expected =
    "a password hash from `postern hash-password` ($pbkdf2-sha256$ITERATIONS$SALT$HASH, at least 100000 "
    "iterations) or null; plain-text passwords are refused";

void read_user_password(const json& value, const locus& at, user& out)
{
    out.password.clear();
    if (value.is_null())
        return;
    // Never echo the value: it may be a plain-text password.
    if (!value.is_string() || !auth::looks_like_hash(value.get_ref<const std::string&>()))
        at.fail_text(password_expected, value.is_string() ? "something else (not shown)" : render(value));
    out.password = value.get_ref<const std::string&>();
}

ordered_json write_user_password(const user& in)
{
    return in.password.empty() ? ordered_json(nullptr) : ordered_json(in.password);
}

void read_user_addresses(const json& value, const locus& at, user& out)
{
    const auto& items = read_array(value, at, "an array of addresses");
    out.addresses.clear();
    std::set<std::string> seen{util::to_lower(out.address)};
    for (std::size_t i = 0; i < items.size(); ++i) {
        auto a = read_address(items[i], at.element(i)).str();
        insert_unique(seen, util::to_lower(a), at.element(i),
            "an address not already listed (nor the user's own address)", items[i]);
        out.addresses.push_back(std::move(a));
    }
}

ordered_json write_user_addresses(const user& in)
{
    return in.addresses;
}

constexpr std::array<key_spec<user>, 3> user_keys{{
    {"address", &read_user_address, &write_user_address, &require_user_address},
    {"password", &read_user_password, &write_user_password, nullptr},    // default: cannot log in
    {"addresses", &read_user_addresses, &write_user_addresses, nullptr}, // default: none
}};

// ---- numbers: one template per direction serves every numeric key ----

template <class V>
    requires std::is_unsigned_v<V>
void store(V& to, std::uint64_t n)
{
    to = static_cast<V>(n);
}
void store(std::chrono::seconds& to, std::uint64_t n)
{
    to = std::chrono::seconds{static_cast<std::chrono::seconds::rep>(n)};
}
std::uint64_t load(std::uint64_t n)
{
    return n;
}
void store(std::chrono::milliseconds& to, std::uint64_t n)
{
    to = std::chrono::milliseconds{static_cast<std::chrono::milliseconds::rep>(n)};
}
std::uint64_t load(std::chrono::seconds s)
{
    return static_cast<std::uint64_t>(s.count());
}
std::uint64_t load(std::chrono::milliseconds ms)
{
    return static_cast<std::uint64_t>(ms.count());
}

template <class V>
constexpr std::uint64_t max_storable()
{
    if constexpr (std::is_same_v<V, std::chrono::seconds> || std::is_same_v<V, std::chrono::milliseconds>)
        return static_cast<std::uint64_t>(std::numeric_limits<typename V::rep>::max());
    else
        return std::numeric_limits<V>::max();
}

// The struct a member pointer points into: limits for &limits::recipients.
template <class M>
struct owner_of_member;
template <class T, class V>
struct owner_of_member<V T::*> {
    using type = T;
};
template <auto Member>
using owner_of = typename owner_of_member<decltype(Member)>::type;

template <auto Member, std::uint64_t Min, std::uint64_t Max>
void read_number(const json& value, const locus& at, owner_of<Member>& out)
{
    using stored = std::remove_cvref_t<decltype(out.*Member)>;
    static_assert(Min <= Max && Max <= max_storable<stored>());
    store(out.*Member, read_integer(value, at, Min, Max));
}

template <auto Member>
ordered_json write_number(const owner_of<Member>& in)
{
    return load(in.*Member);
}

// ---- limits ----

// The defaults are limits' member initialisers in config.hpp; the bounds are
// here. Upper bounds catch unit mix-ups (milliseconds for seconds, bytes for
// KiB), not deliberate choices.
constexpr std::uint64_t max_timeout = 86400; // a day
constexpr std::array<key_spec<limits>, 9> limit_keys{{
    {"message_size", &read_number<&limits::message_size, 1024, 4ull << 30>, &write_number<&limits::message_size>,
        nullptr},
    {"recipients", &read_number<&limits::recipients, 1, 100000>, &write_number<&limits::recipients>, nullptr},
    {"connections", &read_number<&limits::connections, 1, 1000000>, &write_number<&limits::connections>, nullptr},
    {"connections_per_ip", &read_number<&limits::connections_per_ip, 1, 1000000>,
        &write_number<&limits::connections_per_ip>, nullptr},
    {"command_timeout_s", &read_number<&limits::command_timeout, 1, max_timeout>,
        &write_number<&limits::command_timeout>, nullptr},
    {"data_timeout_s", &read_number<&limits::data_timeout, 1, max_timeout>, &write_number<&limits::data_timeout>,
        nullptr},
    {"errors", &read_number<&limits::errors, 1, 100000>, &write_number<&limits::errors>, nullptr},
    {"min_free_space", &read_number<&limits::min_free_space, 0, 1ull << 50>, &write_number<&limits::min_free_space>,
        nullptr},
    {"shutdown_timeout_s", &read_number<&limits::shutdown_timeout, 0, 3600>, &write_number<&limits::shutdown_timeout>,
        nullptr},
}};

// ---- outbound delivery: dns, queue, remote, relay ----

constexpr std::string_view dns_server_expected = "an IP literal with an optional port (\"192.0.2.53\", "
                                                 "\"192.0.2.53:5353\", \"[2001:db8::53]\", \"[2001:db8::53]:53\")";

// Kept as written: the resolver hands the list to c-ares, which reads these
// forms itself.
void read_dns_servers(const json& value, const locus& at, dns_settings& out)
{
    const auto& items = read_array(value, at, "an array of name server addresses");
    out.servers.clear();
    std::set<std::string> seen;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& spec = read_string(items[i], at.element(i), dns_server_expected);
        auto parsed = parse_endpoint(spec, host_rule::ip_literal, port_rule::optional);
        if (!parsed)
            at.element(i).fail(dns_server_expected, items[i]);
        // "192.0.2.53" and "192.0.2.53:53" are one server.
        insert_unique(seen, parsed->host + "|" + std::to_string(parsed->port.value_or(53)), at.element(i),
            "a server not already listed", items[i]);
        out.servers.push_back(spec);
    }
}

ordered_json write_dns_servers(const dns_settings& in)
{
    return in.servers;
}

constexpr std::array<key_spec<dns_settings>, 1> dns_keys{{
    {"servers", &read_dns_servers, &write_dns_servers, nullptr}, // default: /etc/resolv.conf
}};

// The defaults are the member initialisers in config.hpp. A year bounds every
// queue time: past it, the value is a unit mix-up (milliseconds).
constexpr std::uint64_t max_queue_time = 31536000;
constexpr std::array<key_spec<queue_settings>, 4> queue_keys{{
    {"retry_initial_s", &read_number<&queue_settings::retry_initial, 1, max_queue_time>,
        &write_number<&queue_settings::retry_initial>, nullptr},
    {"retry_max_s", &read_number<&queue_settings::retry_max, 1, max_queue_time>,
        &write_number<&queue_settings::retry_max>, nullptr},
    {"give_up_s", &read_number<&queue_settings::give_up, 1, max_queue_time>, &write_number<&queue_settings::give_up>,
        nullptr},
    {"delay_warning_s", &read_number<&queue_settings::delay_warning, 0, max_queue_time>, // 0 = never
        &write_number<&queue_settings::delay_warning>, nullptr},
}};

void read_tls_policy(const json& value, const locus& at, remote_settings& out)
{
    out.tls = read_choice(value, at, tls_policies);
}

ordered_json write_tls_policy(const remote_settings& in)
{
    return choice_name(in.tls, tls_policies);
}

void read_tls_policy_table(const json& value, const locus& at, remote_settings& out)
{
    if (!value.is_object())
        at.fail("an object mapping domain names to TLS policies", value);
    out.tls_policies.clear();
    for (const auto& [key, policy] : value.items()) {
        const locus entry = at.member(key);
        const json written_key = key;
        auto domain = util::to_lower(read_domain(written_key, entry));
        if (out.tls_policies.count(domain) != 0)
            entry.fail("a domain not already listed (keys ignore case)", written_key);
        out.tls_policies.emplace(std::move(domain), read_choice(policy, entry, tls_policies));
    }
}

ordered_json write_tls_policy_table(const remote_settings& in)
{
    ordered_json out = ordered_json::object();
    for (const auto& [domain, policy] : in.tls_policies)
        out[domain] = choice_name(policy, tls_policies);
    return out;
}

constexpr std::array<key_spec<remote_settings>, 8> remote_keys{{
    {"port", &read_number<&remote_settings::port, 1, 65535>, &write_number<&remote_settings::port>, nullptr},
    {"concurrency", &read_number<&remote_settings::concurrency, 1, 100000>,
        &write_number<&remote_settings::concurrency>, nullptr},
    {"concurrency_per_domain", &read_number<&remote_settings::concurrency_per_domain, 1, 100000>,
        &write_number<&remote_settings::concurrency_per_domain>, nullptr},
    {"messages_per_connection", &read_number<&remote_settings::messages_per_connection, 1, 100000>,
        &write_number<&remote_settings::messages_per_connection>, nullptr},
    {"connect_timeout_s", &read_number<&remote_settings::connect_timeout, 1, max_timeout>,
        &write_number<&remote_settings::connect_timeout>, nullptr},
    {"command_timeout_s", &read_number<&remote_settings::command_timeout, 1, max_timeout>,
        &write_number<&remote_settings::command_timeout>, nullptr},
    {"tls_policy", &read_tls_policy, &write_tls_policy, nullptr},
    {"tls_policies", &read_tls_policy_table, &write_tls_policy_table, nullptr},
}};

// relay's optional strings: null (or no key) means "not set", which the
// struct holds as an empty string, so to_json can write every key and still
// read back.
ordered_json nullable(const std::string& s)
{
    return s.empty() ? ordered_json(nullptr) : ordered_json(s);
}

constexpr std::string_view smarthost_expected =
    "HOST:PORT with a domain name or an IP literal (IPv6 in brackets, as \"[2001:db8::1]:587\") and a port "
    "from 1 to 65535, or null";

void read_smarthost(const json& value, const locus& at, relay_settings& out)
{
    out.smarthost.clear();
    out.host.clear();
    out.port = 0;
    if (value.is_null())
        return;
    const auto& spec = read_string(value, at, smarthost_expected);
    auto parsed = parse_endpoint(spec, host_rule::ip_or_domain, port_rule::required);
    if (!parsed)
        at.fail(smarthost_expected, value);
    out.smarthost = spec;
    out.host = std::move(parsed->host);
    out.port = *parsed->port;
}

ordered_json write_smarthost(const relay_settings& in)
{
    return nullable(in.smarthost);
}

void read_smarthost_tls(const json& value, const locus& at, relay_settings& out)
{
    out.tls = read_choice(value, at, smarthost_tls_modes);
}

ordered_json write_smarthost_tls(const relay_settings& in)
{
    return choice_name(in.tls, smarthost_tls_modes);
}

constexpr std::string_view user_name_expected = "a user name (no control characters) or null";

void read_relay_username(const json& value, const locus& at, relay_settings& out)
{
    out.username.clear();
    if (value.is_null())
        return;
    const auto& s = read_string(value, at, user_name_expected);
    // AUTH PLAIN separates its fields with NUL, and CR/LF would end the command.
    const bool control = std::any_of(s.begin(), s.end(), [](char c) {
        const auto octet = static_cast<unsigned char>(c);
        return octet < 0x20 || octet == 0x7f;
    });
    if (s.empty() || control)
        at.fail(user_name_expected, value);
    out.username = s;
}

ordered_json write_relay_username(const relay_settings& in)
{
    return nullable(in.username);
}

// Only the path: the file may be readable by root alone, and the daemon
// reads it after dropping privileges, when it connects.
void read_relay_password_file(const json& value, const locus& at, relay_settings& out)
{
    out.password_file = value.is_null() ? std::string() : read_path(value, at);
}

ordered_json write_relay_password_file(const relay_settings& in)
{
    return nullable(in.password_file);
}

constexpr std::array<key_spec<relay_settings>, 4> relay_keys{{
    {"smarthost", &read_smarthost, &write_smarthost, nullptr},        // default: deliver by MX
    {"tls", &read_smarthost_tls, &write_smarthost_tls, nullptr},      // default: starttls
    {"username", &read_relay_username, &write_relay_username, nullptr}, // default: no AUTH
    {"password_file", &read_relay_password_file, &write_relay_password_file, nullptr},
}};

// ---- tls, auth ----

void read_tls_file(const json& value, const locus& at, std::string& out)
{
    out = value.is_null() ? std::string() : read_path(value, at);
}

template <std::string tls_settings::*Member>
void read_tls_path(const json& value, const locus& at, tls_settings& out)
{
    read_tls_file(value, at, out.*Member);
}

template <std::string tls_settings::*Member>
ordered_json write_tls_path(const tls_settings& in)
{
    return nullable(in.*Member);
}

constexpr std::array<key_spec<tls_settings>, 2> tls_keys{{
    {"certificate", &read_tls_path<&tls_settings::certificate>, &write_tls_path<&tls_settings::certificate>,
        nullptr}, // default: self-signed in spool_dir/tls/
    {"private_key", &read_tls_path<&tls_settings::private_key>, &write_tls_path<&tls_settings::private_key>,
        nullptr},
}};

template <auto Member>
void read_flag(const json& value, const locus& at, owner_of<Member>& out)
{
    if (!value.is_boolean())
        at.fail("true or false", value);
    out.*Member = value.get<bool>();
}

template <auto Member>
ordered_json write_flag(const owner_of<Member>& in)
{
    return in.*Member;
}

constexpr std::array<key_spec<auth_settings>, 6> auth_keys{{
    {"plaintext_loopback", &read_flag<&auth_settings::plaintext_loopback>,
        &write_flag<&auth_settings::plaintext_loopback>, nullptr},
    {"any_sender", &read_flag<&auth_settings::any_sender>, &write_flag<&auth_settings::any_sender>, nullptr},
    {"max_failures", &read_number<&auth_settings::max_failures, 1, 1000>,
        &write_number<&auth_settings::max_failures>, nullptr},
    {"failure_delay_ms", &read_number<&auth_settings::failure_delay, 0, 60000>,
        &write_number<&auth_settings::failure_delay>, nullptr},
    {"ip_max_failures", &read_number<&auth_settings::ip_max_failures, 1, 1000000>,
        &write_number<&auth_settings::ip_max_failures>, nullptr},
    {"ip_window_s", &read_number<&auth_settings::ip_window, 1, max_timeout>,
        &write_number<&auth_settings::ip_window>, nullptr},
}};

// ---- sendmail ----

constexpr std::string_view login_name_expected =
    "a login name (1 to 256 of A-Z a-z 0-9 . _ -, not starting with '-')";

bool is_login_name(std::string_view s)
{
    if (s.empty() || s.size() > 256 || s.front() == '-')
        return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    return true;
}

void read_trusted_users(const json& value, const locus& at, sendmail_settings& out)
{
    const auto& items = read_array(value, at, "an array of login names");
    out.trusted_users.clear();
    std::set<std::string> seen;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& name = read_string(items[i], at.element(i), login_name_expected);
        if (!is_login_name(name))
            at.element(i).fail(login_name_expected, items[i]);
        insert_unique(seen, name, at.element(i), "a login name not already listed", items[i]);
        out.trusted_users.push_back(name);
    }
}

ordered_json write_trusted_users(const sendmail_settings& in)
{
    return in.trusted_users;
}

constexpr std::array<key_spec<sendmail_settings>, 1> sendmail_keys{{
    {"trusted_users", &read_trusted_users, &write_trusted_users, nullptr}, // default: ["root"]
}};

// ---- top level ----

// Every default of an absent key, except the two derived from other keys
// (hostname from the machine, local_domains from hostname: see their
// `absent` functions) and those that are member initialisers in config.hpp
// (limits, dns, queue, remote, relay; relay_networks is empty).
settings defaults()
{
    settings s;
    s.spool_dir = "/var/spool/postern";
    s.mail_root = "/var/mail/postern";
    s.listeners = {*parse_listener_address("0.0.0.0:25")};
    s.log = log_level::info;
    return s;
}

void read_hostname(const json& value, const locus& at, settings& out)
{
    out.hostname = read_domain(value, at);
}

void default_hostname(const locus& at, settings& out)
{
    std::array<char, 256> name{}; // HOST_NAME_MAX is 64 on Linux, 255 by POSIX
    if (::gethostname(name.data(), name.size() - 1) != 0)
        at.fail_text(std::string(domain_expected) + " (absent, and gethostname() failed: " +
                std::system_category().message(errno) + ")",
            "nothing");
    out.hostname = name.data();
    if (!is_domain_name(out.hostname))
        at.fail(std::string(domain_expected) + " (absent, so the machine's hostname was used)", out.hostname);
}

ordered_json write_hostname(const settings& in)
{
    return in.hostname;
}

void read_spool_dir(const json& value, const locus& at, settings& out)
{
    out.spool_dir = read_path(value, at);
}

ordered_json write_spool_dir(const settings& in)
{
    return in.spool_dir;
}

void read_mail_root(const json& value, const locus& at, settings& out)
{
    out.mail_root = read_path(value, at);
    // Maildirs are mail_root/<domain>/: inside the spool, a domain named
    // "queue" or "incoming" would collide with the queue's own directories.
    if (out.mail_root == out.spool_dir)
        at.fail("a directory other than spool_dir", value);
}

ordered_json write_mail_root(const settings& in)
{
    return in.mail_root;
}

void read_listeners(const json& value, const locus& at, settings& out)
{
    constexpr std::string_view expected = "a non-empty array of listeners";
    const auto& items = read_array(value, at, expected);
    if (items.empty())
        at.fail(expected, value);
    out.listeners.clear();
    std::set<std::string> seen;
    for (std::size_t i = 0; i < items.size(); ++i) {
        listener l;
        read_object(items[i], at.element(i), listener_keys, l);
        // Compare the canonical host, so "[::1]:25" and "[0::1]:25" clash.
        insert_unique(seen, l.host + "|" + std::to_string(l.port), at.element(i).member("address"),
            "an address:port no other listener uses", l.spec);
        out.listeners.push_back(std::move(l));
    }
}

ordered_json write_listeners(const settings& in)
{
    ordered_json out = ordered_json::array();
    for (const auto& l : in.listeners)
        out.push_back(write_object(l, listener_keys));
    return out;
}

void read_local_domains(const json& value, const locus& at, settings& out)
{
    const auto& items = read_array(value, at, "an array of domain names");
    out.local_domains.clear();
    std::set<std::string> seen;
    for (std::size_t i = 0; i < items.size(); ++i) {
        auto domain = util::to_lower(read_domain(items[i], at.element(i)));
        insert_unique(seen, domain, at.element(i), "a domain not already listed", items[i]);
        out.local_domains.push_back(std::move(domain));
    }
}

void default_local_domains(const locus&, settings& out)
{
    out.local_domains = {util::to_lower(out.hostname)};
}

ordered_json write_local_domains(const settings& in)
{
    return in.local_domains;
}

// Users and alias keys must be mail this host delivers itself.
void require_local(const mail::address& a, const locus& at, const settings& s, const json& got)
{
    bool local = false;
    for (const auto& d : s.local_domains)
        local = local || d == a.domain;
    if (!local)
        at.fail("an address in a local domain (" + join(s.local_domains) + ")", got);
    // The server refuses these at local domains (DESIGN promise 5), so such
    // a mailbox could never receive mail.
    if (mail::has_routing_chars(a.local_part))
        at.fail("an address without %, ! or @ in its local part", got);
}

void read_users(const json& value, const locus& at, settings& out)
{
    const auto& items = read_array(value, at, "an array of users");
    out.users.clear();
    // Case-insensitive: "Alice" and "alice" would share one mailbox on some
    // file systems and not on others.
    std::set<std::string> seen;
    for (std::size_t i = 0; i < items.size(); ++i) {
        user u;
        read_object(items[i], at.element(i), user_keys, u);
        const locus address_at = at.element(i).member("address");
        const json& written = items[i].at("address");
        require_local(read_address(written, address_at), address_at, out, written);
        insert_unique(seen, util::to_lower(u.address), address_at, "an address not already listed", written);
        out.users.push_back(std::move(u));
    }
}

ordered_json write_users(const settings& in)
{
    ordered_json out = ordered_json::array();
    for (const auto& u : in.users)
        out.push_back(write_object(u, user_keys));
    return out;
}

// ---- recipient_delimiter, alias loops ----

constexpr std::string_view delimiter_expected =
    "a string of delimiter characters (printable ASCII other than @ % ! and space; \"\" turns "
    "plus-addressing off)";

void read_recipient_delimiter(const json& value, const locus& at, settings& out)
{
    const auto& s = read_string(value, at, delimiter_expected);
    // '@' would split the address itself, '%' and '!' are routing
    // characters the server refuses before any lookup (DESIGN promise 5),
    // and whitespace, controls or 8-bit octets cannot be typed in a local part
    // reliably (a UTF-8 character is several octets, each a "delimiter").
    const bool bad = std::any_of(s.begin(), s.end(), [](char c) {
        const auto octet = static_cast<unsigned char>(c);
        return octet <= 0x20 || octet >= 0x7f || c == '@' || c == '%' || c == '!';
    });
    if (bad)
        at.fail(delimiter_expected, value);
    std::set<char> seen(s.begin(), s.end());
    if (seen.size() != s.size())
        at.fail("each delimiter character at most once", value);
    out.recipient_delimiter = s;
}

ordered_json write_recipient_delimiter(const settings& in)
{
    return in.recipient_delimiter;
}

// Alias keys and users as route::table compares them: the unquoted local
// part and the domain, both lower-case.
std::string lookup_key(const mail::address& a)
{
    return util::to_lower(a.local_part) + "@" + util::to_lower(a.domain);
}

// Follows the alias graph as route::table expands it, to find a loop at load
// instead of cutting it at every delivery. Edges: a target that is itself an
// alias; else, unless it is a user (or postmaster), the alias its local part
// names without its extension (alice+x → alice, with recipient_delimiter).
// An alias that names exactly itself means "and deliver to my mailbox" and is
// no loop.
class alias_graph {
public:
    explicit alias_graph(const settings& s) : delimiters_(s.recipient_delimiter)
    {
        for (const auto& u : s.users)
            if (auto a = mail::parse_address(u.address))
                users_.insert(lookup_key(*a));
        for (const auto& [name, targets] : s.aliases)
            if (auto a = mail::parse_address(name))
                edges_[lookup_key(*a)] = {name, targets};
    }

    // The first loop found (aliases in order), as its stored alias names from
    // the alias it starts at back to it; empty when there is none.
    std::vector<std::string> find_loop()
    {
        for (const auto& entry : edges_)
            if (auto loop = visit(entry.first); !loop.empty())
                return loop;
        return {};
    }

private:
    enum class mark { unseen, on_path, done };

    struct node {
        std::string name; // as stored in settings::aliases
        std::vector<std::string> targets;
        mark m = mark::unseen;
    };

    // The alias key the target reaches, or "" for none.
    std::string reached(const std::string& target) const
    {
        auto a = mail::parse_address(target);
        if (!a)
            return {};
        auto full = lookup_key(*a);
        if (edges_.count(full))
            return full;
        if (users_.count(full) || util::iequals(a->local_part, "postmaster"))
            return {};
        auto split = mail::split_extension(a->local_part, delimiters_);
        if (!split)
            return {};
        auto base = util::to_lower(split->base) + "@" + util::to_lower(a->domain);
        return edges_.count(base) ? base : std::string();
    }

    std::vector<std::string> visit(const std::string& k)
    {
        auto& n = edges_.at(k);
        if (n.m == mark::done)
            return {};
        n.m = mark::on_path;
        path_.push_back(k);
        for (const auto& t : n.targets) {
            auto next = reached(t);
            if (next.empty())
                continue;
            auto a = mail::parse_address(t);
            if (next == k && a && lookup_key(*a) == k)
                continue; // names itself exactly: its own mailbox too
            if (edges_.at(next).m == mark::on_path) {
                std::vector<std::string> loop;
                auto from = std::find(path_.begin(), path_.end(), next);
                for (auto it = from; it != path_.end(); ++it)
                    loop.push_back(edges_.at(*it).name);
                loop.push_back(edges_.at(next).name);
                return loop;
            }
            if (auto loop = visit(next); !loop.empty())
                return loop;
        }
        path_.pop_back();
        n.m = mark::done;
        return {};
    }

    std::string delimiters_;
    std::set<std::string> users_;
    std::map<std::string, node> edges_; // lookup_key → alias
    std::vector<std::string> path_;     // the aliases being expanded, outermost first
};

// A loop would make every message to its aliases reach nobody on that path
// (sendmail and Postfix cut it at delivery, route::table too); as a
// configuration error it is found before the first message.
void check_alias_loops(const locus& at, const settings& s)
{
    auto loop = alias_graph(s).find_loop();
    if (loop.empty())
        return;
    std::string cycle;
    for (const auto& name : loop)
        cycle += (cycle.empty() ? "" : " -> ") + name;
    at.member(loop.front()).fail_text("aliases that do not loop back to themselves", "the loop " + cycle);
}

void read_aliases(const json& value, const locus& at, settings& out)
{
    if (!value.is_object())
        at.fail("an object mapping local addresses to arrays of addresses", value);
    out.aliases.clear();
    for (const auto& [key, targets] : value.items()) {
        const locus entry = at.member(key);
        const json written_key = key;
        const auto local = read_address(written_key, entry);
        require_local(local, entry, out, written_key);
        auto name = util::to_lower(local.str());
        if (out.aliases.count(name) != 0)
            entry.fail("an alias not already defined (keys ignore case)", written_key);

        constexpr std::string_view expected = "a non-empty array of addresses";
        const auto& items = read_array(targets, entry, expected);
        if (items.empty())
            entry.fail(expected, targets);
        std::vector<std::string> list;
        std::set<std::string> seen;
        for (std::size_t i = 0; i < items.size(); ++i) {
            auto target = read_address(items[i], entry.element(i)).str();
            insert_unique(seen, util::to_lower(target), entry.element(i), "an address not already listed", items[i]);
            list.push_back(std::move(target));
        }
        out.aliases.emplace(std::move(name), std::move(list));
    }
    check_alias_loops(at, out);
}

ordered_json write_aliases(const settings& in)
{
    ordered_json out = ordered_json::object();
    for (const auto& [name, targets] : in.aliases)
        out[name] = targets;
    return out;
}

constexpr std::string_view network_expected =
    "an IP address or network (\"192.0.2.0/24\", \"2001:db8::/32\"; prefix 0 to 32 for IPv4, 0 to 128 for IPv6)";

// ADDRESS or ADDRESS/PREFIX, returned canonical with its prefix
// ("10.0.0.0/8", "::1/128"), so the list reads back the same and repeats
// are found whatever the spelling.
std::string read_network(const json& value, const locus& at)
{
    const auto& s = read_string(value, at, network_expected);
    const auto slash = s.find('/');
    const std::string address = s.substr(0, slash);
    const int family = address.find(':') == std::string::npos ? AF_INET : AF_INET6;
    const unsigned bits = family == AF_INET ? 32 : 128;
    in6_addr binary{};
    // inet_pton stops at a NUL (JSON allows \u0000): "10.0.0.1\0junk" is no address.
    if (address.find('\0') != std::string::npos || ::inet_pton(family, address.c_str(), &binary) != 1)
        at.fail(network_expected, value);
    unsigned prefix = bits;
    if (slash != std::string::npos) {
        auto number = util::parse_uint(std::string_view(s).substr(slash + 1));
        if (!number || *number > bits)
            at.fail(network_expected, value);
        prefix = static_cast<unsigned>(*number);
    }
    // Clients reach us as IPv4 even on a dual-stack socket (the relay check
    // unmaps ::ffff:a.b.c.d), so a mapped network would never match.
    constexpr std::array<unsigned char, 12> mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && std::equal(mapped.begin(), mapped.end(), binary.s6_addr))
        at.fail("an IPv4 network written as IPv4 (\"192.0.2.0/24\"), not as IPv4-mapped IPv6", value);
    in6_addr network = binary;
    for (unsigned bit = prefix; bit < bits; ++bit)
        network.s6_addr[bit / 8] = static_cast<std::uint8_t>(network.s6_addr[bit / 8] & ~(0x80u >> (bit % 8)));
    std::array<char, INET6_ADDRSTRLEN> text{};
    if (::inet_ntop(family, &network, text.data(), text.size()) == nullptr)
        at.fail(network_expected, value);
    std::string canonical = std::string(text.data()) + "/" + std::to_string(prefix);
    // Postfix warns and masks; a set host bit is more likely a typo in the
    // prefix than a wish for the wider network, so it is refused.
    if (!std::equal(std::begin(network.s6_addr), std::end(network.s6_addr), std::begin(binary.s6_addr)))
        at.fail("a network with no address bits set past its prefix (" + json_string(canonical) + ")", value);
    return canonical;
}

void read_relay_networks(const json& value, const locus& at, settings& out)
{
    const auto& items = read_array(value, at, "an array of IP networks");
    out.relay_networks.clear();
    std::set<std::string> seen;
    for (std::size_t i = 0; i < items.size(); ++i) {
        auto network = read_network(items[i], at.element(i));
        insert_unique(seen, network, at.element(i), "a network not already listed", items[i]);
        out.relay_networks.push_back(std::move(network));
    }
}

ordered_json write_relay_networks(const settings& in)
{
    return in.relay_networks;
}

void read_limits(const json& value, const locus& at, settings& out)
{
    read_object(value, at, limit_keys, out.lim);
}

ordered_json write_limits(const settings& in)
{
    return write_object(in.lim, limit_keys);
}

void read_dns(const json& value, const locus& at, settings& out)
{
    read_object(value, at, dns_keys, out.dns);
}

ordered_json write_dns(const settings& in)
{
    return write_object(in.dns, dns_keys);
}

void read_queue(const json& value, const locus& at, settings& out)
{
    read_object(value, at, queue_keys, out.queue);
    // Checked once both are known, so an absent retry_max_s is caught too.
    const auto& q = out.queue;
    if (q.retry_max < q.retry_initial)
        at.member("retry_max_s")
            .fail_text("at least retry_initial_s (" + std::to_string(load(q.retry_initial)) + ")",
                written_or(value, "retry_max_s", std::to_string(load(q.retry_max)) + " (the default)"));
}

ordered_json write_queue(const settings& in)
{
    return write_object(in.queue, queue_keys);
}

void read_remote(const json& value, const locus& at, settings& out)
{
    read_object(value, at, remote_keys, out.remote);
    const auto& r = out.remote;
    if (r.concurrency_per_domain > r.concurrency)
        at.member("concurrency_per_domain")
            .fail_text("at most concurrency (" + std::to_string(r.concurrency) + ")",
                written_or(value, "concurrency_per_domain",
                    std::to_string(r.concurrency_per_domain) + " (the default)"));
}

ordered_json write_remote(const settings& in)
{
    return write_object(in.remote, remote_keys);
}

void read_relay(const json& value, const locus& at, settings& out)
{
    read_object(value, at, relay_keys, out.relay);
    const auto& r = out.relay;
    if (!r.username.empty() && r.password_file.empty())
        at.member("password_file")
            .fail_text(std::string(path_expected) + " (relay.username is set)",
                written_or(value, "password_file", "nothing"));
    if (r.username.empty() && !r.password_file.empty())
        at.member("username")
            .fail_text("a user name (relay.password_file is set)", written_or(value, "username", "nothing"));
    // Credentials are only ever sent to a smarthost; without one they would
    // be silently unused.
    if (!r.username.empty() && r.smarthost.empty())
        at.member("username").fail("null, as relay.smarthost is not set", value.at("username"));
}

ordered_json write_relay(const settings& in)
{
    return write_object(in.relay, relay_keys);
}

// ---- delivery (LMTP, RFC 2033) ----

// sun_path holds 108 octets with its NUL (unix(7)); a longer path could
// never connect, so it is refused here rather than deferred forever.
constexpr std::size_t max_socket_path = 107;
constexpr std::string_view lmtp_expected =
    "\"unix:/PATH\" (an absolute socket path of at most 107 octets) or HOST:PORT with a domain name or an IP "
    "literal (IPv6 in brackets) and a port from 1 to 65535, or null";

void read_lmtp(const json& value, const locus& at, delivery_settings& out)
{
    out.lmtp.clear();
    out.lmtp_socket.clear();
    out.lmtp_host.clear();
    out.lmtp_port = 0;
    if (value.is_null())
        return;
    const auto& spec = read_string(value, at, lmtp_expected);
    if (spec.starts_with("unix:")) {
        const auto path = spec.substr(5);
        if (!path.starts_with('/') || path.size() > max_socket_path || path.find('\0') != std::string::npos)
            at.fail(lmtp_expected, value);
        out.lmtp_socket = path;
    } else {
        auto parsed = parse_endpoint(spec, host_rule::ip_or_domain, port_rule::required);
        if (!parsed)
            at.fail(lmtp_expected, value);
        out.lmtp_host = std::move(parsed->host);
        out.lmtp_port = *parsed->port;
    }
    out.lmtp = spec;
}

ordered_json write_lmtp(const delivery_settings& in)
{
    return nullable(in.lmtp);
}

constexpr std::string_view lmtp_domains_expected = "a non-empty array of local domains, or null (every local domain)";

// The names only; read_delivery() checks that each is a local domain.
void read_lmtp_domains(const json& value, const locus& at, delivery_settings& out)
{
    out.domains.clear();
    if (value.is_null())
        return;
    const auto& items = read_array(value, at, lmtp_domains_expected);
    if (items.empty())
        at.fail(lmtp_domains_expected, value);
    std::set<std::string> seen;
    for (std::size_t i = 0; i < items.size(); ++i) {
        auto domain = util::to_lower(read_domain(items[i], at.element(i)));
        insert_unique(seen, domain, at.element(i), "a domain not already listed", items[i]);
        out.domains.push_back(std::move(domain));
    }
}

// Written as the effective list, so check-config shows which domains go to
// LMTP; null without LMTP.
ordered_json write_lmtp_domains(const delivery_settings& in)
{
    return in.lmtp.empty() ? ordered_json(nullptr) : ordered_json(in.domains);
}

constexpr std::array<key_spec<delivery_settings>, 2> delivery_keys{{
    {"lmtp", &read_lmtp, &write_lmtp, nullptr},                  // default: Maildir
    {"domains", &read_lmtp_domains, &write_lmtp_domains, nullptr}, // default: every local domain
}};

void read_delivery(const json& value, const locus& at, settings& out)
{
    read_object(value, at, delivery_keys, out.delivery);
    auto& d = out.delivery;
    if (d.lmtp.empty()) {
        // Domains for an LMTP server that is not configured would be silently unused.
        if (!d.domains.empty())
            at.member("domains").fail("null, as delivery.lmtp is not set", value.at("domains"));
        return;
    }
    if (d.domains.empty()) {
        d.domains = out.local_domains;
        return;
    }
    for (std::size_t i = 0; i < d.domains.size(); ++i) {
        if (std::find(out.local_domains.begin(), out.local_domains.end(), d.domains[i]) == out.local_domains.end())
            at.member("domains").element(i).fail("a local domain (" + join(out.local_domains) + ")",
                value.at("domains").at(i));
    }
}

ordered_json write_delivery(const settings& in)
{
    return write_object(in.delivery, delivery_keys);
}

void read_tls(const json& value, const locus& at, settings& out)
{
    read_object(value, at, tls_keys, out.tls);
    // One without the other cannot work; say which is missing.
    const auto& t = out.tls;
    if (t.certificate.empty() != t.private_key.empty()) {
        const char* missing = t.certificate.empty() ? "certificate" : "private_key";
        at.member(missing).fail_text(std::string(path_expected) + " (the other of certificate and private_key "
                                                                  "is set)",
            written_or(value, missing, "nothing"));
    }
}

ordered_json write_tls(const settings& in)
{
    return write_object(in.tls, tls_keys);
}

// ---- metrics ----

void read_metrics_address(const json& value, const locus& at, listener& out)
{
    if (value.is_null()) {
        out = listener();
        return;
    }
    read_listener_address(value, at, out);
    out.tls = listener_tls::none; // plain HTTP
}

ordered_json write_metrics_address(const listener& in)
{
    return in.spec.empty() ? ordered_json(nullptr) : ordered_json(in.spec);
}

constexpr std::array<key_spec<listener>, 1> metrics_keys{{
    {"address", &read_metrics_address, &write_metrics_address, nullptr}, // default: null (off)
}};

void read_metrics(const json& value, const locus& at, settings& out)
{
    read_object(value, at, metrics_keys, out.metrics);
}

ordered_json write_metrics(const settings& in)
{
    return write_object(in.metrics, metrics_keys);
}

void read_auth(const json& value, const locus& at, settings& out)
{
    read_object(value, at, auth_keys, out.auth);
}

ordered_json write_auth(const settings& in)
{
    return write_object(in.auth, auth_keys);
}

// ---- user, group ----

constexpr std::string_view account_expected =
    "a user or group name (letters, digits, '.', '_', '-', not beginning with '-', at most 32) or null";

// POSIX portable names (the shadow tools' default rule), so the name cannot
// smuggle anything into a log line or a lookup.
std::string read_account(const json& value, const locus& at)
{
    if (value.is_null())
        return {};
    const auto& s = read_string(value, at, account_expected);
    const bool bad = s.empty() || s.size() > 32 || s[0] == '-' ||
                     std::any_of(s.begin(), s.end(), [](char c) {
                         return !(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
                     });
    if (bad)
        at.fail(account_expected, value);
    return s;
}

void read_user(const json& value, const locus& at, settings& out)
{
    out.run_as_user = read_account(value, at);
}

ordered_json write_user(const settings& in)
{
    return in.run_as_user.empty() ? ordered_json(nullptr) : ordered_json(in.run_as_user);
}

void read_group(const json& value, const locus& at, settings& out)
{
    out.run_as_group = read_account(value, at);
    if (!out.run_as_group.empty() && out.run_as_user.empty())
        at.fail_text("a group only together with \"user\"", "\"user\" unset");
}

ordered_json write_group(const settings& in)
{
    return in.run_as_group.empty() ? ordered_json(nullptr) : ordered_json(in.run_as_group);
}

void read_sendmail(const json& value, const locus& at, settings& out)
{
    read_object(value, at, sendmail_keys, out.sendmail);
}

ordered_json write_sendmail(const settings& in)
{
    return write_object(in.sendmail, sendmail_keys);
}

void read_log_level(const json& value, const locus& at, settings& out)
{
    out.log = read_choice(value, at, log_levels);
}

ordered_json write_log_level(const settings& in)
{
    return choice_name(in.log, log_levels);
}

// Order matters: a key is read after the keys it depends on.
constexpr std::array<key_spec<settings>, 22> top_keys{{
    {"hostname", &read_hostname, &write_hostname, &default_hostname},
    {"spool_dir", &read_spool_dir, &write_spool_dir, nullptr},
    {"mail_root", &read_mail_root, &write_mail_root, nullptr},
    {"listeners", &read_listeners, &write_listeners, nullptr},
    {"local_domains", &read_local_domains, &write_local_domains, &default_local_domains},
    {"users", &read_users, &write_users, nullptr},
    {"recipient_delimiter", &read_recipient_delimiter, &write_recipient_delimiter, nullptr}, // default: "+"
    {"aliases", &read_aliases, &write_aliases, nullptr}, // after users and recipient_delimiter: loops
    {"relay_networks", &read_relay_networks, &write_relay_networks, nullptr},
    {"limits", &read_limits, &write_limits, nullptr},
    {"dns", &read_dns, &write_dns, nullptr},
    {"queue", &read_queue, &write_queue, nullptr},
    {"remote", &read_remote, &write_remote, nullptr},
    {"relay", &read_relay, &write_relay, nullptr},
    {"delivery", &read_delivery, &write_delivery, nullptr}, // after local_domains
    {"tls", &read_tls, &write_tls, nullptr},   // default: self-signed
    {"auth", &read_auth, &write_auth, nullptr},
    {"sendmail", &read_sendmail, &write_sendmail, nullptr}, // default: trusted_users ["root"]
    {"log_level", &read_log_level, &write_log_level, nullptr},
    {"user", &read_user, &write_user, nullptr},   // default: null (no privilege drop)
    {"group", &read_group, &write_group, nullptr}, // after user; default: the user's group
    {"metrics", &read_metrics, &write_metrics, nullptr},
}};

// ---- JSON text ----

// nlohmann::json keeps the last of two equal keys without a word; in a
// config file the first one is then silently ignored, so it is refused.
// The parser callback sees the keys as they stream past; the stack holds,
// per open object or array, the child being read so the error names a path.
class duplicate_key_check {
public:
    explicit duplicate_key_check(const std::string& source) : source_(&source) {}

    bool operator()(int /*depth*/, json::parse_event_t event, json& parsed)
    {
        switch (event) {
        case json::parse_event_t::object_start:
        case json::parse_event_t::array_start:
            count_element();
            stack_.push_back(frame{event == json::parse_event_t::array_start, 0, {}, {}});
            break;
        case json::parse_event_t::object_end:
        case json::parse_event_t::array_end:
            stack_.pop_back();
            break;
        case json::parse_event_t::key: {
            auto& top = stack_.back();
            top.key = parsed.get<std::string>();
            if (!top.keys.insert(top.key).second)
                here().fail_text("each key at most once", json_string(top.key) + " again");
            break;
        }
        case json::parse_event_t::value:
            count_element();
            break;
        }
        return true;
    }

private:
    struct frame {
        bool array;
        std::size_t elements; // in an array: elements seen so far
        std::string key;      // in an object: the key being read
        std::set<std::string> keys;
    };

    void count_element()
    {
        if (!stack_.empty() && stack_.back().array)
            ++stack_.back().elements;
    }

    locus here() const
    {
        locus at{*source_, ""};
        for (const auto& f : stack_)
            at = f.array ? at.element(f.elements - 1) : at.member(f.key);
        return at;
    }

    const std::string* source_;
    std::vector<frame> stack_;
};

json parse_text(std::string_view text, const std::string& source)
{
    try {
        return json::parse(text.begin(), text.end(), duplicate_key_check{source}, /*allow_exceptions=*/true,
            /*ignore_comments=*/true);
    } catch (const json::parse_error& e) {
        // byte is 1-based and may point one past the end of the text.
        const std::size_t offset = std::min<std::size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
        const auto before = text.substr(0, offset);
        const std::size_t line = 1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
        const auto line_start = before.rfind('\n');
        const std::size_t column = offset - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
        // what() is "[json.exception.parse_error.101] parse error at line L,
        // column C: <reason>"; keep only the reason.
        std::string_view reason = e.what();
        if (auto at = reason.find(", column "); at != std::string_view::npos)
            if (auto colon = reason.find(": ", at); colon != std::string_view::npos)
                reason.remove_prefix(colon + 2);
        throw error(source + ": invalid JSON at line " + std::to_string(line) + ", column " +
            std::to_string(column) + ": " + std::string(reason));
    } catch (const json::exception& e) {
        // A number too large for a double (out_of_range.406) carries no
        // position; what() ends in the offending text.
        std::string_view reason = e.what();
        if (auto bracket = reason.find("] "); bracket != std::string_view::npos)
            reason.remove_prefix(bracket + 2);
        throw error(source + ": invalid JSON: " + std::string(reason));
    }
}

// The development configuration of `postern serve` without --config;
// hostname and local_domains are added by embedded_default().
constexpr std::string_view embedded_text = R"({
  // Relative paths: a developer's checkout, not a system directory.
  "spool_dir": "./var/spool",
  "mail_root": "./var/mail",
  // Loopback and an unprivileged port: runs without root, reachable by no one else.
  "listeners": [ { "address": "127.0.0.1:2525", "mode": "smtp" } ],
  // Local clients may relay, as Postfix's mynetworks_style = host.
  "relay_networks": ["127.0.0.0/8", "::1/128"],
  // Plus-addressing: alice+tag@ reaches alice@ (the default, written out).
  "recipient_delimiter": "+"
})";

struct file_closer {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

} // namespace

settings parse(std::string_view json_text, const std::string& source)
{
    const json doc = parse_text(json_text, source);
    settings s = defaults();
    s.source = source;
    read_object(doc, locus{source, ""}, top_keys, s);
    return s;
}

std::optional<std::string> locate(const std::optional<std::string>& flag, const char* env_value,
                                  bool system_exists)
{
    if (flag)
        return flag;
    if (env_value != nullptr && *env_value != '\0')
        return std::string(env_value);
    if (system_exists)
        return std::string(system_config_path);
    return std::nullopt;
}

settings load_file(const std::string& path)
{
    const auto fail = [&](int err) {
        return error(path + ": cannot read: " + std::system_category().message(err));
    };
    std::unique_ptr<std::FILE, file_closer> f(std::fopen(path.c_str(), "rb"));
    if (!f)
        throw fail(errno);
    std::string text;
    std::array<char, 65536> buf;
    for (;;) {
        const std::size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
        text.append(buf.data(), n);
        if (text.size() > max_file_size)
            throw fail(EFBIG);
        if (n < buf.size()) {
            if (std::ferror(f.get()))
                throw fail(errno); // EISDIR for a directory
            break;
        }
    }
    return parse(text, path);
}

settings embedded_default(const std::string& hostname)
{
    json doc = json::parse(embedded_text.begin(), embedded_text.end(), nullptr, true, true);
    doc["hostname"] = hostname;
    json domains = json::array({"localhost"});
    if (util::to_lower(hostname) != "localhost")
        domains.push_back(util::to_lower(hostname));
    doc["local_domains"] = std::move(domains);
    // replace: a hostname that is not UTF-8 then fails as a domain name.
    return parse(doc.dump(-1, ' ', false, json::error_handler_t::replace), "<embedded default>");
}

std::string to_json(const settings& s)
{
    return write_object(s, top_keys).dump(2) + "\n";
}

} // namespace postern::config

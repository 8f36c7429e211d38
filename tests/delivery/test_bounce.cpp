#include "postern/delivery/bounce.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "postern/util/clock.hpp"

using namespace postern::delivery;
using postern::util::from_unix_seconds;
using namespace std::string_literals;

namespace {

constexpr std::int64_t t0 = 1'790'000'000; // Sat, 21 Sep 2026

// A parsed entity: unfolded header fields (lower-case names, in order) and body.
struct entity {
    std::vector<std::pair<std::string, std::string>> fields;
    std::string body;

    std::optional<std::string> get(std::string_view name) const
    {
        for (const auto& [n, v] : fields)
            if (n == name)
                return v;
        return std::nullopt;
    }
    std::size_t count(std::string_view name) const
    {
        std::size_t k = 0;
        for (const auto& f : fields)
            k += f.first == name;
        return k;
    }
};

std::string lower(std::string s)
{
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return s;
}

// Header block → fields (unfolding continuation lines).
std::vector<std::pair<std::string, std::string>> parse_fields(std::string_view block)
{
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t pos = 0;
    while (pos < block.size()) {
        auto end = block.find("\r\n", pos);
        if (end == std::string_view::npos)
            end = block.size();
        auto line = block.substr(pos, end - pos);
        pos = end + 2;
        if (line.empty())
            continue;
        if ((line[0] == ' ' || line[0] == '\t') && !out.empty()) {
            out.back().second += std::string(line); // unfold: drop the CRLF only
            continue;
        }
        auto colon = line.find(':');
        REQUIRE_MESSAGE(colon != std::string_view::npos, "not a field: ", std::string(line));
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ')
            value.remove_prefix(1);
        out.emplace_back(lower(std::string(line.substr(0, colon))), std::string(value));
    }
    return out;
}

entity parse_entity(std::string_view text)
{
    entity e;
    std::size_t sep = text.substr(0, 2) == "\r\n" ? 0 : text.find("\r\n\r\n");
    REQUIRE(sep != std::string_view::npos);
    e.fields = parse_fields(text.substr(0, sep));
    e.body = std::string(text.substr(sep == 0 ? 2 : sep + 4));
    return e;
}

std::string boundary_of(const entity& e)
{
    auto ct = e.get("content-type");
    REQUIRE(ct);
    auto p = ct->find("boundary=\"");
    REQUIRE(p != std::string::npos);
    p += 10;
    auto q = ct->find('"', p);
    REQUIRE(q != std::string::npos);
    return ct->substr(p, q - p);
}

// Body parts between "--b" delimiter lines (RFC 2046 5.1.1); requires the
// close delimiter.
std::vector<std::string> split_parts(std::string_view body, const std::string& b)
{
    std::vector<std::string> parts;
    std::string delim = "\r\n--" + b;
    auto pos = body.find(delim);
    REQUIRE(pos != std::string_view::npos);
    pos += delim.size();
    while (true) {
        REQUIRE(pos + 2 <= body.size());
        if (body.substr(pos, 2) == "--") {
            CHECK(body.substr(pos) == "--\r\n");
            break;
        }
        REQUIRE(body.substr(pos, 2) == "\r\n");
        pos += 2;
        auto next = body.find(delim, pos);
        REQUIRE(next != std::string_view::npos);
        parts.emplace_back(body.substr(pos, next - pos));
        pos = next + delim.size();
    }
    return parts;
}

// Blank-line separated field blocks of a message/delivery-status body.
std::vector<entity> status_blocks(std::string_view body)
{
    std::vector<entity> blocks;
    std::size_t pos = 0;
    while (pos < body.size()) {
        auto end = body.find("\r\n\r\n", pos);
        auto block = body.substr(pos, end == std::string_view::npos ? end : end + 2 - pos);
        pos = end == std::string_view::npos ? body.size() : end + 4;
        if (block.empty() || block == "\r\n")
            continue;
        entity e;
        e.fields = parse_fields(block);
        blocks.push_back(std::move(e));
    }
    return blocks;
}

struct report {
    entity top;
    std::vector<entity> parts;
    std::vector<entity> status; // [0] per-message, then one per recipient
    std::string boundary;
};

// Wire checks: CRLF only, no NUL, every line < 998 octets. Returns the first
// problem ("" when none), so one assertion covers a whole message.
std::string wire_problem(std::string_view m)
{
    std::size_t line_len = 0;
    for (std::size_t i = 0; i < m.size(); ++i) {
        char c = m[i];
        if (c == '\r') {
            if (i + 1 >= m.size() || m[i + 1] != '\n')
                return "bare CR at " + std::to_string(i);
            ++i;
            line_len = 0;
            continue;
        }
        if (c == '\n')
            return "bare LF at " + std::to_string(i);
        if (c == '\0')
            return "NUL at " + std::to_string(i);
        if (++line_len >= 998)
            return "line of 998 octets at " + std::to_string(i);
    }
    if (m.size() < 2 || m.substr(m.size() - 2) != "\r\n")
        return "no final CRLF";
    return {};
}

void check_wire(std::string_view m)
{
    REQUIRE(wire_problem(m) == "");
}

report parse_report(std::string_view m)
{
    check_wire(m);
    report r;
    r.top = parse_entity(m);
    CHECK(r.top.get("mime-version") == "1.0");
    auto ct = r.top.get("content-type");
    REQUIRE(ct);
    CHECK(ct->rfind("multipart/report;", 0) == 0);
    CHECK(ct->find("report-type=delivery-status") != std::string::npos);
    r.boundary = boundary_of(r.top);
    CHECK(r.boundary.size() <= 70);
    for (const auto& p : split_parts(r.top.body, r.boundary))
        r.parts.push_back(parse_entity(p));
    REQUIRE(r.parts.size() == 3);
    CHECK(r.parts[0].get("content-type") == "text/plain; charset=us-ascii");
    CHECK(r.parts[1].get("content-type") == "message/delivery-status");
    r.status = status_blocks(r.parts[1].body);
    REQUIRE(r.status.size() >= 2);
    return r;
}

dsn_recipient rcpt(std::string addr, dsn_action a, std::string status = {}, std::string diag = {},
                   std::string mta = {})
{
    dsn_recipient r;
    r.final_recipient = std::move(addr);
    r.action = a;
    r.status = std::move(status);
    r.diagnostic = std::move(diag);
    r.remote_mta = std::move(mta);
    return r;
}

const std::string original_headers = "From: Alice <alice@example.org>\r\n"
                                     "To: bob@example.net\r\n"
                                     "Subject: hello\r\n"
                                     "Message-ID: <1@example.org>\r\n";

bounce_input sample()
{
    bounce_input in;
    in.reporting_mta = "mx.example.org";
    in.original_sender = "alice@example.org";
    in.original_id = "0123456789abcdef";
    in.arrival_date = t0 - 3600;
    in.original_message = original_headers + "\r\nsecret body line\r\n";
    in.recipients.push_back(rcpt("bob@example.net", dsn_action::failed, "5.1.1",
                                 "550 5.1.1 <bob@example.net>: user unknown",
                                 "dns; mx.example.net"));
    return in;
}

std::string build(const bounce_input& in)
{
    auto m = build_dsn(in, from_unix_seconds(t0), "fedcba9876543210");
    REQUIRE(m);
    return *m;
}

} // namespace

TEST_SUITE("delivery") {

TEST_CASE("a permanent failure yields an RFC 3464 report to the sender")
{
    auto m = build(sample());
    auto r = parse_report(m);
    CHECK(r.top.get("from") == "Mail Delivery System <MAILER-DAEMON@mx.example.org>");
    CHECK(r.top.get("to") == "<alice@example.org>");
    CHECK(r.top.get("subject") == "Undelivered Mail Returned to Sender");
    CHECK(r.top.get("date") == postern::util::rfc5322_date(from_unix_seconds(t0)));
    CHECK(r.top.get("message-id") == "<fedcba9876543210@mx.example.org>");
    CHECK(r.top.get("auto-submitted") == "auto-replied");
    for (auto name : {"from", "to", "subject", "date", "message-id", "mime-version", "content-type"})
        CHECK(r.top.count(name) == 1);

    CHECK(r.parts[0].body.find("mx.example.org") != std::string::npos);
    CHECK(r.parts[0].body.find("<bob@example.net>: delivery failed") != std::string::npos);
    CHECK(r.parts[0].body.find("550 5.1.1 <bob@example.net>: user unknown") != std::string::npos);

    const auto& msg = r.status[0];
    CHECK(msg.get("reporting-mta") == "dns; mx.example.org");
    CHECK(msg.get("arrival-date") == postern::util::rfc5322_date(from_unix_seconds(t0 - 3600)));
    CHECK_FALSE(msg.get("original-envelope-id"));
    REQUIRE(r.status.size() == 2);
    const auto& b = r.status[1];
    CHECK(b.get("final-recipient") == "rfc822; bob@example.net");
    CHECK_FALSE(b.get("original-recipient"));
    CHECK(b.get("action") == "failed");
    CHECK(b.get("status") == "5.1.1");
    CHECK(b.get("remote-mta") == "dns; mx.example.net");
    CHECK(b.get("diagnostic-code") == "smtp; 550 5.1.1 <bob@example.net>: user unknown");
    CHECK_FALSE(b.get("will-retry-until"));

    CHECK(r.parts[2].get("content-type") == "text/rfc822-headers");
    CHECK(r.parts[2].body == original_headers); // the last CRLF belongs to the delimiter
    CHECK(m.find("secret body line") == std::string::npos);
}

TEST_CASE("no report goes to the null sender or without recipients")
{
    auto in = sample();
    SUBCASE("empty sender") { in.original_sender = ""; }
    SUBCASE("<> sender") { in.original_sender = "<>"; }
    SUBCASE("no recipients") { in.recipients.clear(); }
    CHECK_FALSE(build_dsn(in, from_unix_seconds(t0), "x"));
}

TEST_CASE("the subject and Action follow the outcome")
{
    auto in = sample();
    std::string subject, action, status;
    SUBCASE("failed")
    {
        subject = "Undelivered Mail Returned to Sender";
        action = "failed";
        status = "5.1.1";
    }
    SUBCASE("expired: failed with a 4.x.x status")
    {
        in.recipients[0] = rcpt("bob@example.net", dsn_action::failed, "4.4.7",
                                "421 4.4.1 connection timed out", "dns; mx.example.net");
        subject = "Undelivered Mail Returned to Sender";
        action = "failed";
        status = "4.4.7";
    }
    SUBCASE("delayed")
    {
        in.recipients[0] = rcpt("bob@example.net", dsn_action::delayed, "4.4.1",
                                "421 4.4.1 try later", "dns; mx.example.net");
        in.recipients[0].will_retry_until = t0 + 4 * 86400;
        in.recipients[0].last_attempt = t0 - 60;
        subject = "Delayed Mail (still being retried)";
        action = "delayed";
        status = "4.4.1";
    }
    SUBCASE("delivered")
    {
        in.recipients[0] = rcpt("bob@example.net", dsn_action::delivered, "2.0.0");
        subject = "Successful Mail Delivery Report";
        action = "delivered";
        status = "2.0.0";
    }
    SUBCASE("relayed")
    {
        in.recipients[0] = rcpt("bob@example.net", dsn_action::relayed, "",
                                "250 2.6.0 queued as 1234", "dns; relay.example.net");
        subject = "Successful Mail Delivery Report";
        action = "relayed";
        status = "2.6.0"; // from the reply's enhanced code
    }
    auto r = parse_report(build(in));
    CHECK(r.top.get("subject") == subject);
    CHECK(r.status[1].get("action") == action);
    CHECK(r.status[1].get("status") == status);
    if (action == "delayed") {
        CHECK(r.status[1].get("will-retry-until")
              == postern::util::rfc5322_date(from_unix_seconds(t0 + 4 * 86400)));
        CHECK(r.status[1].get("last-attempt-date")
              == postern::util::rfc5322_date(from_unix_seconds(t0 - 60)));
        CHECK(r.parts[0].body.find("NOT an error") != std::string::npos);
        CHECK(r.parts[0].body.find("after 1 hour") != std::string::npos);
        CHECK(r.parts[2].get("content-description") == "Delayed Message Headers");
    } else {
        CHECK_FALSE(r.status[1].get("will-retry-until"));
        CHECK_FALSE(r.status[1].get("last-attempt-date"));
    }
}

TEST_CASE("several recipients each get their own block")
{
    auto in = sample();
    in.recipients.push_back(rcpt("carol@example.com", dsn_action::delayed, "", "451 4.7.1 greylisted",
                                 "dns; mx.example.com"));
    in.recipients.push_back(rcpt("dave@example.com", dsn_action::failed, "", "mailbox full"));
    in.recipients.push_back(rcpt("erin@example.com", dsn_action::failed, "bogus"));
    in.recipients[1].will_retry_until = t0 + 86400;
    auto r = parse_report(build(in));
    CHECK(r.top.get("subject") == "Undelivered Mail Returned to Sender"); // any failure wins
    REQUIRE(r.status.size() == 5);
    CHECK(r.status[1].get("status") == "5.1.1");
    CHECK(r.status[2].get("final-recipient") == "rfc822; carol@example.com");
    CHECK(r.status[2].get("action") == "delayed");
    CHECK(r.status[2].get("status") == "4.7.1");
    CHECK(r.status[2].get("will-retry-until"));
    CHECK(r.status[3].get("action") == "failed");
    CHECK(r.status[3].get("status") == "5.0.0");
    CHECK(r.status[3].get("diagnostic-code") == "x-postern; mailbox full");
    CHECK_FALSE(r.status[3].get("remote-mta"));
    CHECK(r.status[4].get("status") == "5.0.0"); // an invalid status is not copied
    CHECK_FALSE(r.status[4].get("diagnostic-code"));
    for (auto who : {"<bob@example.net>", "<carol@example.com>", "<dave@example.com>", "<erin@example.com>"})
        CHECK(r.parts[0].body.find(who) != std::string::npos);
}

TEST_CASE("Remote-MTA and Diagnostic-Code appear only when given")
{
    auto in = sample();
    SUBCASE("both given")
    {
        auto r = parse_report(build(in));
        CHECK(r.status[1].get("remote-mta") == "dns; mx.example.net");
        CHECK(r.status[1].get("diagnostic-code"));
    }
    SUBCASE("a bare host name gets the dns type")
    {
        in.recipients[0].remote_mta = "mx2.example.net";
        auto r = parse_report(build(in));
        CHECK(r.status[1].get("remote-mta") == "dns; mx2.example.net");
        CHECK(r.parts[0].body.find("host mx2.example.net said: 550") != std::string::npos);
    }
    SUBCASE("neither given")
    {
        in.recipients[0].remote_mta.clear();
        in.recipients[0].diagnostic.clear();
        auto r = parse_report(build(in));
        CHECK_FALSE(r.status[1].get("remote-mta"));
        CHECK_FALSE(r.status[1].get("diagnostic-code"));
        CHECK(r.status[1].get("status") == "5.1.1");
    }
}

TEST_CASE("peer text cannot inject header fields or MIME structure")
{
    auto in = sample();
    in.recipients[0].diagnostic = "550 x\r\nBcc: victim@x\r\n\r\n--fake\nX-Evil: 1\rY-Evil: 2\0Z"s;
    in.recipients[0].remote_mta = "mx.example.net\r\nBcc: victim2@x";
    in.envid = "ENV1\r\nBcc: victim3@x";
    in.original_id = "abc\r\nBcc: victim4@x";
    in.recipients[0].original_recipient = "rfc822;bob@example.net\r\nBcc: victim5@x";
    auto m = build(in);
    auto r = parse_report(m);
    for (auto bad : {"\r\nBcc:", "\r\nX-Evil", "\r\nY-Evil", "\r\n--fake"})
        CHECK(m.find(bad) == std::string::npos);
    CHECK(r.status[1].get("diagnostic-code") == "smtp; 550 x Bcc: victim@x --fake X-Evil: 1 Y-Evil: 2 Z");
    CHECK(r.status[1].get("remote-mta") == "dns; mx.example.net Bcc: victim2@x");
    CHECK(r.status[0].get("original-envelope-id") == "ENV1 Bcc: victim3@x");
    CHECK(r.status[1].get("original-recipient") == "rfc822; bob@example.net Bcc: victim5@x");
    CHECK(r.top.count("bcc") == 0);
    SUBCASE("the sender and the host too")
    {
        in.original_sender = "alice@example.org\r\nBcc: victim6@x";
        in.reporting_mta = "mx.example.org\r\nBcc: victim7@x";
        auto m2 = build(in);
        auto r2 = parse_report(m2);
        CHECK(m2.find("\r\nBcc:") == std::string::npos);
        CHECK(r2.top.count("bcc") == 0);
    }
}

TEST_CASE("the boundary never occurs in the report's body")
{
    auto in = sample();
    // The candidates are "=_postern-<id>-<n>."; plant the first ones.
    const std::string stem = "=_postern-fedcba9876543210-";
    std::string planted;
    SUBCASE("in the original headers")
    {
        planted = "X-Trap: " + stem + "0." + "\r\nX-Trap2: --" + stem + "1.\r\nX-Trap3: " + stem + "2.\r\n";
        in.original_message = planted + original_headers + "\r\nbody\r\n";
    }
    SUBCASE("in a full original's body")
    {
        in.return_full = true;
        planted = "--" + stem + "0.\r\n--" + stem + "1.--\r\n";
        in.original_message = original_headers + "\r\n" + planted;
    }
    SUBCASE("in a diagnostic")
    {
        planted = stem + "0.";
        in.recipients[0].diagnostic = "550 " + planted;
    }
    auto m = build(in);
    auto r = parse_report(m);
    CHECK(m.find(planted) != std::string::npos);
    CHECK(r.boundary.rfind(stem, 0) == 0);
    CHECK(r.boundary != stem + "0.");
    CHECK(r.top.body.find(r.boundary) != std::string::npos);
    // Only the delimiter lines hold it: 3 openers and the close.
    std::size_t count = 0;
    for (auto p = m.find(r.boundary); p != std::string::npos; p = m.find(r.boundary, p + 1))
        ++count;
    CHECK(count == 5); // + the Content-Type parameter
}

TEST_CASE("headers only by default, the whole message with RET=FULL")
{
    auto in = sample();
    SUBCASE("default: text/rfc822-headers")
    {
        auto r = parse_report(build(in));
        CHECK(r.parts[2].get("content-type") == "text/rfc822-headers");
        CHECK(r.parts[2].get("content-description") == "Undelivered Message Headers");
        CHECK(r.parts[2].body.find("secret body line") == std::string::npos);
    }
    SUBCASE("RET=FULL: message/rfc822")
    {
        in.return_full = true;
        auto r = parse_report(build(in));
        CHECK(r.parts[2].get("content-type") == "message/rfc822");
        CHECK(r.parts[2].get("content-description") == "Undelivered Message");
        CHECK(r.parts[2].body == in.original_message);
        auto inner = parse_entity(r.parts[2].body);
        CHECK(inner.get("subject") == "hello");
        CHECK(inner.body == "secret body line\r\n");
    }
    SUBCASE("RET=FULL over the limit falls back to headers")
    {
        in.return_full = true;
        in.return_limit = 64;
        auto r = parse_report(build(in));
        CHECK(r.parts[2].get("content-type") == "text/rfc822-headers");
        CHECK(r.parts[2].body.find("secret body line") == std::string::npos);
        CHECK(r.parts[0].body.find("too large to be returned in full") != std::string::npos);
    }
    SUBCASE("8-bit content is labelled")
    {
        in.original_message = "Subject: gr\xc3\xbc\xc3\x9f""e\r\n\r\nbody\r\n";
        auto m = build(in);
        auto r = parse_report(m);
        CHECK(r.parts[2].get("content-transfer-encoding") == "8bit");
        CHECK(r.top.get("content-transfer-encoding") == "8bit");
        CHECK(dsn_is_eight_bit(m));
        CHECK_FALSE(dsn_is_eight_bit(build(sample())));
    }
}

TEST_CASE("huge header sections are cut at a line boundary")
{
    auto in = sample();
    std::string big;
    for (int i = 0; i < 5000; ++i)
        big += "X-Fill-" + std::to_string(i) + ": " + std::string(60, 'f') + "\r\n";
    in.original_message = original_headers + big + "\r\nbody\r\n";
    SUBCASE("default limit") {}
    SUBCASE("RET=FULL over its limit") {
        in.return_full = true;
        in.return_limit = 1000;
    }
    auto r = parse_report(build(in));
    const auto& h = r.parts[2].body;
    CHECK(h.size() <= 64 * 1024);
    CHECK(h.size() > 60 * 1024);
    CHECK(h.rfind(original_headers, 0) == 0);
    // Ends with a whole line "X-Fill-N: fff...f\r\n".
    auto last_start = h.rfind("\r\nX-Fill-");
    REQUIRE(last_start != std::string::npos);
    CHECK(h.substr(h.size() - 62) == std::string(60, 'f') + "\r\n");
    CHECK(r.parts[0].body.find(in.return_full ? "too large" : "too long") != std::string::npos);
}

TEST_CASE("a malformed original never breaks the report")
{
    auto in = sample();
    in.return_full = true;
    std::string expect_in_copy;
    SUBCASE("no header/body separator")
    {
        in.original_message = "Subject: x\r\nno separator here\r\nstill going";
        expect_in_copy = "still going\r\n";
    }
    SUBCASE("bare LF line ends")
    {
        in.original_message = "Subject: lf\nFrom: a@b\n\nbody\n.\nmore\n";
        expect_in_copy = "Subject: lf\r\nFrom: a@b\r\n\r\nbody\r\n.\r\nmore\r\n";
    }
    SUBCASE("bare CR and NUL bytes")
    {
        in.original_message = "Subject: c\rr\r\n\r\nbo\0dy\r\r\n\0"s;
        expect_in_copy = "Subject: cr\r\n\r\nbody\r\n";
    }
    SUBCASE("a 3 MB line without any line end")
    {
        in.original_message = std::string(3 * 1024 * 1024, 'a');
        expect_in_copy = std::string(900, 'a');
    }
    SUBCASE("a long header line is folded, a long body line broken")
    {
        in.original_message = "Subject: " + std::string(5000, 's') + "\r\n\r\n" + std::string(5000, 'b') + "\r\n";
        expect_in_copy = "\r\n s";
    }
    SUBCASE("deeply nested MIME")
    {
        std::string m = "Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n";
        for (int i = 0; i < 20000; ++i)
            m += "--b" + std::to_string(i) + "\r\nContent-Type: multipart/mixed; boundary=\"b"
                 + std::to_string(i + 1) + "\"\r\n\r\n";
        in.original_message = m;
        expect_in_copy = "--b19999\r\n";
    }
    SUBCASE("empty") { in.original_message.clear(); }
    SUBCASE("only CRLFs") { in.original_message = "\r\n\r\n\r\n"; }
    SUBCASE("headers only, no separator")
    {
        in.return_full = false;
        in.original_message = "Subject: x\nnot a header\n";
        expect_in_copy = "Subject: x\r\nnot a header\r\n";
    }
    CAPTURE(in.original_message.size());
    auto r = parse_report(build(in));
    CHECK(r.parts[2].body.find(expect_in_copy) != std::string::npos);
}

TEST_CASE("every line is CRLF-terminated and shorter than 998 octets")
{
    auto in = sample();
    in.recipients[0].diagnostic = "550 " + std::string(20000, 'x') + " " + std::string(300, 'y');
    in.recipients[0].remote_mta = std::string(3000, 'm');
    in.recipients[0].final_recipient = std::string(2000, 'r') + "@example.net";
    in.envid = std::string(2000, 'e');
    in.reporting_mta = std::string(2000, 'h');
    auto r = parse_report(build(in)); // check_wire() inside
    auto diag = r.status[1].get("diagnostic-code");
    REQUIRE(diag);
    CHECK(diag->size() < 4200); // capped
    CHECK(diag->rfind("smtp; 550 xxx", 0) == 0);
}

TEST_CASE("non-ASCII addresses use the utf-8 address type in xtext form")
{
    auto in = sample();
    in.recipients[0].final_recipient = "b\xc3\xa4r@example.net";
    in.recipients[0].original_recipient = "j\xc3\xb6rg+x=y@example.net";
    in.original_sender = "\xe7\x94\xb0\xe4\xb8\xad@example.jp";
    auto m = build(in);
    auto r = parse_report(m);
    CHECK(r.status[1].get("final-recipient") == "utf-8; b\\x{E4}r@example.net");
    CHECK(r.status[1].get("original-recipient") == "utf-8; j\\x{F6}rg\\x{2B}x\\x{3D}y@example.net");
    CHECK(r.status[0].get("x-postern-sender") == "utf-8; \\x{7530}\\x{4E2D}@example.jp");
    CHECK(r.top.get("to") == "<\xe7\x94\xb0\xe4\xb8\xad@example.jp>"); // RFC 6532 header
    CHECK(r.parts[0].body.find("<b\\x{E4}r@example.net>") != std::string::npos);
    CHECK_FALSE(dsn_is_eight_bit(r.parts[0].body + r.parts[1].body));
    CHECK(dsn_is_eight_bit(m));
}

TEST_CASE("ENVID and ORCPT are reported")
{
    auto in = sample();
    in.envid = "QQ314159";
    in.recipients[0].original_recipient = "rfc822;Bob@Example.NET";
    auto r = parse_report(build(in));
    CHECK(r.status[0].get("original-envelope-id") == "QQ314159");
    CHECK(r.status[1].get("original-recipient") == "rfc822; Bob@Example.NET");
    SUBCASE("a bare ORCPT address gets its type")
    {
        in.recipients[0].original_recipient = "list@example.org";
        auto r2 = parse_report(build(in));
        CHECK(r2.status[1].get("original-recipient") == "rfc822; list@example.org");
    }
}

}

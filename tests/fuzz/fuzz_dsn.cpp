// fuzz_dsn — delivery::build_dsn with every field of bounce_input taken from
// the input: host names, sender, ids, up to four recipients (addresses,
// ORCPT, action, status, remote MTA, diagnostic, dates), RET=FULL, the copy
// limits, and the rest of the input as the original message.
//
// Invariants checked (delivery/bounce.hpp): no report without recipients;
// a report has CRLF line ends only and lines of at most 998 octets; its
// header section holds exactly the fields build_dsn writes, each once (no
// header injection from peer text); the MIME boundary occurs in the body
// only as the four delimiter lines; the delivery-status part has exactly one
// Final-Recipient and one Action field per recipient (no field injection);
// dsn_is_eight_bit() is true exactly when an octet >= 0x80 is present.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_support.hpp"

#include "postern/delivery/bounce.hpp"

namespace {

using namespace postern;

std::size_t count_line_starts(std::string_view s, std::string_view prefix)
{
    std::size_t n = 0;
    std::size_t start = 0;
    while (start < s.size()) {
        auto end = s.find("\r\n", start);
        if (end == std::string_view::npos)
            end = s.size();
        if (s.substr(start, end - start).starts_with(prefix))
            ++n;
        start = end + 2;
    }
    return n;
}

void check_report(const std::string& m, const delivery::bounce_input& in)
{
    POSTERN_FUZZ_CHECK(fuzz::crlf_only(m) && fuzz::ends_with_crlf(m), "bare CR/LF or no final CRLF");
    bool eight = false;
    for (unsigned char c : m)
        eight = eight || c >= 0x80;
    POSTERN_FUZZ_CHECK(delivery::dsn_is_eight_bit(m) == eight, "dsn_is_eight_bit wrong");

    // Lines and the header section.
    const auto header_end = m.find("\r\n\r\n");
    POSTERN_FUZZ_CHECK(header_end != std::string::npos, "no header/body separator");
    std::map<std::string, int> fields;
    std::string content_type; // unfolded value
    std::string* last = nullptr;
    std::size_t start = 0;
    while (start < m.size()) {
        const auto end = m.find("\r\n", start);
        const std::string_view line(m.data() + start, end - start);
        POSTERN_FUZZ_CHECK(line.size() <= 998, "line over 998 octets");
        if (start <= header_end) {
            if (line.empty() || line[0] == ' ' || line[0] == '\t') {
                POSTERN_FUZZ_CHECK(start > 0, "header section starts with a continuation");
                if (last != nullptr)
                    last->append(line);
            } else {
                const auto colon = line.find(':');
                POSTERN_FUZZ_CHECK(colon != std::string_view::npos, "header line without a colon");
                const std::string name(line.substr(0, colon));
                ++fields[name];
                last = nullptr;
                if (name == "Content-Type") {
                    content_type.assign(line.substr(colon + 1));
                    last = &content_type;
                }
            }
        }
        start = end + 2;
    }
    static const std::map<std::string, int> expected{
        {"Date", 1}, {"From", 1}, {"To", 1}, {"Subject", 1}, {"Message-ID", 1}, {"Auto-Submitted", 1},
        {"MIME-Version", 1}, {"Content-Type", 1}};
    auto without_cte = fields;
    without_cte.erase("Content-Transfer-Encoding");
    POSTERN_FUZZ_CHECK(without_cte == expected, "unexpected header fields (injection?)");
    POSTERN_FUZZ_CHECK(fields.count("Content-Transfer-Encoding") == 0 || fields["Content-Transfer-Encoding"] == 1,
                       "repeated Content-Transfer-Encoding");

    // The boundary.
    const std::string key = "boundary=\"";
    const auto b = content_type.find(key);
    POSTERN_FUZZ_CHECK(b != std::string::npos, "no boundary parameter");
    const auto b_end = content_type.find('"', b + key.size());
    POSTERN_FUZZ_CHECK(b_end != std::string::npos, "unterminated boundary parameter");
    const std::string boundary = content_type.substr(b + key.size(), b_end - b - key.size());
    POSTERN_FUZZ_CHECK(!boundary.empty(), "empty boundary");
    const std::string_view body(m.data() + header_end + 4, m.size() - header_end - 4);
    std::vector<std::size_t> at;
    for (auto p = body.find(boundary); p != std::string_view::npos; p = body.find(boundary, p + 1))
        at.push_back(p);
    POSTERN_FUZZ_CHECK(at.size() == 4, "boundary occurs in the body other than as delimiters");
    for (auto p : at)
        POSTERN_FUZZ_CHECK(p >= 4 && body.substr(p - 4, 4) == "\r\n--", "boundary not at a delimiter line");
    POSTERN_FUZZ_CHECK(body.substr(at[3] + boundary.size()) == "--\r\n", "no close delimiter at the end");

    // The delivery-status part: one Final-Recipient and one Action per recipient.
    const auto part2 = body.substr(at[1], at[2] - at[1]);
    POSTERN_FUZZ_CHECK(count_line_starts(part2, "Final-Recipient:") == in.recipients.size(), "Final-Recipient count");
    POSTERN_FUZZ_CHECK(count_line_starts(part2, "Action:") == in.recipients.size(), "Action count");
    POSTERN_FUZZ_CHECK(count_line_starts(part2, "Reporting-MTA:") == 1, "Reporting-MTA count");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzedDataProvider fdp(data, size);
    delivery::bounce_input in;
    in.reporting_mta = fdp.ConsumeRandomLengthString(80);
    in.original_sender = fdp.ConsumeRandomLengthString(300);
    in.original_id = fdp.ConsumeRandomLengthString(40);
    in.envid = fdp.ConsumeRandomLengthString(120);
    in.arrival_date = fdp.ConsumeIntegralInRange<std::int64_t>(-1, 4102444800);
    in.return_full = fdp.ConsumeBool();
    static constexpr std::size_t limits[] = {0, 1, 40, 500, 4096, 64 * 1024, 10 * 1024 * 1024};
    in.header_limit = fdp.PickValueInArray(limits);
    in.return_limit = fdp.PickValueInArray(limits);
    const auto n = fdp.ConsumeIntegralInRange<std::size_t>(0, 4);
    for (std::size_t i = 0; i < n; ++i) {
        delivery::dsn_recipient r;
        r.final_recipient = fdp.ConsumeRandomLengthString(300);
        r.original_recipient = fdp.ConsumeRandomLengthString(300);
        r.action = static_cast<delivery::dsn_action>(fdp.ConsumeIntegralInRange<int>(0, 4));
        r.status = fdp.ConsumeRandomLengthString(12);
        r.remote_mta = fdp.ConsumeRandomLengthString(120);
        r.diagnostic = fdp.ConsumeRandomLengthString(1200);
        r.last_attempt = fdp.ConsumeIntegralInRange<std::int64_t>(-1, 4102444800);
        r.will_retry_until = fdp.ConsumeIntegralInRange<std::int64_t>(-1, 4102444800);
        in.recipients.push_back(std::move(r));
    }
    const auto unique = fdp.ConsumeRandomLengthString(80);
    const auto now = util::from_unix_seconds(fdp.ConsumeIntegralInRange<std::int64_t>(0, 4102444800));
    in.original_message = fdp.ConsumeRemainingBytesAsString();

    const auto report = delivery::build_dsn(in, now, unique);
    if (in.recipients.empty())
        POSTERN_FUZZ_CHECK(!report, "report without recipients");
    if (report)
        check_report(*report, in);
    return 0;
}

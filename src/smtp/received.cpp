#include "postern/smtp/received.hpp"

#include <string>

namespace postern::smtp {

namespace {

// The HELO name is the client's word: keep it from breaking the header
// (no CR/LF, no comment or angle-bracket syntax, printable ASCII only).
void append_sanitised(std::string& out, std::string_view s)
{
    for (unsigned char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']';
        out.push_back(ok ? static_cast<char>(c) : '?');
    }
}

// "\r\n\tfor <r>; date\r\n": the end both kinds share.
void append_for_and_date(std::string& h, std::string_view for_rcpt, std::string_view date)
{
    if (!for_rcpt.empty()) {
        h.append("\r\n\tfor <");
        h.append(for_rcpt);
        h.append(">");
    }
    h.append("; ");
    h.append(date);
    h.append("\r\n");
}

} // namespace

std::string received_header(const received_fields& f)
{
    std::string h;
    h.reserve(200 + f.helo.size() + f.for_rcpt.size() + f.tls.size());
    h.append("Received: from ");
    append_sanitised(h, f.helo);
    // RFC 5321 4.4 TCP-info: an address-literal, "IPv6:" tagged for IPv6.
    h.append(" ([");
    if (f.client_ip.find(':') != std::string_view::npos)
        h.append("IPv6:");
    h.append(f.client_ip);
    h.append("])\r\n\tby ");
    h.append(f.by);
    h.append(" (postern) with ");
    h.append(f.protocol);
    h.append(" id ");
    h.append(f.id);
    if (!f.tls.empty()) {
        // Sendmail's layout; the words come from our TLS library, but a
        // cipher name must still never break the header or the comment.
        auto sp = f.tls.find(' ');
        h.append("\r\n\t(version=");
        append_sanitised(h, f.tls.substr(0, sp));
        if (sp != std::string_view::npos) {
            h.append(" cipher=");
            append_sanitised(h, f.tls.substr(sp + 1));
        }
        h.append(")");
    }
    append_for_and_date(h, f.for_rcpt, f.date);
    return h;
}

std::string local_received_header(const local_received_fields& f)
{
    std::string h;
    h.reserve(160 + f.login.size() + f.for_rcpt.size());
    h.append("Received: from local user ");
    append_sanitised(h, f.login);
    h.append(" (uid ");
    h.append(std::to_string(f.uid));
    h.append(")\r\n\tby ");
    h.append(f.by);
    h.append(" (postern) with local id ");
    h.append(f.id);
    append_for_and_date(h, f.for_rcpt, f.date);
    return h;
}

} // namespace postern::smtp

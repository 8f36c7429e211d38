#include "postern/mime/imap.hpp"

#include <vector>

#include "postern/mime/address.hpp"
#include "postern/mime/header.hpp"

namespace postern::mime {

namespace {

constexpr std::size_t max_quoted = 1024;

void append_string(std::string& out, std::string_view s)
{
    bool quotable = s.size() <= max_quoted;
    for (std::size_t i = 0; quotable && i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        quotable = c != 0 && c != '\r' && c != '\n' && c < 0x80;
    }
    if (quotable) { // RFC 9051 4.3 quoted
        out.push_back('"');
        for (const char c : s) {
            if (c == '"' || c == '\\')
                out.push_back('\\');
            out.push_back(c);
        }
        out.push_back('"');
        return;
    }
    out += '{' + std::to_string(s.size()) + "}\r\n"; // RFC 9051 4.3 literal
    for (const char c : s)
        out.push_back(c == '\0' ? '\x80' : c);
}

void append_nstring(std::string& out, std::string_view s)
{
    if (s.empty())
        out += "NIL";
    else
        append_string(out, s);
}

void append_address(std::string& out, const address& a)
{
    switch (a.what) {
    case address::kind::mailbox:
        out.push_back('(');
        append_nstring(out, a.name);
        out.push_back(' ');
        append_nstring(out, a.route);
        out.push_back(' ');
        append_string(out, a.mailbox);
        out.push_back(' ');
        append_string(out, a.host);
        out.push_back(')');
        return;
    case address::kind::group_start: // RFC 3501 7.4.2: mailbox holds the group name
        out += "(NIL NIL ";
        append_string(out, a.name);
        out += " NIL)";
        return;
    case address::kind::group_end:
        out += "(NIL NIL NIL NIL)";
        return;
    }
}

std::vector<address> addresses(std::string_view text, const part& m, std::string_view name)
{
    if (auto f = find_field(text, m.header, name))
        return parse_address_list(slice(text, f->value));
    return {};
}

void append_addresses(std::string& out, const std::vector<address>& list)
{
    if (list.empty()) {
        out += "NIL";
        return;
    }
    out.push_back('(');
    for (const auto& a : list)
        append_address(out, a);
    out.push_back(')');
}

void append_field(std::string& out, std::string_view text, const part& m, std::string_view name)
{
    if (auto v = field_value(text, m.header, name))
        append_string(out, *v);
    else
        out += "NIL";
}

void append_params(std::string& out, const std::vector<parameter>& params)
{
    if (params.empty()) {
        out += "NIL";
        return;
    }
    out.push_back('(');
    for (std::size_t i = 0; i < params.size(); ++i) {
        if (i > 0)
            out.push_back(' ');
        append_string(out, params[i].name);
        out.push_back(' ');
        append_string(out, params[i].value);
    }
    out.push_back(')');
}

// RFC 9051 9 body-ext-1part / body-ext-mpart after md5 or params:
// SP body-fld-dsp SP body-fld-lang SP body-fld-loc.
void append_dsp_lang_loc(std::string& out, const part& p)
{
    out.push_back(' ');
    if (p.disp.type.empty()) {
        out += "NIL";
    } else {
        out.push_back('(');
        append_string(out, p.disp.type);
        out.push_back(' ');
        append_params(out, p.disp.params);
        out.push_back(')');
    }
    out.push_back(' ');
    if (p.language.empty()) {
        out += "NIL";
    } else {
        out.push_back('(');
        for (std::size_t i = 0; i < p.language.size(); ++i) {
            if (i > 0)
                out.push_back(' ');
            append_string(out, p.language[i]);
        }
        out.push_back(')');
    }
    out.push_back(' ');
    append_nstring(out, p.location);
}

constexpr std::string_view empty_body = R"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0))";
constexpr std::string_view empty_bodystructure =
    R"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL))";

void append_envelope(std::string& out, std::string_view text, const part& m);

// Depth is bounded by parse()'s limits::max_depth.
void append_body(std::string& out, std::string_view text, const part& p, bool extended)
{
    out.push_back('(');
    switch (p.kind) {
    case part_kind::multipart:
        if (p.children.empty())
            out += extended ? empty_bodystructure : empty_body;
        for (const auto& c : p.children)
            append_body(out, text, c, extended);
        out.push_back(' ');
        append_string(out, p.subtype);
        if (extended) {
            out.push_back(' ');
            append_params(out, p.params);
            append_dsp_lang_loc(out, p);
        }
        out.push_back(')');
        return;
    case part_kind::single:
    case part_kind::message:
        break;
    }
    // RFC 9051 9 body-type-basic / body-type-msg / body-type-text.
    append_string(out, p.type);
    out.push_back(' ');
    append_string(out, p.subtype);
    out.push_back(' ');
    append_params(out, p.params);
    out.push_back(' ');
    append_nstring(out, p.id);
    out.push_back(' ');
    append_nstring(out, p.description);
    out.push_back(' ');
    append_string(out, p.encoding);
    out += ' ' + std::to_string(p.size());
    if (p.kind == part_kind::message && !p.children.empty()) {
        out.push_back(' ');
        append_envelope(out, text, p.children.front());
        out.push_back(' ');
        append_body(out, text, p.children.front(), extended);
        out += ' ' + std::to_string(p.lines);
    } else if (p.is_text()) {
        out += ' ' + std::to_string(p.lines);
    }
    if (extended) {
        out.push_back(' ');
        append_nstring(out, p.md5);
        append_dsp_lang_loc(out, p);
    }
    out.push_back(')');
}

void append_envelope(std::string& out, std::string_view text, const part& m)
{
    out.push_back('(');
    append_field(out, text, m, "Date");
    out.push_back(' ');
    append_field(out, text, m, "Subject");
    const auto from = addresses(text, m, "From");
    auto sender = addresses(text, m, "Sender");
    auto reply_to = addresses(text, m, "Reply-To");
    out.push_back(' ');
    append_addresses(out, from);
    out.push_back(' ');
    append_addresses(out, sender.empty() ? from : sender);
    out.push_back(' ');
    append_addresses(out, reply_to.empty() ? from : reply_to);
    for (const char* name : {"To", "Cc", "Bcc"}) {
        out.push_back(' ');
        append_addresses(out, addresses(text, m, name));
    }
    out.push_back(' ');
    append_field(out, text, m, "In-Reply-To");
    out.push_back(' ');
    append_field(out, text, m, "Message-ID");
    out.push_back(')');
}

} // namespace

std::string imap_string(std::string_view s)
{
    std::string out;
    append_string(out, s);
    return out;
}

std::string imap_nstring(std::string_view s)
{
    std::string out;
    append_nstring(out, s);
    return out;
}

std::string envelope(std::string_view text, const part& message)
{
    std::string out;
    append_envelope(out, text, message);
    return out;
}

std::string bodystructure(std::string_view text, const part& p, bool extended)
{
    std::string out;
    append_body(out, text, p, extended);
    return out;
}

} // namespace postern::mime

// mime/content.hpp — the structured MIME header fields: Content-Type (RFC
// 2045 5.1), Content-Disposition (RFC 2183 2), Content-Transfer-Encoding
// (RFC 2045 6.1), Content-Language (RFC 3282 2), with their parameters.
// Syntax: RFC 2045 5.1 tokens and quoted-strings, separated by ";", with
// comments and folding white space anywhere between them (RFC 5322 3.2.2).
// Parameters (RFC 2231): "name*0=", "name*1*=" continuations are joined in
// order (up to the first missing index; at most 1000 pieces) and
// "name*=charset'lang'%XX" values percent-decoded and converted to UTF-8
// (utf-8, us-ascii, iso-8859-1; another charset keeps the decoded octets).
// Names come back lower-cased and without any "*" suffix, values as given
// (quotes and quoted-pairs removed); the RFC 2231 form wins over a plain
// parameter of the same name, which keeps its place in the list. Parsing is
// lenient: a value that is neither token nor quoted-string is taken up to
// the next ";"; nothing here fails on any input.
// Pure; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::mime {

struct parameter {
    std::string name;  // lower-case
    std::string value; // decoded
    friend bool operator==(const parameter&, const parameter&) = default;
};

// The parameters after a value: text from its first ";" on.
std::vector<parameter> parse_parameters(std::string_view text);
// The value of the parameter name (case-insensitive), or nullptr.
const std::string* find_parameter(const std::vector<parameter>& params, std::string_view name) noexcept;

struct content_type {
    std::string type;    // lower-case
    std::string subtype; // lower-case
    std::vector<parameter> params;
};
// "type/subtype *(; parameter)"; nullopt when type or subtype is missing or
// not a token (RFC 2045 5.2 then wants the default, text/plain).
std::optional<content_type> parse_content_type(std::string_view value);

struct disposition {
    std::string type; // lower-case ("inline", "attachment", ...); empty when none
    std::vector<parameter> params;
};
disposition parse_disposition(std::string_view value);

// The mechanism token lower-cased; "7bit" (RFC 2045 6.1's default) when the
// value is empty or not a single token (as Dovecot does).
std::string parse_transfer_encoding(std::string_view value);

// RFC 3282 2: the comma-separated language tags, in order.
std::vector<std::string> parse_language(std::string_view value);

} // namespace postern::mime

#include "postern/imap/command.hpp"

#include <array>
#include <initializer_list>
#include <string>
#include <utility>

#include "chars.hpp"
#include "postern/mime/imap.hpp"
#include "postern/util/strings.hpp"

namespace postern::imap {

namespace {

// ---- the cursor over a frame -----------------------------------------------

std::string upper(std::string_view s)
{
    std::string out(s);
    for (char& c : out)
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    return out;
}

bool is_name_char(char c) noexcept
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || chars::is_digit(c) || c == '.' || c == '-' ||
           c == '_';
}

bool is_seq_char(char c) noexcept
{
    return chars::is_digit(c) || c == ':' || c == ',' || c == '*' || c == '$';
}

bool is_base64_char(char c) noexcept
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || chars::is_digit(c) || c == '+' || c == '/' ||
           c == '=';
}

constexpr std::array<std::string_view, 12> months{"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                  "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};

class parser {
public:
    parser(frame& f, const parse_limits& lim) : f_(f), t_(f.text), lim_(lim) {}

    const parse_limits& limits() const noexcept { return lim_; }
    const std::string& error() const noexcept { return err_; }
    response_code error_code() const noexcept { return code_; }

    bool at_end() const noexcept { return pos_ >= t_.size(); }
    char peek(std::size_t ahead = 0) const noexcept
    {
        return pos_ + ahead < t_.size() ? t_[pos_ + ahead] : '\0';
    }

    bool fail(std::string_view why, response_code code = response_code::none)
    {
        if (err_.empty()) {
            err_ = why;
            code_ = code;
        }
        return false;
    }

    // One SP (RFC 9051 9: exactly one between arguments).
    bool sp()
    {
        if (peek() == ' ') {
            ++pos_;
            return true;
        }
        return fail(at_end() || peek() == ')' || peek() == ']' ? "Missing argument" : "Expected a space");
    }
    bool take(char c)
    {
        if (at_end() || t_[pos_] != c)
            return false;
        ++pos_;
        return true;
    }
    bool expect(char c, std::string_view why) { return take(c) || fail(why); }
    bool end() { return at_end() || fail("Unexpected extra arguments"); }

    std::string_view run(bool (*pred)(char) noexcept)
    {
        const auto begin = pos_;
        while (!at_end() && pred(t_[pos_]))
            ++pos_;
        return t_.substr(begin, pos_ - begin);
    }

    // The upper-cased atom at the cursor, not consumed.
    std::string peek_atom() const
    {
        auto i = pos_;
        while (i < t_.size() && chars::is_atom_char(t_[i]))
            ++i;
        return upper(t_.substr(pos_, i - pos_));
    }
    void skip(std::size_t n) noexcept { pos_ += n; }

    // One more SEARCH key; false past max_search_keys.
    bool count_key()
    {
        return ++keys_ <= lim_.max_search_keys || fail("Too many SEARCH keys", response_code::limit);
    }

    bool atom(std::string& out, std::string_view what)
    {
        const auto a = run(chars::is_atom_char);
        if (a.empty())
            return fail(missing(what));
        out = a;
        return true;
    }
    bool keyword(std::string& out, std::string_view what)
    {
        if (!atom(out, what))
            return false;
        out = upper(out);
        return true;
    }

    // RFC 9051 9 quoted; UTF-8 allowed (IMAP4rev2, RFC 6855 3).
    bool quoted(std::string& out)
    {
        out.clear();
        ++pos_; // DQUOTE
        while (!at_end()) {
            const char c = t_[pos_];
            if (c == '"') {
                ++pos_;
                return true;
            }
            if (c == '\\') {
                const char n = peek(1);
                if (n != '"' && n != '\\')
                    return fail("Invalid escape in quoted string");
                out += n;
                pos_ += 2;
                continue;
            }
            if (c == '\r' || c == '\n' || c == '\0')
                return fail("Unterminated quoted string");
            const auto len = chars::utf8_length(t_, pos_);
            if (len == 0)
                return fail("Invalid UTF-8 in quoted string");
            out.append(t_.substr(pos_, len));
            pos_ += len;
        }
        return fail("Unterminated quoted string");
    }

    // RFC 9051 9 literal / RFC 3516 literal8 (when binary is not null).
    bool literal(std::string& out, bool* binary)
    {
        bool eight = false;
        if (peek() == '~') {
            if (!binary)
                return fail("literal8 not allowed here");
            eight = true;
            ++pos_;
        }
        if (!take('{'))
            return fail("Expected a literal");
        const auto digits = run([](char c) noexcept { return chars::is_digit(c); });
        take('+');
        if (digits.empty() || !take('}') || !take('\n'))
            return fail("Invalid literal");
        if (lit_ >= f_.literals.size())
            return fail("Invalid literal");
        out = std::move(f_.literals[lit_++]);
        if (util::parse_uint(digits) != out.size())
            return fail("Invalid literal");
        if (!eight && out.find('\0') != std::string::npos)
            return fail("NUL in literal"); // RFC 9051 4.3: CHAR8 excludes NUL
        if (binary)
            *binary = eight;
        return true;
    }

    bool string(std::string& out, std::string_view what)
    {
        if (peek() == '"')
            return quoted(out);
        if (peek() == '{')
            return literal(out, nullptr);
        return fail(at_end() ? missing(what) : "Expected a string");
    }

    // astring = 1*ASTRING-CHAR / string
    bool astring(std::string& out, std::string_view what)
    {
        if (peek() == '"' || peek() == '{')
            return string(out, what);
        const auto a = run(chars::is_astring_char);
        if (a.empty())
            return fail(at_end() || peek() == ')' ? missing(what) : "Invalid characters in " + std::string(what));
        out = a;
        return true;
    }

    // nstring = string / nil
    bool nstring(std::optional<std::string>& out, std::string_view what)
    {
        if (peek_atom() == "NIL") {
            skip(3);
            out.reset();
            return true;
        }
        std::string s;
        if (!string(s, what))
            return false;
        out = std::move(s);
        return true;
    }

    // mailbox = "INBOX" / astring (RFC 9051 9: INBOX is case-insensitive).
    bool mailbox(std::string& out)
    {
        if (!astring(out, "mailbox name"))
            return false;
        if (util::iequals(out, "INBOX"))
            out = "INBOX";
        return true;
    }

    // list-mailbox = 1*list-char / string
    bool list_mailbox(std::string& out)
    {
        if (peek() == '"' || peek() == '{')
            return string(out, "mailbox pattern");
        const auto a = run(chars::is_list_char);
        if (a.empty())
            return fail(at_end() ? "Missing mailbox pattern" : "Invalid mailbox pattern");
        out = a;
        return true;
    }

    bool number64(std::uint64_t& out, std::string_view what)
    {
        const auto d = run([](char c) noexcept { return chars::is_digit(c); });
        const auto v = d.empty() ? std::nullopt : util::parse_uint(d);
        // RFC 9051 9 number64: 0 <= n <= 9,223,372,036,854,775,807
        if (!v || *v > 0x7fffffffffffffffULL)
            return fail(d.empty() ? missing(what) : "Invalid " + std::string(what));
        out = *v;
        return true;
    }

    bool sequence(sequence_set& out)
    {
        const auto s = run(is_seq_char);
        if (s.empty())
            return fail(at_end() ? "Missing sequence set" : "Invalid sequence set");
        auto r = parse_sequence_set(s, lim_.max_ranges);
        if (!r) {
            if (r.error() == util::errc::limit)
                return fail("Too many ranges in sequence set", response_code::limit);
            return fail("Invalid sequence set");
        }
        out = std::move(*r);
        return true;
    }

    // flag = "\Answered" / ... / flag-keyword / flag-extension ("\" atom)
    bool flag(std::string& out)
    {
        const bool system = take('\\');
        const auto a = run(chars::is_atom_char);
        if (a.empty())
            return fail(at_end() ? "Missing flag" : "Invalid flag");
        out = system ? "\\" + std::string(a) : std::string(a);
        return true;
    }

    // flag-list = "(" [flag *(SP flag)] ")"
    bool flag_list(std::vector<std::string>& out)
    {
        if (!expect('(', "Expected a flag list"))
            return false;
        if (take(')'))
            return true;
        for (;;) {
            std::string f;
            if (!flag(f))
                return false;
            out.push_back(std::move(f));
            if (take(')'))
                return true;
            if (!sp())
                return false;
        }
    }

    bool digits(int& out, std::size_t min, std::size_t max)
    {
        std::size_t n = 0;
        out = 0;
        while (n < max && chars::is_digit(peek())) {
            out = out * 10 + (peek() - '0');
            ++pos_;
            ++n;
        }
        return n >= min;
    }

    bool month(int& out)
    {
        const auto m = upper(t_.substr(pos_, 3));
        for (std::size_t i = 0; i < months.size(); ++i)
            if (m == months[i]) {
                out = static_cast<int>(i) + 1;
                pos_ += 3;
                return true;
            }
        return false;
    }

    // date = date-text / DQUOTE date-text DQUOTE; date-text = date-day "-"
    // date-month "-" date-year
    bool day(imap::date& out)
    {
        const bool q = take('"');
        if (!digits(out.day, 1, 2) || out.day < 1 || out.day > 31 || !take('-') || !month(out.month) ||
            !take('-') || !digits(out.year, 4, 4) || (q && !take('"')))
            return fail("Invalid date");
        return true;
    }

    // date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP
    // time SP zone DQUOTE
    bool date_time(imap::date_time& out)
    {
        if (!take('"'))
            return fail("Invalid date-time");
        take(' '); // date-day-fixed = (SP DIGIT) / 2DIGIT
        int zone = 0;
        const bool ok = digits(out.day.day, 1, 2) && out.day.day >= 1 && out.day.day <= 31 && take('-') &&
                        month(out.day.month) && take('-') && digits(out.day.year, 4, 4) && take(' ') &&
                        digits(out.hour, 2, 2) && take(':') && digits(out.minute, 2, 2) && take(':') &&
                        digits(out.second, 2, 2) && take(' ');
        if (!ok)
            return fail("Invalid date-time");
        const char sign = peek();
        if ((sign != '+' && sign != '-') || (++pos_, !digits(zone, 4, 4)) || !take('"'))
            return fail("Invalid date-time");
        if (out.hour > 23 || out.minute > 59 || out.second > 60 || zone % 100 > 59)
            return fail("Invalid date-time");
        out.zone_minutes = (zone / 100 * 60 + zone % 100) * (sign == '-' ? -1 : 1);
        return true;
    }

    // RFC 4466 2.1 tagged-ext-val, kept as text: a simple value (sequence
    // set, number) or a parenthesised list of astrings and lists. Strings
    // are re-encoded with mime::imap_string.
    bool ext_value(std::string& out, std::size_t depth = 0)
    {
        if (depth > lim_.max_search_depth)
            return fail("Parameter nested too deeply", response_code::limit);
        if (!take('(')) {
            const auto s = run(is_seq_char);
            if (s.empty())
                return fail("Invalid parameter value");
            out += s;
            return true;
        }
        out += '(';
        bool first = true;
        while (!take(')')) {
            if (!first && !sp())
                return false;
            if (!first)
                out += ' ';
            first = false;
            if (peek() == '(') {
                if (!ext_value(out, depth + 1))
                    return false;
                continue;
            }
            if (peek() == '\\') { // RFC 6154 5.3 use-attr: \Drafts and friends
                std::string f;
                if (!flag(f))
                    return false;
                out += f;
                continue;
            }
            const bool is_str = peek() == '"' || peek() == '{';
            std::string s;
            if (!astring(s, "parameter value"))
                return false;
            out += is_str ? mime::imap_string(s) : s;
        }
        out += ')';
        return true;
    }

    // "(" param *(SP param) ")", param = name [SP value] (RFC 4466 2.1).
    bool ext_params(std::vector<ext_param>& out)
    {
        if (!expect('(', "Expected a parameter list"))
            return false;
        if (take(')'))
            return true;
        for (;;) {
            ext_param p;
            if (!keyword(p.name, "parameter"))
                return false;
            const char next = peek(1);
            if (peek() == ' ' && (next == '(' || is_seq_char(next))) {
                skip(1);
                if (!ext_value(p.value))
                    return false;
            }
            out.push_back(std::move(p));
            if (take(')'))
                return true;
            if (!sp())
                return false;
        }
    }

private:
    static std::string missing(std::string_view what) { return "Missing " + std::string(what); }

    frame& f_;
    std::string_view t_;
    const parse_limits& lim_;
    std::size_t pos_ = 0;
    std::size_t lit_ = 0;
    std::size_t keys_ = 0;
    std::string err_;
    response_code code_ = response_code::none;
};

// ---- arguments per verb ------------------------------------------------------

bool parse_none(parser&, command&)
{
    return true;
}

// RFC 9051 6.2.2; RFC 4959 3: initial response, "=" for an empty one.
bool parse_authenticate(parser& p, command& c)
{
    authenticate_args a;
    if (!p.sp() || !p.keyword(a.mechanism, "mechanism"))
        return false;
    if (p.take(' ')) {
        const auto ir = p.run(is_base64_char);
        if (ir.empty())
            return p.fail("Invalid initial response");
        a.initial_response = ir == "=" ? std::string() : std::string(ir);
    }
    c.args = std::move(a);
    return true;
}

bool parse_login(parser& p, command& c)
{
    login_args a;
    if (!p.sp() || !p.astring(a.user, "user name") || !p.sp() || !p.astring(a.password, "password"))
        return false;
    c.args = std::move(a);
    return true;
}

// RFC 5161 3.1 enable = "ENABLE" 1*(SP capability)
bool parse_enable(parser& p, command& c)
{
    enable_args a;
    do {
        std::string cap;
        if (!p.sp() || !p.keyword(cap, "capability"))
            return false;
        a.capabilities.push_back(std::move(cap));
    } while (p.peek() == ' ');
    c.args = std::move(a);
    return true;
}

// RFC 2971 3.1 / 3.3: at most 30 pairs, fields of 30 and values of 1024
// octets.
bool parse_id(parser& p, command& c)
{
    id_args a;
    if (!p.sp())
        return false;
    if (p.peek_atom() == "NIL") {
        p.skip(3);
        c.args = std::move(a);
        return true;
    }
    if (!p.expect('(', "Expected NIL or a parameter list"))
        return false;
    while (!p.take(')')) {
        if (!a.fields.empty() && !p.sp())
            return false;
        std::string field;
        std::optional<std::string> value;
        if (!p.string(field, "ID field") || !p.sp() || !p.nstring(value, "ID value"))
            return false;
        if (field.size() > 30 || (value && value->size() > 1024) || a.fields.size() >= 30)
            return p.fail("ID parameters too long", response_code::limit);
        a.fields.emplace_back(std::move(field), std::move(value));
    }
    c.args = std::move(a);
    return true;
}

// mailbox [SP (params)]: RFC 4466 2.1 select-params (SELECT, EXAMINE) and
// 2.2 create-params (CREATE; RFC 6154 5.3 USE) share the grammar.
template <class Args>
bool parse_mailbox_params(parser& p, command& c)
{
    Args a;
    if (!p.sp() || !p.mailbox(a.mailbox))
        return false;
    if (p.take(' ') && !p.ext_params(a.params))
        return false;
    c.args = std::move(a);
    return true;
}

bool parse_mailbox_only(parser& p, command& c)
{
    mailbox_args a;
    if (!p.sp() || !p.mailbox(a.mailbox))
        return false;
    c.args = std::move(a);
    return true;
}

bool parse_rename(parser& p, command& c)
{
    rename_args a;
    if (!p.sp() || !p.mailbox(a.from) || !p.sp() || !p.mailbox(a.to))
        return false;
    c.args = std::move(a);
    return true;
}

struct status_row {
    std::string_view name;
    status_item item;
};

constexpr auto status_items = std::to_array<status_row>({
    {"MESSAGES", status_item::messages},
    {"UIDNEXT", status_item::uidnext},
    {"UIDVALIDITY", status_item::uidvalidity},
    {"UNSEEN", status_item::unseen},
    {"DELETED", status_item::deleted},             // RFC 9051 6.3.11
    {"SIZE", status_item::size},                   // RFC 9051 6.3.11 (RFC 8438)
    {"RECENT", status_item::recent},               // RFC 3501 6.3.10
    {"HIGHESTMODSEQ", status_item::highestmodseq}, // RFC 7162 3.1.6
});

// "(" status-att *(SP status-att) ")"
bool status_list(parser& p, std::vector<status_item>& out)
{
    if (!p.expect('(', "Expected a list of status items"))
        return false;
    do {
        std::string name;
        if (!p.keyword(name, "status item"))
            return false;
        bool known = false;
        for (const auto& row : status_items)
            if (row.name == name) {
                out.push_back(row.item);
                known = true;
            }
        if (!known)
            return p.fail("Unknown status item " + name);
    } while (p.take(' '));
    return p.expect(')', "Expected ')' after status items");
}

bool parse_status(parser& p, command& c)
{
    status_args a;
    if (!p.sp() || !p.mailbox(a.mailbox) || !p.sp() || !status_list(p, a.items))
        return false;
    c.args = std::move(a);
    return true;
}

constexpr std::array<std::string_view, 4> list_selection{"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"};
constexpr std::array<std::string_view, 5> list_return{"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS", "MYRIGHTS"};

template <std::size_t N>
bool known(const std::array<std::string_view, N>& names, std::string_view s)
{
    for (auto n : names)
        if (n == s)
            return true;
    return false;
}

// RFC 5258 3: list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
// [SP list-return-opts]; RFC 5819 STATUS return option.
bool parse_list(parser& p, command& c)
{
    list_args a;
    if (!p.sp())
        return false;
    if (p.take('(')) {
        a.extended = true;
        while (!p.take(')')) {
            if (!a.selection.empty() && !p.sp())
                return false;
            std::string opt;
            if (!p.keyword(opt, "selection option"))
                return false;
            if (!known(list_selection, opt))
                return p.fail("Unknown LIST selection option " + opt); // RFC 5258 3
            a.selection.push_back(std::move(opt));
        }
        bool recursive = false;
        bool other = false;
        for (const auto& s : a.selection) {
            recursive = recursive || s == "RECURSIVEMATCH";
            other = other || (s != "RECURSIVEMATCH" && s != "REMOTE");
        }
        if (recursive && !other) // RFC 5258 3: never alone (or with REMOTE only)
            return p.fail("RECURSIVEMATCH needs another selection option");
        if (!p.sp())
            return false;
    }
    if (!p.astring(a.reference, "reference") || !p.sp())
        return false;
    if (p.take('(')) {
        a.extended = true;
        do {
            std::string pat;
            if (!p.list_mailbox(pat))
                return false;
            a.patterns.push_back(std::move(pat));
        } while (p.take(' '));
        if (!p.expect(')', "Expected ')' after patterns"))
            return false;
    } else {
        std::string pat;
        if (!p.list_mailbox(pat))
            return false;
        a.patterns.push_back(std::move(pat));
    }
    if (p.take(' ')) {
        std::string ret;
        if (!p.keyword(ret, "RETURN") || ret != "RETURN")
            return p.fail("Expected RETURN");
        a.extended = true;
        if (!p.sp() || !p.expect('(', "Expected '(' after RETURN"))
            return false;
        while (!p.take(')')) {
            if (!a.returns.empty() && !p.sp())
                return false;
            std::string opt;
            if (!p.keyword(opt, "return option"))
                return false;
            if (!known(list_return, opt))
                return p.fail("Unknown LIST return option " + opt);
            if (opt == "STATUS" && (!p.sp() || !status_list(p, a.status)))
                return false;
            a.returns.push_back(std::move(opt));
        }
    }
    c.args = std::move(a);
    return true;
}

// RFC 3501 6.3.9 lsub = "LSUB" SP mailbox SP list-mailbox
bool parse_lsub(parser& p, command& c)
{
    list_args a;
    std::string pat;
    if (!p.sp() || !p.astring(a.reference, "reference") || !p.sp() || !p.list_mailbox(pat))
        return false;
    a.patterns.push_back(std::move(pat));
    c.args = std::move(a);
    return true;
}

// RFC 9051 9 append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP
// literal; RFC 3516 4.4 literal8.
bool parse_append(parser& p, command& c)
{
    append_args a;
    if (!p.sp() || !p.mailbox(a.mailbox) || !p.sp())
        return false;
    if (p.peek() == '(') {
        if (!p.flag_list(a.flags) || !p.sp())
            return false;
    }
    if (p.peek() == '"') {
        date_time dt;
        if (!p.date_time(dt) || !p.sp())
            return false;
        a.internal_date = dt;
    }
    if (p.peek() != '{' && p.peek() != '~')
        return p.fail(p.at_end() ? "Missing message literal" : "APPEND needs the message as a literal");
    if (!p.literal(a.message, &a.binary))
        return false;
    c.args = std::move(a);
    return true;
}

// UID EXPUNGE sequence-set (RFC 4315 2.1); EXPUNGE alone.
bool parse_expunge(parser& p, command& c)
{
    if (!c.uid)
        return true;
    expunge_args a;
    if (!p.sp() || !p.sequence(a.set))
        return false;
    c.args = std::move(a);
    return true;
}

bool parse_copy(parser& p, command& c)
{
    copy_args a;
    if (!p.sp() || !p.sequence(a.set) || !p.sp() || !p.mailbox(a.mailbox))
        return false;
    c.args = std::move(a);
    return true;
}

// ---- SEARCH ----------------------------------------------------------------

enum class key_arg { none, astring, date, number, keyword, header, sequence, one_key, two_keys, modseq };

struct search_row {
    std::string_view name;
    search_op op;
    key_arg arg;
};

// RFC 9051 6.4.4 / 9 search-key; NEW OLD RECENT UNKEYWORD from RFC 3501.
constexpr auto search_keys = std::to_array<search_row>({
    {"ALL", search_op::all, key_arg::none},
    {"ANSWERED", search_op::answered, key_arg::none},
    {"BCC", search_op::bcc, key_arg::astring},
    {"BEFORE", search_op::before, key_arg::date},
    {"BODY", search_op::body, key_arg::astring},
    {"CC", search_op::cc, key_arg::astring},
    {"DELETED", search_op::deleted, key_arg::none},
    {"DRAFT", search_op::draft, key_arg::none},
    {"FLAGGED", search_op::flagged, key_arg::none},
    {"FROM", search_op::from, key_arg::astring},
    {"HEADER", search_op::header, key_arg::header},
    {"KEYWORD", search_op::keyword, key_arg::keyword},
    {"LARGER", search_op::larger, key_arg::number},
    {"NEW", search_op::new_, key_arg::none},
    {"NOT", search_op::not_, key_arg::one_key},
    {"OLD", search_op::old, key_arg::none},
    {"ON", search_op::on, key_arg::date},
    {"OR", search_op::or_, key_arg::two_keys},
    {"RECENT", search_op::recent, key_arg::none},
    {"SEEN", search_op::seen, key_arg::none},
    {"SENTBEFORE", search_op::sentbefore, key_arg::date},
    {"SENTON", search_op::senton, key_arg::date},
    {"SENTSINCE", search_op::sentsince, key_arg::date},
    {"SINCE", search_op::since, key_arg::date},
    {"SMALLER", search_op::smaller, key_arg::number},
    {"SUBJECT", search_op::subject, key_arg::astring},
    {"TEXT", search_op::text, key_arg::astring},
    {"TO", search_op::to, key_arg::astring},
    {"UID", search_op::uid, key_arg::sequence},
    {"UNANSWERED", search_op::unanswered, key_arg::none},
    {"UNDELETED", search_op::undeleted, key_arg::none},
    {"UNDRAFT", search_op::undraft, key_arg::none},
    {"UNFLAGGED", search_op::unflagged, key_arg::none},
    {"UNKEYWORD", search_op::unkeyword, key_arg::keyword},
    {"UNSEEN", search_op::unseen, key_arg::none},
    {"MODSEQ", search_op::modseq, key_arg::modseq}, // RFC 7162 3.1.5
});

bool search_key_at(parser& p, search_key& k, std::size_t depth);

// key *(SP key), into k.children
bool search_keys_list(parser& p, search_key& k, std::size_t depth)
{
    do {
        search_key child;
        if (!search_key_at(p, child, depth))
            return false;
        k.children.push_back(std::move(child));
    } while (p.take(' '));
    return true;
}

bool search_key_at(parser& p, search_key& k, std::size_t depth)
{
    if (depth >= p.limits().max_search_depth)
        return p.fail("SEARCH keys nested too deeply", response_code::limit);
    if (!p.count_key())
        return false;
    if (p.take('(')) {
        k.op = search_op::list;
        return search_keys_list(p, k, depth + 1) && p.expect(')', "Expected ')' in SEARCH");
    }
    const char c = p.peek();
    if (chars::is_digit(c) || c == '*' || c == '$') {
        k.op = search_op::sequence;
        return p.sequence(k.set);
    }
    std::string name;
    if (!p.keyword(name, "search key"))
        return false;
    const search_row* row = nullptr;
    for (const auto& r : search_keys)
        if (r.name == name)
            row = &r;
    if (!row)
        return p.fail("Unknown search key " + name);
    k.op = row->op;
    switch (row->arg) {
    case key_arg::none:
        return true;
    case key_arg::astring:
        return p.sp() && p.astring(k.text, "search string");
    case key_arg::date:
        return p.sp() && p.day(k.day);
    case key_arg::number:
        return p.sp() && p.number64(k.number, "size");
    case key_arg::keyword:
        return p.sp() && p.atom(k.text, "keyword");
    case key_arg::header:
        return p.sp() && p.astring(k.field, "header field name") && p.sp() && p.astring(k.text, "search string");
    case key_arg::sequence:
        return p.sp() && p.sequence(k.set);
    case key_arg::one_key:
    case key_arg::two_keys: {
        const int n = row->arg == key_arg::one_key ? 1 : 2;
        for (int i = 0; i < n; ++i) {
            search_key child;
            if (!p.sp() || !search_key_at(p, child, depth + 1))
                return false;
            k.children.push_back(std::move(child));
        }
        return true;
    }
    case key_arg::modseq:
        // MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer
        if (!p.sp())
            return false;
        if (p.peek() == '"') {
            std::string entry;
            std::string type;
            if (!p.string(entry, "entry name") || !p.sp() || !p.keyword(type, "entry type") || !p.sp())
                return false;
            if (type != "PRIV" && type != "SHARED" && type != "ALL")
                return p.fail("Invalid entry type");
        }
        return p.number64(k.number, "mod-sequence");
    }
    return false;
}

constexpr auto search_returns = std::to_array<std::pair<std::string_view, search_return>>({
    {"MIN", search_return::min},
    {"MAX", search_return::max},
    {"ALL", search_return::all},
    {"COUNT", search_return::count},
    {"SAVE", search_return::save}, // RFC 5182 2.1
});

// RFC 9051 9 search = "SEARCH" [search-return-opts] SP search-program
bool parse_search(parser& p, command& c)
{
    search_args a;
    if (!p.sp())
        return false;
    if (p.peek_atom() == "RETURN") {
        p.skip(6);
        a.esearch = true;
        if (!p.sp() || !p.expect('(', "Expected '(' after RETURN"))
            return false;
        while (!p.take(')')) {
            if (!a.returns.empty() && !p.sp())
                return false;
            std::string opt;
            if (!p.keyword(opt, "return option"))
                return false;
            bool found = false;
            for (const auto& [name, r] : search_returns)
                if (name == opt) {
                    a.returns.push_back(r);
                    found = true;
                }
            if (!found)
                return p.fail("Unknown SEARCH return option " + opt);
        }
        if (!p.sp())
            return false;
    }
    if (p.peek_atom() == "CHARSET") {
        p.skip(7);
        if (!p.sp() || !p.astring(a.charset, "charset") || !p.sp())
            return false;
    }
    a.program.op = search_op::list;
    if (!search_keys_list(p, a.program, 1))
        return false;
    c.args = std::move(a);
    return true;
}

// ---- FETCH -----------------------------------------------------------------

enum class section_kind { none, optional_body, body, binary, binary_size };

struct fetch_row {
    std::string_view name;
    fetch_attr attr;
    bool peek;
    section_kind section;
    std::string_view response_name;
};

// RFC 9051 9 fetch-att; RFC 3516 4.2 BINARY; RFC 7162 MODSEQ.
constexpr auto fetch_atts = std::to_array<fetch_row>({
    {"ENVELOPE", fetch_attr::envelope, false, section_kind::none, "ENVELOPE"},
    {"FLAGS", fetch_attr::flags, false, section_kind::none, "FLAGS"},
    {"INTERNALDATE", fetch_attr::internaldate, false, section_kind::none, "INTERNALDATE"},
    {"RFC822", fetch_attr::rfc822, false, section_kind::none, "RFC822"},
    {"RFC822.HEADER", fetch_attr::rfc822_header, false, section_kind::none, "RFC822.HEADER"},
    {"RFC822.SIZE", fetch_attr::rfc822_size, false, section_kind::none, "RFC822.SIZE"},
    {"RFC822.TEXT", fetch_attr::rfc822_text, false, section_kind::none, "RFC822.TEXT"},
    {"BODY", fetch_attr::body, false, section_kind::optional_body, "BODY"},
    {"BODYSTRUCTURE", fetch_attr::bodystructure, false, section_kind::none, "BODYSTRUCTURE"},
    {"UID", fetch_attr::uid, false, section_kind::none, "UID"},
    {"BODY.PEEK", fetch_attr::body_section, true, section_kind::body, "BODY"},
    {"BINARY", fetch_attr::binary, false, section_kind::binary, "BINARY"},
    {"BINARY.PEEK", fetch_attr::binary, true, section_kind::binary, "BINARY"},
    {"BINARY.SIZE", fetch_attr::binary_size, false, section_kind::binary_size, "BINARY.SIZE"},
    {"MODSEQ", fetch_attr::modseq, false, section_kind::none, "MODSEQ"},
});

std::string_view text_name(mime::section_text t) noexcept
{
    switch (t) {
    case mime::section_text::none:
        return "";
    case mime::section_text::header:
        return "HEADER";
    case mime::section_text::header_fields:
        return "HEADER.FIELDS";
    case mime::section_text::header_fields_not:
        return "HEADER.FIELDS.NOT";
    case mime::section_text::text:
        return "TEXT";
    case mime::section_text::mime:
        return "MIME";
    }
    return "";
}

// "[" ... "]" for the response: part numbers, text, field names as sent.
std::string section_name(const mime::section& s)
{
    std::string out = "[";
    for (std::size_t i = 0; i < s.part.size(); ++i) {
        if (i)
            out += '.';
        out += std::to_string(s.part[i]);
    }
    const auto t = text_name(s.text);
    if (!t.empty()) {
        if (!s.part.empty())
            out += '.';
        out += t;
    }
    if (s.text == mime::section_text::header_fields || s.text == mime::section_text::header_fields_not) {
        out += " (";
        for (std::size_t i = 0; i < s.fields.size(); ++i) {
            if (i)
                out += ' ';
            bool atom = !s.fields[i].empty();
            for (char ch : s.fields[i])
                atom = atom && chars::is_astring_char(ch);
            out += atom ? s.fields[i] : mime::imap_string(s.fields[i]);
        }
        out += ')';
    }
    out += ']';
    return out;
}

// RFC 9051 9 section-part = nz-number *("." nz-number)
bool section_part(parser& p, mime::section& s)
{
    while (chars::is_digit(p.peek())) {
        std::uint64_t n = 0;
        if (p.peek() == '0' || !p.number64(n, "part number") || n > 0xffffffffULL)
            return p.fail("Invalid section part");
        s.part.push_back(static_cast<std::uint32_t>(n));
        if (p.peek() != '.' || !chars::is_digit(p.peek(1)))
            break;
        p.skip(1);
    }
    return true;
}

// RFC 9051 9 section = "[" [section-spec] "]"
bool section_spec(parser& p, mime::section& s)
{
    if (!p.expect('[', "Expected '['"))
        return false;
    if (!section_part(p, s))
        return false;
    if (!s.part.empty() && p.peek() == '.')
        p.skip(1);
    else if (!s.part.empty() || p.peek() == ']')
        return p.expect(']', "Expected ']' after section");
    const auto word = upper(p.run([](char c) noexcept { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '.'; }));
    if (word == "HEADER") {
        s.text = mime::section_text::header;
    } else if (word == "TEXT") {
        s.text = mime::section_text::text;
    } else if (word == "MIME" && !s.part.empty()) {
        s.text = mime::section_text::mime;
    } else if (word == "HEADER.FIELDS" || word == "HEADER.FIELDS.NOT") {
        s.text = word == "HEADER.FIELDS" ? mime::section_text::header_fields : mime::section_text::header_fields_not;
        // header-list = "(" header-fld-name *(SP header-fld-name) ")"
        if (!p.sp() || !p.expect('(', "Expected a header field list"))
            return false;
        do {
            std::string field;
            if (!p.astring(field, "header field name"))
                return false;
            s.fields.push_back(std::move(field));
        } while (p.take(' '));
        if (!p.expect(')', "Expected ')' after header fields"))
            return false;
    } else {
        return p.fail("Invalid section");
    }
    return p.expect(']', "Expected ']' after section");
}

bool fetch_att(parser& p, fetch_item& item)
{
    const auto name = upper(p.run(is_name_char));
    if (name.empty())
        return p.fail(p.at_end() ? "Missing fetch item" : "Invalid fetch item");
    const fetch_row* row = nullptr;
    for (const auto& r : fetch_atts)
        if (r.name == name)
            row = &r;
    if (!row)
        return p.fail("Unknown fetch item " + name);
    item.attr = row->attr;
    item.peek = row->peek;
    item.name = row->response_name;
    switch (row->section) {
    case section_kind::none:
        return true;
    case section_kind::optional_body:
        if (p.peek() != '[')
            return true;
        item.attr = fetch_attr::body_section;
        break;
    case section_kind::body:
        break;
    case section_kind::binary:
    case section_kind::binary_size:
        // section-binary = "[" [section-part] "]"
        if (!p.expect('[', "Expected '['") || !section_part(p, item.section) ||
            !p.expect(']', "Expected ']' after section"))
            return false;
        item.name += section_name(item.section);
        if (row->section == section_kind::binary_size)
            return true;
        break;
    }
    if (row->section == section_kind::optional_body || row->section == section_kind::body) {
        if (!section_spec(p, item.section))
            return false;
        item.name += section_name(item.section);
    }
    if (p.take('<')) {
        // section-partial = "<" number64 "." nz-number64 ">"
        partial r;
        if (!p.number64(r.origin, "partial origin") || !p.expect('.', "Invalid partial") ||
            !p.number64(r.count, "partial length") || r.count == 0 || !p.expect('>', "Invalid partial"))
            return p.fail("Invalid partial");
        item.range = r;
    }
    return true;
}

void add_items(std::vector<fetch_item>& items, std::initializer_list<std::pair<fetch_attr, std::string_view>> l)
{
    for (const auto& [attr, name] : l) {
        fetch_item i;
        i.attr = attr;
        i.name = name;
        items.push_back(std::move(i));
    }
}

// RFC 9051 9 fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" /
// fetch-att / "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
bool parse_fetch(parser& p, command& c)
{
    fetch_args a;
    if (!p.sp() || !p.sequence(a.set) || !p.sp())
        return false;
    const auto macro = p.peek_atom();
    if (macro == "ALL" || macro == "FAST" || macro == "FULL") {
        p.skip(macro.size());
        add_items(a.items, {{fetch_attr::flags, "FLAGS"},
                            {fetch_attr::internaldate, "INTERNALDATE"},
                            {fetch_attr::rfc822_size, "RFC822.SIZE"}});
        if (macro != "FAST")
            add_items(a.items, {{fetch_attr::envelope, "ENVELOPE"}});
        if (macro == "FULL")
            add_items(a.items, {{fetch_attr::body, "BODY"}});
    } else if (p.take('(')) {
        do {
            fetch_item item;
            if (!fetch_att(p, item))
                return false;
            a.items.push_back(std::move(item));
        } while (p.take(' '));
        if (!p.expect(')', "Expected ')' after fetch items"))
            return false;
    } else {
        fetch_item item;
        if (!fetch_att(p, item))
            return false;
        a.items.push_back(std::move(item));
    }
    if (p.take(' ')) {
        // RFC 7162 3.1.4.1 fetch-modifier = "CHANGEDSINCE" SP mod-sequence
        std::string mod;
        std::uint64_t n = 0;
        if (!p.expect('(', "Expected fetch modifiers") || !p.keyword(mod, "fetch modifier"))
            return false;
        if (mod != "CHANGEDSINCE")
            return p.fail("Unknown fetch modifier " + mod);
        if (!p.sp() || !p.number64(n, "mod-sequence"))
            return false;
        if (n == 0)
            return p.fail("Invalid mod-sequence");
        if (!p.expect(')', "Expected ')' after modifiers"))
            return false;
        a.changed_since = n;
    }
    c.args = std::move(a);
    return true;
}

// RFC 9051 9 store = "STORE" SP sequence-set [store-modifiers] SP
// store-att-flags; RFC 7162 3.1.3 UNCHANGEDSINCE.
bool parse_store(parser& p, command& c)
{
    store_args a;
    if (!p.sp() || !p.sequence(a.set) || !p.sp())
        return false;
    if (p.take('(')) {
        std::string mod;
        std::uint64_t n = 0;
        if (!p.keyword(mod, "store modifier"))
            return false;
        if (mod != "UNCHANGEDSINCE")
            return p.fail("Unknown store modifier " + mod);
        if (!p.sp() || !p.number64(n, "mod-sequence") || !p.expect(')', "Expected ')' after modifiers") || !p.sp())
            return false;
        a.unchanged_since = n;
    }
    if (p.take('+'))
        a.mode = store_mode::add;
    else if (p.take('-'))
        a.mode = store_mode::remove;
    const auto name = upper(p.run(is_name_char));
    if (name == "FLAGS.SILENT")
        a.silent = true;
    else if (name != "FLAGS")
        return p.fail(name.empty() ? "Missing FLAGS" : "Unknown store item " + name);
    if (!p.sp())
        return false;
    if (p.peek() == '(') {
        if (!p.flag_list(a.flags))
            return false;
    } else {
        do {
            std::string f;
            if (!p.flag(f))
                return false;
            a.flags.push_back(std::move(f));
        } while (p.take(' '));
    }
    c.args = std::move(a);
    return true;
}

// ---- the command table -------------------------------------------------------

constexpr unsigned state_bit(session_state s) noexcept
{
    return 1U << static_cast<unsigned>(s);
}

constexpr unsigned not_auth = state_bit(session_state::not_authenticated);
constexpr unsigned authed = state_bit(session_state::authenticated);
constexpr unsigned selected = state_bit(session_state::selected);
constexpr unsigned any_state = not_auth | authed | selected;

struct command_row {
    imap::verb verb;
    std::string_view name;
    unsigned states;
    bool uid; // may follow "UID"
    bool (*parse)(parser&, command&);
};

constexpr auto commands = std::to_array<command_row>({
    {verb::capability, "CAPABILITY", any_state, false, &parse_none},   // RFC 9051 6.1.1
    {verb::noop, "NOOP", any_state, false, &parse_none},               // 6.1.2
    {verb::logout, "LOGOUT", any_state, false, &parse_none},           // 6.1.3
    {verb::starttls, "STARTTLS", not_auth, false, &parse_none},        // 6.2.1
    {verb::authenticate, "AUTHENTICATE", not_auth, false, &parse_authenticate}, // 6.2.2
    {verb::login, "LOGIN", not_auth, false, &parse_login},             // 6.2.3
    {verb::enable, "ENABLE", authed, false, &parse_enable},            // 6.3.1, RFC 5161 3.1
    {verb::select, "SELECT", authed | selected, false, &parse_mailbox_params<select_args>}, // 6.3.2
    {verb::examine, "EXAMINE", authed | selected, false, &parse_mailbox_params<select_args>}, // 6.3.3
    {verb::create, "CREATE", authed | selected, false, &parse_mailbox_params<mailbox_args>}, // 6.3.4
    {verb::delete_, "DELETE", authed | selected, false, &parse_mailbox_only},     // 6.3.5
    {verb::rename, "RENAME", authed | selected, false, &parse_rename},            // 6.3.6
    {verb::subscribe, "SUBSCRIBE", authed | selected, false, &parse_mailbox_only},   // 6.3.7
    {verb::unsubscribe, "UNSUBSCRIBE", authed | selected, false, &parse_mailbox_only}, // 6.3.8
    {verb::list, "LIST", authed | selected, false, &parse_list},       // 6.3.9, RFC 5258
    {verb::lsub, "LSUB", authed | selected, false, &parse_lsub},       // RFC 3501 6.3.9
    {verb::namespace_, "NAMESPACE", authed | selected, false, &parse_none}, // 6.3.10
    {verb::status, "STATUS", authed | selected, false, &parse_status}, // 6.3.11
    {verb::append, "APPEND", authed | selected, false, &parse_append}, // 6.3.12
    {verb::idle, "IDLE", authed | selected, false, &parse_none},       // 6.3.13, RFC 2177
    {verb::check, "CHECK", selected, false, &parse_none},              // RFC 3501 6.4.1
    {verb::close, "CLOSE", selected, false, &parse_none},              // 6.4.1
    {verb::unselect, "UNSELECT", selected, false, &parse_none},        // 6.4.2, RFC 3691
    {verb::expunge, "EXPUNGE", selected, true, &parse_expunge},        // 6.4.3, RFC 4315 2.1
    {verb::search, "SEARCH", selected, true, &parse_search},           // 6.4.4
    {verb::fetch, "FETCH", selected, true, &parse_fetch},              // 6.4.5
    {verb::store, "STORE", selected, true, &parse_store},              // 6.4.6
    {verb::copy, "COPY", selected, true, &parse_copy},                 // 6.4.7
    {verb::move, "MOVE", selected, true, &parse_copy},                 // 6.4.8, RFC 6851
    {verb::id, "ID", any_state, false, &parse_id},                     // RFC 2971 3.1
});

const command_row* find_row(std::string_view name) noexcept
{
    for (const auto& row : commands)
        if (util::iequals(row.name, name))
            return &row;
    return nullptr;
}

parse_result bad(std::string tag, std::string text, response_code code = response_code::none)
{
    parse_result r;
    r.error = response{std::move(tag), status::bad, code, std::move(text)};
    return r;
}

} // namespace

std::string_view verb_name(verb v) noexcept
{
    for (const auto& row : commands)
        if (row.verb == v)
            return row.name;
    return "";
}

bool allowed(verb v, session_state s) noexcept
{
    for (const auto& row : commands)
        if (row.verb == v)
            return (row.states & state_bit(s)) != 0;
    return false;
}

parse_result parse_command(frame f, const parse_limits& lim)
{
    parser p(f, lim);
    // RFC 9051 9 command = tag SP (command-any / command-auth /
    // command-nonauth / command-select) CRLF
    const std::string tag(p.run(chars::is_tag_char));
    if (tag.empty())
        return bad("*", p.at_end() ? "Empty command" : "Missing or invalid tag");
    if (p.at_end())
        return bad(tag, "Missing command");
    if (p.peek() != ' ')
        return bad("*", "Invalid tag");
    p.skip(1);
    std::string name;
    if (!p.atom(name, "command"))
        return bad(tag, p.error());
    command c;
    c.tag = tag;
    const command_row* row = find_row(name);
    if (util::iequals(name, "UID")) {
        // RFC 9051 6.4.9 uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)
        if (!p.sp() || !p.atom(name, "command"))
            return bad(tag, p.error());
        row = find_row(name);
        if (!row || !row->uid)
            return bad(tag, "Unknown UID command " + name);
        c.uid = true;
    } else if (!row) {
        return bad(tag, "Unknown command " + name);
    }
    c.verb = row->verb;
    if (!row->parse(p, c) || !p.end()) {
        std::string why = p.error();
        return bad(tag, std::string(row->name) + ": " + why, p.error_code());
    }
    parse_result r;
    r.command = std::move(c);
    return r;
}

} // namespace postern::imap

// tests/imapd/wire.hpp — the imapd tests build their FETCH items and SEARCH
// programs the way the executor gets them: by parsing the client's command
// (imap::parse_command), so the tests read like IMAP and exercise the
// names and sections the parser builds.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <doctest/doctest.h>

#include "postern/imap/command.hpp"
#include "postern/imap/reader.hpp"
#include "postern/mailbox/store.hpp"

namespace postern::imapd::testing {

// The command on the wire (CRLF added), parsed; fails the test when it
// does not parse.
inline imap::command parse(std::string_view wire)
{
    imap::reader r;
    r.feed(std::string(wire) + "\r\n");
    for (;;) {
        switch (r.next()) {
        case imap::read_event::command: {
            auto p = imap::parse_command(r.take_command());
            INFO(wire);
            INFO(p.error.str());
            REQUIRE(p);
            return std::move(*p.command);
        }
        case imap::read_event::continuation:
            continue;
        case imap::read_event::need_input:
        case imap::read_event::refused:
        case imap::read_event::line:
        case imap::read_event::line_too_long:
            break;
        }
        FAIL("the reader did not frame " << wire);
        return {};
    }
}

// "FLAGS UID" → the items of "a FETCH 1 (FLAGS UID)"; a macro ("ALL") or a
// single item also works when given without parentheses.
inline std::vector<imap::fetch_item> fetch_items(std::string_view items)
{
    auto c = parse("a FETCH 1 " + std::string(items));
    return std::get<imap::fetch_args>(c.args).items;
}

// "RETURN (MIN) FLAGGED" → the arguments of "a SEARCH RETURN (MIN) FLAGGED".
inline imap::search_args search_args(std::string_view keys)
{
    auto c = parse("a SEARCH " + std::string(keys));
    return std::get<imap::search_args>(std::move(c.args));
}

inline mailbox::message_info info(std::uint32_t uid, std::string flags = {}, std::vector<std::string> keywords = {},
                                  bool recent = false)
{
    mailbox::message_info m;
    m.uid = uid;
    m.flags = std::move(flags);
    m.keywords = std::move(keywords);
    m.recent = recent;
    return m;
}

} // namespace postern::imapd::testing

#include "postern/imap/command.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

using namespace postern;
using imap::fetch_attr;
using imap::search_op;
using imap::seq_star;
using imap::verb;

namespace {

// Frames the wire bytes (CRLF added) with a reader, as the server would,
// and parses the first command.
imap::parse_result parse(std::string_view wire, const imap::parse_limits& lim = {})
{
    imap::reader r;
    r.feed(std::string(wire) + "\r\n");
    for (;;) {
        switch (r.next()) {
        case imap::read_event::command:
            return imap::parse_command(r.take_command(), lim);
        case imap::read_event::continuation:
            continue;
        case imap::read_event::need_input:
        case imap::read_event::refused:
        case imap::read_event::line:
        case imap::read_event::line_too_long:
            break;
        }
        FAIL("the reader did not frame a command");
        return {};
    }
}

imap::command ok(std::string_view wire, const imap::parse_limits& lim = {})
{
    auto r = parse(wire, lim);
    INFO(wire);
    INFO(r.error.str());
    REQUIRE(r);
    return std::move(*r.command);
}

// The BAD response without its CRLF.
std::string bad(std::string_view wire, const imap::parse_limits& lim = {})
{
    auto r = parse(wire, lim);
    INFO(wire);
    REQUIRE_FALSE(r);
    CHECK(r.error.st == imap::status::bad);
    auto s = r.error.str();
    return s.substr(0, s.size() - 2);
}

template <class T>
const T& args(const imap::command& c)
{
    REQUIRE(std::holds_alternative<T>(c.args));
    return std::get<T>(c.args);
}

using strings = std::vector<std::string>;

} // namespace

TEST_SUITE("imap") {

TEST_CASE("the RFC 9051 section 8 sample session parses")
{
    auto login = ok("a001 login mrc secret");
    CHECK(login.tag == "a001");
    CHECK(login.verb == verb::login);
    CHECK(args<imap::login_args>(login).user == "mrc");
    CHECK(args<imap::login_args>(login).password == "secret");

    auto select = ok("a002 select inbox");
    CHECK(select.verb == verb::select);
    CHECK(args<imap::select_args>(select).mailbox == "INBOX");

    auto full = ok("a003 fetch 12 full");
    CHECK(full.verb == verb::fetch);
    const auto& f = args<imap::fetch_args>(full);
    CHECK(f.set.ranges == std::vector<imap::seq_range>{{12, 12}});
    REQUIRE(f.items.size() == 5);
    CHECK(f.items[0].attr == fetch_attr::flags);
    CHECK(f.items[1].attr == fetch_attr::internaldate);
    CHECK(f.items[2].attr == fetch_attr::rfc822_size);
    CHECK(f.items[3].attr == fetch_attr::envelope);
    CHECK(f.items[4].attr == fetch_attr::body);

    auto header = ok("a004 fetch 12 body[header]");
    const auto& h = args<imap::fetch_args>(header).items.at(0);
    CHECK(h.attr == fetch_attr::body_section);
    CHECK(h.section.text == mime::section_text::header);
    CHECK_FALSE(h.peek);
    CHECK(h.name == "BODY[HEADER]");

    auto store = ok("a005 store 12 +flags \\deleted");
    const auto& s = args<imap::store_args>(store);
    CHECK(s.mode == imap::store_mode::add);
    CHECK_FALSE(s.silent);
    CHECK(s.flags == strings{"\\deleted"});

    CHECK(ok("a006 logout").verb == verb::logout);
}

TEST_CASE("tags and command names are checked")
{
    CHECK(bad("+a NOOP") == "* BAD Missing or invalid tag");
    CHECK(bad("a1") == "a1 BAD Missing command");
    CHECK(bad("a1{ NOOP") == "* BAD Invalid tag");
    CHECK(bad("a1 FROB") == "a1 BAD Unknown command FROB");
    CHECK(bad("a1 UID NOOP") == "a1 BAD Unknown UID command NOOP");
    CHECK(bad("a1 UID") == "a1 BAD Missing argument");
    CHECK(bad("a1  NOOP") == "a1 BAD Missing command");
    CHECK(imap::parse_command(imap::frame{" NOOP", {}}).error.str() == "* BAD Missing or invalid tag\r\n");
    CHECK(imap::parse_command(imap::frame{}).error.str() == "* BAD Empty command\r\n");
    CHECK(ok("A.1-x] noop").tag == "A.1-x]");
}

TEST_CASE("commands without arguments refuse arguments")
{
    const std::vector<std::pair<std::string, verb>> cases{
        {"CAPABILITY", verb::capability}, {"NOOP", verb::noop},         {"LOGOUT", verb::logout},
        {"STARTTLS", verb::starttls},     {"NAMESPACE", verb::namespace_}, {"IDLE", verb::idle},
        {"CHECK", verb::check},           {"CLOSE", verb::close},       {"UNSELECT", verb::unselect},
        {"EXPUNGE", verb::expunge},
    };
    for (const auto& row : cases) {
        const std::string& name = row.first; // not a structured binding: CAPTURE's lambda takes it (clang 14)
        const verb v = row.second;
        CAPTURE(name);
        auto c = ok("t " + name);
        CHECK(c.verb == v);
        CHECK(std::holds_alternative<imap::no_args>(c.args));
        CHECK(bad("t " + name + " x") == "t BAD " + name + ": Unexpected extra arguments");
        CHECK(bad("t " + name + " ") == "t BAD " + name + ": Unexpected extra arguments");
        CHECK(imap::verb_name(v) == name);
    }
}

TEST_CASE("LOGIN takes two astrings: atoms, quoted strings or literals")
{
    auto q = ok(R"(a1 LOGIN "fred \"f\" smith" "pa\\ss")");
    CHECK(args<imap::login_args>(q).user == "fred \"f\" smith");
    CHECK(args<imap::login_args>(q).password == "pa\\ss");
    auto l = ok("a1 LOGIN {5}\r\nalice {5+}\r\nse\r\nt");
    CHECK(args<imap::login_args>(l).user == "alice");
    CHECK(args<imap::login_args>(l).password == "se\r\nt");
    auto u = ok("a1 LOGIN \"j\xc3\xb6rg\" \"\xe2\x82\xac\xf0\x9f\x98\x80\"");
    CHECK(args<imap::login_args>(u).user == "j\xc3\xb6rg");
    CHECK(args<imap::login_args>(u).password == "\xe2\x82\xac\xf0\x9f\x98\x80");
    CHECK(ok("a1 LOGIN \"\" \"\"").verb == verb::login);

    CHECK(bad("a1 LOGIN fred") == "a1 BAD LOGIN: Missing argument");
    CHECK(bad("a1 LOGIN") == "a1 BAD LOGIN: Missing argument");
    CHECK(bad("a1 LOGIN fred  x") == "a1 BAD LOGIN: Invalid characters in password");
    CHECK(bad("a1 LOGIN fred \"x") == "a1 BAD LOGIN: Unterminated quoted string");
    CHECK(bad("a1 LOGIN fred \"x\\y\"") == "a1 BAD LOGIN: Invalid escape in quoted string");
    CHECK(bad("a1 LOGIN fred \"\xc3\x28\"") == "a1 BAD LOGIN: Invalid UTF-8 in quoted string");
    CHECK(bad("a1 LOGIN fred \"\xed\xa0\x80\"") == "a1 BAD LOGIN: Invalid UTF-8 in quoted string");
    CHECK(bad("a1 LOGIN fred x y") == "a1 BAD LOGIN: Unexpected extra arguments");
    CHECK(bad("a1 LOGIN fred (x)") == "a1 BAD LOGIN: Invalid characters in password");
    CHECK(bad(std::string("a1 LOGIN fred {3+}\r\na\0b", 23)) == "a1 BAD LOGIN: NUL in literal");
    CHECK(bad("a1 LOGIN fred ~{1+}\r\nx") == "a1 BAD LOGIN: Unexpected extra arguments");
}

TEST_CASE("AUTHENTICATE takes a mechanism and an optional initial response (RFC 4959)")
{
    auto a = ok("A001 AUTHENTICATE GSSAPI");
    CHECK(args<imap::authenticate_args>(a).mechanism == "GSSAPI");
    CHECK_FALSE(args<imap::authenticate_args>(a).initial_response);
    auto ir = ok("a1 authenticate plain AGZyZWQAcGFzcw==");
    CHECK(args<imap::authenticate_args>(ir).mechanism == "PLAIN");
    CHECK(args<imap::authenticate_args>(ir).initial_response == "AGZyZWQAcGFzcw==");
    auto empty = ok("a1 AUTHENTICATE EXTERNAL =");
    CHECK(args<imap::authenticate_args>(empty).initial_response == "");
    CHECK(bad("a1 AUTHENTICATE") == "a1 BAD AUTHENTICATE: Missing argument");
    CHECK(bad("a1 AUTHENTICATE PLAIN ab*c") == "a1 BAD AUTHENTICATE: Unexpected extra arguments");
    CHECK(bad("a1 AUTHENTICATE PLAIN ") == "a1 BAD AUTHENTICATE: Invalid initial response");
}

TEST_CASE("ENABLE and ID")
{
    auto e = ok("t1 ENABLE IMAP4rev2 condstore");
    CHECK(args<imap::enable_args>(e).capabilities == strings{"IMAP4REV2", "CONDSTORE"});
    CHECK(bad("t1 ENABLE") == "t1 BAD ENABLE: Missing argument");

    auto id = ok(R"(a023 ID ("name" "sodr" "version" "19.34" "vendor" NIL))");
    const auto& fields = args<imap::id_args>(id).fields;
    REQUIRE(fields.size() == 3);
    CHECK(fields[0].first == "name");
    CHECK(fields[0].second == "sodr");
    CHECK_FALSE(fields[2].second);
    CHECK(args<imap::id_args>(ok("a ID NIL")).fields.empty());
    CHECK(args<imap::id_args>(ok("a ID ()")).fields.empty());
    CHECK(bad("a ID (\"name\")") == "a BAD ID: Missing argument");
    CHECK(bad("a ID name") == "a BAD ID: Expected NIL or a parameter list");
    std::string many = "a ID (";
    for (int i = 0; i < 31; ++i)
        many += (i ? " \"f" : "\"f") + std::to_string(i) + "\" \"v\"";
    CHECK(bad(many + ")") == "a BAD [LIMIT] ID: ID parameters too long");
}

TEST_CASE("SELECT and EXAMINE: INBOX in any case, optional parameters")
{
    CHECK(args<imap::select_args>(ok("A142 SELECT INBOX")).mailbox == "INBOX");
    CHECK(args<imap::select_args>(ok("a SELECT \"iNbOx\"")).mailbox == "INBOX");
    CHECK(args<imap::select_args>(ok("a SELECT {5}\r\ninBOX")).mailbox == "INBOX");
    CHECK(args<imap::select_args>(ok("a SELECT INBOX/sub")).mailbox == "INBOX/sub");
    CHECK(args<imap::select_args>(ok("a SELECT &AMk-t&AOk-")).mailbox == "&AMk-t&AOk-");
    CHECK(args<imap::select_args>(ok("a SELECT \"Entw\xc3\xbcrfe\"")).mailbox == "Entw\xc3\xbcrfe");

    auto cs = ok("a EXAMINE blurdybloop (CONDSTORE)");
    CHECK(cs.verb == verb::examine);
    CHECK(args<imap::select_args>(cs).params == std::vector<imap::ext_param>{{"CONDSTORE", ""}});
    auto qr = ok("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541) condstore)");
    CHECK(args<imap::select_args>(qr).params ==
          std::vector<imap::ext_param>{{"QRESYNC", "(67890007 20050715194045000 41,43:211,214:541)"}, {"CONDSTORE", ""}});
    CHECK(bad("a SELECT") == "a BAD SELECT: Missing argument");
    CHECK(bad("a SELECT INBOX CONDSTORE") == "a BAD SELECT: Expected a parameter list");
    CHECK(bad("a SELECT INBOX (") == "a BAD SELECT: Missing parameter");
    CHECK(bad("a SELECT a%b") == "a BAD SELECT: Unexpected extra arguments");
}

TEST_CASE("CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE")
{
    auto c = ok("t1 CREATE \"Drafts\" (USE (\\Drafts))");
    CHECK(c.verb == verb::create);
    CHECK(args<imap::mailbox_args>(c).mailbox == "Drafts");
    CHECK(args<imap::mailbox_args>(c).params == std::vector<imap::ext_param>{{"USE", "(\\Drafts)"}});
    CHECK(args<imap::mailbox_args>(ok("A003 CREATE owatagusiam/")).mailbox == "owatagusiam/");
    CHECK(ok("A683 DELETE blurdybloop").verb == verb::delete_);
    CHECK(ok("A002 SUBSCRIBE #news.comp.mail.mime").verb == verb::subscribe);
    CHECK(args<imap::mailbox_args>(ok("A002 UNSUBSCRIBE inbox")).mailbox == "INBOX");
    auto r = ok("A683 RENAME blurdybloop sarasoop");
    CHECK(args<imap::rename_args>(r).from == "blurdybloop");
    CHECK(args<imap::rename_args>(r).to == "sarasoop");
    CHECK(bad("A683 RENAME blurdybloop") == "A683 BAD RENAME: Missing argument");
    CHECK(bad("a DELETE") == "a BAD DELETE: Missing argument");
    CHECK(bad("a DELETE a b") == "a BAD DELETE: Unexpected extra arguments");
}

TEST_CASE("LIST: the basic form and RFC 5258 extended forms")
{
    auto basic = ok("A682 LIST \"\" *");
    const auto& b = args<imap::list_args>(basic);
    CHECK(b.reference.empty());
    CHECK(b.patterns == strings{"*"});
    CHECK_FALSE(b.extended);
    CHECK(args<imap::list_args>(ok("A101 LIST \"\" \"\"")).patterns == strings{""});
    CHECK(args<imap::list_args>(ok("A202 LIST ~/Mail/ %")).reference == "~/Mail/");
    CHECK(args<imap::list_args>(ok("a LIST \"\" foo/%/b*r]")).patterns == strings{"foo/%/b*r]"});

    auto sel = ok("A02 LIST (SUBSCRIBED) \"\" \"*\"");
    CHECK(args<imap::list_args>(sel).selection == strings{"SUBSCRIBED"});
    CHECK(args<imap::list_args>(sel).extended);

    auto ret = ok("A03 LIST () \"\" \"%\" RETURN (CHILDREN)");
    CHECK(args<imap::list_args>(ret).selection.empty());
    CHECK(args<imap::list_args>(ret).returns == strings{"CHILDREN"});

    auto multi = ok("A04 LIST (remote subscribed recursivematch) \"\" (\"INBOX\" Drafts \"Sent/%\") return (subscribed special-use status (messages unseen))");
    const auto& m = args<imap::list_args>(multi);
    CHECK(m.selection == strings{"REMOTE", "SUBSCRIBED", "RECURSIVEMATCH"});
    CHECK(m.patterns == strings{"INBOX", "Drafts", "Sent/%"});
    CHECK(m.returns == strings{"SUBSCRIBED", "SPECIAL-USE", "STATUS"});
    CHECK(m.status == std::vector<imap::status_item>{imap::status_item::messages, imap::status_item::unseen});

    CHECK(args<imap::list_args>(ok("t LIST (SPECIAL-USE) \"\" *")).selection == strings{"SPECIAL-USE"});

    CHECK(bad("a LIST (FOO) \"\" *") == "a BAD LIST: Unknown LIST selection option FOO");
    CHECK(bad("a LIST (RECURSIVEMATCH) \"\" *") == "a BAD LIST: RECURSIVEMATCH needs another selection option");
    CHECK(bad("a LIST (REMOTE RECURSIVEMATCH) \"\" *") == "a BAD LIST: RECURSIVEMATCH needs another selection option");
    CHECK(bad("a LIST \"\" * RETURN (FOO)") == "a BAD LIST: Unknown LIST return option FOO");
    CHECK(bad("a LIST \"\" * RETURN (STATUS (BOGUS))") == "a BAD LIST: Unknown status item BOGUS");
    CHECK(bad("a LIST \"\" * RETURNS ()") == "a BAD LIST: Expected RETURN");
    CHECK(bad("a LIST \"\"") == "a BAD LIST: Missing argument");
    CHECK(bad("a LIST \"\" ()") == "a BAD LIST: Invalid mailbox pattern");

    auto lsub = ok("A002 LSUB \"#news.\" \"comp.mail.*\"");
    CHECK(lsub.verb == verb::lsub);
    CHECK(args<imap::list_args>(lsub).reference == "#news.");
    CHECK(args<imap::list_args>(lsub).patterns == strings{"comp.mail.*"});
}

TEST_CASE("STATUS takes a mailbox and a list of items")
{
    auto s = ok("A042 STATUS blurdybloop (UIDNEXT MESSAGES)");
    CHECK(args<imap::status_args>(s).mailbox == "blurdybloop");
    CHECK(args<imap::status_args>(s).items == std::vector<imap::status_item>{imap::status_item::uidnext, imap::status_item::messages});
    auto all = ok("a status inbox (messages uidnext uidvalidity unseen deleted size recent highestmodseq)");
    CHECK(args<imap::status_args>(all).items.size() == 8);
    CHECK(bad("a STATUS x ()") == "a BAD STATUS: Missing status item");
    CHECK(bad("a STATUS x (FOO)") == "a BAD STATUS: Unknown status item FOO");
    CHECK(bad("a STATUS x MESSAGES") == "a BAD STATUS: Expected a list of status items");
    CHECK(bad("a STATUS x (MESSAGES") == "a BAD STATUS: Expected ')' after status items");
}

TEST_CASE("APPEND: mailbox, optional flags and date, then a literal")
{
    const std::string msg = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nSubject: afternoon meeting\r\n\r\nHello Joe\r\n";
    const auto n = std::to_string(msg.size());
    auto a = ok("A003 APPEND saved-messages (\\Seen) {" + n + "}\r\n" + msg);
    const auto& ap = args<imap::append_args>(a);
    CHECK(ap.mailbox == "saved-messages");
    CHECK(ap.flags == strings{"\\Seen"});
    CHECK_FALSE(ap.internal_date);
    CHECK(ap.message == msg);
    CHECK_FALSE(ap.binary);

    auto d = ok("a APPEND inbox (\\Seen $Forwarded) \" 7-Feb-1994 21:52:25 -0800\" {3+}\r\nabc");
    const auto& dp = args<imap::append_args>(d);
    CHECK(dp.mailbox == "INBOX");
    CHECK(dp.flags == strings{"\\Seen", "$Forwarded"});
    REQUIRE(dp.internal_date);
    CHECK(*dp.internal_date == imap::date_time{{1994, 2, 7}, 21, 52, 25, -480});
    CHECK(args<imap::append_args>(ok("a APPEND x \"17-Jul-1996 02:44:25 +0530\" {0}\r\n")).internal_date->zone_minutes ==
          330);
    CHECK(args<imap::append_args>(ok("a APPEND x () {1}\r\nx")).flags.empty());

    auto bin = ok(std::string("a APPEND x ~{3}\r\n\0\1\2", 20));
    CHECK(args<imap::append_args>(bin).binary);
    CHECK(args<imap::append_args>(bin).message == std::string("\0\1\2", 3));

    CHECK(bad("a APPEND x \"message\"") == "a BAD APPEND: Invalid date-time");
    CHECK(bad("a APPEND x (\\Seen) \"message\"") == "a BAD APPEND: Invalid date-time");
    CHECK(bad("a APPEND x message") == "a BAD APPEND: APPEND needs the message as a literal");
    CHECK(bad("a APPEND x") == "a BAD APPEND: Missing argument");
    CHECK(bad("a APPEND x ") == "a BAD APPEND: Missing message literal");
    CHECK(bad("a APPEND x \"32-Jan-2020 00:00:00 +0000\" {1+}\r\nx") == "a BAD APPEND: Invalid date-time");
    CHECK(bad("a APPEND x \"1-Foo-2020 00:00:00 +0000\" {1+}\r\nx") == "a BAD APPEND: Invalid date-time");
    CHECK(bad("a APPEND x \"1-Jan-2020 24:00:00 +0000\" {1+}\r\nx") == "a BAD APPEND: Invalid date-time");
    CHECK(bad("a APPEND x \"1-Jan-2020 00:00:00 0000\" {1+}\r\nx") == "a BAD APPEND: Invalid date-time");
    CHECK(bad("a APPEND x (\\Seen {1+}\r\nx") == "a BAD APPEND: Invalid flag");
    CHECK(bad("a APPEND x {1+}\r\nx extra") == "a BAD APPEND: Unexpected extra arguments");
}

TEST_CASE("EXPUNGE and UID EXPUNGE (RFC 4315)")
{
    CHECK(std::holds_alternative<imap::no_args>(ok("a EXPUNGE").args));
    auto u = ok("A202 UID EXPUNGE 3000:3002");
    CHECK(u.uid);
    CHECK(u.verb == verb::expunge);
    CHECK(args<imap::expunge_args>(u).set.ranges == std::vector<imap::seq_range>{{3000, 3002}});
    CHECK(bad("a UID EXPUNGE") == "a BAD EXPUNGE: Missing argument");
    CHECK(bad("a UID EXPUNGE 0") == "a BAD EXPUNGE: Invalid sequence set");
}

TEST_CASE("SEARCH: RFC 9051 6.4.4 examples")
{
    auto s1 = ok("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"");
    const auto& a1 = args<imap::search_args>(s1);
    CHECK(a1.esearch);
    CHECK(a1.returns == std::vector<imap::search_return>{imap::search_return::min, imap::search_return::count});
    REQUIRE(a1.program.op == search_op::list);
    REQUIRE(a1.program.children.size() == 3);
    CHECK(a1.program.children[0].op == search_op::flagged);
    CHECK(a1.program.children[1].op == search_op::since);
    CHECK(a1.program.children[1].day == imap::date{1994, 2, 1});
    CHECK(a1.program.children[2].op == search_op::not_);
    REQUIRE(a1.program.children[2].children.size() == 1);
    CHECK(a1.program.children[2].children[0].op == search_op::from);
    CHECK(a1.program.children[2].children[0].text == "Smith");

    auto s2 = ok("A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"");
    CHECK(args<imap::search_args>(s2).esearch);
    CHECK(args<imap::search_args>(s2).returns.empty());

    auto s3 = ok("A284 SEARCH TEXT \"string not in mailbox\"");
    CHECK_FALSE(args<imap::search_args>(s3).esearch);
    CHECK(args<imap::search_args>(s3).program.children.at(0).text == "string not in mailbox");

    auto s4 = ok("A285 SEARCH CHARSET UTF-8 TEXT {13}\r\n\xd0\x9d\xd1\x8c\xd1\x8e \xd0\x99\xd0\xbe\xd1\x80");
    CHECK(args<imap::search_args>(s4).charset == "UTF-8");
    CHECK(args<imap::search_args>(s4).program.children.at(0).text.size() == 13);

    auto s5 = ok("A286 SEARCH CHARSET UTF-8 TEXT {13+}\r\n\xd0\x9d\xd1\x8c\xd1\x8e \xd0\x99\xd0\xbe\xd1\x80");
    CHECK(args<imap::search_args>(s5).program.children.at(0).op == search_op::text);
}

TEST_CASE("SEARCH: every key and its argument")
{
    auto s = ok("a SEARCH ALL ANSWERED BCC b BEFORE \"2-Mar-2020\" BODY x CC c DELETED DRAFT FLAGGED FROM f "
                "HEADER Message-ID <x@y> KEYWORD $Junk LARGER 100 NEW OLD ON 3-apr-2021 RECENT SEEN "
                "SENTBEFORE 1-Jan-2000 SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000 SINCE 1-Jan-2000 SMALLER 5 SUBJECT \"s t\" "
                "TEXT t TO t UID 1:* UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD $Done UNSEEN 2,4:6 $ * "
                "MODSEQ 620162338 MODSEQ \"/flags/\\\\draft\" all 5");
    const auto& k = args<imap::search_args>(s).program.children;
    REQUIRE(k.size() == 38);
    CHECK(k[2].op == search_op::bcc);
    CHECK(k[2].text == "b");
    CHECK(k[3].day == imap::date{2020, 3, 2});
    CHECK(k[10].op == search_op::header);
    CHECK(k[10].field == "Message-ID");
    CHECK(k[10].text == "<x@y>");
    CHECK(k[11].op == search_op::keyword);
    CHECK(k[11].text == "$Junk");
    CHECK(k[12].number == 100);
    CHECK(k[13].op == search_op::new_);
    CHECK(k[15].day == imap::date{2021, 4, 3});
    CHECK(k[26].op == search_op::uid);
    CHECK(k[26].set.ranges == std::vector<imap::seq_range>{{1, seq_star}});
    CHECK(k[31].op == search_op::unkeyword);
    CHECK(k[33].op == search_op::sequence);
    CHECK(k[33].set.ranges == std::vector<imap::seq_range>{{2, 2}, {4, 6}});
    CHECK(k[34].set.saved);
    CHECK(k[35].set.ranges == std::vector<imap::seq_range>{{seq_star, seq_star}});
    CHECK(k[36].op == search_op::modseq);
    CHECK(k[36].number == 620162338);
    CHECK(k[37].op == search_op::modseq);
    CHECK(k[37].number == 5);
}

TEST_CASE("SEARCH: OR, NOT and parentheses nest; depth is bounded")
{
    auto s = ok("a UID SEARCH OR (FROM alice SUBJECT hi) NOT OR SEEN (DELETED) 1:5");
    CHECK(s.uid);
    const auto& p = args<imap::search_args>(s).program;
    REQUIRE(p.children.size() == 2);
    const auto& o = p.children[0];
    CHECK(o.op == search_op::or_);
    REQUIRE(o.children.size() == 2);
    CHECK(o.children[0].op == search_op::list);
    CHECK(o.children[0].children.size() == 2);
    CHECK(o.children[1].op == search_op::not_);
    CHECK(o.children[1].children.at(0).op == search_op::or_);
    CHECK(o.children[1].children.at(0).children.at(1).op == search_op::list);
    CHECK(p.children[1].op == search_op::sequence);

    imap::parse_limits lim;
    lim.max_search_depth = 8;
    std::string deep = "a SEARCH ";
    for (int i = 0; i < 6; ++i)
        deep += "(";
    deep += "ALL";
    for (int i = 0; i < 6; ++i)
        deep += ")";
    CHECK(ok(deep, lim).verb == verb::search);
    CHECK(bad("a SEARCH " + std::string(7, '(') + "ALL" + std::string(7, ')'), lim) ==
          "a BAD [LIMIT] SEARCH: SEARCH keys nested too deeply");
    std::string nots = "a SEARCH ";
    for (int i = 0; i < 100; ++i)
        nots += "NOT ";
    CHECK(bad(nots + "SEEN") == "a BAD [LIMIT] SEARCH: SEARCH keys nested too deeply");
    imap::parse_limits few;
    few.max_search_keys = 5; // SEEN, NOT, the list, 1, DELETED
    CHECK(ok("a SEARCH SEEN NOT (1 DELETED)", few).verb == verb::search);
    CHECK(bad("a SEARCH SEEN NOT (1 DELETED) ALL", few) == "a BAD [LIMIT] SEARCH: Too many SEARCH keys");
    std::string parens(10000, '(');
    CHECK(bad("a SEARCH " + parens) == "a BAD [LIMIT] SEARCH: SEARCH keys nested too deeply");
}

TEST_CASE("SEARCH errors")
{
    CHECK(bad("a SEARCH") == "a BAD SEARCH: Missing argument");
    CHECK(bad("a SEARCH FOO") == "a BAD SEARCH: Unknown search key FOO");
    CHECK(bad("a SEARCH OR SEEN") == "a BAD SEARCH: Missing argument");
    CHECK(bad("a SEARCH (SEEN") == "a BAD SEARCH: Expected ')' in SEARCH");
    CHECK(bad("a SEARCH ()") == "a BAD SEARCH: Missing search key");
    CHECK(bad("a SEARCH SEEN)") == "a BAD SEARCH: Unexpected extra arguments");
    CHECK(bad("a SEARCH SINCE 1-Feb-94") == "a BAD SEARCH: Invalid date");
    CHECK(bad("a SEARCH SINCE 32-Feb-1994") == "a BAD SEARCH: Invalid date");
    CHECK(bad("a SEARCH SINCE \"1-Feb-1994") == "a BAD SEARCH: Invalid date");
    CHECK(bad("a SEARCH LARGER x") == "a BAD SEARCH: Missing size");
    CHECK(bad("a SEARCH UID 0") == "a BAD SEARCH: Invalid sequence set");
    CHECK(bad("a SEARCH 1:") == "a BAD SEARCH: Invalid sequence set");
    CHECK(bad("a SEARCH RETURN (FOO) ALL") == "a BAD SEARCH: Unknown SEARCH return option FOO");
    CHECK(bad("a SEARCH RETURN (MIN)") == "a BAD SEARCH: Missing argument");
    CHECK(bad("a SEARCH CHARSET") == "a BAD SEARCH: Missing argument");
    CHECK(bad("a SEARCH  ALL") == "a BAD SEARCH: Missing search key");
}

TEST_CASE("FETCH: items, sections and partials")
{
    auto f = ok("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])");
    const auto& a = args<imap::fetch_args>(f);
    CHECK(a.set.ranges == std::vector<imap::seq_range>{{2, 4}});
    REQUIRE(a.items.size() == 2);
    CHECK(a.items[1].attr == fetch_attr::body_section);
    CHECK(a.items[1].section.text == mime::section_text::header_fields);
    CHECK(a.items[1].section.fields == strings{"DATE", "FROM"});
    CHECK(a.items[1].name == "BODY[HEADER.FIELDS (DATE FROM)]");

    auto p = ok("a fetch 1 body.peek[1.2.HEADER.FIELDS (From \"To\")]<0.1024>");
    const auto& item = args<imap::fetch_args>(p).items.at(0);
    CHECK(item.attr == fetch_attr::body_section);
    CHECK(item.peek);
    CHECK(item.section.part == std::vector<std::uint32_t>{1, 2});
    CHECK(item.section.text == mime::section_text::header_fields);
    CHECK(item.section.fields == strings{"From", "To"});
    REQUIRE(item.range);
    CHECK(*item.range == imap::partial{0, 1024});
    CHECK(item.name == "BODY[1.2.HEADER.FIELDS (From To)]");

    auto all = ok("a FETCH 1:* (ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY "
                  "BODYSTRUCTURE UID BODY[] BODY[TEXT] BODY[1] BODY[3.MIME] BODY.PEEK[HEADER.FIELDS.NOT (Received)] "
                  "BINARY[1] BINARY.PEEK[2.1]<5.10> BINARY.SIZE[1] BINARY[] MODSEQ BODY[4.2.TEXT]<10.1>)");
    const auto& items = args<imap::fetch_args>(all).items;
    REQUIRE(items.size() == 21);
    const std::vector<fetch_attr> attrs{
        fetch_attr::envelope, fetch_attr::flags,        fetch_attr::internaldate,  fetch_attr::rfc822,
        fetch_attr::rfc822_header, fetch_attr::rfc822_size, fetch_attr::rfc822_text, fetch_attr::body,
        fetch_attr::bodystructure, fetch_attr::uid,    fetch_attr::body_section,  fetch_attr::body_section,
        fetch_attr::body_section, fetch_attr::body_section, fetch_attr::body_section, fetch_attr::binary,
        fetch_attr::binary,       fetch_attr::binary_size,  fetch_attr::binary,       fetch_attr::modseq,
        fetch_attr::body_section,
    };
    for (std::size_t i = 0; i < attrs.size(); ++i) {
        CAPTURE(i);
        CHECK(items[i].attr == attrs[i]);
    }
    CHECK(items[10].name == "BODY[]");
    CHECK(items[10].section.part.empty());
    CHECK(items[10].section.text == mime::section_text::none);
    CHECK(items[11].section.text == mime::section_text::text);
    CHECK(items[12].section.part == std::vector<std::uint32_t>{1});
    CHECK(items[13].section.text == mime::section_text::mime);
    CHECK(items[13].name == "BODY[3.MIME]");
    CHECK(items[14].name == "BODY[HEADER.FIELDS.NOT (Received)]");
    CHECK(items[14].peek);
    CHECK(items[15].name == "BINARY[1]");
    CHECK(items[16].peek);
    CHECK(items[16].name == "BINARY[2.1]");
    CHECK(items[16].range == imap::partial{5, 10});
    CHECK(items[17].name == "BINARY.SIZE[1]");
    CHECK(items[18].section.part.empty());
    CHECK(items[20].name == "BODY[4.2.TEXT]");

    auto single = ok("A999 UID FETCH 4827313:4828442 FLAGS");
    CHECK(single.uid);
    CHECK(args<imap::fetch_args>(single).items.size() == 1);
    CHECK(args<imap::fetch_args>(ok("a FETCH 1 fast")).items.size() == 3);
    CHECK(args<imap::fetch_args>(ok("a FETCH 1 ALL")).items.size() == 4);
    CHECK(args<imap::fetch_args>(ok("a FETCH $ (UID)")).set.saved);
    auto cs = ok("a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)");
    CHECK(args<imap::fetch_args>(cs).changed_since == 12345U);
    auto quoted = ok("a FETCH 1 BODY[HEADER.FIELDS (\"X Odd\" {3}\r\nabc)]");
    CHECK(args<imap::fetch_args>(quoted).items.at(0).section.fields == strings{"X Odd", "abc"});
    CHECK(args<imap::fetch_args>(quoted).items.at(0).name == "BODY[HEADER.FIELDS (\"X Odd\" abc)]");
}

TEST_CASE("FETCH errors")
{
    CHECK(bad("a FETCH 1") == "a BAD FETCH: Missing argument");
    CHECK(bad("a FETCH 1 FOO") == "a BAD FETCH: Unknown fetch item FOO");
    CHECK(bad("a FETCH 1 ()") == "a BAD FETCH: Invalid fetch item");
    CHECK(bad("a FETCH 1 (FLAGS") == "a BAD FETCH: Expected ')' after fetch items");
    CHECK(bad("a FETCH 1 (ALL)") == "a BAD FETCH: Unknown fetch item ALL");
    CHECK(bad("a FETCH 0 FLAGS") == "a BAD FETCH: Invalid sequence set");
    CHECK(bad("a FETCH 1: FLAGS") == "a BAD FETCH: Invalid sequence set");
    CHECK(bad("a FETCH , FLAGS") == "a BAD FETCH: Invalid sequence set");
    CHECK(bad("a FETCH x FLAGS") == "a BAD FETCH: Invalid sequence set");
    CHECK(bad("a FETCH 1 BODY[0]") == "a BAD FETCH: Invalid section part");
    CHECK(bad("a FETCH 1 BODY[01]") == "a BAD FETCH: Invalid section part");
    CHECK(bad("a FETCH 1 BODY[MIME]") == "a BAD FETCH: Invalid section");
    CHECK(bad("a FETCH 1 BODY[1.]") == "a BAD FETCH: Invalid section");
    CHECK(bad("a FETCH 1 BODY[HEADER.FIELDS]") == "a BAD FETCH: Missing argument");
    CHECK(bad("a FETCH 1 BODY[HEADER.FIELDS ()]") == "a BAD FETCH: Missing header field name");
    CHECK(bad("a FETCH 1 BODY[HEADER") == "a BAD FETCH: Expected ']' after section");
    CHECK(bad("a FETCH 1 BODY[TEXT]<0.0>") == "a BAD FETCH: Invalid partial");
    CHECK(bad("a FETCH 1 BODY[TEXT]<5>") == "a BAD FETCH: Invalid partial");
    CHECK(bad("a FETCH 1 BODY.PEEK") == "a BAD FETCH: Expected '['");
    CHECK(bad("a FETCH 1 BINARY[TEXT]") == "a BAD FETCH: Expected ']' after section");
    CHECK(bad("a FETCH 1 BINARY.SIZE[1]<0.1>") == "a BAD FETCH: Unexpected extra arguments");
    CHECK(bad("a FETCH 1 FLAGS (FOO 1)") == "a BAD FETCH: Unknown fetch modifier FOO");
    CHECK(bad("a FETCH 1 FLAGS (CHANGEDSINCE 0)") == "a BAD FETCH: Invalid mod-sequence");

    imap::parse_limits lim;
    lim.max_ranges = 3;
    CHECK(bad("a FETCH 1,2,3,4 FLAGS", lim) == "a BAD [LIMIT] FETCH: Too many ranges in sequence set");
}

TEST_CASE("STORE: FLAGS, +FLAGS, -FLAGS, .SILENT, lists or single flags")
{
    auto s = ok("A003 STORE 2:4 +FLAGS (\\Deleted)");
    CHECK(args<imap::store_args>(s).mode == imap::store_mode::add);
    CHECK(args<imap::store_args>(s).flags == strings{"\\Deleted"});
    auto r = ok("a UID STORE 1:* FLAGS.SILENT (\\Seen $Label1 \\Answered)");
    CHECK(r.uid);
    CHECK(args<imap::store_args>(r).mode == imap::store_mode::replace);
    CHECK(args<imap::store_args>(r).silent);
    CHECK(args<imap::store_args>(r).flags == strings{"\\Seen", "$Label1", "\\Answered"});
    auto m = ok("a STORE 1 -flags.silent \\Seen \\Flagged");
    CHECK(args<imap::store_args>(m).mode == imap::store_mode::remove);
    CHECK(args<imap::store_args>(m).flags == strings{"\\Seen", "\\Flagged"});
    CHECK(args<imap::store_args>(ok("a STORE 1 FLAGS ()")).flags.empty());
    auto u = ok("a STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)");
    CHECK(args<imap::store_args>(u).unchanged_since == 320162338U);

    CHECK(bad("a STORE 1 FLAGZ (\\Seen)") == "a BAD STORE: Unknown store item FLAGZ");
    CHECK(bad("a STORE 1 +FLAGS") == "a BAD STORE: Missing argument");
    CHECK(bad("a STORE 1 +FLAGS (\\Seen") == "a BAD STORE: Missing argument");
    CHECK(bad("a STORE 1 FLAGS (\\)") == "a BAD STORE: Invalid flag");
    CHECK(bad("a STORE 1 FLAGS (\\Seen)x") == "a BAD STORE: Unexpected extra arguments");
    CHECK(bad("a STORE 1 (FOO 1) FLAGS ()") == "a BAD STORE: Unknown store modifier FOO");
    CHECK(bad("a STORE FLAGS (\\Seen)") == "a BAD STORE: Invalid sequence set");
}

TEST_CASE("COPY and MOVE, with and without UID (RFC 6851)")
{
    auto c = ok("A003 COPY 2:4 MEETING");
    CHECK(c.verb == verb::copy);
    CHECK(args<imap::copy_args>(c).mailbox == "MEETING");
    auto m = ok("a UID MOVE 42:69 \"Old Stuff\"");
    CHECK(m.verb == verb::move);
    CHECK(m.uid);
    CHECK(args<imap::copy_args>(m).mailbox == "Old Stuff");
    CHECK(args<imap::copy_args>(ok("a MOVE * inbox")).mailbox == "INBOX");
    CHECK(bad("a COPY 1") == "a BAD COPY: Missing argument");
    CHECK(bad("a MOVE 1:2") == "a BAD MOVE: Missing argument");
}

TEST_CASE("the table says where each verb is allowed (RFC 9051 6)")
{
    using imap::session_state;
    CHECK(imap::allowed(verb::login, session_state::not_authenticated));
    CHECK_FALSE(imap::allowed(verb::login, session_state::authenticated));
    CHECK(imap::allowed(verb::capability, session_state::selected));
    CHECK(imap::allowed(verb::id, session_state::not_authenticated));
    CHECK(imap::allowed(verb::select, session_state::authenticated));
    CHECK(imap::allowed(verb::select, session_state::selected));
    CHECK_FALSE(imap::allowed(verb::select, session_state::not_authenticated));
    CHECK(imap::allowed(verb::enable, session_state::authenticated));
    CHECK_FALSE(imap::allowed(verb::enable, session_state::selected));
    CHECK(imap::allowed(verb::fetch, session_state::selected));
    CHECK_FALSE(imap::allowed(verb::fetch, session_state::authenticated));
    CHECK(imap::allowed(verb::idle, session_state::authenticated));
    CHECK_FALSE(imap::allowed(verb::noop, session_state::logout));
    CHECK(imap::verb_name(verb::delete_) == "DELETE");
    CHECK(imap::verb_name(verb::namespace_) == "NAMESPACE");
}

TEST_CASE("pipelined commands parse one after another")
{
    imap::reader r;
    r.feed("a1 NOOP\r\na2 SELECT {5+}\r\nInbox\r\na3 FETCH 1 (UID)\r\nbogus\r\n");
    std::vector<std::string> out;
    while (r.next() == imap::read_event::command) {
        auto p = imap::parse_command(r.take_command());
        out.push_back(p ? p.command->tag + " " + std::string(imap::verb_name(p.command->verb)) : p.error.str());
    }
    CHECK(out == strings{"a1 NOOP", "a2 SELECT", "a3 FETCH", "bogus BAD Missing command\r\n"});
}

TEST_CASE("a command framed at every split parses the same")
{
    const std::string wire = "a1 LOGIN {5}\r\nalice {6+}\r\nsecret\r\n";
    for (std::size_t i = 0; i <= wire.size(); ++i) {
        CAPTURE(i);
        imap::reader r;
        r.feed(wire.substr(0, i));
        int conts = 0;
        imap::read_event ev{};
        while ((ev = r.next()) == imap::read_event::continuation)
            ++conts;
        if (ev != imap::read_event::command) {
            r.feed(wire.substr(i));
            while ((ev = r.next()) == imap::read_event::continuation)
                ++conts;
        }
        REQUIRE(ev == imap::read_event::command);
        CHECK(conts == 1);
        auto p = imap::parse_command(r.take_command());
        REQUIRE(p);
        CHECK(args<imap::login_args>(*p.command).user == "alice");
        CHECK(args<imap::login_args>(*p.command).password == "secret");
    }
}

} // TEST_SUITE

#include "postern/smtp/received.hpp"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

using namespace postern::smtp;

namespace {

received_fields base()
{
    received_fields f;
    f.helo = "client.example";
    f.client_ip = "192.0.2.1";
    f.by = "mx.test";
    f.protocol = "ESMTP";
    f.id = "0123456789abcdef";
    f.for_rcpt = "";
    f.date = "Mon, 1 Jan 2024 00:00:00 +0000";
    return f;
}

} // namespace

TEST_SUITE("smtp") {

TEST_CASE("the Received header has the exact RFC 5321 4.4 layout")
{
    auto f = base();
    f.for_rcpt = "rcpt@example.org";
    CHECK(received_header(f) == "Received: from client.example ([192.0.2.1])\r\n"
                                "\tby mx.test (postern) with ESMTP id 0123456789abcdef\r\n"
                                "\tfor <rcpt@example.org>; Mon, 1 Jan 2024 00:00:00 +0000\r\n");
}

TEST_CASE("the for clause appears only when a recipient is given")
{
    auto f = base();
    CHECK(received_header(f) == "Received: from client.example ([192.0.2.1])\r\n"
                                "\tby mx.test (postern) with ESMTP id 0123456789abcdef; "
                                "Mon, 1 Jan 2024 00:00:00 +0000\r\n");
}

TEST_CASE("the protocol word is written as given")
{
    for (std::string_view p : {"SMTP", "ESMTP", "UTF8SMTP", "ESMTPS"}) {
        CAPTURE(p);
        auto f = base();
        f.protocol = p;
        auto h = received_header(f);
        CHECK(h.find(" with " + std::string(p) + " id ") != std::string::npos);
    }
}

TEST_CASE("an IPv6 client address gets the IPv6: tag and an IPv4 one does not")
{
    SUBCASE("IPv6")
    {
        auto f = base();
        f.client_ip = "2001:db8::1";
        auto h = received_header(f);
        CHECK(h.rfind("Received: from client.example ([IPv6:2001:db8::1])\r\n", 0) == 0);
    }
    SUBCASE("IPv4-mapped IPv6")
    {
        auto f = base();
        f.client_ip = "::ffff:192.0.2.1";
        CHECK(received_header(f).find("([IPv6:::ffff:192.0.2.1])") != std::string::npos);
    }
    SUBCASE("IPv4")
    {
        auto h = received_header(base());
        CHECK(h.find("([192.0.2.1])") != std::string::npos);
        CHECK(h.find("IPv6") == std::string::npos);
    }
}

TEST_CASE("a HELO name with CR, LF, parentheses or other unsafe octets is sanitised to '?'")
{
    struct row {
        std::string_view helo;
        std::string_view shown;
    };
    const row rows[] = {
        {"evil\r\nX-Injected: yes", "evil??X-Injected:?yes"},
        {"a(comment)b", "a?comment?b"},
        {"<x>;y", "?x??y"},
        {"host name", "host?name"},
        {"h\xc3\xa9llo", "h??llo"},
        {"tab\there", "tab?here"},
        {"[192.0.2.1]", "[192.0.2.1]"},
        {"[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]"},
        {"Mixed-Case_host.example", "Mixed-Case_host.example"},
    };
    for (const auto& [helo, shown] : rows) {
        const auto& helo_case = helo; // clang 14: no structured binding in a lambda (CAPTURE)
        CAPTURE(helo_case);
        auto f = base();
        f.helo = helo;
        auto h = received_header(f);
        CHECK(h.rfind("Received: from " + std::string(shown) + " ([192.0.2.1])\r\n", 0) == 0);
        // Exactly the two folds and the final CRLF: nothing the client sent broke a line.
        std::size_t crlf = 0;
        for (std::size_t i = h.find("\r\n"); i != std::string::npos; i = h.find("\r\n", i + 1))
            ++crlf;
        CHECK(crlf == 2);
    }
}

TEST_CASE("a TLS session adds a version and cipher comment after the id")
{
    auto f = base();
    f.protocol = "ESMTPS";
    f.tls = "TLSv1.3 TLS_AES_256_GCM_SHA384";
    SUBCASE("with a for clause")
    {
        f.for_rcpt = "rcpt@example.org";
        CHECK(received_header(f) == "Received: from client.example ([192.0.2.1])\r\n"
                                    "\tby mx.test (postern) with ESMTPS id 0123456789abcdef\r\n"
                                    "\t(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384)\r\n"
                                    "\tfor <rcpt@example.org>; Mon, 1 Jan 2024 00:00:00 +0000\r\n");
    }
    SUBCASE("without a for clause")
    {
        CHECK(received_header(f) == "Received: from client.example ([192.0.2.1])\r\n"
                                    "\tby mx.test (postern) with ESMTPS id 0123456789abcdef\r\n"
                                    "\t(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384); "
                                    "Mon, 1 Jan 2024 00:00:00 +0000\r\n");
    }
    SUBCASE("a description without a cipher")
    {
        f.tls = "TLSv1.2";
        CHECK(received_header(f).find("\r\n\t(version=TLSv1.2); Mon") != std::string::npos);
    }
}

TEST_CASE("no TLS comment without a TLS description")
{
    CHECK(received_header(base()).find("version=") == std::string::npos);
}

TEST_CASE("a TLS description with CR, LF, parentheses or spaces cannot break the header or the comment")
{
    auto f = base();
    f.tls = "TLSv1.3\r\nX: y ci(ph)er\r\nBcc: z";
    auto h = received_header(f);
    CHECK(h.find("\t(version=TLSv1.3??X: cipher=y?ci?ph?er??Bcc:?z); ") != std::string::npos);
    std::size_t crlf = 0;
    for (std::size_t i = h.find("\r\n"); i != std::string::npos; i = h.find("\r\n", i + 1))
        ++crlf;
    CHECK(crlf == 3);
}


TEST_CASE("the Received header of local mail names the user and uid and says with local")
{
    local_received_fields f;
    f.login = "alice";
    f.uid = 1000;
    f.by = "mx.test";
    f.id = "0123456789abcdef";
    f.for_rcpt = "bob@example.test";
    f.date = "Mon, 1 Jan 2024 00:00:00 +0000";
    CHECK(local_received_header(f) ==
          "Received: from local user alice (uid 1000)\r\n\tby mx.test (postern) with local id 0123456789abcdef"
          "\r\n\tfor <bob@example.test>; Mon, 1 Jan 2024 00:00:00 +0000\r\n");
    SUBCASE("a login name cannot break the header; no for clause with several recipients")
    {
        f.login = "ev\r\nil (x)";
        f.for_rcpt = "";
        CHECK(local_received_header(f) ==
              "Received: from local user ev??il??x? (uid 1000)\r\n\tby mx.test (postern) with local id "
              "0123456789abcdef; Mon, 1 Jan 2024 00:00:00 +0000\r\n");
    }
}

} // TEST_SUITE

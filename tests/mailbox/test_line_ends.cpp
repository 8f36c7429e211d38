#include "postern/mailbox/line_ends.hpp"

#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace postern;

TEST_SUITE("mailbox")
{
    TEST_CASE("every bare LF becomes CRLF; CRLF and a lone CR stay")
    {
        struct example {
            std::string in, out;
        };
        // A named element, not a structured binding: clang 14 cannot capture
        // one in doctest's CAPTURE lambda.
        for (const auto& e : std::vector<example>{
                 {"", ""},
                 {"a", "a"},
                 {"\n", "\r\n"},
                 {"a\nb\n", "a\r\nb\r\n"},
                 {"a\r\nb\r\n", "a\r\nb\r\n"},
                 {"a\r\n\nb", "a\r\n\r\nb"},
                 {"a\rb\n", "a\rb\r\n"},
                 {"a\r\r\n", "a\r\r\n"},
                 {"\n\n", "\r\n\r\n"},
                 {"\r", "\r"},
             }) {
            CAPTURE(e.in);
            CHECK(mailbox::to_crlf(e.in) == e.out);
            CHECK(e.in.size() + mailbox::bare_lf_count(e.in) == e.out.size());
        }
    }

    TEST_CASE("bare LFs are counted across chunk boundaries")
    {
        CHECK(mailbox::bare_lf_count("\nx", true) == 0);  // the chunk before ended in CR
        CHECK(mailbox::bare_lf_count("\nx", false) == 1);
        CHECK(mailbox::bare_lf_count("x\n", true) == 1);  // only the first octet's neighbour is outside
    }
}

#include "postern/mail/extension.hpp"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

using postern::mail::split_extension;

namespace {

// "base|extension|delimiter", or "-" when the local part is not split.
std::string split(std::string_view local, std::string_view delimiters)
{
    auto s = split_extension(local, delimiters);
    if (!s)
        return "-";
    return std::string(s->base) + "|" + std::string(s->extension) + "|" + s->delimiter;
}

} // namespace

TEST_SUITE("mail") {

TEST_CASE("a local part is split at its first delimiter into base and extension")
{
    CHECK(split("alice+tag", "+") == "alice|tag|+");
    CHECK(split("Alice+Tag", "+") == "Alice|Tag|+");
    SUBCASE("only the first delimiter splits; the rest belongs to the extension")
    {
        CHECK(split("alice+a+b", "+") == "alice|a+b|+");
    }
    SUBCASE("any one of several delimiter characters, whichever comes first")
    {
        CHECK(split("alice-x+y", "+-") == "alice|x+y|-");
        CHECK(split("alice+x-y", "+-") == "alice|x-y|+");
    }
    SUBCASE("an empty extension is still an extension, as in Postfix")
    {
        CHECK(split("alice+", "+") == "alice||+");
    }
}

TEST_CASE("a local part without a delimiter, or starting with one, is not split")
{
    for (std::string_view local : {"alice", "+tag", "+", "a.b-c"}) {
        CAPTURE(local);
        CHECK(split(local, "+") == "-");
    }
}

TEST_CASE("an empty delimiter set turns extensions off")
{
    CHECK(split("alice+tag", "") == "-");
}

TEST_CASE("with '-' as a delimiter, owner-x and x-request are never split")
{
    for (std::string_view local : {"owner-list", "Owner-List", "list-request", "list-REQUEST", "owner-"}) {
        CAPTURE(local);
        CHECK(split(local, "-") == "-");
        CHECK(split(local, "+-") == "-");
    }
    // "-request" alone is not a list's request address: a leading delimiter.
    CHECK(split("-request", "-") == "-");
    CHECK(split("alice-tag", "-") == "alice|tag|-");
    // With '+' only, the conventions do not matter.
    CHECK(split("owner-list+x", "+") == "owner-list|x|+");
}

}

#include "postern/delivery/maildir.hpp"

#include <filesystem>
#include <fstream>
#include <ostream> // doctest prints std::error_code through it
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "../temp_dir.hpp"

#include "postern/util/id.hpp"

using namespace postern::delivery;
namespace fs = std::filesystem;

namespace {

using postern::testing::temp_dir;

std::set<std::string> names_in(const fs::path& dir)
{
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        out.insert(e.path().filename().string());
    return out;
}

std::string contents(const fs::path& p)
{
    std::ifstream f(p, std::ios::binary);
    REQUIRE_MESSAGE(f, "cannot open " << p.string());
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_text(const fs::path& p, std::string_view text)
{
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << text;
    REQUIRE(f.good());
}

// An existing Maildir at dir.
void make_maildir(const fs::path& dir)
{
    for (const char* sub : {"tmp", "new", "cur"})
        fs::create_directories(dir / sub);
}

const std::string name = maildir_name(1700000000, "0123456789abcdef", "mx.example.test");
constexpr std::string_view parts_arr[] = {"Return-Path: <s@example.org>\r\n", "Delivered-To: alice@example.test\r\n",
                                          "Subject: hi\r\n\r\nbody\r\n"};
const std::span<const std::string_view> parts(parts_arr);
constexpr std::string_view whole =
    "Return-Path: <s@example.org>\r\nDelivered-To: alice@example.test\r\nSubject: hi\r\n\r\nbody\r\n";

} // namespace

TEST_SUITE("delivery") {

TEST_CASE("maildir_name is <received_at>.Q<id>.<host> with '/' and ':' in the host escaped")
{
    CHECK(maildir_name(1700000000, "0123456789abcdef", "mx.example.test") ==
          "1700000000.Q0123456789abcdef.mx.example.test");
    CHECK(maildir_name(0, "00000000000000ff", "h") == "0.Q00000000000000ff.h");
    CHECK(maildir_name(1700000000, "0123456789abcdef", "a/b:c") == "1700000000.Q0123456789abcdef.a\\057b\\072c");
    CHECK(maildir_name(1, "0123456789abcdef", "::/") == "1.Q0123456789abcdef.\\072\\072\\057");
    // Different ids give different names (one file per message and mailbox).
    CHECK(maildir_name(1, "0123456789abcdef", "h") != maildir_name(1, "0123456789abcde0", "h"));
}

TEST_CASE("a committed delivery is a file in new/ with exactly the parts, and tmp/ is left empty")
{
    temp_dir d;
    const fs::path box = d.path / "mail" / "example.test" / "alice"; // none of it exists yet
    maildir_batch b;
    auto item = b.add(box.string(), name, parts, false);
    REQUIRE(item);
    CHECK(*item == 0);
    CHECK_FALSE(fs::exists(box / "new" / name)); // not visible before commit()
    auto results = b.commit();
    REQUIRE(results.size() == 1);
    CHECK(results[0]);
    CHECK(fs::is_directory(box / "tmp"));
    CHECK(fs::is_directory(box / "new"));
    CHECK(fs::is_directory(box / "cur"));
    CHECK(names_in(box / "new") == std::set<std::string>{name});
    CHECK(contents(box / "new" / name) == whole);
    CHECK(names_in(box / "tmp").empty());
    CHECK(names_in(box / "cur").empty());
}

TEST_CASE("one batch delivers into several Maildirs, one result per item")
{
    temp_dir d;
    maildir_batch b;
    std::vector<std::string> boxes = {d.str("example.test/alice"), d.str("example.test/bob"), d.str("other.test/carol")};
    for (std::size_t i = 0; i < boxes.size(); ++i) {
        CAPTURE(i);
        auto item = b.add(boxes[i], name, parts, i == 1);
        REQUIRE(item);
        CHECK(*item == i);
    }
    auto results = b.commit();
    REQUIRE(results.size() == boxes.size());
    for (std::size_t i = 0; i < boxes.size(); ++i) {
        CAPTURE(i);
        CHECK(results[i]);
        CHECK(contents(fs::path(boxes[i]) / "new" / name) == whole);
    }
}

TEST_CASE("with check_existing, a file already delivered counts as delivered and no second file appears")
{
    temp_dir d;
    const fs::path box = d.path / "alice";
    make_maildir(box);
    SUBCASE("in new/")
    {
        write_text(box / "new" / name, "earlier delivery");
        maildir_batch b;
        auto item = b.add(box.string(), name, parts, true);
        REQUIRE(item);
        auto results = b.commit();
        REQUIRE(results.size() == 1);
        CHECK(results[0]);
        CHECK(names_in(box / "new") == std::set<std::string>{name});
        CHECK(contents(box / "new" / name) == "earlier delivery");
        CHECK(names_in(box / "cur").empty());
    }
    SUBCASE("in cur/ with flags, as a reader leaves it")
    {
        write_text(box / "cur" / (name + ":2,S"), "earlier delivery, seen");
        maildir_batch b;
        auto item = b.add(box.string(), name, parts, true);
        REQUIRE(item);
        auto results = b.commit();
        REQUIRE(results.size() == 1);
        CHECK(results[0]);
        CHECK(names_in(box / "new").empty());
        CHECK(names_in(box / "cur") == std::set<std::string>{name + ":2,S"});
    }
    CHECK(names_in(box / "tmp").empty());
}

TEST_CASE("with check_existing, a file in cur/ whose name merely starts with ours is another message")
{
    temp_dir d;
    const fs::path box = d.path / "alice";
    make_maildir(box);
    const std::string other = name + "x:2,S"; // host "mx.example.testx"
    write_text(box / "cur" / other, "another message");
    maildir_batch b;
    REQUIRE(b.add(box.string(), name, parts, true));
    auto results = b.commit();
    REQUIRE(results.size() == 1);
    CHECK(results[0]);
    CHECK(names_in(box / "new") == std::set<std::string>{name});
    CHECK(contents(box / "new" / name) == whole);
    CHECK(contents(box / "cur" / other) == "another message");
}

TEST_CASE("without check_existing, a clash in new/ is not overwritten and counts as delivered")
{
    temp_dir d;
    const fs::path box = d.path / "alice";
    make_maildir(box);
    write_text(box / "new" / name, "earlier delivery");
    maildir_batch b;
    auto item = b.add(box.string(), name, parts, false);
    REQUIRE(item);
    auto results = b.commit();
    REQUIRE(results.size() == 1);
    CHECK(results[0]);
    CHECK(names_in(box / "new") == std::set<std::string>{name});
    CHECK(contents(box / "new" / name) == "earlier delivery"); // RENAME_NOREPLACE
    CHECK(names_in(box / "tmp").empty());
}

TEST_CASE("a leftover tmp/ file of a crashed attempt does not block delivery")
{
    temp_dir d;
    const fs::path box = d.path / "alice";
    make_maildir(box);
    write_text(box / "tmp" / name, "half of an earl");
    bool check = false;
    SUBCASE("without check_existing") { check = false; }
    SUBCASE("with check_existing") { check = true; }
    CAPTURE(check);
    maildir_batch b;
    auto item = b.add(box.string(), name, parts, check);
    REQUIRE(item);
    auto results = b.commit();
    REQUIRE(results.size() == 1);
    CHECK(results[0]);
    CHECK(names_in(box / "new") == std::set<std::string>{name});
    CHECK(contents(box / "new" / name) == whole);
    CHECK(names_in(box / "tmp").empty());
}

TEST_CASE("a Maildir that cannot be created is an error from add()")
{
    temp_dir d;
    write_text(d.path / "example.test", "a file where the domain directory should be");
    maildir_batch b;
    auto item = b.add(d.str("example.test/alice"), name, parts, false);
    REQUIRE_FALSE(item);
    CHECK(item.error() == std::errc::not_a_directory);
    CHECK(b.commit().empty());
}

}

#include "postern/util/atomic_write.hpp"

#include <filesystem>
#include <string_view>

#include <sys/stat.h>

#include <doctest/doctest.h>

#include "../temp_dir.hpp"

#include "postern/util/id.hpp"

using namespace postern::util;
namespace fs = std::filesystem;

namespace {

using postern::testing::temp_dir;

} // namespace

TEST_SUITE("util") {

TEST_CASE("atomic_write makes 0600 files, or the mode asked for whatever the umask")
{
    temp_dir d;
    REQUIRE(atomic_write(d.str(), "private", "x"));
    CHECK((fs::status(d.str("private")).permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));
    const auto old_mask = ::umask(077);
    auto r = atomic_write(d.str(), "group", "x", 0640);
    ::umask(old_mask);
    REQUIRE(r);
    CHECK((fs::status(d.str("group")).permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
}

TEST_CASE("atomic_write replaces a file with the full new content")
{
    temp_dir d;
    REQUIRE(atomic_write(d.str(), "f", "one"));
    REQUIRE(atomic_write(d.str(), "f", "two-two"));
    auto r = read_file(d.str("f"));
    REQUIRE(r);
    CHECK(*r == "two-two");
    int n = 0;
    for ([[maybe_unused]] auto& e : fs::directory_iterator(d.path))
        ++n;
    CHECK(n == 1); // no temp file left behind
}

TEST_CASE("durable_batch publishes files only through its renames, never over existing ones")
{
    temp_dir d;
    fs::create_directories(d.path / "tmp");
    fs::create_directories(d.path / "new");
    durable_batch b;
    std::string_view parts[] = {"Header: x\r\n", "\r\n", "body\r\n"};
    REQUIRE(b.write(d.str("tmp/a"), parts));
    REQUIRE(b.write(d.str("tmp/b"), parts));
    CHECK(b.write(d.str("tmp/a"), parts).error() == std::errc::file_exists);
    REQUIRE(atomic_write(d.str("new"), "b", "already there"));
    b.rename(d.str("tmp/a"), d.str("new/a"));
    b.rename(d.str("tmp/b"), d.str("new/b"));
    auto r = b.commit();
    REQUIRE(r);
    REQUIRE(r->size() == 2);
    CHECK_FALSE((*r)[0]);
    CHECK((*r)[1] == make_error_code(errc::exists));
    CHECK(*read_file(d.str("new/a")) == "Header: x\r\n\r\nbody\r\n");
    CHECK(*read_file(d.str("new/b")) == "already there");
    CHECK(b.empty());
}

TEST_CASE("read_file reports a missing file as an error value")
{
    auto r = read_file("/nonexistent/postern/file");
    CHECK_FALSE(r);
    CHECK(r.error() == std::errc::no_such_file_or_directory);
}

}
